"""Running engines: one seed, several seeds, and a one-parameter sweep.

The engine is chosen by name. ``fast`` is ``bluetrace.sim.fast.run_fast``;
``exact`` is ``bluetrace.sim.exact.run_exact``, looked up only when asked for,
so that the simulator works (and says so plainly) while that module is absent.
Both have the signature ``(world, scenario, rng, progress) -> EngineResult``.

Seeds: the world of seed ``s`` is ``World.build(scenario, s)`` and the engine
draws from ``numpy.random.default_rng([s, 2])``, so one seed fixes everything.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from bluetrace.sim.errors import EngineUnavailableError
from bluetrace.sim.fast import run_fast
from bluetrace.sim.metrics import combine, seed_metrics
from bluetrace.sim.result import EngineResult, Progress, no_progress
from bluetrace.sim.scenario import Scenario, apply_overrides
from bluetrace.sim.world import World

__all__ = ["ENGINES", "EngineUnavailableError", "SeedRun", "get_engine", "run_seed",
           "run_seeds", "run_sweep"]

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


def run_sweep(
    scenario: Scenario, key: str, values: list[str], *, seeds: list[int], engine: str,
    progress_for: Callable[[str], Progress] = lambda label: no_progress,
) -> list[dict[str, Any]]:
    """Combined metrics at each value of one parameter (headline detector and rule)."""
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
