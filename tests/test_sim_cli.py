"""bluetrace-sim on the command line: outputs, reproducibility and one-line errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bluetrace.sim import runs
from bluetrace.sim.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_run_writes_every_output_and_a_self_contained_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "run", "spec", "--out", str(tmp_path / "a"), "--seeds", "2",
                          "--sweep", "p_loss=0,0.5", "--progress", "off")
    assert code == 0, err
    assert f"report: {tmp_path / 'a' / 'report.html'}" in out
    assert "recall of true close contacts" in out
    for name in ("results.json", "metrics.csv", "per_seed.csv", "roc.csv", "continuity.csv",
                 "attenuation.csv", "timelines.csv",
                 "sweep.csv", "report.html", "timing.json"):
        assert (tmp_path / "a" / name).is_file(), name
    for fig in ("attenuation_vs_distance", "roc", "timelines", "sweep"):
        assert (tmp_path / "a" / "figures" / f"{fig}.png").stat().st_size > 1000
        assert (tmp_path / "a" / "figures" / f"{fig}.svg").read_text().lstrip().startswith("<?xml")
    html = (tmp_path / "a" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert "<script" not in html
    # The report opens with the headline numbers, then the parameters.
    assert html.index("Headline numbers") < html.index("Parameters") < html.index("Figures")
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    assert results["seeds"] == [1, 2]
    assert results["engine"] == "fast"
    assert results["scenario"]["name"] == "spec"
    assert "numpy" in results["versions"]
    cell = results["metrics"]["detection"]["log"]["covidsafe"]
    assert cell["tp"] == 4
    assert cell["true"] == 4
    assert [row["value"] for row in results["sweep"]] == ["0", "0.5"]


def test_same_seed_gives_identical_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("a", "b", "c"):
        seed = "3" if name != "c" else "4"
        code, _, err = _run(capsys, "run", "office", "--seed", seed, "--no-sweep",
                            "--out", str(tmp_path / name), "--progress", "off")
        assert code == 0, err
    for f in ("results.json", "metrics.csv", "per_seed.csv", "continuity.csv", "roc.csv",
              "timelines.csv", "report.html", "figures/roc.svg"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert (tmp_path / "a" / "per_seed.csv").read_bytes() != (
        tmp_path / "c" / "per_seed.csv").read_bytes()


def test_toml_file_with_overrides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        'name = "mine"\npopulation = 4\ninfected = [0]\nprofiles = { "gaen" = 1.0 }\n'
        '[[place]]\nname = "desk"\nper_place = 4\nrows = 2\ncols = 2\npitch = 1.0\n'
    )
    code, out, err = _run(capsys, "run", str(path), "--set", "uptake=1.0", "--no-sweep",
                          "--out", str(tmp_path / "o"), "--progress", "off")
    assert code == 0, err
    assert out.startswith("mine: 4 people")
    saved = json.loads((tmp_path / "o" / "results.json").read_text())
    assert saved["scenario"]["profiles"] == {"gaen": 1.0}


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["run", "atlantis"], "no scenario 'atlantis'"),
        (["run", "office", "--set", "uptake=7"], "uptake must be in [0, 1]"),
        (["run", "office", "--set", "bogus"], "--set needs key=value"),
        (["run", "office", "--seeds", "0"], "--seeds must be at least 1"),
        (["run", "office", "--seed", "x"], "invalid int value"),
        (["run", "office", "--engine", "warp"], "invalid choice"),
        (["run", "office", "--sweep", "uptake=0.5"], "--sweep needs"),
        (["run", "/nonexistent/dir/x.toml"], "cannot read"),
        (["frobnicate"], "invalid choice"),
        ([], "a command is needed"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("bluetrace-sim: error: ")
    assert needle in err


def test_missing_exact_engine_is_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # None in sys.modules makes the import fail exactly as if the file were absent.
    monkeypatch.setitem(sys.modules, "bluetrace.sim.exact", None)
    code, _, err = _run(capsys, "run", "spec", "--engine", "exact", "--progress", "off")
    assert code == 2
    assert "exact engine" in err
    assert err.count("\n") == 1
    with pytest.raises(runs.EngineUnavailableError, match="exact engine"):
        runs.get_engine("exact")


def test_scenarios_version_and_module_entry(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "scenarios")
    assert code == 0
    names = [line.split()[0] for line in out.splitlines()]
    assert {"office", "classroom", "tram", "bus", "city", "spec"} <= set(names)
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("bluetrace-sim ")
    proc = subprocess.run([sys.executable, "-m", "bluetrace.sim", "--help"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0
    assert "run" in proc.stdout
    assert proc.stderr == ""


def test_without_the_sim_extra_every_command_is_one_line(tmp_path: Path) -> None:
    """Building the parser imports numpy (through the sweep module): without the extra
    that must still be the one-line message, not a traceback."""
    code = (
        "import sys; sys.modules['numpy'] = None\n"
        "from bluetrace.sim.cli import main\n"
        "raise SystemExit(main(['scenarios']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path, check=False)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1
    assert "needs the sim extra" in done.stderr


def test_a_long_step_says_when_it_starts_and_ends(capsys: pytest.CaptureFixture[str]) -> None:
    from bluetrace.sim.progress import step  # noqa: PLC0415

    with step("investigate: v1", enabled=False):
        print("working")
    out, err = capsys.readouterr()
    assert out == "working\n"
    lines = err.splitlines()
    assert lines[0] == "investigate: v1 ..."
    assert re.fullmatch(r"investigate: v1: \d+\.\d s", lines[1])


def test_a_headline_nobody_can_meet_says_why() -> None:
    from bluetrace.sim.report import headline  # noqa: PLC0415
    from bluetrace.sim.scenario import apply_overrides, load_scenario  # noqa: PLC0415

    city = apply_overrides(load_scenario("city"), ["primary_rule=cdc"])
    _, combined = runs.run_seeds(city, [1], "fast")
    recall, precision = headline(city, combined)[:2]
    assert recall["value"].startswith("n/a: no pair met the cdc rule's distance and time")
    assert "rules with true contacts here: passing" in recall["value"]
    assert "is a false positive against the cdc rule" in precision["value"]


def test_the_output_folders_the_commands_create_are_ignored_by_git() -> None:
    ignored = (Path(__file__).resolve().parent.parent / ".gitignore").read_text().split()
    for folder in ("sim-out/", "sweep-out/", ".bluetrace/"):
        assert folder in ignored


def test_the_parameter_table_has_units_and_only_the_fields_that_apply() -> None:
    from bluetrace.sim.report import auc_text, parameter_rows  # noqa: PLC0415
    from bluetrace.sim.scenario import load_scenario  # noqa: PLC0415

    rows = {k: (v, u) for k, v, u in parameter_rows(load_scenario("city"))}
    assert rows["place[0].area"] == ("1500.0", "m (side)")
    assert rows["cutoff"][1] == "m"
    assert rows["beacon_interval"][1] == "s"
    assert "place[0].pitch" not in rows  # a room's field, not an open place's
    assert "place[0].riders" not in rows
    assert "tempid_refresh" not in rows  # one TempID at a time: no refresh period
    office = {k for k, _, _ in parameter_rows(load_scenario("office"))}
    assert "place[0].pitch" in office
    assert "place[0].area" not in office
    assert auc_text(0.42) == "0.420 (below 0.5: worse than chance)"
    assert auc_text(0.61) == "0.610"
    assert auc_text(None).startswith("n/a")
