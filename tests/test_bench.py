"""The benchmark code runs (small sizes): it must not rot between releases.

No timing is asserted here; figures are checked by `make bench`.
"""

import json
import subprocess
import sys
from pathlib import Path


def test_quick_bench_produces_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    result = subprocess.run(
        [sys.executable, "-m", "bluetrace.bench", "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(out.read_text())["figures"]
    parts = {figure["part"] for figure in figures}
    assert parts == {"parsers", "sessions", "checking", "held", "beacons"}
    for figure in figures:
        assert figure["value"] == figure["value"], figure  # not NaN
        assert figure["value"] > 0, figure
    assert "ceiling" in result.stdout.splitlines()[0]
