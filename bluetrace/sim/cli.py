"""``bluetrace-sim``: run scenarios and write the report.

    bluetrace-sim run SCENARIO [--engine exact|fast] [--seed N] [--seeds K]
                  [--set key=value ...] [--sweep key=v1,v2,...] [--out DIR]
                  [--scheduler tcp://HOST:PORT]
    bluetrace-sim scenarios
    bluetrace-sim sweep SWEEP.toml [--scheduler ADDRESS] [--workers N] [--out DIR]
    bluetrace-sim rules FILE.csv [--close-m 2.0] [--json]
    bluetrace-sim --help | --version

SCENARIO is a built-in name (see ``scenarios``) or a path to a TOML file.
``rules`` applies the published exposure rules to measured per-pair
attenuations (the format is in ``bluetrace.sim.replay`` and ``rules --help``).
Bad input gives one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from contextlib import nullcontext
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
#: Most runs (values x seeds) one --sweep may ask for.
MAX_SWEEP_RUNS = 100_000

#: ``rules --help`` epilog: the input format and its bounds (``replay.MAX_ROWS``,
#: ``replay.MAX_PAIRS``, ``replay.MAX_LINE_CHARS``; a test keeps them in step).
RULES_EPILOG = """\
FILE.csv has a header row and these columns (any order; others are ignored):
  pair            any label; a pair's rows may be spread over the file
  distance_m      the pair's distance in metres, >= 0 (the same on all its rows)
  attenuation_db  an attenuation in dB
  minutes         time the pair spent at that attenuation, >= 0
                  (a histogram bin or a single reading)
  close           optional: 1/0, true/false, yes/no; overrides
                  distance_m <= --close-m (empty: by distance)
Blank lines and lines starting with # are ignored. Numbers must be finite.
Limits: at most 1,000,000 data rows, 100,000 pairs and 10,000 characters a
line; a larger file is refused.

Example:
  pair,distance_m,attenuation_db,minutes
  A-B,1.0,48,10
  A-B,1.0,53,5
  C-D,3.0,72,15

Per rule (swiss, german, italian, below68-10min, below70-15min): pairs
notified, TPR and FPR against the truth, the largest weighted minutes; and the
AUC of the time-weighted mean attenuation ("-" when close or far is empty)."""


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
    run.add_argument("--max-memory", type=_gib, metavar="GIB",
                     help="refuse a run whose estimated peak memory is above GIB GiB "
                     "(default: 3/4 of this machine's memory); at most 10,000 seeds")
    run.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                     help="split the run by days over the Dask cluster whose scheduler is "
                     "here (fast engine; the same results as one process, one day per task)")
    sub.add_parser("scenarios", help="list the built-in scenarios")
    sweep = sub.add_parser(
        "sweep",
        help="run a grid of parameters x seeds from a SWEEP.toml (local processes, or a "
        "Dask cluster with --scheduler)",
        description="Run a grid of parameters x seeds and merge the results "
        "(runs.csv, summary.csv, sweep.json, figures).",
    )
    sweep.add_argument("spec", type=Path, help="SWEEP.toml: task or scenario, grid, seeds")
    sweep.add_argument("--scheduler", metavar="ADDRESS", type=_scheduler,
                       help="run on a Dask cluster, e.g. tcp://HOST:8786")
    sweep.add_argument("--workers", type=_positive_int, metavar="N",
                       help="local worker processes (default: one per CPU; ignored with "
                       "--scheduler)")
    sweep.add_argument("--out", type=Path, default=Path("sweep-out"), metavar="DIR",
                       help="where runs.csv, summary.csv, sweep.json and figures go "
                       "(default: sweep-out)")
    rules = sub.add_parser(
        "rules",
        help="apply the published exposure rules (Swiss, German, Italian, ...) to measured "
        "per-pair attenuations in a CSV file",
        epilog=RULES_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rules.add_argument("file", type=Path, metavar="FILE.csv", help="per-pair attenuation data")
    rules.add_argument("--close-m", type=_distance, default=2.0, metavar="M",
                       help="a pair at this distance or nearer is a close contact (default 2.0)")
    rules.add_argument("--json", action="store_true",
                       help="print one JSON object (with per-pair weighted minutes) instead")
    return parser


def _distance(text: str) -> float:
    """A --close-m value: a finite number of metres >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a number of metres >= 0, not {text!r}")
    return value


def _scheduler(text: str) -> str:
    """A --scheduler address: [tcp://|tls://]HOST:PORT."""
    from bluetrace.sim.runs import SweepError, check_scheduler_address  # noqa: PLC0415

    try:
        return check_scheduler_address(text)
    except SweepError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(text: str) -> int:
    """A --workers count: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _gib(text: str) -> float:
    """A --max-memory value: a positive number of GiB, as bytes."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of GiB, not {text!r}")
    return value * 2**30


def _scenarios() -> int:
    from bluetrace.sim.scenario import builtin_names, load_scenario  # noqa: PLC0415

    for name in builtin_names():
        sc = load_scenario(name)
        print(f"{name:10s} {sc.population:>7,} people, {sc.days:>2} day(s): {sc.description}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from bluetrace.sim.progress import progress_bars  # noqa: PLC0415
    from bluetrace.sim.runs import parse_sweep, run_seeds, run_values  # noqa: PLC0415
    from bluetrace.sim.scenario import apply_overrides, load_scenario  # noqa: PLC0415
    from bluetrace.sim.size import estimate_run  # noqa: PLC0415
    from bluetrace.sim.text import file_safe  # noqa: PLC0415

    if args.seeds < 1:
        raise UsageError("--seeds must be at least 1")
    if args.seed < 0:
        raise UsageError("--seed must be >= 0")
    scenario = apply_overrides(load_scenario(args.scenario), args.set)
    estimate_run(scenario, seeds=args.seeds).check(args.max_memory)
    seeds = list(range(args.seed, args.seed + args.seeds))
    sweep_spec = None
    if args.sweep:
        sweep_spec = parse_sweep(args.sweep)
    elif (not args.no_sweep and args.engine == "fast"
          and scenario.population <= DEFAULT_SWEEP_MAX_PEOPLE):
        sweep_spec = DEFAULT_SWEEP
    if sweep_spec:
        # Every point is a run of its own: each must fit, and all of them together.
        if len(sweep_spec[1]) * args.seeds > MAX_SWEEP_RUNS:
            raise UsageError(f"--sweep: {len(sweep_spec[1]):,} values x {args.seeds:,} seeds "
                             f"is more than {MAX_SWEEP_RUNS:,} runs")
        for value in sweep_spec[1]:
            varied = apply_overrides(scenario, [f"{sweep_spec[0]}={value}"])
            estimate_run(varied, seeds=args.seeds).check(args.max_memory)
    out = args.out or Path("sim-out") / f"{file_safe(scenario.name)}-{args.engine}-seed{args.seed}"
    enabled = {"auto": None, "on": True, "off": False}[args.progress]
    from bluetrace.sim import cluster  # noqa: PLC0415

    if args.scheduler and args.engine != "fast":
        raise UsageError("--scheduler splits fast-engine runs only")
    on_cluster = cluster.scheduler(args.scheduler) if args.scheduler else nullcontext()
    try:
        with on_cluster, progress_bars(enabled) as bars:
            runs, combined = run_seeds(scenario, seeds, args.engine, bars)
            sweep = run_values(scenario, sweep_spec[0], sweep_spec[1], seeds=seeds,
                               engine=args.engine, progress_for=bars) \
                if sweep_spec else []
    except cluster.ClusterError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    from bluetrace.sim.report import headline, write_all  # noqa: PLC0415 (matplotlib is slow)

    report = write_all(out, scenario, args.engine, runs, combined=combined, sweep=sweep)
    print(f"{scenario.name}: {scenario.population:,} people, {scenario.days} day(s), "
          f"engine {args.engine}, seeds {seeds[0]}..{seeds[-1]}")
    for row in headline(scenario, combined):
        ci = f"  [{row['ci']}]" if row["ci"] else ""
        print(f"  {row['label']}: {row['value']}{ci}")
    print(f"report: {report}")
    return 0


def _sweep_progress(done: float, total: float) -> None:
    """Runs done, on stderr: one updating line on a terminal, else every tenth."""
    if sys.stderr.isatty():
        end = "\n" if done == total else ""
        print(f"\rsweep: {done:.0f}/{total:.0f} runs", end=end, file=sys.stderr, flush=True)
    elif done == total or done % max(1, total // 10) == 0:
        print(f"sweep: {done:.0f}/{total:.0f} runs", file=sys.stderr, flush=True)


def _sweep(args: argparse.Namespace) -> int:
    """Run a SWEEP.toml; every failure is one line and an exit status: 2 for a bad
    SWEEP.toml, 1 for a run that failed or a cluster out of reach."""
    from bluetrace.sim.runs import SweepError, load_spec, run_sweep, write_outputs  # noqa: PLC0415

    prog = f"{PROG} sweep"
    try:
        spec = load_spec(args.spec)
    except SweepError as exc:  # bad input
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    try:
        table = run_sweep(
            spec, scheduler=args.scheduler, workers=args.workers, progress=_sweep_progress
        )
        written = write_outputs(table, args.out)
    except SweepError as exc:  # a run failed, or the cluster is out of reach
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{prog}: error: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    runs = len(table.rows)
    plural = "run" if runs == 1 else "runs"
    print(f"{runs} {plural} merged; results in {args.out}{os.sep} ({len(written)} files)")
    return 0


def _rules(args: argparse.Namespace) -> int:
    from bluetrace.sim.replay import evaluate, format_text, load_pairs  # noqa: PLC0415

    report = evaluate(load_pairs(args.file, args.close_m))
    if args.json:
        data = {"file": str(args.file), "close_m": args.close_m, **report.to_json()}
        print(json.dumps(data, allow_nan=False))
    else:
        print(format_text(report, str(args.file), args.close_m))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``bluetrace-sim``; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        if args.command == "scenarios":
            return _scenarios()
        if args.command == "run":
            return _run(args)
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "rules":
            return _rules(args)
        raise UsageError("a command is needed: run, scenarios, sweep or rules")
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
