"""Files a user is handed are data, not code: sweep files, scenario files and their
names, and runs too big to fit, each refused in one line before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from bluetrace.sim import runs
from bluetrace.sim.cli import main
from bluetrace.sim.scenario import ScenarioError, load_scenario


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_sweep_file_cannot_name_any_function_as_its_task(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``subprocess:run`` called as ``run(params, seed)`` runs the params' keys as a
    command line (here ``touch VICTIM x``): the file must be refused before any run."""
    monkeypatch.chdir(tmp_path)
    victim = tmp_path / "pwned"
    spec = tmp_path / "SWEEP.toml"
    spec.write_text(
        f'task = "subprocess:run"\nseeds = 1\n[fixed]\n"touch" = 1\n"{victim}" = 1\n'
        "[grid]\nx = [1]\n",
        encoding="utf-8",
    )
    code, out, err = _run(capsys, "sweep", str(spec), "--workers", "1",
                          "--out", str(tmp_path / "out"))
    assert not victim.exists()
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "not one of the simulator's sweep tasks" in err
    assert "v1" in err
    assert "tracking" in err


def test_the_simulators_own_tasks_are_allowed_by_short_or_full_name() -> None:
    for task in ("v1", "tracking", "bluetrace.sim.studies.exposure:v1_task",
                 "bluetrace.sim.exposure:v1_task"):  # the name before the studies moved
        spec = runs.spec_from_dict({"task": task, "grid": {"x": [1]}})
        assert spec.task in runs.ALLOWED_TASKS.values()
    with pytest.raises(runs.SweepError, match="not one of"):
        runs.spec_from_dict({"task": "os:system", "grid": {"x": [1]}})


def _scenario_file(path: Path, name: str) -> Path:
    path.write_text(
        f'name = "{name}"\npopulation = 3\ninfected = [0]\n'
        '[[place]]\nname = "desk"\nper_place = 3\nrows = 1\ncols = 3\npitch = 1.0\n',
        encoding="utf-8",
    )
    return path


def test_a_scenario_name_cannot_write_outside_the_output_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    path = _scenario_file(work / "x.toml", "../../x")
    code, _out, err = _run(capsys, "run", str(path), "--no-sweep", "--progress", "off")
    assert code == 0, err
    outside = [p for p in tmp_path.rglob("*") if work not in p.parents and p != work]
    assert sorted(outside) == [tmp_path / "a"]
    (folder,) = (work / "sim-out").iterdir()
    assert (folder / "report.html").is_file()
    assert ".." not in folder.name
    assert "/" not in folder.name


def test_control_characters_in_names_never_reach_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _scenario_file(tmp_path / "x.toml", "evil\\u001b[2J\\u0000name")
    code, out, err = _run(capsys, "run", str(path), "--no-sweep", "--progress", "off",
                          "--out", str(tmp_path / "o"))
    assert code == 0, err
    assert "\x1b" not in out + err
    assert "\x00" not in out + err
    assert out.startswith("evil\\x1b[2J\\x00name: 3 people")
    html = (tmp_path / "o" / "report.html").read_text(encoding="utf-8")
    assert "\x1b" not in html
    assert "\x00" not in html


def test_a_binary_scenario_file_is_named_in_the_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "photo.toml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    code, out, err = _run(capsys, "run", str(path), "--progress", "off")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert str(path) in err
    assert "not a text file" in err


def test_a_run_too_big_to_fit_is_refused_up_front_with_the_estimate(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _run(capsys, "run", "town", "--set", "days=4000", "--progress", "off")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "too big" in err
    assert "GiB" in err
    assert "co-location intervals" in err


def test_the_estimate_scales_with_people_and_days() -> None:
    from bluetrace.sim.size import estimate_run  # noqa: PLC0415

    town = load_scenario("town")
    one = estimate_run(town, seeds=1)
    assert 300_000 < one.intervals_per_day < 3_000_000  # measured: about 660,000
    assert one.peak_bytes < 2 * 2**30  # the benchmark's 0.76 GiB fits its 2 GiB target
    longer = estimate_run(town, seeds=1, days=42)
    assert longer.total_intervals == pytest.approx(2 * one.total_intervals)
    with pytest.raises(ScenarioError, match="--seeds"):
        estimate_run(load_scenario("office"), seeds=10**9).check()


def test_too_many_seeds_or_sweep_points_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "run", "office", "--seeds", "1000000000", "--progress", "off")
    assert code == 2
    assert "--seeds" in err
    assert "at most" in err
    grid = {f"k{i}": list(range(10)) for i in range(10)}
    with pytest.raises(runs.SweepError, match="10,000,000,000 runs"):
        runs.spec_from_dict({"task": "v1", "grid": grid})


def test_a_scenario_sweep_point_too_big_to_fit_is_refused_up_front() -> None:
    with pytest.raises(runs.SweepError, match="too big to run here"):
        runs.spec_from_dict({"scenario": "town", "grid": {"days": [1, 4000]}})
