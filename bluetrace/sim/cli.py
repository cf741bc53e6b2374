"""``bluetrace-sim``: run scenarios and write the report.

    bluetrace-sim run SCENARIO [--engine exact|fast] [--seed N] [--seeds K]
                  [--set key=value ...] [--sweep key=v1,v2,...] [--out DIR]
    bluetrace-sim scenarios
    bluetrace-sim --help | --version

SCENARIO is a built-in name (see ``scenarios``) or a path to a TOML file. Bad
input gives one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from bluetrace import __version__
from bluetrace.sim.errors import EngineUnavailableError

# The simulator's modules need the ``sim`` extra (numpy and friends); they are
# imported inside the commands so that a missing extra is one clear line.
ENGINES = ("fast", "exact")

PROG = "bluetrace-sim"
#: Built-in sweep when none is asked for and the world is small.
DEFAULT_SWEEP = ("uptake", ["0.2", "0.4", "0.6", "0.8", "1.0"])
DEFAULT_SWEEP_MAX_PEOPLE = 2000


class UsageError(Exception):
    """Bad command-line input."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used to print --help)."""
    parser = _Parser(
        prog=PROG,
        description="BlueTrace contact-tracing simulator: run a scenario, measure what the "
        "health authority recovers against ground truth, and write a report.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    run = sub.add_parser("run", help="run a scenario and write results and a report")
    run.add_argument("scenario", metavar="SCENARIO", help="built-in name or TOML file")
    run.add_argument("--engine", choices=ENGINES, default="fast",
                     help="fast (numpy, any size; default) or exact (real protocol objects)")
    run.add_argument("--seed", type=int, default=1, help="first seed (default 1)")
    run.add_argument("--seeds", type=int, default=1, metavar="K",
                     help="run K seeds from --seed on (intervals over seeds need K >= 3)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a parameter: uptake=0.6, radio.s_pair=6, "
                     "place.office.pitch=1.5, profiles.gaen=1 (repeatable)")
    run.add_argument("--sweep", metavar="KEY=V1,V2,...",
                     help="also run the scenario at each value of one parameter "
                     "(default for small worlds with the fast engine: uptake=0.2,...,1.0)")
    run.add_argument("--no-sweep", action="store_true", help="skip the sweep")
    run.add_argument("--out", type=Path, metavar="DIR",
                     help="output folder (default sim-out/SCENARIO-ENGINE-seedN)")
    run.add_argument("--progress", choices=("auto", "on", "off"), default="auto",
                     help="progress bar on stderr (auto: when stderr is a terminal)")
    sub.add_parser("scenarios", help="list the built-in scenarios")
    from bluetrace.sim import sweep as sweep_command  # noqa: PLC0415 (light until drawing)

    sweep = sub.add_parser(
        "sweep",
        help="run a grid of parameters x seeds from a SWEEP.toml (local processes, or a "
        "Dask cluster with --scheduler)",
    )
    sweep_command.add_arguments(sweep)
    return parser


def _scenarios() -> int:
    from bluetrace.sim.scenario import builtin_names, load_scenario  # noqa: PLC0415

    for name in builtin_names():
        sc = load_scenario(name)
        print(f"{name:10s} {sc.population:>7,} people, {sc.days:>2} day(s): {sc.description}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from bluetrace.sim.progress import progress_bars  # noqa: PLC0415
    from bluetrace.sim.runner import parse_sweep, run_seeds, run_sweep  # noqa: PLC0415
    from bluetrace.sim.scenario import apply_overrides, load_scenario  # noqa: PLC0415

    if args.seeds < 1:
        raise UsageError("--seeds must be at least 1")
    if args.seed < 0:
        raise UsageError("--seed must be >= 0")
    scenario = apply_overrides(load_scenario(args.scenario), args.set)
    seeds = list(range(args.seed, args.seed + args.seeds))
    sweep_spec = None
    if args.sweep:
        sweep_spec = parse_sweep(args.sweep)
    elif (not args.no_sweep and args.engine == "fast"
          and scenario.population <= DEFAULT_SWEEP_MAX_PEOPLE):
        sweep_spec = DEFAULT_SWEEP
    out = args.out or Path("sim-out") / f"{scenario.name}-{args.engine}-seed{args.seed}"
    enabled = {"auto": None, "on": True, "off": False}[args.progress]
    with progress_bars(enabled) as bars:
        runs, combined = run_seeds(scenario, seeds, args.engine, bars)
        sweep = run_sweep(scenario, sweep_spec[0], sweep_spec[1], seeds=seeds,
                              engine=args.engine, progress_for=bars) \
            if sweep_spec else []
    from bluetrace.sim.report import headline, write_all  # noqa: PLC0415 (matplotlib is slow)

    report = write_all(out, scenario, args.engine, runs, combined=combined, sweep=sweep)
    print(f"{scenario.name}: {scenario.population:,} people, {scenario.days} day(s), "
          f"engine {args.engine}, seeds {seeds[0]}..{seeds[-1]}")
    for row in headline(scenario, combined):
        ci = f"  [{row['ci']}]" if row["ci"] else ""
        print(f"  {row['label']}: {row['value']}{ci}")
    print(f"report: {report}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``bluetrace-sim``; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "scenarios":
            return _scenarios()
        if args.command == "run":
            return _run(args)
        if args.command == "sweep":
            from bluetrace.sim import sweep as sweep_command  # noqa: PLC0415

            return sweep_command.run_args(args, prog=f"{PROG} sweep")
        raise UsageError("a command is needed: run, scenarios or sweep")
    except UsageError as exc:
        print(f"{PROG}: error: {exc} (see {PROG} --help)", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"{PROG}: error: the simulator needs the sim extra "
              f"(pip install 'bluetrace[sim]'): {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # ScenarioError is a ValueError
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except EngineUnavailableError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{PROG}: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "),
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"{PROG}: error: out of memory (try a smaller scenario)", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: still one line, never a traceback
        print(f"{PROG}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
