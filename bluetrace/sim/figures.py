"""Figures (matplotlib, Agg backend): each saved as PNG and SVG.

Every function takes plain data (what ``results.json`` and the CSVs hold, or
the first seed's run) and returns the PNG path, so that the report can inline it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # the Agg backend is chosen above, before pyplot
import numpy as np
import numpy.typing as npt

from bluetrace.sim.arrays import uniq
from bluetrace.sim.metrics import WINDOW
from bluetrace.sim.rules import EXPOSURE_RULES
from bluetrace.sim.runs import SeedRun

# Fixed ids in SVG files, so that the same run writes the same bytes.
matplotlib.rcParams["svg.hashsalt"] = "bluetrace-sim"

IntArray = npt.NDArray[np.int64]

MAX_POINTS = 4000
MAX_TIMELINES = 10
TIMELINE_MINUTES = 60


def _save(fig: Any, out: Path, name: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"{name}.png"
    # Fixed metadata keeps the files identical from run to run.
    fig.savefig(png, dpi=110, bbox_inches="tight", metadata={"Software": None})
    fig.savefig(out / f"{name}.svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return png


def detection_distances(run: SeedRun) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(distance, attenuation) of a sample of the run's detections.

    Each detection is matched to the co-location interval of its pair that
    contains its time. Returns empty arrays when keys would not fit a float.
    """
    det = run.result.detections
    iv = run.result.intervals if run.result.intervals is not None else run.world.intervals()
    n = run.world.n
    span = run.world.scenario.duration + 1.0
    if det.size == 0 or iv.size == 0 or float(n) * n * span > 2.0**52:
        return np.empty(0), np.empty(0)
    rng = np.random.default_rng([run.seed, 4])
    if det.size > MAX_POINTS:
        det = det[np.sort(rng.choice(det.size, MAX_POINTS, replace=False))]
    lo = np.minimum(det["receiver"], det["sender"]).astype(np.float64)
    hi = np.maximum(det["receiver"], det["sender"]).astype(np.float64)
    dkey = (lo * n + hi) * span + det["t"]
    ikey = (iv["a"].astype(np.float64) * n + iv["b"]) * span + iv["t0"]
    order = np.argsort(ikey)
    pos = np.searchsorted(ikey[order], dkey, side="right") - 1
    ok = pos >= 0
    match = order[np.maximum(pos, 0)]
    ok &= (iv["a"][match] == lo) & (iv["b"][match] == hi) & (det["t"] <= iv["t1"][match])
    return (iv["distance"][match][ok].astype(np.float64),
            det["attenuation"][ok].astype(np.float64))


def attenuation_vs_distance(run: SeedRun, out: Path) -> Path:
    """The radio model (mean and +-1 sd) and the detections the engine logged."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    cutoff = run.world.scenario.cutoff
    d = np.linspace(0.1, cutoff, 200)
    for k, radio in enumerate(run.world.radios):
        spec = run.world.scenario.places[k]
        mean = radio.mean_attenuation(d)
        sd = math.hypot(radio.s_pair, radio.s_scan)
        (line,) = ax.plot(d, mean, label=f"{spec.name} ({spec.radio}) model mean")
        ax.fill_between(d, mean - sd, mean + sd, color=line.get_color(), alpha=0.15)
    dist, att = detection_distances(run)
    if dist.size:
        ax.scatter(dist, att, s=4, alpha=0.3, color="black", label="logged detections")
    ax.axhline(run.world.radios[0].threshold, color="red", ls=":", label="detection threshold")
    for edge in sorted({t for r in EXPOSURE_RULES.values() for t in r.thresholds}):
        ax.axhline(edge, color="grey", lw=0.5, ls="--")
    ax.set_xlabel("distance (m)")
    ax.set_ylabel("attenuation (dB)")
    ax.set_title("Attenuation against distance (dashed: exposure-rule thresholds)")
    ax.legend(fontsize=7)
    return _save(fig, out, "attenuation_vs_distance")


def roc_curves(per_seed: dict[str, Any], primary: str, out: Path) -> Path:
    """ROC per exposure rule (first seed), against the primary contact rule."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, roc in per_seed["roc"].items():
        auc = roc["auc"]
        label = f"{name} (AUC n/a)" if math.isnan(auc) else f"{name} (AUC {auc:.2f})"
        ax.plot(roc["fpr"], roc["tpr"], drawstyle="steps-post", label=label)
    ax.plot([0, 1], [0, 1], color="grey", ls="--", label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"ROC against the {primary} rule "
                 f"({per_seed['roc_positives']} +, {per_seed['roc_negatives']} -)")
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, out, "roc")


def sweep_plot(rows: list[dict[str, Any]], out: Path) -> Path:
    """Recall and precision (95 % intervals) against the swept parameter."""
    fig, ax = plt.subplots(figsize=(6, 4))
    labels = [str(r["value"]) for r in rows]
    try:
        x = np.array([float(v) for v in labels])
    except ValueError:
        x = np.arange(len(labels), dtype=float)
        ax.set_xticks(x, labels)
    for metric in ("recall", "precision", "continuity"):
        est = [r[metric] for r in rows]
        y = np.array([e["value"] if e["value"] is not None else np.nan for e in est], float)
        lo = np.array([e["low"] if e["low"] is not None else np.nan for e in est], float)
        hi = np.array([e["high"] if e["high"] is not None else np.nan for e in est], float)
        # An interval need not be centred on the estimate; never let a bar go negative.
        yerr = np.clip(np.vstack([np.nan_to_num(y - lo), np.nan_to_num(hi - y)]), 0.0, None)
        ax.errorbar(x, y, yerr=yerr, marker="o", capsize=3, label=metric)
    if rows[0]["key"] == "uptake" and np.isfinite(x).all() and x.max() > 0:
        # Both phones must run the app: recall scales as u^2 (anchored at the largest u).
        top = rows[int(np.argmax(x))]["recall"]["value"]
        if top is not None:
            grid = np.linspace(0.0, x.max(), 50)
            ax.plot(grid, top * (grid / x.max()) ** 2, ls=":", color="grey",
                    label="recall if it scaled as u^2")
    ax.set_xlabel(rows[0]["key"])
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"Bare TempID log against the {rows[0]['rule']} rule")
    ax.legend()
    return _save(fig, out, "sweep")


def timeline_windows(run: SeedRun) -> list[tuple[int, int, IntArray, IntArray]]:
    """(receiver, sender, co-located windows, heard windows) for up to MAX_TIMELINES pairs.

    Windows are indices on the absolute 30-s grid (window w covers
    [30 w, 30 w + 30) s), as in the continuity metric. Pairs: the first
    directed pairs (by id) in which a recorded infected app user heard someone.
    """
    world = run.world
    n = world.n
    iv = run.result.intervals if run.result.intervals is not None else world.intervals()
    det = run.result.detections
    who = world.infected & world.recorded & world.app
    mine_det = det[who[det["receiver"]]]
    keys = uniq(mine_det["receiver"].astype(np.int64) * n + mine_det["sender"])
    out = []
    for key in keys[:MAX_TIMELINES].tolist():
        rx, tx = divmod(key, n)
        lo, hi = min(rx, tx), max(rx, tx)
        mine = iv[(iv["a"] == lo) & (iv["b"] == hi)]
        w0 = np.floor(mine["t0"] / WINDOW).astype(np.int64)
        w1 = np.ceil(mine["t1"] / WINDOW).astype(np.int64)
        co = uniq(np.concatenate([np.arange(a, b) for a, b in zip(w0, w1, strict=True)])
                  if mine.size else np.empty(0, dtype=np.int64))
        got = det[(det["receiver"] == rx) & (det["sender"] == tx)]
        heard = uniq(np.floor(got["t"] / WINDOW).astype(np.int64))
        out.append((rx, tx, co, heard))
    return out


def timelines(run: SeedRun, out: Path) -> Path:
    """Per-pair detection timelines in 30-s windows for infected receivers."""
    rows = timeline_windows(run)
    fig, ax = plt.subplots(figsize=(8, 4))
    starts = [int(min(co.min() if co.size else heard.min(), heard.min()))
              for _, _, co, heard in rows]
    origin = min(starts) if starts else 0
    minutes = WINDOW / 60.0
    for y, (_, _, co, heard) in enumerate(rows):
        ax.broken_barh([((w - origin) * minutes, minutes) for w in co.tolist()],
                       (y - 0.4, 0.8), color="#dddddd", linewidth=0)
        ax.broken_barh([((w - origin) * minutes, minutes) for w in heard.tolist()],
                       (y - 0.4, 0.8), color="#1f77b4", linewidth=0)
    ax.set_yticks(range(len(rows)), [f"{rx} hears {tx}" for rx, tx, _, _ in rows])
    ax.set_xlim(0, TIMELINE_MINUTES)
    ax.set_xlabel(f"minutes from the first co-location shown (first {TIMELINE_MINUTES})")
    ax.set_title("30-s windows: co-located (grey), at least one reception (blue)")
    if not rows:
        ax.text(0.5, 0.5, "no infected receiver heard anyone", ha="center",
                transform=ax.transAxes)
    return _save(fig, out, "timelines")
