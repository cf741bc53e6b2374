"""One run split by days over a Dask cluster equals the run in one process."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest

from bluetrace.sim import cluster
from bluetrace.sim.cli import main
from bluetrace.sim.fast import run_fast
from bluetrace.sim.result import EngineResult
from bluetrace.sim.scenario import apply_overrides, load_scenario
from bluetrace.sim.world import World

# Above 2,000 people: most receivers only have their counts drawn, a sample is recorded.
SMALL_TOWN = [
    "population=3000", "days=3", "place.household.count=700",
    "place.office.count=200", "place.tram.count=2",
]


def _same(a: EngineResult, b: EngineResult) -> None:
    assert a.detections.size > 0
    assert a.detections.tobytes() == b.detections.tobytes()
    assert a.named.keys() == b.named.keys()
    for person, named in a.named.items():
        assert np.array_equal(named, b.named[person])
    summary_a, summary_b = a.summary(), b.summary()
    summary_a.pop("elapsed_s")
    summary_b.pop("elapsed_s")
    assert summary_a == summary_b
    assert a.intervals is not None
    assert b.intervals is not None
    assert a.intervals.tobytes() == b.intervals.tobytes()


def test_a_run_split_by_days_over_a_local_cluster_equals_the_local_run(tmp_path: Path) -> None:
    """Three workers in this process (tasks still go through the scheduler, out of
    order); every field of the result must be the same, bit for bit, and so must the
    CLI's results.json."""
    distributed = pytest.importorskip("distributed")
    scenario = apply_overrides(load_scenario("town"), SMALL_TOWN)
    local = run_fast(World.build(scenario, 7), scenario, np.random.default_rng([7, 2]))
    with distributed.LocalCluster(
        n_workers=3, threads_per_worker=1, processes=False, host="127.0.0.1",
        protocol="tcp", dashboard_address=None,
    ) as dask_cluster:
        address = dask_cluster.scheduler_address
        with cluster.scheduler(address) as client:
            seen: list[float] = []
            split = run_fast(World.build(scenario, 7), scenario, np.random.default_rng([7, 2]),
                             progress=lambda done, total: seen.append(done))
            assert len(client.scheduler_info()["workers"]) == 3
        assert seen[-1] == scenario.duration
        args = ["run", "office", "--set", "days=2", "--no-sweep", "--progress", "off"]
        assert main([*args, "--scheduler", address, "--out", str(tmp_path / "dask")]) == 0
    _same(local, split)
    assert main([*args, "--out", str(tmp_path / "here")]) == 0
    on_dask = json.loads((tmp_path / "dask" / "results.json").read_text())
    here = json.loads((tmp_path / "here" / "results.json").read_text())
    assert on_dask == here


def test_a_scheduler_that_is_not_there_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A port the OS just handed out, with nobody listening: one line, status 2."""
    pytest.importorskip("distributed")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = cluster.scheduler(f"tcp://127.0.0.1:{port}", timeout_s=1.0)
    with pytest.raises(cluster.ClusterError, match="cannot reach the Dask scheduler"):
        unreachable.__enter__()
    assert main(["run", "office", "--no-sweep", "--scheduler", "nonsense"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["bluetrace-sim: error: scheduler address must look like tcp://HOST:PORT "
                   "(port 1-65535), not 'nonsense'"]
