"""The findings page: every investigation rerun, its figure drawn and its finding written.

``python -m bluetrace.sim.investigate [--quick] [--docs DIR]`` regenerates
``DIR/investigations.md`` (default ``docs``) and its small figures in
``DIR/figures/``. Each investigation is an entry in ``REGISTRY``: a question,
the command that reproduces it, and a function that runs it and returns the
finding (sentences built from the numbers it measured, figures, a table and
the raw numbers as JSON). Investigations that need parts not built yet are
registered with ``run=None`` and a note of what they wait for, so the page
shows the gap instead of a made-up result; adding one is adding an entry.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from bluetrace.sim import exposure, tracking
from bluetrace.sim import sweep as sweep_module
from bluetrace.sim.radio import PRESETS, RadioModel, normal_cdf
from bluetrace.sim.sweep import SweepSpec, load_spec, plot_metrics, run_sweep

DPI: Final = 80
SWEEPS_DIR: Final = Path(__file__).parent / "sweeps"


@dataclass(frozen=True)
class Options:
    """How an investigation runs: quick (for a look, or tests) or full (for the page)."""

    quick: bool
    figures: Path  # where figures go; the page links them as figures/<name>
    workers: int | None = 1


@dataclass
class Finding:
    """What an investigation found, ready for the page."""

    text: str  # a sentence or two, built from the measured numbers
    figures: list[str] = field(default_factory=list)  # file names inside the figures folder
    table: str = ""  # markdown
    details: str = ""  # markdown shown after the table
    data: dict[str, object] = field(default_factory=dict)  # saved as figures/<key>.json


@dataclass(frozen=True)
class Investigation:
    """One entry of the page. ``run`` None means: registered, waiting for ``pending``."""

    key: str
    title: str
    question: str
    command: str
    run: Callable[[Options], Finding] | None
    pending: str = ""


REGISTRY: list[Investigation] = []


def register(inv: Investigation) -> Investigation:
    if any(i.key == inv.key for i in REGISTRY):
        raise ValueError(f"investigation {inv.key!r} registered twice")
    if (inv.run is None) == (not inv.pending):
        raise ValueError(f"investigation {inv.key!r}: give run or pending, not both or neither")
    REGISTRY.append(inv)
    return inv


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.0f} %"


def _save(fig: Figure, opts: Options, name: str) -> str:
    opts.figures.mkdir(parents=True, exist_ok=True)
    fig.savefig(opts.figures / name, dpi=DPI)
    plt.close(fig)
    return name


# -- V1: Leith's tram, synthetic ---------------------------------------------------


#: The published replay of Leith's tram histograms through the rules (the notes, section 3).
PUBLISHED_TRAM: Final = {
    "swiss_max_weighted_min": 10.0,
    "german_max_weighted_min": 13.5,
    "italian_tpr": 12 / 34,
    "italian_fpr": 14 / 38,
    "below68_tpr": 0.65,
    "below68_fpr": 0.50,
    "auc": 0.64,
}


@dataclass(frozen=True)
class V1Checks:
    """The synthetic acceptance of V1, each as (value, met)."""

    swiss_share: float
    german_share: float
    italian_gap: float
    auc_tram: float
    auc_open: float

    @property
    def results(self) -> dict[str, bool]:
        return {
            "swiss_notify_share_le_5pct": self.swiss_share <= 0.05,
            "german_notify_share_le_5pct": self.german_share <= 0.05,
            "italian_abs_tpr_minus_fpr_le_0.15": self.italian_gap <= 0.15,
            "tram_auc_in_0.5_0.75": 0.5 <= self.auc_tram <= 0.75,
            "open_office_auc_gt_0.9": self.auc_open > 0.9,
        }


def v1_checks(tram: exposure.SyntheticSummary, office: exposure.SyntheticSummary) -> V1Checks:
    it = exposure.ITALIAN.name
    return V1Checks(
        swiss_share=tram.notify_share[exposure.SWISS.name],
        german_share=tram.notify_share[exposure.GERMAN.name],
        italian_gap=abs(tram.tpr[it] - tram.fpr[it]),
        auc_tram=tram.auc_mean,
        auc_open=office.auc_mean,
    )


def _pooled_roc(
    radio_name: str, seeds: int
) -> tuple[np.ndarray[tuple[int], np.dtype[np.float64]], ...]:
    scores: list[np.ndarray[tuple[int], np.dtype[np.float64]]] = []
    truth: list[np.ndarray[tuple[int], np.dtype[np.bool_]]] = []
    for seed in range(seeds):
        r = exposure.simulate_pairs(PRESETS[radio_name], np.random.default_rng(seed))
        scores.append(-r.mean_attenuation())
        truth.append(r.close)
    return exposure.roc_curve(np.concatenate(scores), np.concatenate(truth))


def _radio_text(preset: str) -> str:
    r = PRESETS[preset]
    return f"A0 = {r.a0:g} dB, n = {r.n:g}, s_pair = {r.s_pair:g} dB, s_scan = {r.s_scan:g} dB"


def _expected_pairs_below(radio: RadioModel, level_db: float) -> float:
    """Expected number of the layout's pairs whose mean attenuation is below ``level_db``
    (distances uniform over each group's range, pair offset normal with s_pair)."""
    lay = exposure.PairLayout()
    total = 0.0
    for count, (low, high) in ((lay.n_close, lay.close_m), (lay.n_far, lay.far_m)):
        d = np.linspace(low, high, 401)
        margin = (level_db - radio.mean_attenuation(d)) / max(radio.s_pair, 1e-9)
        total += count * float(np.mean(normal_cdf(margin)))
    return total


def run_v1(opts: Options) -> Finding:
    seeds = 20 if opts.quick else 100
    tram = exposure.synthetic_tram(PRESETS["tram"], seeds=seeds)
    office = exposure.synthetic_tram(PRESETS["open"], seeds=seeds)
    checks = v1_checks(tram, office)

    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    for name, summary, colour in (("tram", tram, "C0"), ("open", office, "C1")):
        fpr, tpr = _pooled_roc(name, seeds)
        ax.plot(
            fpr,
            tpr,
            c=colour,
            lw=1.2,
            label=f"{name}: mean attenuation (AUC {summary.auc_mean:.2f})",
        )
        for rule, marker in zip(exposure.RULES, "osD^v", strict=True):
            ax.plot(
                summary.fpr[rule.name],
                summary.tpr[rule.name],
                marker,
                c=colour,
                ms=5,
                mfc="none" if name == "open" else colour,
                label=f"{rule.name} rule" if name == "tram" else None,
            )
    ax.plot([0, 1], [0, 1], ls=":", c="0.5", lw=1, label="random (diagonal)")
    ax.set_xlabel("false positive rate (pairs > 2 m)")
    ax.set_ylabel("true positive rate (pairs <= 2 m)")
    ax.set_title(
        f"Synthetic Leith experiment, {seeds} seeds pooled\n"
        "filled markers: tram; open markers: open office",
        fontsize=8,
    )
    ax.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    roc = _save(fig, opts, "v1_roc.png")

    sw, ge, it = exposure.SWISS.name, exposure.GERMAN.name, exposure.ITALIAN.name
    b68 = exposure.BELOW_68_10.name
    ok = checks.results
    mark = {True: "met", False: "**not met**"}
    table = (
        "\n".join(
            [
                "| measure | published replay of Leith's tram data | synthetic tram "
                f"({seeds} seeds) | synthetic check |",
                "|---|---|---|---|",
                "| Swiss: largest weighted time of any pair "
                f"| {PUBLISHED_TRAM['swiss_max_weighted_min']} min (0 of 72 notify) "
                f"| {tram.max_weighted[sw]:.1f} min | |",
                f"| Swiss: seeds in which any pair notifies | - | {_pct(checks.swiss_share)} "
                f"| <= 5 %: {mark[ok['swiss_notify_share_le_5pct']]} |",
                f"| German: largest weighted time of any pair | "
                f"{PUBLISHED_TRAM['german_max_weighted_min']} min (0 of 72 notify) "
                f"| {tram.max_weighted[ge]:.1f} min | |",
                f"| German: seeds in which any pair notifies | - | {_pct(checks.german_share)} "
                f"| <= 5 %: {mark[ok['german_notify_share_le_5pct']]} |",
                f"| Italian: TPR / FPR | {PUBLISHED_TRAM['italian_tpr']:.2f} / "
                f"{PUBLISHED_TRAM['italian_fpr']:.2f} | {tram.tpr[it]:.2f} / {tram.fpr[it]:.2f} "
                f"| \\|TPR - FPR\\| <= 0.15: {mark[ok['italian_abs_tpr_minus_fpr_le_0.15']]} |",
                "| below 68 dB for >= 10 min: TPR / FPR "
                f"| {PUBLISHED_TRAM['below68_tpr']:.2f} / {PUBLISHED_TRAM['below68_fpr']:.2f} "
                f"| {tram.tpr[b68]:.2f} / {tram.fpr[b68]:.2f} | |",
                f"| AUC of mean attenuation | {PUBLISHED_TRAM['auc']} | {tram.auc_mean:.2f} "
                f"(95 % of seeds {tram.auc_low:.2f}-{tram.auc_high:.2f}) "
                f"| in [0.5, 0.75]: {mark[ok['tram_auc_in_0.5_0.75']]} |",
                f"| open office ({_radio_text('open')}): AUC | - | {office.auc_mean:.2f} "
                f"(95 % of seeds {office.auc_low:.2f}-{office.auc_high:.2f}) "
                f"| > 0.9: {mark[ok['open_office_auc_gt_0.9']]} |",
            ]
        )
        + "\n"
    )

    random_like = checks.italian_gap <= 0.15
    lay, scans = exposure.PairLayout(), exposure.ScanProfile()
    rules_quiet = ok["swiss_notify_share_le_5pct"] and ok["german_notify_share_le_5pct"]
    strong55 = _expected_pairs_below(PRESETS["tram"], 55.0)
    strong50 = _expected_pairs_below(PRESETS["tram"], 50.0)
    text = (
        f"In the tram model, mean attenuation separates pairs within 2 m from pairs beyond "
        f"only a little better than a coin (AUC {tram.auc_mean:.2f}; Leith measured 0.64), "
        f"and the Italian rule notifies {_pct(tram.tpr[it])} of close and "
        f"{_pct(tram.fpr[it])} of far pairs"
        + (", as random as Leith found. " if random_like else ". ")
        + f"The same code in an open office (n = 2) reaches AUC {office.auc_mean:.2f}"
        + (" (the validation target is above 0.9). " if office.auc_mean <= 0.9 else ". ")
        + f"The Swiss and German rules notified in {_pct(checks.swiss_share)} and "
        f"{_pct(checks.german_share)} of the {seeds} seeds "
        + (
            "(the validation target is at most 5 %): the model's pair offset, normal with "
            f"s_pair = {PRESETS['tram'].s_pair:g} dB, places on average {strong55:.1f} of the "
            f"72 pairs below 55 dB and {strong50:.1f} below 50 dB, and such a pair fires the "
            "rule whenever it lasts 15 minutes, whereas in Leith's data no pair reached that "
            "(largest weighted times 10.0 and 13.5 min)."
            if not rules_quiet
            else "(at most 5 %, as in Leith's data)."
        )
    )
    details = (
        f"How the experiment is built: {lay.n_close + lay.n_far} pairs of phones, "
        f"{lay.n_close} at {lay.close_m[0]:g}-{lay.close_m[1]:g} m and {lay.n_far} at "
        f"{lay.far_m[0]:g}-{lay.far_m[1]:g} m, each together for "
        f'{lay.duration_min[0]:g}-{lay.duration_min[1]:g} minutes ("about 15 min"); the '
        f"receiver scans as OpenTrace on Android does (8 s every "
        f"{scans.period_s[0]:g}-{scans.period_s[1]:g} s, the same device logged at most once "
        f"per {scans.revisit_s:g} s); each scan's attenuation is drawn from the radio model "
        f"(tram: {_radio_text('tram')}; open office: {_radio_text('open')}); each logged reading "
        "stands for the time until the next one (at most 5 minutes), and the rules read the "
        f"resulting time-per-attenuation histogram. Seeds 0 to {seeds - 1}. The entry "
        '"When do the 15-minute rules fire in a tram?" below varies the scanning (the '
        "exposure notification API's own), the shape of the pair offsets and the rides' "
        "lengths.\n\n"
        "**The replay of Leith's own data is not run here.** Reproducing the published "
        "numbers exactly needs Leith's per-pair attenuation histograms, which are not "
        "available to this project (the data files carry no licence). Instead the rule "
        "code is checked on hand-made histograms whose answers are worked out by hand "
        "(`tests/test_sim_investig_exposure.py`), and the table compares the synthetic "
        "experiment with the published results. Whoever holds per-pair measurements can "
        "put them through the same rule code with `bluetrace-sim rules FILE.csv` (the file "
        "format is in docs/simulator.md).\n"
    )
    return Finding(
        text=text,
        figures=[roc],
        table=table,
        details=details,
        data={
            "tram": tram.to_json(),
            "open": office.to_json(),
            "checks": checks.results,
            "published": PUBLISHED_TRAM,
        },
    )


#: Leith & Farrell's bus, as the notes give it: share of the 60 close pairs each rule
#: detects.
PUBLISHED_BUS: Final = {"swiss": 0.0, "below70-15min": 0.05, "below68-10min": 0.08}


def run_v1_bus(opts: Options) -> Finding:
    seeds = 20 if opts.quick else 100
    runs = {
        scan: exposure.synthetic_tram(PRESETS["bus"], seeds=seeds, layout=exposure.BUS_LAYOUT,
                                      scans=exposure.SCAN_PROFILES[scan])
        for scan in ("opentrace", "gaen")
    }
    rules = list(PUBLISHED_BUS)

    def band(summary: exposure.SyntheticSummary, rule: str) -> tuple[float, float, float]:
        per_seed = np.asarray(summary.tpr_by_seed[rule])
        return (summary.tpr[rule], float(np.quantile(per_seed, 0.025)),
                float(np.quantile(per_seed, 0.975)))

    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    x = np.arange(len(rules))
    for k, (scan, colour) in enumerate((("opentrace", "C0"), ("gaen", "C1"))):
        stats = [band(runs[scan], r) for r in rules]
        mid = np.asarray([m for m, _, _ in stats])
        err = np.asarray([[m - lo for m, lo, _ in stats], [hi - m for m, _, hi in stats]])
        ax.bar(x + (k - 0.5) * 0.3, mid, 0.3, yerr=err, capsize=3, color=colour,
               label=f"synthetic, {scan} scans (95 % of seeds)")
    ax.plot(x + 0.3, [PUBLISHED_BUS[r] for r in rules], "k*", ms=9, ls="none",
            label="Leith & Farrell, bus (published)")
    ax.set_xticks(x, [f"{r} rule" for r in rules], fontsize=7)
    ax.set_ylabel("share of the 60 close pairs detected")
    ax.set_title(f"Synthetic bus (60 pairs within 2 m, {seeds} seeds)", fontsize=8)
    ax.legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    figure = _save(fig, opts, "v1_bus.png")

    def cell(scan: str, rule: str) -> str:
        mid, lo, hi = band(runs[scan], rule)
        return f"{_pct(mid)} ({_pct(lo)}-{_pct(hi)})"

    rows = ["| rule | published (bus) | synthetic, OpenTrace scans | synthetic, GAEN scans |",
            "|---|---|---|---|"]
    rows += [f"| {r} | {_pct(PUBLISHED_BUS[r])} | {cell('opentrace', r)} | {cell('gaen', r)} |"
             for r in rules]
    swiss_silent = min(1.0 - runs[s].notify_share["swiss"] for s in runs)
    inside = all(
        band(runs[scan], r)[1] <= PUBLISHED_BUS[r] <= band(runs[scan], r)[2]
        for scan in runs for r in rules
    )

    def spread(rule: str) -> str:
        values = [_pct(v) for v in sorted(runs[scan].tpr[rule] for scan in runs)]
        return " to ".join(dict.fromkeys(values))

    text = (
        ("The bus model agrees with Leith's bus" if inside and swiss_silent >= 0.95
         else "The bus model comes close to Leith's bus")
        + ": the Swiss rule notified none of the 60 close "
        f"pairs in {_pct(swiss_silent)} of seeds (Leith: 0 of 60), below 70 dB for 15 min "
        f"detected {spread('below70-15min')} of close pairs (Leith: 5 %) and below 68 dB for "
        f"10 min {spread('below68-10min')} (Leith: 8 %), depending on whose scanning credits "
        "the time"
        + ("; each published value lies within the range of the seeds. " if inside
           else "; some published values lie outside the range of the seeds (table). ")
        + "In a bus, where attenuation barely depends on distance (n = 0.22) and sits near "
        "74 dB, these rules miss almost every close contact."
    )
    lay = exposure.BUS_LAYOUT
    details = (
        f"How the experiment is built: {lay.n_close} pairs at {lay.close_m[0]:g}-"
        f"{lay.close_m[1]:g} m, together for {lay.duration_min[0]:g}-{lay.duration_min[1]:g} "
        f"minutes (\"at least 15 mins\"); bus radio: {_radio_text('bus')}; the receiver scans as "
        "OpenTrace on Android (each reading counts until the next) or as the exposure "
        "notification API (4 s every 210-300 s, each reading counts the seconds since the "
        f"previous scan). Per-seed shares in brackets: 2.5 % to 97.5 % over seeds 0 to "
        f"{seeds - 1}. The bus radio parameters are the fit to Leith's bus attenuations listed in "
        "docs/simulator.md; the detection rates above were not used to set anything.\n"
    )
    return Finding(
        text=text,
        figures=[figure],
        table="\n".join(rows) + "\n",
        details=details,
        data={"published": PUBLISHED_BUS, **{s: r.to_json() for s, r in runs.items()},
              "tpr_by_seed": {s: r.tpr_by_seed for s, r in runs.items()}},
    )


def _sweep_means(opts: Options, name: str) -> tuple[SweepSpec, list[dict[str, object]], list[str]]:
    """Run a shipped sweep (fewer seeds when quick), draw its figures, return the summary."""
    spec = load_spec(SWEEPS_DIR / name)
    if opts.quick:
        spec = replace(spec, seeds=tuple(range(5)))
    table = run_sweep(spec, workers=opts.workers)
    opts.figures.mkdir(parents=True, exist_ok=True)
    names = plot_metrics(table, opts.figures, formats=("png",), dpi=DPI)
    return spec, table.summary(), [p.name for p in names]


def _mean(summary: Sequence[dict[str, object]], metric: str, **where: object) -> float:
    entry = next(e for e in summary if all(e[k] == v for k, v in where.items()))
    value = entry[f"{metric}_mean"]
    return float(value) if isinstance(value, int | float) else math.nan


def _columns(spec: SweepSpec, summary: Sequence[dict[str, object]]) -> list[dict[str, object]]:
    """The summary cut down to the grid parameters and the spec's metrics (small JSON)."""
    metrics = tuple(f"{m}_" for m in spec.metrics or ())
    return [
        {k: v for k, v in e.items() if k in spec.grid or k.startswith(metrics)} for e in summary
    ]


def _numbers(values: Sequence[object]) -> list[float]:
    return [float(v) for v in values if isinstance(v, int | float)]


def run_rooms(opts: Options) -> Finding:
    spec, summary, figures = _sweep_means(opts, "rooms.toml")
    dspec, dsummary, dfigures = _sweep_means(opts, "distances.toml")
    s_pairs = _numbers(spec.grid["s_pair"])
    lo, hi = min(s_pairs), max(s_pairs)
    quiet = [
        s for s in s_pairs if _mean(summary, "german_notified", preset="tram", s_pair=s) <= 0.05
    ]
    reach = _numbers(dspec.grid["far_max_m"])
    office_ok = [d for d in reach if _mean(dsummary, "auc", preset="open", far_max_m=d) > 0.9]
    text = (
        f"Attenuation tells near from far in an open office (AUC "
        f"{_mean(summary, 'auc', preset='open', s_pair=lo):.2f} at s_pair = {lo:g} dB, "
        f"{_mean(summary, 'auc', preset='open', s_pair=hi):.2f} at {hi:g} dB) but hardly in a "
        f"tram ({_mean(summary, 'auc', preset='tram', s_pair=lo):.2f} to "
        f"{_mean(summary, 'auc', preset='tram', s_pair=hi):.2f}). In the tram the German rule "
        f"notified in at most 5 % of seeds for s_pair = "
        f"{', '.join(f'{s:g}' for s in quiet) or 'none of the values'} dB, and in "
        f"{_pct(_mean(summary, 'german_notified', preset='tram', s_pair=hi))} of seeds at "
        f"{hi:g} dB. The distance of the far pairs matters too: the open office "
        + (
            f"passes AUC 0.9 once far pairs reach {min(office_ok):g} m "
            f"(with far pairs up to {min(reach):g} m: "
            f"{_mean(dsummary, 'auc', preset='open', far_max_m=min(reach)):.2f})."
            if office_ok
            else f"stays below AUC 0.9 for every far distance tried (up to {max(reach):g} m)."
        )
    )
    return Finding(
        text=text,
        figures=figures + dfigures,
        data={
            "rooms": {"spec": spec.to_json(), "summary": summary},
            "distances": {"spec": dspec.to_json(), "summary": dsummary},
        },
    )


def run_tram_rules(opts: Options) -> Finding:
    spec, summary, figures = _sweep_means(opts, "tram-rules.toml")
    spreads = _numbers(spec.grid["ride_spread_min"])
    widest = max(spreads)
    combos = [(scan, shape) for scan in ("opentrace", "gaen") for shape in ("normal", "bounded")]

    def german(scan: str, shape: str, spread: float) -> float:
        return _mean(summary, "german_notified", scan=scan, offsets=shape, ride_spread_min=spread)

    quiet = [
        (scan, shape, spread)
        for scan, shape in combos
        for spread in spreads
        if german(scan, shape, spread) <= 0.05
        and _mean(summary, "swiss_notified", scan=scan, offsets=shape, ride_spread_min=spread)
        <= 0.05
    ]
    gaen = [german("gaen", shape, sp) for shape in ("normal", "bounded") for sp in spreads]
    every = [german(scan, shape, sp) for scan, shape in combos for sp in spreads]
    it_zero = _mean(summary, "italian_tpr", scan="opentrace", offsets="normal", ride_spread_min=0.0)
    quiet_text = "; ".join(
        f"{scan} scans, {shape} offsets, rides 15 +- {spread:g} min"
        for scan, shape, spread in quiet
    )
    text = (
        "Whether the 15-minute rules ever fire in a tram is decided less by the radio than by "
        "how readings are turned into minutes and by the tails of the pair offsets. With "
        "OpenTrace's log (a reading counts until the next one), rides of exactly 15 minutes "
        "can never reach a rule that needs 15 minutes, and the German rule fires in "
        f"{_pct(german('opentrace', 'normal', widest))} of seeds once rides spread by "
        f"+-{widest:g} min ({_pct(german('opentrace', 'bounded', widest))} with bounded "
        "offsets of the same sd). With the crediting of the API the rules were written for "
        "(a reading counts the seconds since the scanner's previous scan, so an encounter's "
        "first reading also counts time before the pair met), the German rule fires in "
        f"{_pct(min(gaen))} to {_pct(max(gaen))} of seeds whatever the rides' lengths. "
        "Leith's experiment (0 of 72 pairs notified, German at most 13.5 min) is a single draw, "
        f"and every model here gives such a silent run in at least {_pct(1.0 - max(every))} of "
        "seeds. V1's target, the Swiss and German rules quiet in at least 95 % of seeds, "
        + (
            f"holds only for: {quiet_text}"
            + (
                f"; and rides of exactly 15 minutes also silence the Italian rule (TPR "
                f"{_pct(it_zero)}), which Leith saw fire for 35 % of close pairs."
                if any(spread == 0.0 for _, _, spread in quiet)
                else "."
            )
            if quiet
            else "holds for none of these combinations."
        )
    )
    return Finding(
        text=text,
        figures=figures,
        data={"spec": spec.to_json(), "summary": _columns(spec, summary)},
    )


def run_uptake(opts: Options) -> Finding:
    spec = load_spec(SWEEPS_DIR / "uptake.toml")
    if opts.quick:
        spec = replace(spec, seeds=tuple(range(4)))
    table = run_sweep(spec, workers=opts.workers)
    summary = table.summary()
    metric = "recall.log.bluetrace"
    u = np.asarray(_numbers(spec.grid["uptake"]))
    mean = np.asarray([_mean(summary, metric, uptake=x) for x in u])
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
    name = _save(fig, opts, "uptake_recall.png")
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
        data={"spec": spec.to_json(), "summary": _columns(spec, summary), "p": full},
    )


# -- V5: tracking by sniffers --------------------------------------------------------


def plot_map(
    run: tracking.TrackingRun,
    rotation_s: float,
    method: str,
    side_m: float,
    step_s: float,
    *,
    n_show: int = 5,
    hours: float = 2.0,
) -> Figure:
    """What the network sees: each linked track drawn through the sniffers that heard it.

    Grey squares are sniffers; thin grey lines the true paths of a few walkers
    over the first ``hours``; each coloured line one linked track of that walker
    (one line per track, so a break in colour is where linking failed).
    """
    sniffers = tracking.sniffer_grid(side_m, run.pitch_m)
    n_axis = round(math.sqrt(len(sniffers)))
    tracks = run.tracks[rotation_s, method]
    window = min(run.positions.shape[0], round(hours * 3600.0 / step_s))
    fig, ax = plt.subplots(figsize=(4.8, 4.8))
    ax.scatter(sniffers[:, 0], sniffers[:, 1], s=2, c="0.75", marker="s", lw=0)
    colours = plt.get_cmap("tab10")
    s = run.sightings
    for w in range(min(n_show, run.positions.shape[1])):
        ax.plot(run.positions[:window, w, 0], run.positions[:window, w, 1], lw=0.5, c="0.6")
        for t in np.nonzero((tracks.walker == w) & (tracks.first < window))[0]:
            sel = (s.walker == w) & (s.step >= tracks.first[t]) & (s.step <= tracks.last[t])
            sel &= s.step < window
            steps, inverse = np.unique(s.step[sel], return_inverse=True)
            if steps.size < 2:
                continue
            where = np.column_stack([s.sniffer[sel] // n_axis, s.sniffer[sel] % n_axis]) + 0.5
            where *= run.pitch_m
            counts = np.bincount(inverse)
            x = np.bincount(inverse, weights=where[:, 0]) / counts
            y = np.bincount(inverse, weights=where[:, 1]) / counts
            ax.plot(x, y, "-", lw=1.2, c=colours(w % 10), alpha=0.85)
            ax.plot(x[:1], y[:1], "o", ms=2.5, c=colours(w % 10))  # where each track starts
    ax.set_xlim(0, side_m)
    ax.set_ylim(0, side_m)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(
        f"sniffers every {run.pitch_m:g} m; TempID {tracking.rotation_label(rotation_s)}; "
        f"{method} linking; first {hours:g} h\ngrey: true paths of {n_show} walkers; colour: "
        "each linked track,\ndrawn through the sniffers that heard it (dot: where it starts)",
        fontsize=7,
    )
    fig.tight_layout()
    return fig


def plot_track_cdf(runs: Sequence[tracking.PitchResults]) -> Figure:
    """CDF of linked-track length: one panel per pitch, one line per rotation x method."""
    pitches = sorted({r.pitch_m for r in runs})
    fig, axes = plt.subplots(
        1, len(pitches), figsize=(3.0 * len(pitches), 2.9), sharey=True, squeeze=False
    )
    keys = sorted(
        {k for r in runs for k in r.results}, key=lambda k: (k[0] == tracking.NEVER, k[0], k[1])
    )
    colours = dict(zip(sorted({k[0] for k in keys}), ("C2", "C0", "C1"), strict=False))
    for ax, pitch in zip(axes[0], pitches, strict=True):
        for rot, method in keys:
            minutes = np.sort(
                np.concatenate(
                    [
                        np.asarray(r.results[rot, method].track_minutes)
                        for r in runs
                        if r.pitch_m == pitch
                    ]
                )
            )
            if minutes.size == 0:
                continue
            ax.step(
                np.maximum(minutes, 0.1),
                np.arange(1, minutes.size + 1) / minutes.size,
                where="post",
                c=colours.get(rot, "C3"),
                ls="-" if method == "equal" else "--",
                lw=1.0,
                label=f"{tracking.rotation_label(rot)}, {method}",
            )
        ax.set_xscale("log")
        ax.set_xlabel("linked-track length (min; lone sightings at 0.1)", fontsize=8)
        ax.set_title(f"sniffer pitch {pitch:g} m", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("share of tracks this short or shorter", fontsize=8)
    axes[0][0].legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    return fig


def run_v5(opts: Options) -> Finding:
    setup = tracking.TrackingSetup.from_scenario("city")
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    if opts.quick:
        setup = replace(setup, n_walkers=100, hours=2.0)
        seeds = (0,)
    started = time.perf_counter()
    rows, runs = tracking.tracking_table(setup, seeds=seeds)
    seconds = time.perf_counter() - started
    mid = tracking.run_pitch(setup, 75.0, seeds[0])  # the map's run, kept whole
    map_name = _save(
        plot_map(mid, 900.0, "stitched", setup.side_m, setup.step_s), opts, "v5_map.png"
    )
    cdf_name = _save(plot_track_cdf(runs), opts, "v5_track_cdf.png")

    def row(pitch: float, rot: str, method: str) -> tracking.TableRow:
        return next(r for r in rows if (r.pitch_m, r.rotation, r.method) == (pitch, rot, method))

    fine_eq, fine_st = row(25.0, "15 min", "equal"), row(25.0, "15 min", "stitched")
    mid_eq, mid_st = row(75.0, "15 min", "equal"), row(75.0, "15 min", "stitched")
    sparse_st = row(200.0, "15 min", "stitched")
    sparse_never = row(200.0, "never", "equal")
    mid_2h = row(75.0, "2 h", "stitched")
    text = (
        f"With TempIDs rotating every 15 minutes, a sniffer every 75 m hears a walker "
        f"{_pct(mid_eq.observed_share)} of the time; linking equal TempIDs yields tracks of "
        f"{mid_eq.mean_track_min:.0f} min on average, and rotation stitching lengthens them to "
        f"{mid_st.mean_track_min:.0f} min, the longest covering {_pct(mid_st.longest_share)} "
        f"of a walker's {setup.hours:g} hours (with COVIDSafe's 2-hour TempIDs: "
        f"{_pct(mid_2h.longest_share)}). A sniffer every 25 m stitches tracks of "
        f"{fine_st.mean_track_min:.0f} min on average (equal TempID alone: "
        f"{fine_eq.mean_track_min:.0f} min). At 200 m only "
        f"{_pct(sparse_st.stitch_precision)} of stitches join the right person"
        + (
            f", yet a TempID that never changes still links {_pct(sparse_never.longest_share)} "
            "of each walker's time into one track: the rotation period limits tracking more "
            "than the density of sniffers does."
            if sparse_never.longest_share > fine_st.longest_share
            else f"; a TempID that never changes links {_pct(sparse_never.longest_share)}."
        )
    )
    details = (
        f"Model (the walkers of the built-in city scenario): {setup.n_walkers} "
        f"random-waypoint walkers (speed "
        f"{setup.speed_mps[0]:g}-{setup.speed_mps[1]:g} m/s, pauses up to "
        f"{setup.pause_s[1]:g} s) in a {setup.side_m:g} m square for {setup.hours:g} hours; "
        f"sniffers at the centres of a square grid; every {setup.step_s:g} s each sniffer "
        f"within reach makes one scan through the log-distance radio model "
        f"(n = {setup.radio.n:g}, s_scan = {setup.radio.s_scan:g} dB, detection "
        + ", ".join(
            f"{_pct(float(setup.radio.detect_probability(d)))} at {d} m" for d in (20, 30, 40)
        )
        + "); each walker's TempID schedule starts at a random moment of the day before. "
        f"*heard*: share of time steps some sniffer heard the walker. *linked*: share of "
        f"the walker's time inside a correctly linked track (first to last sighting). "
        f"*longest track*: share covered by the walker's single longest track. "
        f"*mean track*: mean time span of a linked track (a lone sighting counts as 0 min). "
        f"*stitches right*: share of stitches joining two TempIDs of the same walker (a "
        f"stitch needs the old ID's last and the new ID's first sighting at one sniffer "
        f"within {setup.stitch_gap_s:g} s, unambiguously both ways; wrong stitches are cut "
        f"and never counted as linked time). This stitcher guesses nothing, so an adversary "
        f"who also weighs signal strength or walking speed would link more: the stitched "
        f"figures are lower bounds. Mean over seeds {', '.join(map(str, seeds))}; "
        f"the table took {seconds:.0f} s to compute.\n"
    )
    return Finding(
        text=text,
        figures=[map_name, cdf_name],
        table=tracking.table_markdown(rows),
        details=details,
        data=tracking.table_json(rows, setup, seeds),
    )


# -- V4, replay and relay: the real protocol code (exact engine) -----------------------


def run_v4(opts: Options) -> Finding:
    from bluetrace.sim import attacks  # noqa: PLC0415 (the exact engine loads on demand)

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


def run_replay(opts: Options) -> Finding:
    from bluetrace.sim import attacks  # noqa: PLC0415

    delays = [0.0, 60.0, 150.0, 300.0, 450.0, 600.0, 750.0, 850.0, 900.0, 1200.0]
    trials = 150 if opts.quick else 2000
    points = attacks.replay_curve(delays, trials=trials)
    worst = max(abs(p.rate - p.analytic) for p in points)
    fig, ax = plt.subplots(figsize=(4.6, 3.3))
    d = np.array([p.delay for p in points])
    ax.plot(d / 60, [p.rate for p in points], "o", ms=4, label=f"real phones ({trials} per delay)")
    grid = np.linspace(0, 20, 201)
    ax.plot(grid, np.clip(1 - grid * 60 / attacks.TEMPID_WINDOW, 0, 1), "--", c="0.4",
            label="1 - D/900")
    ax.set_xlabel("replay delay D (minutes)")
    ax.set_ylabel("share of replayed beacons accepted")
    ax.legend(fontsize=7)
    fig.tight_layout()
    name = _save(fig, opts, "replay.png")
    text = (
        "A beacon replayed D seconds after it was recorded is accepted by a real phone "
        f"with the probability 1 - D/900 predicts (largest gap {worst:.3f} over "
        f"{len(points)} delays): nothing but the TempID's 15-minute window stands between an "
        "attacker and a false contact, and from 15 minutes on every replay is refused."
    )
    table = "| delay D (s) | accepted | 1 - D/900 |\n|---|---|---|\n" + "\n".join(
        f"| {p.delay:g} | {p.rate:.3f} | {p.analytic:.3f} |" for p in points
    )
    return Finding(
        text=text, figures=[name], table=table,
        data={"points": [vars(p) | {"rate": p.rate} for p in points]},
    )


def run_relay(opts: Options) -> Finding:
    from bluetrace.sim import attacks  # noqa: PLC0415

    counts = [1, 2, 4] if opts.quick else [1, 2, 4, 8]
    hours = 0.25 if opts.quick else 1.0
    points = attacks.relay_lab(counts, hours=hours)
    fig, ax = plt.subplots(figsize=(4.6, 3.3))
    ax.plot([p.relays for p in points], [p.per_hour for p in points], "o-", ms=4)
    ax.set_xlabel("relays between two offices")
    ax.set_ylabel("false contacts created per hour")
    fig.tight_layout()
    name = _save(fig, opts, "relay.png")
    last = points[-1]
    text = (
        f"Live relaying is never refused: each relay that hears 3 desks in one office and "
        f"re-broadcasts to 3 desks in another creates up to 9 false contacts, within minutes; "
        f"{last.relays} relays created {last.per_hour:.0f} false contacts per hour, and the "
        f"real server named {last.named_falsely} false contacts in the other office when "
        "the phones uploaded. BlueTrace's window check cannot tell a relayed beacon from a "
        "real one."
    )
    table = "| relays | false contacts | per hour | named by the server |\n|---|---|---|---|\n"
    table += "\n".join(
        f"| {p.relays} | {p.false_contacts} | {p.per_hour:.0f} | {p.named_falsely} |"
        for p in points
    )
    return Finding(text=text, figures=[name], table=table,
                   data={"points": [vars(p) for p in points]})


# -- the registry --------------------------------------------------------------------

register(
    Investigation(
        key="v1-tram",
        title="V1. Can attenuation rules tell who was close on a tram?",
        question=(
            'Exposure-notification apps decide "close contact" from how strongly one phone '
            "heard another (attenuation, in dB) and for how long. Leith and Farrell measured "
            "phones at known distances in a Dublin tram and found the Swiss, German and Italian "
            "rules no better than chance there. Does the simulator's tram radio model reproduce "
            "that, and does the same code work in an open office?"
        ),
        command="python -m bluetrace.sim.investigate            # this page, V1 included\n"
        "pytest tests/test_sim_investig_exposure.py     # the rules on hand-made histograms",
        run=run_v1,
    )
)
register(
    Investigation(
        key="v1-bus",
        title="V1. And on a bus?",
        question=(
            "Leith and Farrell also measured 60 pairs of seats within 2 m on a Dublin bus: the "
            "Swiss rule notified none of them, and plain threshold rules caught 5-8 %. Does the "
            "simulator's bus radio model give the same?"
        ),
        command="python -m bluetrace.sim.investigate   # bluetrace.sim.exposure.BUS_LAYOUT",
        run=run_v1_bus,
    )
)
register(
    Investigation(
        key="rooms",
        title="Which rooms let attenuation tell near from far?",
        question=(
            "How much does the answer depend on the room? The same synthetic experiment, swept "
            "over the per-pair shadowing (how differently two phones placed at the same distance "
            "hear each other) in the tram and in an open office, and over how far away the "
            "far pairs are."
        ),
        command="python -m bluetrace.sim.sweep bluetrace/sim/sweeps/rooms.toml --out sweep-rooms\n"
        "python -m bluetrace.sim.sweep bluetrace/sim/sweeps/distances.toml --out sweep-distances",
        run=run_rooms,
    )
)
register(
    Investigation(
        key="tram-rules",
        title="When do the 15-minute rules fire in a tram?",
        question=(
            "The Swiss and German rules need 15 weighted minutes, and Leith's rides lasted about "
            "15 minutes. How much of their silence comes from the radio, and how much from how "
            "readings are counted as minutes (OpenTrace's log, or the exposure notification "
            "API's seconds since the previous scan), from the tails of the pair offsets, and "
            "from how long the rides were?"
        ),
        command="python -m bluetrace.sim.sweep bluetrace/sim/sweeps/tram-rules.toml "
        "--out sweep-tram-rules",
        run=run_tram_rules,
    )
)
register(
    Investigation(
        key="uptake-fast",
        title="App uptake in the office, fast engine: does recall fall as u^2 x p?",
        question=(
            "A contact can only be traced if both people run the app, so with uptake u the "
            "recall of true close contacts should be u^2 times the recall p when everyone "
            "has the app. Does the simulator's fast engine show that across uptakes?"
        ),
        command="python -m bluetrace.sim.sweep bluetrace/sim/sweeps/uptake.toml --out sweep-uptake",
        run=run_uptake,
    )
)
register(
    Investigation(
        key="v4-uptake",
        title="V4. App uptake end to end: is recall u^2 x p through the real server?",
        question=(
            "A contact can only be traced if both people run the app. With uptake u = 0.6 and a "
            "detection probability p = 0.8, is the recall of true close contacts 0.288, end to "
            "end through real uploads and the real server's contact checking?"
        ),
        command="python -m bluetrace.sim.investigate   # bluetrace.sim.attacks.uptake_end_to_end",
        run=run_v4,
    )
)
register(
    Investigation(
        key="replay",
        title="Replay attack: how long does a recorded beacon stay useful?",
        question=(
            "An attacker records a beacon and replays it D seconds later somewhere else. For a "
            "15-minute TempID window, is it accepted with probability 1 - D/900?"
        ),
        command="python -m bluetrace.sim.investigate   # bluetrace.sim.attacks.replay_curve",
        run=run_replay,
    )
)
register(
    Investigation(
        key="relay",
        title="Relay attack: how many false contacts does live forwarding create?",
        question=(
            'An attacker forwards beacons live from one place to another (a "wormhole"). How '
            "many false contacts per hour does that create, against the number of relays?"
        ),
        command="python -m bluetrace.sim.investigate   # bluetrace.sim.attacks.relay_lab",
        run=run_relay,
    )
)
register(
    Investigation(
        key="v5-tracking",
        title="V5. How much of a walker's day can a sniffer network link?",
        question=(
            "BlueTrace phones broadcast a TempID that changes every 15 minutes (COVIDSafe: "
            "2 hours). Anyone can put Bluetooth listeners on a grid across a city. How much of a "
            "person's movements can such a network join up, by equal TempIDs and by stitching an "
            "old TempID to the new one that appears at the same sniffer, against sniffer pitch "
            "and rotation period? No one has published these numbers."
        ),
        command="python -m bluetrace.sim.tracking --seeds 5      # the table\n"
        "python -m bluetrace.sim.investigate                # the table and the figures\n"
        "python -m bluetrace.sim.sweep bluetrace/sim/sweeps/tracking.toml   # as a sweep",
        run=run_v5,
    )
)


# -- the page ------------------------------------------------------------------------


def _sweep_command() -> str:
    """``bluetrace-sim sweep`` once the command line accepts it, else the module, so the
    page never shows a command that does not run."""
    try:
        from bluetrace.sim import cli  # noqa: PLC0415 (only to ask what it accepts)

        cli.build_parser().parse_args(["sweep", "SWEEP.toml"])
    except (Exception, SystemExit):  # not wired (yet): any refusal means no
        return "python -m bluetrace.sim.sweep"
    return "bluetrace-sim sweep"


def render(results: Sequence[tuple[Investigation, Finding | None]], quick: bool) -> str:
    """The markdown page: an introduction, a contents list, then each investigation."""
    sweep_cmd = _sweep_command()
    lines = [
        "# Investigations",
        "",
        "What the BlueTrace simulator finds when it is checked against published "
        "measurements and used to ask new questions. Every simulated number on this page was "
        "measured by the command shown with it (published figures are labelled as such), and "
        "the whole page and its figures are regenerated by",
        "",
        "```",
        "make investigate        # or: python -m bluetrace.sim.investigate",
        "```",
        "",
        "(`--quick` runs small versions in seconds, for a look; the committed page is the "
        "full run). The numbers behind each figure are saved beside it as JSON in "
        "`docs/figures/`.",
        "",
    ]
    if quick:
        lines += ["> **This page was generated with `--quick`: small runs, rough numbers.**", ""]
    lines += ["## Contents", ""]
    for inv, finding in results:
        status = "" if finding is not None else " (not run yet)"
        anchor = inv.key
        lines.append(f"- [{inv.title}](#{anchor}){status}")
    lines.append("")
    for inv, finding in results:
        lines += [
            f'<a id="{inv.key}"></a>',
            "",
            f"## {inv.title}",
            "",
            f"**Question.** {inv.question}",
            "",
            "**Reproduce.**",
            "",
            "```",
            inv.command,
            "```",
            "",
        ]
        if finding is None:
            lines += [f"**Not run yet.** This investigation {inv.pending}", ""]
            continue
        lines += [f"**Finding.** {finding.text}", ""]
        lines += [f"![{inv.title}](figures/{name})" for name in finding.figures]
        lines.append("")
        if finding.table:
            lines += [finding.table, ""]
        if finding.details:
            lines += [finding.details, ""]
        if finding.data:
            lines += [f"Numbers behind this section: [{inv.key}.json](figures/{inv.key}.json).", ""]
    lines += [
        "## Running sweeps",
        "",
        "A sweep runs a grid of parameters x seeds and merges the results into `runs.csv` "
        "(one row per run), `summary.csv` (mean and 95 % confidence interval per grid point: "
        "Student t, or Wilson for yes/no metrics), `sweep.json` and one figure per metric "
        "against the x parameter. It is described by a TOML file:",
        "",
        "```toml",
        *_sweep_format(),
        "```",
        "",
        "```",
        f"{sweep_cmd} SWEEP.toml [--workers N] [--out DIR]     # local processes "
        "(default: one per CPU)",
        f"{sweep_cmd} SWEEP.toml --scheduler tcp://HOST:8786   # a Dask cluster",
        "```",
        "",
        "To run on several machines, start `dask scheduler` on one of them and `dask worker "
        "tcp://HOST:8786` on each (every machine needs this package installed with its `sim` "
        "extra), then pass `--scheduler`. Each run is seeded by its own seed alone, so a "
        "sweep gives the same table on one machine or many.",
        "",
        "## Adding an investigation",
        "",
        "Each section above is an entry in `REGISTRY` in `bluetrace/sim/investigate.py`: a "
        "title, the question, the command that reproduces it, and a function that runs it and "
        "returns the finding (sentences built from the measured numbers, figures, a table). "
        "Entries still waiting for parts of the simulator are registered without a function, "
        "with a note of what they need.",
        "",
    ]
    return "\n".join(lines)


def _sweep_format() -> list[str]:
    """The SWEEP.toml example from ``bluetrace.sim.sweep``'s docstring (one source)."""
    doc = sweep_module.__doc__ or ""
    _, _, example = doc.partition("SWEEP.toml::")
    lines = textwrap.dedent(example.strip("\n")).splitlines()
    return [line.rstrip() for line in lines]


def run_all(
    docs: Path,
    quick: bool,
    log: Callable[[str], None] = lambda _: None,
) -> Path:
    """Run every registered investigation and write the page and its figures."""
    figures = docs / "figures"
    opts = Options(quick=quick, figures=figures)
    results: list[tuple[Investigation, Finding | None]] = []
    for inv in REGISTRY:
        if inv.run is None:
            results.append((inv, None))
            continue
        started = time.perf_counter()
        finding = inv.run(opts)
        log(f"{inv.key}: {time.perf_counter() - started:.1f} s")
        if finding.data:
            figures.mkdir(parents=True, exist_ok=True)
            (figures / f"{inv.key}.json").write_text(
                json.dumps(_finite(finding.data), indent=1) + "\n", encoding="utf-8"
            )
        results.append((inv, finding))
    page = docs / "investigations.md"
    before = _linked_files(page)
    page.write_text(render(results, quick), encoding="utf-8")
    for name in before - _linked_files(page):
        (figures / name).unlink(missing_ok=True)  # produced by an earlier run, now unused
    return page


def _linked_files(page: Path) -> set[str]:
    """Figures and data files a generated page links to (its own files, nobody else's)."""
    try:
        text = page.read_text(encoding="utf-8")
    except FileNotFoundError:
        return set()
    return set(re.findall(r"\]\(figures/([A-Za-z0-9_.-]+)\)", text))


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bluetrace.sim.investigate",
        description="Rerun the investigations and regenerate docs/investigations.md "
        "and docs/figures/.",
    )
    parser.add_argument("--quick", action="store_true", help="small runs, in seconds")
    parser.add_argument(
        "--docs",
        type=Path,
        default=Path("docs"),
        metavar="DIR",
        help="folder for investigations.md and figures/ (default: docs)",
    )
    args = parser.parse_args(argv)
    try:
        page = run_all(args.docs, args.quick, log=lambda m: print(m, file=sys.stderr, flush=True))
    except OSError as exc:
        print(
            f"investigate: error: cannot write {args.docs}: {exc.strerror or exc}", file=sys.stderr
        )
        return 1
    except KeyboardInterrupt:
        print("investigate: interrupted", file=sys.stderr)
        return 130
    print(f"wrote {page} and its figures in {args.docs / 'figures'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
