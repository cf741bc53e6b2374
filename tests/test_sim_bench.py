"""The fast engine's benchmark runs (small version); it asserts no timings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bluetrace.sim.bench import main


def test_quick_bench_prints_figures_beside_targets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    assert main(["--quick", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "fast engine wall time (s)" in text
    assert "<= 60" in text
    figures = json.loads(out.read_text())
    assert figures["phones"] == 1000
    assert figures["days"] == 2
    assert figures["engine_s"] > 0
    assert figures["peak_rss_bytes"] > 0
