"""``python -m bluetrace.sim.bench``: the fast engine's speed and memory against its targets.

Runs the built-in ``town`` scenario (100,000 people, 21 days) through the fast
engine and the metrics, and prints wall time and peak memory (resident set,
from the kernel's high-water mark) next to the issue's targets (60 s and
2 GiB on this machine) and next to a ceiling measured in the same run: the
irreducible work of generating every day's co-location intervals and drawing
one binomial per directed interval, which no encounter-level engine can beat.
``--quick`` runs a small version (for a smoke test); ``--json PATH`` also
writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bluetrace.sim.fast import run_fast
from bluetrace.sim.metrics import seed_metrics
from bluetrace.sim.progress import step
from bluetrace.sim.result import EngineResult
from bluetrace.sim.scenario import Scenario, ScenarioError, apply_overrides, load_scenario
from bluetrace.sim.serverload import SERVER_BENCH, implied_load, load_table, server_capacity
from bluetrace.sim.world import World

TARGET_SECONDS = 60.0
TARGET_BYTES = 2 * 1024**3


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (ru_maxrss is KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _engine(
    scenario: Scenario, seed: int, workers: int,
) -> tuple[World, EngineResult, float, list[int]]:
    """(world, result, wall time, each worker's peak memory) of one fast-engine run, here
    or on a local cluster of ``workers`` processes."""
    worker_peaks: list[int] = []
    with step("bench: fast engine", enabled=False), local_cluster(workers) as client:
        t0 = time.perf_counter()
        world = World.build(scenario, seed)
        result = run_fast(world)
        t_engine = time.perf_counter() - t0
        if client is not None:
            worker_peaks = sorted(int(v) for v in client.run(peak_rss_bytes).values())
    return world, result, t_engine, worker_peaks


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bluetrace.sim.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 people x 2 days")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", metavar="PATH", help="also write the figures here")
    parser.add_argument("--people", type=int, metavar="N",
                        help="town scaled to N people (places in proportion), e.g. 1000000")
    parser.add_argument("--server-bench", type=Path, default=SERVER_BENCH, metavar="PATH",
                        help=f"make bench's results, for the server load ratio ({SERVER_BENCH})")
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help="run the engine's days on a local Dask cluster of N worker "
                             "processes (one thread each) and print each worker's peak memory")
    parser.add_argument("--no-ceiling", action="store_true",
                        help="skip measuring the ceiling (for cluster sizing runs)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.workers < 0:
        print("bench: error: --workers must be 0 or more", file=sys.stderr)
        return 2
    try:
        scenario = load_scenario("town")
        if args.quick:
            scenario = apply_overrides(scenario, [
                "population=1000", "days=2", "place.household.count=250",
                "place.office.count=80", "place.tram.count=1",
            ])
        if args.people:
            scenario = scaled_town(scenario, args.people)
    except ScenarioError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    # Progress as plain lines on stderr (no spinner thread while the clock runs).
    t_ceiling = 0.0
    if not args.no_ceiling:
        with step("bench: ceiling (intervals and one draw per link)", enabled=False):
            t_ceiling = ceiling_seconds(scenario, args.seed)
    world, result, t_engine, worker_peaks = _engine(scenario, args.seed, args.workers)
    with step("bench: metrics", enabled=False):
        t_metrics = time.perf_counter()
        metrics = seed_metrics(world, result)
        t_total = t_engine + time.perf_counter() - t_metrics
    peak = peak_rss_bytes()
    cpu = platform.processor() or platform.machine()
    print(f"machine: {platform.node()} ({cpu}, {os.cpu_count()} CPUs), Python "
          f"{platform.python_version()}")
    print(f"scenario: {scenario.name}, {world.n:,} phones x {scenario.days} days, "
          f"seed {args.seed}")
    print(f"{'figure':40s} {'measured':>14s} {'ceiling':>9s} {'ratio':>6s} {'target':>8s}")
    ratio = f"{t_engine / t_ceiling:.1f}x" if t_ceiling > 0 else ""
    rows = [
        ("fast engine wall time (s)", f"{t_engine:.1f}",
         f"{t_ceiling:.1f}" if t_ceiling > 0 else "-", ratio,
         f"<= {TARGET_SECONDS:.0f}"),
        ("engine + metrics wall time (s)", f"{t_total:.1f}", "", "", f"<= {TARGET_SECONDS:.0f}"),
        ("peak memory (GiB)", f"{peak / 1024**3:.2f}", "", "",
         f"<= {TARGET_BYTES / 1024**3:.0f}"),
        ("pair-days heard both ways", f"{result.pair_days['both']:,}"
         if result.pair_days else "n/a", "", "", ""),
        ("beacon opportunities simulated", f"{result.beacons_sent:,}", "", "", ""),
        ("detections listed (recorded receivers)", f"{result.detections.size:,}", "", "", ""),
    ]
    for name, measured, ceiling, rat, target in rows:
        print(f"{name:40s} {measured:>14s} {ceiling:>9s} {rat:>6s} {target:>8s}")
    sizing = cluster_sizing(world.n, scenario.days, t_engine, args.workers, worker_peaks)
    print_sizing(sizing, worker_peaks)
    det = metrics["detection"]["log"][scenario.primary_rule]
    print(f"log recall vs {scenario.primary_rule}: {det['tp']} of {det['true']}, "
          f"precision {det['tp']} of {det['named']}")
    load = server_load(scenario, result)
    print_server_load(load, args.server_bench)
    if args.people:  # the scaled run: no exact engine part
        exact: dict[str, float] = {}
        ok = peak <= MILLION_TARGET_BYTES and t_total <= MILLION_TARGET_SECONDS
        print(f"targets for a scaled run: <= {MILLION_TARGET_SECONDS:.0f} s and "
              f"<= {MILLION_TARGET_BYTES / 1024**3:.0f} GiB: " + ("met" if ok else "NOT met"))
        _write_json(args.json, world, scenario, args.seed, t_engine, t_total, t_ceiling, peak,
                    exact, load, sizing)
        return 0
    with step("bench: exact engine (real phones and server)", enabled=False):
        exact = exact_figures(quick=args.quick)
    print(
        f"{'exact engine: beacon deliveries/s':40s} {exact['deliveries_per_s']:>14,.0f} "
        f"{exact['parser_ceiling_per_s']:>9,.0f} "
        f"{exact['deliveries_per_s'] / exact['parser_ceiling_per_s']:>6.2f} "
        f"{'>= ' + format(EXACT_TARGET, ','):>8s}"
    )
    print(
        f"  ({exact['deliveries']:,.0f} beacons through the real parser and phones, "
        f"{exact['phones']:.0f} phones, office scenario; the drawing the fast engine shares "
        f"({exact['fast_s']:.2f} s) is taken out; ceiling: decode_beacon alone)"
    )
    ok = (
        t_engine <= TARGET_SECONDS
        and peak <= TARGET_BYTES
        and exact["deliveries_per_s"] >= EXACT_TARGET
    )
    print("within targets" if ok else "OUTSIDE targets")
    _write_json(args.json, world, scenario, args.seed, t_engine, t_total, t_ceiling, peak,
                exact, load, sizing)
    return 0


def _write_json(  # noqa: PLR0917
    path: str | None, world: World, scenario: Scenario, seed: int, t_engine: float,
    t_total: float, t_ceiling: float, peak: int, exact: dict[str, float],
    load: dict[str, float], sizing: dict[str, float],
) -> None:
    if not path:
        return
    figures = {
        "machine": platform.node(), "cpus": os.cpu_count(), "phones": world.n,
        "days": scenario.days, "seed": seed, "engine_s": round(t_engine, 3),
        "engine_and_metrics_s": round(t_total, 3), "ceiling_s": round(t_ceiling, 3),
        "peak_rss_bytes": peak, "target_s": TARGET_SECONDS, "target_bytes": TARGET_BYTES,
        "exact": exact, "exact_target_per_s": EXACT_TARGET, "server_load": load,
        "cluster": sizing,
    }
    Path(path).write_text(json.dumps(figures, indent=1) + "\n")


#: Targets of the scaled (a million phones) run on this machine.
MILLION_TARGET_SECONDS = 120.0
MILLION_TARGET_BYTES = 8 * 1024**3


@contextmanager
def local_cluster(workers: int) -> Iterator[Any]:
    """A local Dask cluster of ``workers`` processes (one thread each) that fast-engine
    runs go to inside the block, or nothing (None) for 0."""
    if workers == 0:
        yield None
        return
    import distributed  # noqa: PLC0415 (only cluster runs need it)

    from bluetrace.sim import cluster  # noqa: PLC0415

    local_type: Any = distributed.LocalCluster
    client_type: Any = distributed.Client
    with local_type(n_workers=workers, threads_per_worker=1, processes=True,
                    host="127.0.0.1", dashboard_address=None) as dask_cluster, \
            client_type(dask_cluster) as client, cluster.using(client):
        yield client


def cluster_sizing(
    phones: int, days: int, t_engine: float, workers: int, worker_peaks: list[int],
) -> dict[str, float]:
    """What one worker needs: its peak memory, and the worker time a simulated day of
    a million phones takes (the engine's wall time x workers, per day, per million)."""
    if workers == 0 or not worker_peaks:
        return {}
    return {
        "workers": float(workers),
        "worker_peak_rss_max_bytes": float(max(worker_peaks)),
        "worker_peak_rss_sum_bytes": float(sum(worker_peaks)),
        "wall_s_per_day": t_engine / max(days, 1),
        "worker_s_per_day_per_million": t_engine * workers / max(days, 1) / (phones / 1e6),
    }


def print_sizing(sizing: dict[str, float], worker_peaks: list[int]) -> None:
    """The cluster run's figures per worker (nothing for a run in this process)."""
    if not sizing:
        return
    print(f"on a local Dask cluster of {sizing['workers']:.0f} worker processes: peak memory "
          f"per worker {sizing['worker_peak_rss_max_bytes'] / 1024**3:.2f} GiB (all: "
          + ", ".join(f"{p / 1024**3:.2f}" for p in worker_peaks)
          + f"), {sizing['wall_s_per_day']:.1f} s of wall time per simulated day, "
          f"{sizing['worker_s_per_day_per_million']:.1f} worker-seconds per simulated "
          "day per million phones (the ceiling, if measured, is one process)")


def scaled_town(scenario: Scenario, people: int) -> Scenario:
    """``town`` with ``people`` people and every place count scaled in proportion."""
    factor = people / scenario.population
    overrides = [f"population={people}"] + [
        f"place.{spec.name}.count={max(1, round(spec.count * factor))}"
        for spec in scenario.places
    ]
    return apply_overrides(scenario, overrides)


def server_load(scenario: Scenario, result: EngineResult) -> dict[str, float]:
    """The health authority's load the run implies (``serverload.implied_load``)."""
    return implied_load(scenario, result.server_work)


def print_server_load(load: dict[str, float], bench_path: Path) -> None:
    """The load beside one server's measured capacity (``make bench``), as servers needed."""
    table = load_table(load, server_capacity(bench_path), bench_path)
    print("server load this run implies:")
    for row in table["rows"]:
        line = f"  {row['figure']:46s} {row['load']:>14,.1f}"
        if row["one_server_per_s"]:
            line += (f"   one server: {row['one_server_per_s']:,.0f}/s -> "
                     f"{row['servers_needed']:.3f} servers")
        print(line)
    print(f"  ({table['note']})")


EXACT_TARGET = 100_000
"""Beacon deliveries per second the exact engine should reach (real parser)."""


def exact_figures(*, quick: bool) -> dict[str, float]:
    """Beacon deliveries per second through the exact engine, on the office
    scenario: the exact run's time less the fast engine's on the same world
    (the same radio draws), beside the real beacon parser alone."""
    from bluetrace.protocol.messages import decode_beacon, encode_beacon  # noqa: PLC0415
    from bluetrace.sim.exact import run_exact  # noqa: PLC0415
    from bluetrace.sim.fast import run_fast as fast  # noqa: PLC0415

    scenario = load_scenario("office")
    if quick:
        scenario = apply_overrides(scenario, ["place.office.end=11"])
    world = World.build(scenario, 1)
    world.intervals()  # built once, outside both timings
    t0 = time.perf_counter()
    fast(world, scenario, np.random.default_rng([1, 2]))
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = run_exact(world, scenario, np.random.default_rng([1, 2]))
    t_exact = time.perf_counter() - t0
    received = result.beacons_received
    from bluetrace.protocol.messages import TempIDWindow  # noqa: PLC0415

    moment = datetime(2020, 5, 14, 9)
    datagram = encode_beacon(TempIDWindow("1" * 20, moment, moment + timedelta(minutes=14)))
    rounds = 100_000 if quick else 300_000
    t0 = time.perf_counter()
    for _ in range(rounds):
        decode_beacon(datagram)
    t_parse = time.perf_counter() - t0
    return {
        "deliveries": float(received),
        "phones": float(result.extra.get("phones", 0.0)),
        "exact_s": t_exact,
        "fast_s": t_fast,
        "deliveries_per_s": received / max(t_exact - t_fast, 1e-9),
        "deliveries_per_s_overall": received / t_exact,
        "parser_ceiling_per_s": rounds / t_parse,
    }


def ceiling_seconds(scenario: Scenario, seed: int) -> float:
    """Wall time of the irreducible work: every day's intervals and one binomial draw each."""
    world = World.build(scenario, seed)
    rng = np.random.default_rng([seed, 9])
    start = time.perf_counter()
    for _, iv in world.iter_days():
        rng.binomial(np.full(2 * iv.size, 10), 0.5)
    return time.perf_counter() - start


if __name__ == "__main__":
    sys.exit(main())
