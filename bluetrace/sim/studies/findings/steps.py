"""Steps every finding takes: format a share, save a figure, run a shipped sweep."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Final

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from bluetrace.sim.runs import SweepSpec, load_spec, plot_metrics, run_sweep
from bluetrace.sim.studies.findings.registry import Options

#: Figures are PNGs at least MIN_WIDTH_PX wide (readable labels when shown at their
#: own size); the page and its figures are committed.
DPI: Final = 210
MIN_WIDTH_PX: Final = 1000
#: The sweeps shipped with the package (``bluetrace/sim/sweeps/*.toml``).
SWEEPS_DIR: Final = Path(__file__).resolve().parents[2] / "sweeps"  # bluetrace/sim/sweeps


def pct(x: float) -> str:
    """A share as the page prints it ("n/a" for a share of nothing)."""
    return "n/a" if math.isnan(x) else f"{100 * x:.0f} %"


def save(fig: Figure, opts: Options, name: str) -> str:
    """Write ``fig`` into the figures folder, free its memory, and return the name to link."""
    opts.figures.mkdir(parents=True, exist_ok=True)
    dpi = max(DPI, math.ceil(MIN_WIDTH_PX / fig.get_figwidth()))
    fig.savefig(opts.figures / name, dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    return name


def sweep_means(opts: Options, name: str) -> tuple[SweepSpec, list[dict[str, object]], list[str]]:
    """Run a shipped sweep (fewer seeds when quick), draw its figures, return the summary."""
    spec = load_spec(SWEEPS_DIR / name)
    if opts.quick:
        spec = replace(spec, seeds=tuple(range(5)))
    table = run_sweep(spec, workers=opts.workers)
    opts.figures.mkdir(parents=True, exist_ok=True)
    names = plot_metrics(table, opts.figures, formats=("png",), dpi=DPI)
    return spec, table.summary(), [p.name for p in names]


def grid_mean(summary: Sequence[dict[str, object]], metric: str, **where: object) -> float:
    """A metric's mean at one grid point of a sweep summary (NaN when it has none)."""
    entry = next(e for e in summary if all(e[k] == v for k, v in where.items()))
    value = entry[f"{metric}_mean"]
    return float(value) if isinstance(value, int | float) else math.nan


def columns(spec: SweepSpec, summary: Sequence[dict[str, object]]) -> list[dict[str, object]]:
    """The summary cut down to the grid parameters and the spec's metrics (small JSON)."""
    metrics = tuple(f"{m}_" for m in spec.metrics or ())
    return [
        {k: v for k, v in e.items() if k in spec.grid or k.startswith(metrics)} for e in summary
    ]


def numbers(values: Sequence[object]) -> list[float]:
    """The numeric values of a sweep grid axis (TOML gives ints and floats alike)."""
    return [float(v) for v in values if isinstance(v, int | float)]
