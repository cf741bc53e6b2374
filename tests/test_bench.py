"""The benchmark's code runs (small sizes) and its report says what it means.

No timing is asserted here; figures are judged by `make bench` against
ceilings measured in the same run.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bluetrace.bench.__main__ import PARTS, build_parser, main
from bluetrace.bench.report import Figure, Report, number, render, table


def test_quick_bench_produces_every_figure_beside_a_ceiling(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    result = subprocess.run(
        [sys.executable, "-m", "bluetrace.bench", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["failures"] == {}
    figures = data["figures"]
    assert {figure["part"] for figure in figures} == set(PARTS)
    for figure in figures:
        assert math.isfinite(figure["value"]), figure
        assert figure["ceiling"] is not None, figure
        if figure["unit"] not in ("MiB", "%"):  # memory growth and idle CPU may be zero
            assert figure["value"] > 0, figure
    assert set(data["ceilings"]) == set(PARTS)
    assert data["machine"]["cores"] >= 1
    # One progress line per part at least, naming it and how far the run is.
    for index, part in enumerate(PARTS, 1):
        assert f"bench [{index}/{len(PARTS)}] {part}:" in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Machine: ")
    assert any(line.startswith("part ") and "ceiling" in line for line in lines)
    assert any(line.strip().startswith("ceiling ") for line in lines)  # the legend
    assert any(line.startswith("quick run: ") for line in lines)


def test_only_runs_the_named_parts(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    assert main(["--quick", "--only", "parsers", "--out", str(out)]) == 0
    parts = {figure["part"] for figure in json.loads(out.read_text())["figures"]}
    assert parts == {"parsers"}


def test_unknown_part_is_refused_with_the_valid_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--only", "parsers,nonsense"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "nonsense" in err
    assert ", ".join(PARTS) in err
    assert "Traceback" not in err


def test_help_is_plain_text_and_every_option_explained(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "``" not in text
    options = [action for action in build_parser()._actions if action.option_strings]
    assert {"--quick", "--only", "--out", "--strict", "--programs-from"} <= {
        name for action in options for name in action.option_strings
    }
    for action in options:
        assert action.help, action.option_strings
    for part in PARTS:
        assert f"  {part} " in text


def test_small_ratios_keep_three_significant_digits() -> None:
    assert number(0.00396) == "0.00396"
    assert number(0.0229) == "0.0229"
    assert number(1.25) == "1.25"
    assert number(48693.67) == "48,694"
    row = table([Figure("parsers", "x", 24676.0, "/s", 6236047.0)]).splitlines()[1]
    assert "0.00396" in row


def test_summary_counts_targets_met_and_missed() -> None:
    report = Report(
        quick=False,
        machine={
            "cores": 2,
            "cpu": "",
            "memory_gib": 1.0,
            "implementation": "cpython",
            "python": "3",
            "platform": "p",
            "load_average": [],
            "date": "d",
        },
    )
    report.figures = [
        Figure("churn", "a", 186.0, "MiB", 0.0, "< 10 MiB", False),
        Figure("held", "b", 1.0, "ms", 0.5, "< 50 ms", True),
        Figure("held", "c", 1.0, "KiB", 0.5),
    ]
    assert render(report).splitlines()[-1].startswith("targets: 1 met, 1 missed")


def test_no_ratio_against_a_ceiling_of_zero_or_less() -> None:
    assert Figure("churn", "growth", 1.7, "MiB", -7.1).ratio is None
    assert Figure("churn", "growth", 1.7, "MiB", 0.0).ratio is None
    assert Figure("churn", "rate", 2.0, "/s", 8.0).ratio == 0.25
