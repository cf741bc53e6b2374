"""The simulator's report sets the server load a run implies beside make bench's figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bluetrace.sim.cli import main

BENCH = {"figures": [
    {"part": "sessions", "name": "sessions/s, 10 clients", "value": 5000.0, "unit": "/s"},
    {"part": "sessions", "name": "sessions/s, 100 clients", "value": 8000.0, "unit": "/s"},
    {"part": "sessions", "name": "p99 latency, 10 clients", "value": 3.0, "unit": "ms"},
    {"part": "checking", "name": "entries checked/s, 100,000-entry upload, 10 known",
     "value": 400000.0, "unit": "/s"},
]}


def _report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[dict, str]:
    assert main(["run", "office", "--no-sweep", "--progress", "off", "--out",
                 str(tmp_path / "o")]) == 0
    capsys.readouterr()
    results = json.loads((tmp_path / "o" / "results.json").read_text())
    return results["server_load"], (tmp_path / "o" / "report.html").read_text()


def test_servers_needed_beside_make_bench_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".bluetrace" / "bench").mkdir(parents=True)
    (tmp_path / ".bluetrace" / "bench" / "results.json").write_text(json.dumps(BENCH))
    load, html = _report(tmp_path, capsys)
    rows = {row["figure"]: row for row in load["rows"]}
    assert load["bench_file_found"] is True
    # office: 20 phones, one day, a TempID every 15 minutes each
    tempids = rows["TempIDs issued/s at peak"]["load"]
    assert tempids == pytest.approx(20 / 900.0)
    requests = rows["TempID requests/s at peak (one session each)"]
    assert requests["one_server_per_s"] == 8000.0  # the best sessions/s
    assert requests["servers_needed"] == pytest.approx(requests["load"] / 8000.0)
    checked = rows["entries checked/s at peak (8 h a day)"]
    day = rows["entries checked/day"]["load"]
    assert day > 0
    assert checked["load"] == pytest.approx(day / (8 * 3600))
    assert checked["servers_needed"] == pytest.approx(checked["load"] / 400000.0)
    assert rows["uploads/day"]["load"] >= 1
    assert "Server load" in html
    assert "servers needed" in html
    assert "400,000/s" in html


def test_no_bench_file_is_said_plainly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    load, html = _report(tmp_path, capsys)
    assert load["bench_file_found"] is False
    assert all(row["servers_needed"] is None for row in load["rows"])
    assert "no make bench results at .bluetrace/bench/results.json" in load["note"]
    assert "no make bench results" in html
