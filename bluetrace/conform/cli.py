"""``bluetrace-conform``: the command line of the conformance kit.

Exit status: 0 when every case passed, 1 when any failed, 2 when the kit
could not be set up (target unreachable, a bad option or file).
"""

import argparse
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bluetrace.conform import report
from bluetrace.conform.assignment import cli as assignment
from bluetrace.conform.model import Case, CaseSetupError
from bluetrace.conform.modes import MODES, build_target
from bluetrace.conform.runner import options_from_values, run_cases, selected
from bluetrace.conform.selfcheck import run_self

PROGRAM = "bluetrace-conform"


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    out = common.add_argument_group("running and reporting")
    out.add_argument("--case", action="append", default=[], metavar="PREFIX",
                     help="run only cases whose ID starts with PREFIX (repeatable), "
                     "e.g. server/4 or client/3.2/unknown-status")
    out.add_argument("--timeout", type=_seconds, default=2.0,
                     help="seconds each case may wait for the target (default: %(default)s)")
    out.add_argument("--repeat", type=_count, default=1,
                     help="run each case N times; mixed outcomes are FLAKY")
    out.add_argument("--strict", action="store_true",
                     help="count SHOULD cases (NON-STRICT) as failures")
    out.add_argument("--exclude", type=Path, metavar="FILE",
                     help="lines '<case-id> <reason>': shown as expected failures")
    out.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
    out.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML")
    out.add_argument("--html", type=Path, metavar="FILE", help="write one self-contained page")
    out.add_argument("--dryrun", action="store_true", help="list the cases, run nothing")
    out.add_argument("--verbose", action="store_true", help="show details of passes too")
    out.add_argument("--max-wait", type=_seconds, default=10.0,
                     help="longest target setting (block, login timeout, retention) the kit "
                     "waits out; longer ones are skipped (default: %(default)s)")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Conformance kit: grades submissions of the original assignment "
        "(assignment DIR), and any BlueTrace server, phone or data folder that implements "
        "protocol_spec.md.",
    )
    modes = parser.add_subparsers(dest="mode", required=True, metavar="MODE")
    common = _common()

    server = modes.add_parser("server", parents=[common], help="the kit plays phones")
    server.add_argument("address", metavar="HOST:PORT")
    server.add_argument("--credentials", type=Path, required=True, metavar="FILE",
                        help="the server's credentials.txt (the kit logs in with it)")
    server.add_argument("--user", help="account for ordinary cases (default: the first)")
    server.add_argument("--spare-user", metavar="USER",
                        help="an account the kit may block (blocking cases skip without one)")
    server.add_argument("--second-address", metavar="ADDR",
                        help="a second local source address, e.g. 127.0.0.2")
    server.add_argument("--block-duration", type=_seconds, metavar="S",
                        help="the server's block_duration (set short: block expiry is waited)")
    server.add_argument("--login-timeout", type=_seconds, metavar="S",
                        help="the server's login timeout (set short: it is waited out)")
    server.add_argument("--idle-timeout", type=_seconds, metavar="S",
                        help="the server's idle timeout (set short: it is waited out)")
    server.add_argument("--stall-timeout", type=_seconds, metavar="S",
                        help="the server's stall timeout (set short: it is waited out)")
    server.add_argument("--tempid-lifetime", type=_count, default=900, metavar="S",
                        help="the server's TempID lifetime (default: %(default)s)")
    server.add_argument("--data-dir", type=Path, metavar="DIR",
                        help="the server's data folder, to check what it records and when")
    server.add_argument("--burst-user", metavar="USER",
                        help="an account whose TempID burst (20) the kit may spend")
    server.add_argument("--server-pid", type=int, metavar="PID",
                        help="lets the last case stop the server with SIGTERM")

    client = modes.add_parser("client", parents=[common],
                              help="the kit plays the server and a beacon sender")
    client.add_argument("--exec", required=True, dest="command", metavar="CMD",
                        help="the phone's command line with {host} {port} {udp}, "
                        "started afresh for each case")
    client.add_argument("--user", default="+61410888888", help="username the kit types")
    client.add_argument("--password", default="comp3331", help="password the kit types")

    beacon = modes.add_parser("beacon", parents=[common],
                              help="datagrams at a running phone's UDP port")
    beacon.add_argument("address", metavar="HOST:UDPPORT")
    beacon.add_argument("--log", type=Path, required=True, metavar="FILE",
                        help="the phone's contact log file")
    beacon.add_argument("--retention", type=_seconds, metavar="S",
                        help="the phone's retention (set short: it is waited out)")

    files = modes.add_parser("files", parents=[common], help="the data files of section 5")
    files.add_argument("folder", type=Path, metavar="DIR")

    assignment.add_parser(modes)

    selfcheck = modes.add_parser("self", parents=[common],
                                 help="run every mode against bluetrace's own programs")
    selfcheck.add_argument("--keep", type=Path, metavar="DIR",
                           help="work in DIR (kept afterwards) instead of a temp folder")
    return parser



def dryrun(cases: Sequence[Case[Any]], args: argparse.Namespace) -> int:
    for case in selected(cases, args.case):
        print(f"{case.id}  [{' '.join(case.tags)}] {case.level}")
        print(f"    {case.quote}")
        for allowed in case.expected:
            print(f"    - {allowed}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.mode == "assignment":
        return assignment.run(args)
    if args.dryrun:
        every = [case for cases in MODES.values() for case in cases]
        return dryrun(every if args.mode == "self" else MODES[args.mode], args)
    if args.mode == "self":
        return run_self(args)
    cases = MODES[args.mode]
    options = options_from_values(args)
    target = build_target(args)
    return report.finish(run_cases(cases, target, options), args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except CaseSetupError as exc:
        print(f"{PROGRAM}: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        return 130
    except (BrokenPipeError, socket.gaierror) as exc:
        print(f"{PROGRAM}: {exc}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
