"""Running the simulator: one seed, several seeds, the points of a one-parameter
``run --sweep``, and sweeps of a grid of parameters x seeds on local processes or a
Dask cluster, merged into one table.

Engines are chosen by name. ``fast`` is ``bluetrace.sim.fast.run_fast``;
``exact`` is ``bluetrace.sim.exact.run_exact``, looked up only when asked for,
so that the simulator works (and says so plainly) while that module is absent.
Both have the signature ``(world, scenario, rng, progress) -> EngineResult``.

Seeds: the world of seed ``s`` is ``World.build(scenario, s)`` and the engine
draws from ``numpy.random.default_rng([s, 2])``, so one seed fixes everything.

Grid sweeps (``run_sweep``, ``bluetrace-sim sweep``) are described by a
SWEEP.toml file (format below and in docs/investigations.md). Each run calls a
*task*, a plain module-level function ``task(params: dict, seed: int) ->
dict[str, float]``, so any study (or the simulator itself) can be swept. Runs
go to local processes by default (``concurrent.futures.ProcessPoolExecutor``)
or, given a scheduler address, to a Dask cluster
(``distributed.Client(address)``): a user who outgrows one machine starts
``dask scheduler`` and ``dask worker`` on more machines (with this package
installed) and passes ``--scheduler``; nothing else changes. Results are merged
into ``runs.csv`` (one row per run), ``summary.csv`` (mean and 95 % confidence
interval per grid point), ``sweep.json`` (the spec, every row and the summary)
and one figure per metric against the x parameter, with confidence intervals.

SWEEP.toml::

    title = "Tracking: linked share against sniffer pitch"   # optional
    task = "bluetrace.sim.studies.tracking:tracking_task"  # or its short name "tracking"
    # or, instead of task: scenario = "office" (and engine = "fast") to sweep
    # the simulator's own runs; grid keys are then --set keys ("radio.s_pair")
    # and metrics are named like recall.log.bluetrace, precision.swiss.cdc,
    # auc.mean-attenuation, seen_by_both, continuity (see flatten_seed_metrics).
    seeds = 5                 # seeds 0..4, or a list: seeds = [3, 7, 11]
    x = "pitch_m"             # figure x axis (default: the first grid key)
    metrics = ["linked_share_equal"]   # figures to draw (default: every metric)

    [fixed]                   # passed to every run
    n_walkers = 100

    [grid]                    # every combination of these values
    pitch_m = [25, 75, 200]
    rotation_s = [900, 7200, 0]
"""

from __future__ import annotations

import csv
import importlib
import itertools
import json
import math
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from bluetrace.sim.errors import EngineUnavailableError
from bluetrace.sim.fast import run_fast
from bluetrace.sim.metrics import combine, seed_metrics
from bluetrace.sim.result import EngineResult, Progress, no_progress
from bluetrace.sim.scenario import Scenario, apply_overrides, load_scenario
from bluetrace.sim.size import estimate_run
from bluetrace.sim.stats import mean_ci
from bluetrace.sim.text import printable
from bluetrace.sim.world import World

__all__ = ["ENGINES", "EngineUnavailableError", "SeedRun", "SweepError", "SweepSpec",
           "SweepTable", "get_engine", "load_spec", "run_seed", "run_seeds", "run_sweep",
           "run_values", "write_outputs"]

Engine = Callable[[World, Scenario, np.random.Generator, Progress], EngineResult]
ENGINES: Final = ("fast", "exact")


def get_engine(name: str) -> Engine:
    """The engine function called ``name``."""
    if name == "fast":
        return run_fast
    if name == "exact":
        try:
            module = importlib.import_module("bluetrace.sim.exact")
        except ModuleNotFoundError as exc:
            if exc.name == "bluetrace.sim.exact":
                raise EngineUnavailableError(
                    "the exact engine (bluetrace/sim/exact.py) is not installed in this "
                    "checkout; use --engine fast"
                ) from None
            raise EngineUnavailableError(f"the exact engine cannot load: {exc}") from None
        except ImportError as exc:
            raise EngineUnavailableError(f"the exact engine cannot load: {exc}") from None
        run: Any = getattr(module, "run_exact", None)
        if not callable(run):
            raise EngineUnavailableError("bluetrace.sim.exact has no run_exact function")
        engine: Engine = run
        return engine
    raise EngineUnavailableError(f"unknown engine {name!r} (one of {', '.join(ENGINES)})")


@dataclass
class SeedRun:
    """One seed's world, engine result and per-seed metrics."""

    seed: int
    world: World
    result: EngineResult
    metrics: dict[str, Any]


def run_seed(
    scenario: Scenario, seed: int, engine: str, progress: Progress = no_progress
) -> SeedRun:
    """Build the world for ``seed``, run the engine, measure."""
    world = World.build(scenario, seed)
    result = get_engine(engine)(world, scenario, np.random.default_rng([seed, 2]), progress)
    result.check()
    return SeedRun(seed, world, result, seed_metrics(world, result))


def run_seeds(
    scenario: Scenario, seeds: list[int], engine: str,
    progress_for: Callable[[str], Progress] = lambda label: no_progress,
) -> tuple[list[SeedRun], dict[str, Any]]:
    """All seeds of one configuration and their combined metrics."""
    runs = [run_seed(scenario, s, engine, progress_for(f"seed {s}")) for s in seeds]
    return runs, combine([r.metrics for r in runs])


def parse_sweep(text: str) -> tuple[str, list[str]]:
    """``key=v1,v2,...`` -> (key, [values as text])."""
    key, sep, values = text.partition("=")
    items = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or not key.strip() or len(items) < 2:
        raise ValueError(f"--sweep needs key=v1,v2,... with two values or more, got {text!r}")
    return key.strip(), items


def run_values(
    scenario: Scenario, key: str, values: list[str], *, seeds: list[int], engine: str,
    progress_for: Callable[[str], Progress] = lambda label: no_progress,
) -> list[dict[str, Any]]:
    """Combined metrics at each value of one parameter (headline detector and rule):
    the points of ``bluetrace-sim run --sweep``, run in this process (each with its
    own bar over simulated time) and pooled over seeds by ``combine`` exactly as the
    run itself, so that a point at the run's own value repeats the run's numbers.
    A grid over processes or a cluster is ``run_sweep``."""
    rows = []
    for value in values:
        varied = apply_overrides(scenario, [f"{key}={value}"])
        prefix = f"{key}={value} "

        def labelled(label: str, prefix: str = prefix) -> Progress:
            return progress_for(prefix + label)

        runs, combined = run_seeds(varied, seeds, engine, labelled)
        del runs
        rule = varied.primary_rule
        det = combined["detection"]["log"][rule]
        rows.append({
            "key": key, "value": value, "rule": rule,
            "recall": det["recall"], "precision": det["precision"],
            "continuity": combined["continuity"],
        })
    return rows


# -- grid sweeps ------------------------------------------------------------------


Params = Mapping[str, object]
Metrics = dict[str, float]
TaskFn = Callable[[dict[str, object], int], Mapping[str, float]]

#: The simulator as a sweep task (used when a spec names a scenario).
SIMULATOR_TASK: Final = "bluetrace.sim.runs:simulator_task"
#: The tasks a SWEEP.toml may name, by short name. A sweep file is data: naming
#: any importable function (``subprocess:run``) would make it code, so a file
#: names one of these, by short name or in full. Code can add its own task with
#: ``register_task``.
ALLOWED_TASKS: dict[str, str] = {
    "v1": "bluetrace.sim.studies.exposure:v1_task",
    "tracking": "bluetrace.sim.studies.tracking:tracking_task",
    "simulator": SIMULATOR_TASK,
}
#: Full names the same tasks had before the studies moved to ``bluetrace.sim.studies``:
#: sweep files written with them keep working.
FORMER_TASK_NAMES: Final = {
    "bluetrace.sim.exposure:v1_task": "v1",
    "bluetrace.sim.tracking:tracking_task": "tracking",
    "bluetrace.sim.sweep:simulator_task": "simulator",
}
#: Most runs (grid points x seeds) one sweep may ask for: the grid is listed
#: before anything runs, and a million runs of even the smallest task take hours.
MAX_SWEEP_RUNS: Final = 100_000
_SPEC_KEYS: Final = {
    "title",
    "task",
    "scenario",
    "engine",
    "seeds",
    "x",
    "metrics",
    "grid",
    "fixed",
}


class SweepError(Exception):
    """A bad spec, a task that failed, or a cluster that cannot be reached: one line."""


def param_float(params: Params, key: str, default: float) -> float:
    """A number from a task's params, with a clear error when it is not one."""
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SweepError(f"parameter {key!r} must be a number, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class SweepSpec:
    """What to run: a task, a grid, fixed parameters and seeds."""

    task: str
    grid: dict[str, list[object]]
    fixed: dict[str, object] = field(default_factory=dict)
    seeds: tuple[int, ...] = (0,)
    x: str | None = None
    metrics: tuple[str, ...] | None = None
    title: str = ""

    def points(self) -> list[dict[str, object]]:
        """Every grid combination, fixed parameters included, in grid order."""
        keys = list(self.grid)
        return [
            {**self.fixed, **dict(zip(keys, combo, strict=True))}
            for combo in itertools.product(*(self.grid[k] for k in keys))
        ]

    @property
    def x_key(self) -> str | None:
        return self.x if self.x is not None else next(iter(self.grid), None)

    def to_json(self) -> dict[str, object]:
        return {
            "title": self.title,
            "task": self.task,
            "grid": self.grid,
            "fixed": self.fixed,
            "seeds": list(self.seeds),
            "x": self.x_key,
            "metrics": list(self.metrics) if self.metrics is not None else None,
        }


def spec_from_dict(raw: Mapping[str, Any]) -> SweepSpec:
    """Check a parsed SWEEP.toml and build the spec; every problem is one line."""
    unknown = set(raw) - _SPEC_KEYS
    if unknown:
        raise SweepError(
            f"unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(_SPEC_KEYS))})"
        )
    grid = raw.get("grid", {})
    fixed = dict(raw.get("fixed", {}))
    if not isinstance(grid, dict) or not isinstance(fixed, dict):
        raise SweepError("[grid] and [fixed] must be tables")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"grid {key!r} must be a non-empty list of values")
    if "task" in raw and "scenario" in raw:
        raise SweepError("give either task or scenario, not both")
    if "scenario" in raw:
        task = SIMULATOR_TASK
        fixed["scenario"] = str(raw["scenario"])
        fixed["engine"] = str(raw.get("engine", "fast"))
    elif "task" in raw:
        task = allowed_task(raw["task"])
        if "engine" in raw:
            raise SweepError("engine is for scenario sweeps only")
    else:
        raise SweepError("a sweep needs a task (module:function) or a scenario")
    seeds_raw = raw.get("seeds", 1)
    if isinstance(seeds_raw, bool):
        raise SweepError("seeds must be a count or a list of integers")
    if isinstance(seeds_raw, int):
        if seeds_raw < 1:
            raise SweepError("seeds must be at least 1")
        seeds = tuple(range(seeds_raw))
    elif (
        isinstance(seeds_raw, list)
        and seeds_raw
        and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds_raw)
    ):
        seeds = tuple(int(s) for s in seeds_raw)
    else:
        raise SweepError("seeds must be a count or a non-empty list of integers")
    runs = math.prod(len(v) for v in grid.values()) * len(seeds)
    if runs > MAX_SWEEP_RUNS:
        raise SweepError(
            f"the grid and seeds make {runs:,} runs (points x seeds); at most "
            f"{MAX_SWEEP_RUNS:,} in one sweep"
        )
    x = raw.get("x")
    if x is not None and x not in grid:
        raise SweepError(f"x {x!r} is not a grid parameter")
    metrics = raw.get("metrics")
    if metrics is not None and not (
        isinstance(metrics, list) and all(isinstance(m, str) for m in metrics)
    ):
        raise SweepError("metrics must be a list of names")
    resolve_task(task)  # fail now, not in the first worker
    spec = SweepSpec(
        task=task,
        grid={str(k): list(v) for k, v in grid.items()},
        fixed=fixed,
        seeds=seeds,
        x=None if x is None else str(x),
        metrics=None if metrics is None else tuple(metrics),
        title=printable(str(raw.get("title", ""))),
    )
    if task == SIMULATOR_TASK:
        _check_scenario_points(spec)
    return spec


def _check_scenario_points(spec: SweepSpec) -> None:
    """Every grid point must be a valid scenario with valid overrides: say so now, once."""
    try:
        base = load_scenario(str(spec.fixed["scenario"]))
        for point in spec.points():
            # each run must fit on the machine that runs it (one run per worker)
            estimate_run(apply_overrides(base, simulator_overrides(point))).check()
    except (ValueError, OSError) as exc:  # ScenarioError is a ValueError
        raise SweepError(f"scenario sweep: {exc}") from None


def load_spec(path: Path) -> SweepSpec:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SweepError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SweepError(f"{path} is not valid TOML: {exc}") from None
    return spec_from_dict(raw)


def allowed_task(name: object) -> str:
    """The ``module:function`` of an allowed task named in a file (short or full
    name), or a SweepError listing the allowed ones."""
    if isinstance(name, str):
        name = FORMER_TASK_NAMES.get(name, name)
        if name in ALLOWED_TASKS:
            return ALLOWED_TASKS[name]
        if name in ALLOWED_TASKS.values():
            return name
    shown = printable(name) if isinstance(name, str) else type(name).__name__
    raise SweepError(
        f"task {shown!r} is not one of the simulator's sweep tasks "
        f"({', '.join(ALLOWED_TASKS)}; or scenario = NAME to sweep a scenario)"
    )


def register_task(name: str, target: str) -> None:
    """Let sweep files name ``target`` (``module:function``) as ``name``. For code
    that brings its own task; a file cannot call this."""
    resolve_task(target)
    ALLOWED_TASKS[name] = target


def resolve_task(task: str) -> TaskFn:
    """Import ``module:function``; a wrong name is a SweepError, not a traceback."""
    module_name, sep, attr = task.partition(":")
    if not sep or not module_name or not attr:
        raise SweepError(f"task must look like module:function, not {task!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SweepError(f"task {task!r}: cannot import {module_name}: {exc}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise SweepError(f"task {task!r}: {module_name} has no function {attr!r}")
    return fn  # type: ignore[no-any-return]


def run_point(task: str, params: dict[str, object], seed: int) -> Metrics:
    """One run: import the task and call it. Module level, so it pickles to any worker."""
    out = resolve_task(task)(dict(params), seed)
    metrics: Metrics = {}
    for key, value in out.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SweepError(f"task {task!r} returned a non-number for {key!r}: {value!r}")
        metrics[str(key)] = float(value)
    return metrics


def simulator_task(params: dict[str, object], seed: int) -> Metrics:
    """The simulator as a task: ``scenario`` and ``engine`` pick the run, every other
    parameter is a ``--set`` override (``"radio.s_pair" = 6`` becomes ``radio.s_pair=6``).

    Runs one seed through ``run_seed`` and flattens its metrics
    (``flatten_seed_metrics``).
    """
    base = load_scenario(str(params.get("scenario", "")))
    sc = apply_overrides(base, simulator_overrides(params))
    run = run_seed(sc, seed, str(params.get("engine", "fast")))
    return flatten_seed_metrics(run.metrics)


def simulator_overrides(params: Params) -> list[str]:
    """The ``--set key=value`` strings a scenario sweep's parameters stand for."""
    return [f"{k}={_toml_literal(v)}" for k, v in params.items() if k not in ("scenario", "engine")]


def _ratio(k: object, n: object) -> float:
    if not isinstance(k, int | float) or not isinstance(n, int | float) or n == 0:
        return math.nan
    return float(k) / float(n)


def flatten_seed_metrics(m: Mapping[str, Any]) -> Metrics:
    """One seed's simulator metrics as flat numbers a sweep can average.

    ``recall.DETECTOR.TRUTH`` and ``precision.DETECTOR.TRUTH`` (DETECTOR is ``log``,
    the BlueTrace contact log, or an exposure rule; TRUTH a close-contact rule),
    ``auc.SCORE``, ``seen_by_both`` (share of heard pair-days heard by both phones),
    ``continuity`` (mean share of 30-s windows with a reception), ``beacons.*``,
    ``tempids_issued`` and ``server_work.*``. Undefined ratios are NaN, which the
    summary leaves out.
    """
    out: Metrics = {}
    for det, by_truth in dict(m.get("detection", {})).items():
        for truth, c in dict(by_truth).items():
            out[f"recall.{det}.{truth}"] = _ratio(c.get("tp"), c.get("true"))
            out[f"precision.{det}.{truth}"] = _ratio(c.get("tp"), c.get("named"))
    for name, roc in dict(m.get("roc", {})).items():
        auc = roc.get("auc") if isinstance(roc, Mapping) else None
        out[f"auc.{name}"] = float(auc) if isinstance(auc, int | float) else math.nan
    pair_days = m.get("pair_days")
    if isinstance(pair_days, Mapping):
        both, one = pair_days.get("both", 0), pair_days.get("one", 0)
        out["seen_by_both"] = _ratio(both, both + one)
    cont = m.get("continuity")
    if isinstance(cont, Mapping):
        per_pair = cont.get("per_pair") or []
        out["continuity"] = float(np.mean(per_pair)) if len(per_pair) else math.nan
    for group in ("beacons", "server_work"):
        for key, value in dict(m.get(group, {})).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[f"{group}.{key}"] = float(value)
    issued = m.get("tempids_issued")
    if isinstance(issued, int | float) and not isinstance(issued, bool):
        out["tempids_issued"] = float(issued)
    if not out:
        raise SweepError("the simulator's metrics had nothing a sweep can use")
    return out


def _toml_literal(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- running -----------------------------------------------------------------------


@dataclass
class SweepTable:
    """Every run's parameters, seed and metrics; and the summary over seeds."""

    spec: SweepSpec
    rows: list[dict[str, object]]

    @property
    def param_names(self) -> list[str]:
        return list(self.spec.grid)

    @property
    def metric_names(self) -> list[str]:
        names: list[str] = []
        reserved = {*self.spec.fixed, *self.spec.grid, "seed"}
        for row in self.rows:
            names.extend(k for k in row if k not in reserved and k not in names)
        return names

    def summary(self) -> list[dict[str, object]]:
        """Per grid point and metric: n, mean and the 95 % CI of the mean (``mean_ci``)."""
        out: list[dict[str, object]] = []
        for point in self.spec.points():
            key = {k: point[k] for k in self.param_names}
            mine = [r for r in self.rows if all(r[k] == v for k, v in key.items())]
            entry: dict[str, object] = dict(key)
            for metric in self.metric_names:
                values = np.asarray(
                    [float(r[metric]) for r in mine if metric in r and not _nan(r[metric])]  # type: ignore[arg-type]
                )
                mean, low, high = mean_ci(values)
                entry[f"{metric}_n"] = int(values.size)
                entry[f"{metric}_mean"] = mean
                entry[f"{metric}_lo"] = low
                entry[f"{metric}_hi"] = high
            out.append(entry)
        return out


def _nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


def run_sweep(
    spec: SweepSpec,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: Progress = no_progress,
    connect_timeout_s: float = 10.0,
) -> SweepTable:
    """Run every grid point x seed and merge the results into one table.

    ``scheduler`` (``tcp://host:8786``) sends the runs to a Dask cluster;
    otherwise ``workers`` local processes run them (1: in this process, which
    is what tests and debuggers want; None: one per CPU).
    """
    jobs = [(point, seed) for point in spec.points() for seed in spec.seeds]
    if scheduler is not None:
        results = _run_dask(spec.task, jobs, scheduler, progress, connect_timeout_s)
    elif workers == 1:
        results = []
        for i, (point, seed) in enumerate(jobs):
            results.append(_checked(spec.task, point, seed))
            progress(i + 1, len(jobs))
    else:
        results = _run_processes(spec.task, jobs, workers, progress)
    rows = [
        {**point, "seed": seed, **metrics}
        for (point, seed), metrics in zip(jobs, results, strict=True)
    ]
    return SweepTable(spec, rows)


def _describe(point: Params, seed: int) -> str:
    shown = printable(", ".join(f"{k}={v}" for k, v in point.items()))
    return f"({shown}; seed {seed})"


def _checked(task: str, point: dict[str, object], seed: int) -> Metrics:
    try:
        return run_point(task, point, seed)
    except SweepError:
        raise
    except Exception as exc:
        raise SweepError(
            f"run {_describe(point, seed)} failed: {type(exc).__name__}: {exc}"
        ) from exc


def _run_processes(
    task: str,
    jobs: Sequence[tuple[dict[str, object], int]],
    workers: int | None,
    progress: Progress,
) -> list[Metrics]:
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run_point, task, point, seed) for point, seed in jobs]
        return _collect(futures, jobs, progress)


def _collect(
    futures: Sequence[Future[Metrics]],
    jobs: Sequence[tuple[dict[str, object], int]],
    progress: Progress,
) -> list[Metrics]:
    out: list[Metrics] = []
    for i, (fut, (point, seed)) in enumerate(zip(futures, jobs, strict=True)):
        try:
            out.append(fut.result())
        except SweepError:
            for rest in futures[i:]:
                rest.cancel()
            raise
        except Exception as exc:
            for rest in futures[i:]:
                rest.cancel()
            raise SweepError(
                f"run {_describe(point, seed)} failed: {type(exc).__name__}: {exc}"
            ) from exc
        progress(i + 1, len(jobs))
    return out


_ADDRESS = re.compile(r"(?:(?:tcp|tls)://)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})")


def check_scheduler_address(address: str) -> str:
    """``[tcp://|tls://]HOST:PORT``, or a SweepError naming the expected form."""
    match = _ADDRESS.fullmatch(address.strip())
    if match is None or not 1 <= int(match.group(1)) <= 65535:
        raise SweepError(
            f"scheduler address must look like tcp://HOST:PORT (port 1-65535), not {address!r}"
        )
    return address.strip()


def _run_dask(
    task: str,
    jobs: Sequence[tuple[dict[str, object], int]],
    address: str,
    progress: Progress,
    timeout_s: float,
) -> list[Metrics]:
    """Send the runs to the Dask scheduler at ``address`` and gather them in order."""
    try:
        import distributed  # noqa: PLC0415 (only sweeps on a cluster need it)
    except ImportError:
        raise SweepError("--scheduler needs the 'distributed' package (the sim extra)") from None
    try:
        # distributed's Client is untyped: hold it as Any rather than silence each call
        client_type: Any = distributed.Client
        client: Any = client_type(check_scheduler_address(address), timeout=f"{timeout_s}s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise SweepError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    try:
        futures = [client.submit(run_point, task, point, seed, pure=False) for point, seed in jobs]
        out: list[Metrics] = []
        for i, (fut, (point, seed)) in enumerate(zip(futures, jobs, strict=True)):
            try:
                out.append(fut.result())
            except SweepError:
                client.cancel(futures[i:])
                raise
            except Exception as exc:
                client.cancel(futures[i:])
                raise SweepError(
                    f"run {_describe(point, seed)} failed: {type(exc).__name__}: {exc}"
                ) from exc
            progress(i + 1, len(jobs))
        return out
    finally:
        client.close()


# -- output ------------------------------------------------------------------------


def write_outputs(
    table: SweepTable, out_dir: Path, formats: Iterable[str] = ("png", "svg")
) -> list[Path]:
    """runs.csv, summary.csv, sweep.json and one figure per metric; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [
        _write_csv(out_dir / "runs.csv", table.rows),
        _write_csv(out_dir / "summary.csv", table.summary()),
    ]
    doc = {
        "spec": table.spec.to_json(),
        "runs": table.rows,
        "summary": table.summary(),
    }
    path = out_dir / "sweep.json"
    path.write_text(json.dumps(_jsonable(doc), indent=1) + "\n", encoding="utf-8")
    written.append(path)
    written.extend(plot_metrics(table, out_dir, formats))
    return written


def _jsonable(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _write_csv(path: Path, rows: Sequence[Mapping[str, object]]) -> Path:
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def plot_metrics(
    table: SweepTable, out_dir: Path, formats: Iterable[str] = ("png", "svg"), dpi: int = 80
) -> list[Path]:
    """One figure per metric: mean against the x parameter with 95 % CI bars,
    one line per combination of the other grid parameters."""
    x_key = table.spec.x_key
    if x_key is None:
        return []
    import matplotlib as mpl  # noqa: PLC0415 (slow to import; only figures need it)

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    metrics = list(table.spec.metrics or table.metric_names)
    summary = table.summary()
    others = [k for k in table.param_names if k != x_key]
    xs = table.spec.grid[x_key]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in xs)
    positions = {repr(v): (float(v) if numeric else float(i)) for i, v in enumerate(xs)}  # type: ignore[arg-type]
    written: list[Path] = []
    for metric in metrics:
        if f"{metric}_mean" not in (summary[0] if summary else {}):
            raise SweepError(f"metric {metric!r} is not among the task's results")
        groups_count = len({tuple(e[k] for k in others) for e in summary})
        # A legend beside the axes, never over the data: the figure widens for it.
        fig, ax = plt.subplots(figsize=(7.4 if groups_count > 1 else 5.0, 3.4), dpi=dpi)
        groups: dict[tuple[object, ...], list[dict[str, object]]] = {}
        for entry in summary:
            groups.setdefault(tuple(entry[k] for k in others), []).append(entry)
        for combo, entries in groups.items():
            x = np.asarray([positions[repr(e[x_key])] for e in entries])
            mean = np.asarray([e[f"{metric}_mean"] for e in entries], dtype=np.float64)
            lo = np.asarray([e[f"{metric}_lo"] for e in entries], dtype=np.float64)
            hi = np.asarray([e[f"{metric}_hi"] for e in entries], dtype=np.float64)
            label = ", ".join(f"{k}={v}" for k, v in zip(others, combo, strict=True)) or metric
            ax.errorbar(
                x,
                mean,
                yerr=[mean - lo, hi - mean],
                marker="o",
                ms=3,
                capsize=3,
                lw=1.0,
                label=label,
            )
        if not numeric:
            ax.set_xticks(list(positions.values()), [str(v) for v in xs])
        ax.set_xlabel(x_key)
        ax.set_ylabel(metric)
        title = table.spec.title or f"{metric} against {x_key}"
        ax.set_title(f"{title}\n(mean and 95 % CI over {len(table.spec.seeds)} seeds)", fontsize=8)
        if len(groups) > 1:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                      borderaxespad=0.0)
        fig.tight_layout()
        for fmt in formats:
            path = out_dir / f"{_safe(metric)}_vs_{_safe(x_key)}.{fmt}"
            fig.savefig(path)
            written.append(path)
        plt.close(fig)
    return written


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
