"""The bench's command line: run the parts, print one table, write JSON."""

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bluetrace.bench import (
    beacons,
    checking,
    churn,
    flood,
    handshakes,
    hashing,
    held,
    idle,
    parsers,
    pipelining,
    sessions,
    spread,
    startup,
)
from bluetrace.bench.context import Context
from bluetrace.bench.processes import Children
from bluetrace.bench.report import Report, describe_machine, machine, render, summary, write_json
from bluetrace.bench.sizes import FULL, QUICK

DEFAULT_OUT = Path(".bluetrace/bench/results.json")

PARTS: dict[str, tuple[Callable[[Context], None], str]] = {
    "parsers": (parsers.run, "beacon, frame and upload codecs, in-process"),
    "sessions": (sessions.run, "login -> Download_tempID -> logout at 1, 10, 100 clients"),
    "startup": (startup.run, "start-up time and memory with 3,000,000 TempIDs, 1,000,000 users"),
    "checking": (checking.run, "a 100,000-entry upload against 1,000,000 known TempIDs"),
    "held": (held.run, "5,000 idle logged-in connections: memory, fresh-session latency"),
    "churn": (churn.run, "memory over 100,000 connect/close cycles, one idle connection"),
    "pipelining": (pipelining.run, "sessions while an unauthenticated peer floods 1 MiB"),
    "hashing": (hashing.run, "plain sessions while 300 connections log in as a hashed user"),
    "spread": (spread.run, "sessions while 250, then 1,000 connections pipeline 64 KiB each"),
    "handshakes": (handshakes.run, "TLS sessions while 1,000 ClientHellos/s flood the server"),
    "idle": (idle.run, "sessions while 21,000 idle connections come from 3 addresses"),
    "beacons": (beacons.run, "highest beacon rate a phone logs with no loss"),
    "flood": (flood.run, "command latency while 2,000 beacons/s flood a phone; CPU after"),
}

DESCRIPTION = """\
Measure bluetrace's server and phone as real processes on 127.0.0.1, each
figure beside a ceiling measured in the same run, and print one table.

Every part runs its own fresh server on an OS-chosen port and ends every
process it starts. A full run takes a few minutes on 2 cores; progress goes
to stderr, the table and its legend to stdout, the same figures as JSON to
--out."""


def epilog() -> str:
    width = max(len(name) for name in PARTS)
    lines = ["parts (in the order they run):"]
    lines += [f"  {name.ljust(width)}  {text}" for name, (_, text) in PARTS.items()]
    lines += [
        "",
        "exit status: 0 when every part ran (and, with --strict, every target was",
        "met); 1 when a part failed or, with --strict, a target was missed; 2 for",
        "bad options; 130 when interrupted.",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bluetrace.bench",
        description=DESCRIPTION,
        epilog=epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes for every part (seconds, not minutes); figures are "
        "printed but not judged against targets",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="PART",
        help=f"run only these parts (space or comma separated): {', '.join(PARTS)}",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="PATH",
        help=f"where to write the results as JSON (default: {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 1 when any target is missed",
    )
    parser.add_argument(
        "--programs-from",
        type=Path,
        metavar="DIR",
        help="run the server and phone from the bluetrace package in this checkout "
        "(for before/after comparisons); the bench, its helpers and the parsers "
        "part (which calls the codecs in-process) stay the installed bluetrace",
    )
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.only is not None:
        chosen = [name for item in args.only for name in item.split(",") if name]
        unknown = [name for name in chosen if name not in PARTS]
        if unknown or not chosen:
            parser.error(
                f"unknown part {', '.join(unknown) or '(none given)'}; "
                f"valid parts: {', '.join(PARTS)}"
            )
        args.only = chosen
    if args.programs_from is not None and not (args.programs_from / "bluetrace").is_dir():
        parser.error(f"--programs-from {args.programs_from}: no bluetrace package there")
    return args


def run(args: argparse.Namespace, report: Report, workdir: Path) -> None:
    chosen = [name for name in PARTS if args.only is None or name in args.only]
    for index, name in enumerate(chosen, 1):
        action, _ = PARTS[name]
        children = Children()
        part_dir = workdir / name
        part_dir.mkdir()
        ctx = Context(
            part=name,
            step=f"[{index}/{len(chosen)}]",
            sizes=QUICK if args.quick else FULL,
            full=not args.quick,
            workdir=part_dir,
            children=children,
            report=report,
            source=args.programs_from,
        )
        began = time.monotonic()
        try:
            action(ctx)
        except Exception as exc:  # one part failing must not stop the rest
            text = " ".join(str(exc).split())[:400] or type(exc).__name__
            report.failures[name] = text
            ctx.progress(f"FAILED: {text}")
        finally:
            children.end_all()
        ctx.progress(f"done in {time.monotonic() - began:.1f} s")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = Report(quick=args.quick, machine=machine())
    print(f"bench: {describe_machine(report.machine)}", file=sys.stderr, flush=True)
    began = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="bluetrace-bench-"))
    try:
        run(args, report, workdir)
    except KeyboardInterrupt:
        print("\nbench: interrupted; every process it started has been ended", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report.seconds = time.monotonic() - began
    print(render(report), flush=True)
    try:
        write_json(report, args.out)
    except OSError as exc:
        print(f"bench: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"results written to {args.out}")
    _, missed, _ = report.counts()
    if report.failures or (args.strict and missed):
        print(f"bench: {summary(report)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
