"""Sweeps: the spec format, merging runs into one table, local processes and a Dask cluster."""

import csv
import json
import math
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bluetrace.sim import cli, runs
from bluetrace.sim.runs import SweepError, SweepSpec, run_sweep, spec_from_dict
from bluetrace.sim.stats import mean_ci

THIS = "tests.test_sim_investig_sweep"


def line_task(params: dict[str, object], seed: int) -> dict[str, float]:
    """y = a x + seed: the mean over seeds 0..k-1 is a x + (k-1)/2, worked out by hand."""
    a = runs.param_float(params, "a", 1.0)
    x = runs.param_float(params, "x", 0.0)
    return {"y": a * x + seed, "x_seen": x}


def failing_task(params: dict[str, object], seed: int) -> dict[str, float]:
    if params.get("x") == 2 and seed == 1:
        raise RuntimeError("boom")
    return {"y": 0.0}


def wordy_task(params: dict[str, object], seed: int) -> dict[str, object]:
    del params, seed
    return {"y": "many"}


@pytest.fixture(autouse=True)
def _allow_this_files_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sweep files name allowed tasks only; these tests bring their own (code may)."""
    for name in ("line_task", "failing_task", "wordy_task"):
        monkeypatch.setitem(runs.ALLOWED_TASKS, name, f"{THIS}:{name}")


def spec(**extra: object) -> SweepSpec:
    raw: dict[str, object] = {
        "task": f"{THIS}:line_task",
        "seeds": 3,
        "fixed": {"a": 2.0},
        "grid": {"x": [1, 2, 3], "b": ["u", "v"]},
    }
    raw.update(extra)
    return spec_from_dict(raw)


# -- the spec --------------------------------------------------------------------------


def test_points_cover_the_grid_with_the_fixed_values() -> None:
    s = spec()
    pts = s.points()
    assert len(pts) == 6
    assert pts[0] == {"a": 2.0, "x": 1, "b": "u"}
    assert {(p["x"], p["b"]) for p in pts} == {(x, b) for x in (1, 2, 3) for b in "uv"}
    assert s.seeds == (0, 1, 2)
    assert s.x_key == "x"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"grid": {"x": [1]}}, "needs a task"),
        ({"task": "nodots", "grid": {"x": [1]}}, "not one of the simulator's sweep tasks"),
        ({"task": "no.such.module:f", "grid": {"x": [1]}}, "not one of"),
        ({"task": f"{THIS}:nothing_here", "grid": {"x": [1]}}, "not one of"),
        ({"task": 7, "grid": {"x": [1]}}, "task 'int' is not one of"),
        ({"task": f"{THIS}:line_task", "grid": {"x": []}}, "non-empty list"),
        ({"task": f"{THIS}:line_task", "grid": {"x": 3}}, "non-empty list"),
        ({"task": f"{THIS}:line_task", "seeds": 0}, "at least 1"),
        ({"task": f"{THIS}:line_task", "seeds": [1, "2"]}, "list of integers"),
        ({"task": f"{THIS}:line_task", "x": "y", "grid": {"x": [1]}}, "not a grid parameter"),
        ({"task": f"{THIS}:line_task", "colour": "blue"}, "unknown key 'colour'"),
        ({"task": f"{THIS}:line_task", "scenario": "office"}, "not both"),
        ({"task": f"{THIS}:line_task", "engine": "fast"}, "scenario sweeps only"),
    ],
)
def test_bad_specs_are_one_clear_error(raw: dict[str, object], message: str) -> None:
    with pytest.raises(SweepError, match=message):
        spec_from_dict(raw)


def test_scenario_specs_run_the_simulator() -> None:
    s = spec_from_dict({"scenario": "office", "grid": {"uptake": [0.2, 0.6]}, "seeds": [4, 5]})
    assert s.task == runs.SIMULATOR_TASK
    assert s.fixed == {"scenario": "office", "engine": "fast"}
    assert s.seeds == (4, 5)


def test_scenario_sweeps_check_every_override_up_front() -> None:
    with pytest.raises(SweepError, match="scenario sweep"):
        spec_from_dict({"scenario": "office", "grid": {"no_such_knob": [1, 2]}})
    with pytest.raises(SweepError, match="scenario sweep"):
        spec_from_dict({"scenario": "no-such-scenario", "grid": {"uptake": [1.0]}})
    assert runs.simulator_overrides(
        {"scenario": "office", "engine": "fast", "uptake": 0.5, "radio.s_pair": 6, "x": "a b"}
    ) == ["uptake=0.5", "radio.s_pair=6", 'x="a b"']


def test_a_scenario_sweep_runs_the_simulator() -> None:
    s = spec_from_dict({"scenario": "office", "grid": {"uptake": [0.5, 1.0]}, "seeds": [1, 2]})
    table = run_sweep(s, workers=1)
    assert len(table.rows) == 4
    for row in table.rows:
        assert {"recall.log.bluetrace", "precision.log.bluetrace", "auc.mean-attenuation"} <= set(
            row
        )
        recall = float(row["recall.log.bluetrace"])  # type: ignore[arg-type]
        assert math.isnan(recall) or 0.0 <= recall <= 1.0


def test_simulator_metrics_flatten_by_hand() -> None:
    flat = runs.flatten_seed_metrics(
        {
            "detection": {"log": {"bluetrace": {"tp": 3, "true": 4, "named": 6}},
                          "swiss": {"cdc": {"tp": 0, "true": 0, "named": 0}}},
            "roc": {"mean-attenuation": {"auc": 0.75, "fpr": [], "tpr": []}},
            "pair_days": {"both": 6, "one": 2, "none": 1},
            "continuity": {"pairs": 2, "per_pair": [0.5, 1.0]},
            "beacons": {"sent": 10, "received": 8, "lost": 2},
            "tempids_issued": 5,
            "server_work": {},
        }
    )  # fmt: skip
    assert flat["recall.log.bluetrace"] == 0.75
    assert flat["precision.log.bluetrace"] == 0.5
    assert math.isnan(flat["recall.swiss.cdc"])
    assert flat["auc.mean-attenuation"] == 0.75
    assert flat["seen_by_both"] == 0.75
    assert flat["continuity"] == 0.75
    assert (flat["beacons.sent"], flat["beacons.lost"], flat["tempids_issued"]) == (10, 2, 5)
    with pytest.raises(SweepError, match="nothing a sweep can use"):
        runs.flatten_seed_metrics({})


def test_toml_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "SWEEP.toml"
    path.write_text(
        f'task = "{THIS}:line_task"\nseeds = [5, 6]\nx = "x"\n'
        '[fixed]\na = 3\n[grid]\nx = [0.5, 1.5]\n"radio.n" = [2]\n',
        encoding="utf-8",
    )
    s = runs.load_spec(path)
    assert s.grid == {"x": [0.5, 1.5], "radio.n": [2]}
    assert s.fixed == {"a": 3}
    path.write_text("task = \n", encoding="utf-8")
    with pytest.raises(SweepError, match="not valid TOML"):
        runs.load_spec(path)
    with pytest.raises(SweepError, match="cannot read"):
        runs.load_spec(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("target", "message"),
    [("nodots", "module:function"), ("no.such.module:f", "cannot import"),
     (f"{THIS}:nothing_here", "no function")],
)
def test_registering_a_task_checks_that_it_exists(target: str, message: str) -> None:
    with pytest.raises(SweepError, match=message):
        runs.register_task("mine", target)
    assert "mine" not in runs.ALLOWED_TASKS


def test_the_shipped_sweeps_parse() -> None:
    shipped = sorted(Path(runs.__file__).parent.joinpath("sweeps").glob("*.toml"))
    assert len(shipped) >= 2
    for path in shipped:
        s = runs.load_spec(path)
        assert s.points()


# -- merging ---------------------------------------------------------------------------


def test_mean_ci_by_hand() -> None:
    assert mean_ci([4.0]) == (4.0, 4.0, 4.0)
    mean, lo, hi = mean_ci([1.0, 3.0])  # sd sqrt(2), n 2: normal
    assert mean == 2.0
    assert hi - mean == pytest.approx(1.96 * 1.0, abs=1e-3)
    mean, lo, hi = mean_ci([1.0, 2.0, 3.0])  # the bootstrap over seeds, as a run's
    assert mean == 2.0
    assert 1.0 <= lo < 2.0 < hi <= 3.0
    assert (lo, hi) == mean_ci([1.0, 2.0, 3.0])[1:]  # fixed resamples
    assert all(math.isnan(v) for v in mean_ci([]))


def test_yes_no_metrics_get_a_wilson_interval() -> None:
    mean, lo, hi = mean_ci([0.0, 1.0, 0.0, 0.0])  # 1 of 4, worked out by hand
    assert mean == 0.25
    assert lo == pytest.approx(0.0456, abs=1e-4)
    assert hi == pytest.approx(0.6994, abs=1e-4)
    mean, lo, hi = mean_ci([0.0] * 20)
    assert (mean, lo) == (0.0, 0.0)
    assert hi == pytest.approx(3.8416 / (20 + 3.8416), abs=1e-4)  # z^2 / (n + z^2)


def test_sweep_merges_every_run_in_order() -> None:
    table = run_sweep(spec(), workers=1)
    assert len(table.rows) == 6 * 3
    assert table.rows[0] == {"a": 2.0, "x": 1, "b": "u", "seed": 0, "y": 2.0, "x_seen": 1.0}
    assert table.metric_names == ["y", "x_seen"]
    summary = table.summary()
    assert len(summary) == 6
    for entry in summary:
        x = float(entry["x"])  # type: ignore[arg-type]
        assert entry["y_n"] == 3
        assert entry["y_mean"] == pytest.approx(2.0 * x + 1.0)  # seeds 0, 1, 2
        # y = 2x + seed over seeds 0, 1, 2: the bootstrap of the mean stays in [2x, 2x + 2]
        assert 2.0 * x <= float(entry["y_lo"]) < float(entry["y_mean"])  # type: ignore[arg-type]
        assert float(entry["y_mean"]) < float(entry["y_hi"]) <= 2.0 * x + 2.0  # type: ignore[arg-type]


def test_processes_give_the_same_table() -> None:
    s = spec()
    assert run_sweep(s, workers=2).rows == run_sweep(s, workers=1).rows


def test_progress_is_reported_to_the_end() -> None:
    seen: list[tuple[int, int]] = []
    run_sweep(spec(), workers=1, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (18, 18)
    assert [d for d, _ in seen] == list(range(1, 19))


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_run_names_its_parameters(workers: int) -> None:
    s = spec(task=f"{THIS}:failing_task")
    with pytest.raises(SweepError, match=r"x=2, b=u; seed 1\) failed: RuntimeError: boom"):
        run_sweep(s, workers=workers)


def test_non_numeric_results_are_refused() -> None:
    with pytest.raises(SweepError, match="non-number"):
        run_sweep(spec(task=f"{THIS}:wordy_task"), workers=1)


def test_outputs_hold_every_run(tmp_path: Path) -> None:
    table = run_sweep(spec(metrics=["y"]), workers=1)
    written = runs.write_outputs(table, tmp_path, formats=("png",))
    names = {p.name for p in written}
    assert names == {"runs.csv", "summary.csv", "sweep.json", "y_vs_x.png"}
    with (tmp_path / "runs.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 18
    assert float(rows[-1]["y"]) == 2.0 * 3 + 2
    doc = json.loads((tmp_path / "sweep.json").read_text(encoding="utf-8"))
    assert len(doc["runs"]) == 18
    assert doc["spec"]["task"] == f"{THIS}:line_task"
    assert (tmp_path / "y_vs_x.png").stat().st_size > 1000


def test_a_missing_metric_is_named() -> None:
    table = run_sweep(spec(metrics=["z"]), workers=1)
    with pytest.raises(SweepError, match="metric 'z'"):
        runs.plot_metrics(table, Path("unused"), formats=())


# -- the command -----------------------------------------------------------------------


def test_main_runs_a_sweep_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "SWEEP.toml"
    path.write_text(f'task = "{THIS}:line_task"\nseeds = 2\n[grid]\nx = [1, 2]\n', encoding="utf-8")
    out = tmp_path / "out"
    assert cli.main(["sweep", str(path), "--workers", "1", "--out", str(out)]) == 0
    assert "4 runs merged" in capsys.readouterr().out
    assert (out / "summary.csv").exists()
    assert (out / "y_vs_x.svg").exists()


def test_the_older_module_invocation_still_runs_a_sweep(tmp_path: Path) -> None:
    """``python -m bluetrace.sim.sweep`` (written in sweep files and notes) is
    ``bluetrace-sim sweep``."""
    path = tmp_path / "SWEEP.toml"
    path.write_text('scenario = "spec"\nseeds = 1\n[grid]\nuptake = [1.0]\n',
                    encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "bluetrace.sim.sweep", str(path), "--workers", "1",
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "1 run merged" in done.stdout
    assert (tmp_path / "out" / "runs.csv").exists()


def test_main_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["sweep", str(tmp_path / "nope.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("bluetrace-sim sweep: error: cannot read")
    assert cli.main(["sweep", str(tmp_path / "nope.toml"), "--workers", "0"]) == 2
    assert "must be at least 1" in capsys.readouterr().err
    failing = tmp_path / "failing.toml"
    failing.write_text(
        f'task = "{THIS}:failing_task"\nseeds = 2\n[grid]\nx = [1, 2]\n', encoding="utf-8"
    )
    assert cli.main(["sweep", str(failing), "--workers", "1", "--out", str(tmp_path / "o")]) == 1
    lines = capsys.readouterr().err.splitlines()  # progress lines, then one error line
    assert all(line.startswith("sweep: ") for line in lines[:-1])
    assert lines[-1] == ("bluetrace-sim sweep: error: run (x=2; seed 1) failed: RuntimeError: boom")


# -- Dask ------------------------------------------------------------------------------


@pytest.mark.parametrize("processes", [False, True], ids=["in-process", "worker-process"])
def test_a_sweep_runs_on_a_local_dask_cluster(processes: bool) -> None:
    """The --scheduler path: a one-worker cluster on 127.0.0.1 that this test starts and
    stops (its worker in this process, or in a process of its own so that tasks and
    results really cross a process boundary); the table must equal the local one."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=processes,
        host="127.0.0.1",
        protocol="tcp",
        dashboard_address=None,
    ) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        on_dask = run_sweep(spec(), scheduler=address)
        with pytest.raises(SweepError, match=r"x=2, b=u; seed 1\) failed"):
            run_sweep(spec(task=f"{THIS}:failing_task"), scheduler=address)
    assert on_dask.rows == run_sweep(spec(), workers=1).rows


def test_a_scheduler_that_is_not_there_is_one_clear_error() -> None:
    """A port on 127.0.0.1 that the OS just handed out and nobody listens on; the client
    gives up after the 1-s connect timeout asked for."""
    pytest.importorskip("distributed")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SweepError, match="cannot reach the Dask scheduler"):
        run_sweep(spec(), scheduler=f"tcp://127.0.0.1:{port}", connect_timeout_s=1.0)
    with pytest.raises(SweepError, match="must look like tcp://HOST:PORT"):
        run_sweep(spec(), scheduler="nonsense")
