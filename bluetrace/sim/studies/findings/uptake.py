"""App uptake: does recall fall as u^2 x p, in the fast engine and end to end?"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from bluetrace.sim.runs import load_spec, run_sweep
from bluetrace.sim.studies.findings.registry import Finding, Investigation, Options
from bluetrace.sim.studies.findings.steps import (
    SWEEPS_DIR,
    columns,
    grid_mean,
    numbers,
    save,
)


def run_uptake(opts: Options) -> Finding:
    spec = load_spec(SWEEPS_DIR / "uptake.toml")
    if opts.quick:
        spec = replace(spec, seeds=tuple(range(4)))
    table = run_sweep(spec, workers=opts.workers)
    summary = table.summary()
    metric = "recall.log.bluetrace"
    u = np.asarray(numbers(spec.grid["uptake"]))
    mean = np.asarray([grid_mean(summary, metric, uptake=x) for x in u])
    lo = np.asarray([float(e[f"{metric}_lo"]) for e in summary])  # type: ignore[arg-type]
    hi = np.asarray([float(e[f"{metric}_hi"]) for e in summary])  # type: ignore[arg-type]
    full = float(mean[np.argmax(u)])  # recall when everyone runs the app: p
    model = u**2 * full
    inside = int(np.sum((model >= lo) & (model <= hi)))

    fig, ax = plt.subplots(figsize=(4.6, 3.3))
    ax.errorbar(
        u,
        mean,
        yerr=[mean - lo, hi - mean],
        marker="o",
        ms=3,
        capsize=3,
        lw=1.0,
        label=f"simulated (mean, 95 % CI, {len(spec.seeds)} seeds)",
    )
    grid = np.linspace(0.0, 1.0, 101)
    ax.plot(
        grid,
        grid**2 * full,
        ls="--",
        c="0.4",
        lw=1.0,
        label=f"u^2 x p, p = recall at u = {u.max():g} ({full:.2f})",
    )
    ax.set_xlabel("app uptake u")
    ax.set_ylabel("recall of true close contacts")
    ax.set_title("Office, 2 m / 30 min contacts, fast engine", fontsize=8)
    ax.legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    name = save(fig, opts, "uptake_recall.png")
    worst = float(np.max(np.abs(mean - model)))
    verdict = (
        "Recall of true close contacts falls with uptake as u^2 x p"
        if inside == u.size
        else "Recall of true close contacts does not follow u^2 x p everywhere"
    )
    text = (
        f"{verdict}: the curve u^2 x {full:.2f} lies inside the 95 % interval at {inside} of "
        f"{u.size} uptakes, and the largest gap between the simulated mean and the curve is "
        f"{worst:.2f}. This is the fast engine, which in this office detects almost every "
        f"contact between two app users (p = {full:.2f}); the end-to-end check through real "
        "uploads and the real server is V4, below."
    )
    return Finding(
        text=text,
        figures=[name],
        data={"spec": spec.to_json(), "summary": columns(spec, summary), "p": full},
    )


# -- V4, replay and relay: the real protocol code (exact engine) -----------------------


def run_v4(opts: Options) -> Finding:
    from bluetrace.sim.studies import attacks  # noqa: PLC0415 (the exact engine loads on demand)

    seeds = 2 if opts.quick else 24
    result = attacks.uptake_end_to_end(0.6, 0.8, seeds=seeds)
    data = result.as_dict()
    low, high = data["recall_ci95"]
    gap = 100 * (result.recall - result.expected)
    verdict = "matches" if abs(gap) <= 1.0 else "misses"
    text = (
        f"Through real TempIDs, real beacons, real uploads and the real server's checking, "
        f"recall of true close contacts is {result.recall:.3f} ({result.traced:,} of "
        f"{result.true:,} contacts over {seeds} seeds, 95 % interval {low:.3f} to {high:.3f}); "
        f"u^2 x p = {result.expected:.3f}, so the simulator {verdict} the formula "
        f"({gap:+.1f} points; the acceptance band is +-1 point)."
    )
    table = (
        "| uptake u | detection p | contacts | traced | recall | 95 % interval | u^2 x p |\n"
        "|---|---|---|---|---|---|---|\n"
        f"| {result.uptake:g} | {result.p:g} | {result.true:,} | {result.traced:,} | "
        f"{result.recall:.3f} | {low:.3f} - {high:.3f} | {result.expected:.3f} |"
    )
    return Finding(text=text, table=table, data=data)


# -- entries of the page, in page order ----------------------------------------

ENTRIES: Final[tuple[Investigation, ...]] = (
    Investigation(
        key="uptake-fast",
        title="App uptake in the office, fast engine: does recall fall as u^2 x p?",
        question=(
            "A contact can only be traced if both people run the app, so with uptake u the "
            "recall of true close contacts should be u^2 times the recall p when everyone "
            "has the app. Does the simulator's fast engine show that across uptakes?"
        ),
        command="bluetrace-sim sweep bluetrace/sim/sweeps/uptake.toml --out sweep-uptake",
        run=run_uptake,
    ),
    Investigation(
        key="v4-uptake",
        title="V4. App uptake end to end: is recall u^2 x p through the real server?",
        question=(
            "A contact can only be traced if both people run the app. With uptake u = 0.6 and a "
            "detection probability p = 0.8, is the recall of true close contacts 0.288, end to "
            "end through real uploads and the real server's contact checking?"
        ),
        command="make investigate   # bluetrace.sim.studies.attacks.uptake_end_to_end",
        run=run_v4,
    ),
)
