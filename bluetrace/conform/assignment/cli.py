"""The ``assignment`` mode's options and its run, for one folder or a class.

Exit status: 0 when every check passed, 1 when any failed, 2 when a
submission could not be set up (no programs found, a build failed, a program
that would listen beyond loopback) or an option is wrong.
"""

import argparse
import secrets
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType

from bluetrace.conform import report
from bluetrace.conform.assignment import matrix
from bluetrace.conform.assignment.checks import CHECKS, GROUPS
from bluetrace.conform.assignment.grader import (
    Cell,
    GroupRun,
    Task,
    groups_for,
    ordered,
    progress,
    run_group,
    run_pair,
    run_tasks,
)
from bluetrace.conform.assignment.procs import Limits, second_address, sweep
from bluetrace.conform.assignment.session import Settings
from bluetrace.conform.assignment.submission import Submission, build, detect
from bluetrace.conform.model import CaseSetupError, Result


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < 10**6:
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def _whole(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_parser(modes: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = modes.add_parser(
        "assignment", help="grade submissions of the original assignment (black box)",
        description="Grades submission folders of the original assignment through their "
        "terminals and files only, whatever their TCP format. Each program runs on its own "
        "pseudo-terminal in a fresh copy of the folder, on loopback only, with bounded time, "
        "output and memory.")
    parser.add_argument("folders", nargs="+", type=Path, metavar="DIR",
                        help="submission folders (several: a matrix, and beacon interop)")
    parser.add_argument("--python", default=sys.executable, metavar="PY",
                        help="interpreter for server.py/client.py (default: this one); pick "
                        "one with the packages the submissions need")
    parser.add_argument("--server-cmd", metavar="CMD",
                        help="the server's command line, e.g. 'java Server {port} {block}'")
    parser.add_argument("--client-cmd", metavar="CMD",
                        help="the client's, e.g. './client {host} {port} {udp}' "
                        "({retention} is the --retention value)")
    parser.add_argument("--block", type=_positive, default=10.0, metavar="S",
                        help="block_duration given to the server; it is waited out "
                        "(default: %(default)s)")
    parser.add_argument("--retention", type=_positive, default=180.0, metavar="S",
                        help="seconds a contact-log entry lives: the assignment's 180. Another "
                        "value is for grading a variant, or test programs that read it "
                        "(default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="skip the checks that wait for the 3-minute removal")
    parser.add_argument("--timeout", type=_positive, default=5.0, metavar="S",
                        help="seconds each step waits for an answer (default: %(default)s)")
    parser.add_argument("--jobs", type=_whole, default=4, metavar="N",
                        help="groups of checks run side by side (default: %(default)s)")
    parser.add_argument("--no-interop", action="store_true",
                        help="with several folders, skip the beacon interop matrix")
    parser.add_argument("--case", action="append", default=[], metavar="PREFIX",
                        help="run only checks whose ID starts with PREFIX (repeatable); the "
                        "groups they belong to run whole")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
    parser.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML")
    parser.add_argument("--html", type=Path, metavar="FILE", help="write one HTML page")
    parser.add_argument("--csv", type=Path, metavar="FILE",
                        help="write the submission x check matrix as CSV")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="work in DIR and keep it (every program's copy and files)")
    parser.add_argument("--memory", type=_whole, default=2048, metavar="MB",
                        help="address space each program may use (default: %(default)s)")
    parser.add_argument("--cpu", type=_whole, default=600, metavar="S",
                        help="CPU seconds each program may use (default: %(default)s)")
    parser.add_argument("--output-limit", type=_whole, default=1024, metavar="KB",
                        help="terminal output kept per program (default: %(default)s)")
    parser.add_argument("--dryrun", action="store_true", help="list the checks, run nothing")
    parser.add_argument("--verbose", action="store_true", help="show details of passes too")


def dryrun(args: argparse.Namespace) -> int:
    for group, names in GROUPS.items():
        print(f"group {group}")
        for case in CHECKS:
            if case.id.split("/", 1)[1] in names and (
                    not args.case or any(case.id.startswith(p) for p in args.case)):
                print(f"  {case.id}\n      {case.quote}")
                for allowed in case.expected:
                    print(f"      - {allowed}")
    return 0


def own_programs(into: Path) -> Submission:
    """bluetrace's own server and phone, as one more submission (a row of
    the interop matrix)."""
    into.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    return Submission(
        name="bluetrace", folder=into, program_dir=".", language="custom",
        server=(python, "-m", "bluetrace.server", "{port}", "{block}", "--host", "127.0.0.1"),
        client=(python, "-m", "bluetrace.phone", "{host}", "{port}", "{udp}",
                "--log-retention", "{retention}"),
    )


def _names(folders: Sequence[Path]) -> list[str]:
    names: list[str] = []
    for folder in folders:
        base = folder.resolve().name or "submission"
        name, number = base, 2
        while name in names:
            name, number = f"{base}-{number}", number + 1
        names.append(name)
    return names


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    if args.dryrun:
        return dryrun(args)
    groups = groups_for(args.case)
    if not groups:
        raise CaseSetupError(f"no check matches {', '.join(args.case)}")
    work = args.keep or Path(tempfile.mkdtemp(prefix="bluetrace-grade-"))
    work.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(8)
    settings = Settings(
        python=args.python, work=work.resolve(), token=token, block=args.block,
        retention=args.retention, timeout=args.timeout, quick=args.quick,
        limits=Limits(cpu_seconds=args.cpu, memory_bytes=args.memory << 20,
                      output_bytes=args.output_limit << 10),
        source2=second_address())
    previous = signal.signal(signal.SIGTERM, _interrupted)
    try:
        return _grade(args, settings, groups)
    finally:
        signal.signal(signal.SIGTERM, previous)
        sweep(token)
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def _grade(args: argparse.Namespace, settings: Settings, groups: list[str]) -> int:
    errors: dict[str, str] = {}
    submissions: list[Submission] = []
    for folder, name in zip(args.folders, _names(args.folders), strict=True):
        try:
            found = detect(folder, name, args.server_cmd, args.client_cmd)
            submissions.append(build(found, settings.work / "built" / name))
        except CaseSetupError as exc:
            errors[name] = str(exc)
    several = len(args.folders) > 1
    tasks: list[Task] = [(f"{s.name} {g}", run_group, (s, settings, g))
                         for s in submissions for g in groups]
    players = list(submissions)
    if several and not args.no_interop:
        players.append(own_programs(settings.work / "own"))
        tasks += [(f"interop {x.name}>{y.name}", run_pair, (x, y, settings))
                  for x in players for y in players]
    done = run_tasks(tasks, args.jobs, progress if several else None)
    graded: dict[str, list[Result]] = {s.name: [] for s in submissions}
    cells: list[Cell] = []
    for value in done.values():
        if isinstance(value, GroupRun):
            graded[value.submission] += value.results
            if value.setup_error is not None:
                errors.setdefault(value.submission, value.setup_error)
        elif isinstance(value, Cell):
            cells.append(value)
    place = {player.name: index for index, player in enumerate(players)}
    cells.sort(key=lambda cell: (place[cell.sender], place[cell.receiver]))
    graded = {name: ordered(results, args.case) for name, results in graded.items()}
    for name in errors:
        graded.setdefault(name, [])
    if not several:
        name = next(iter(graded))
        if name in errors:
            if graded[name]:
                report.write_tree(graded[name], sys.stdout, verbose=args.verbose)
            raise CaseSetupError(errors[name])
        status = report.finish(graded[name], args)
        if args.csv:
            matrix.write_files(graded, errors, [], json_path=None, csv_path=args.csv,
                               html_path=None)
        return status
    matrix.write_matrix(graded, errors, cells, sys.stdout)
    try:
        matrix.write_files(graded, errors, cells, json_path=args.json, csv_path=args.csv,
                               html_path=args.html)
        if args.junit:
            report.write_junit([replace(r, case_id=f"{name}/{r.case_id.split('/', 1)[1]}")
                                for name, results in graded.items() for r in results],
                               args.junit)
    except OSError as exc:
        raise CaseSetupError(f"cannot write a report: {exc.strerror or exc}") from None
    if errors:
        for name, error in errors.items():
            print(f"bluetrace-conform: {name}: {error}", file=sys.stderr)
        return 2
    return 1 if any(report.tally(r)["failed"] for r in graded.values()) else 0
