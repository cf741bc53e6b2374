"""A pair's time per attenuation bucket, and the exposure rules read from it.

Leith & Farrell applied the Swiss, German (Corona-Warn-App) and Italian
(Immuni) configurations of the exposure notification API to handsets at known
distances; a rule reads the minutes a pair spent in each attenuation bucket.
This module turns a pair's readings into that histogram, applies a rule to it
and counts a decision against the truth. It is the core of ``bluetrace-sim
rules`` (measured data, ``replay``) and of the synthetic experiments in
``bluetrace.sim.studies.exposure``; AUC and ROC are in ``stats``.

Time is in seconds in the arrays and in minutes in the rules, as published.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from bluetrace.sim.rules import EXPOSURE_RULES, ExposureRule

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class AttenuationHistogram:
    """Minutes a pair spent in each attenuation bucket.

    ``edges`` are increasing thresholds in dB; bucket ``i`` holds readings with
    ``edges[i-1] <= attenuation < edges[i]`` (the first bucket is everything
    below ``edges[0]``, the last everything at or above ``edges[-1]``), so
    ``minutes`` has one entry more than ``edges``.
    """

    edges: tuple[float, ...]
    minutes: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.minutes) != len(self.edges) + 1:
            raise ValueError("histogram: need one more bucket than edges")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("histogram: edges must increase")
        if any(m < 0 or math.isnan(m) for m in self.minutes):
            raise ValueError("histogram: minutes must be >= 0")

    @property
    def total(self) -> float:
        return float(sum(self.minutes))

    def below(self, threshold_db: float) -> float:
        """Minutes below ``threshold_db``, which must be one of the edges."""
        if threshold_db not in self.edges:
            raise ValueError(f"histogram: {threshold_db} dB is not an edge of {self.edges}")
        return float(sum(self.minutes[: self.edges.index(threshold_db) + 1]))


def _bucket_index(hist: AttenuationHistogram, edge: float) -> int:
    """Index of the first bucket at or above ``edge`` (an edge of ``hist``, or -inf)."""
    if edge == -math.inf:
        return 0
    if edge not in hist.edges:
        raise ValueError(f"histogram: {edge} dB is not an edge of {hist.edges}")
    return hist.edges.index(edge) + 1


def weighted_minutes(rule: ExposureRule, hist: AttenuationHistogram) -> float:
    """A rule's weighted minutes, read from a histogram that has the rule's edges.

    Bucket ``i`` of the rule (``thresholds[i-1] <= attenuation < thresholds[i]``)
    weighs ``weights[i]``; time at or above the last threshold weighs nothing.
    Each histogram bucket is multiplied by its weight and the products are
    added with ``math.fsum`` (not by differences of running totals, which lose
    the last bit and turn an exact 15.0 into 14.999...).
    """
    terms: list[float] = []
    low = -math.inf
    for threshold, weight in zip(rule.thresholds, rule.weights, strict=True):
        first, stop = _bucket_index(hist, low), _bucket_index(hist, threshold)
        terms.extend(weight * m for m in hist.minutes[first:stop])
        low = threshold
    return math.fsum(terms)


def notifies(rule: ExposureRule, hist: AttenuationHistogram) -> bool:
    """Whether the rule notifies for this pair (its own >= or > minimum)."""
    return bool(rule.notifies(np.asarray([weighted_minutes(rule, hist)]))[0])


#: The published configurations as Leith & Farrell applied them (thresholds,
#: weights and minimum from the simulator's rule table): Swiss [50, 55] dB,
#: weights 1 / 0.5, >= 15 min; German [55, 63] dB, 1 / 0.5, >= 15 min (the
#: Corona-Warn-App minimum that "at most 13.5 min, so no notification"
#: implies); Italian [50, 70] dB, 1 / 1, > 15 min; and the two plain
#: threshold rules Leith also scored.
SWISS: Final = EXPOSURE_RULES["swiss"]
GERMAN: Final = EXPOSURE_RULES["german"]
ITALIAN: Final = EXPOSURE_RULES["italian"]
BELOW_68_10: Final = EXPOSURE_RULES["below68-10min"]
BELOW_70_15: Final = EXPOSURE_RULES["below70-15min"]
RULES: Final[tuple[ExposureRule, ...]] = (SWISS, GERMAN, ITALIAN, BELOW_68_10, BELOW_70_15)

#: Every edge any rule needs, so one histogram per pair serves them all.
ALL_EDGES: Final = tuple(sorted({t for rule in RULES for t in rule.thresholds}))


def reading_durations(times_s: npt.ArrayLike, end_s: float, max_gap_s: float = 300.0) -> FloatArray:
    """Seconds each reading stands for: until the next reading, at most ``max_gap_s``.

    The last reading stands for the time until ``end_s`` (when the pair parted),
    also capped. Time before the first reading is not counted: nothing was
    heard yet. The cap (GAEN's longest scan interval, 5 min) keeps a single
    reading from standing for a long silence.
    """
    t = np.asarray(times_s, dtype=np.float64)
    if t.size == 0:
        return np.zeros(0)
    if np.any(np.diff(t) < 0) or t[-1] > end_s:
        raise ValueError("readings must be in time order and not after the end")
    nxt = np.append(t[1:], end_s)
    return np.asarray(np.minimum(nxt - t, max_gap_s), dtype=np.float64)


def histogram_from_credits(
    seconds: npt.ArrayLike, attenuation_db: npt.ArrayLike, edges: Sequence[float] = ALL_EDGES
) -> AttenuationHistogram:
    """The time-per-bucket histogram of readings already credited with their seconds."""
    att = np.asarray(attenuation_db, dtype=np.float64)
    dur = np.asarray(seconds, dtype=np.float64)
    if att.shape != dur.shape:
        raise ValueError("one attenuation per credited duration")
    bucket = np.searchsorted(np.asarray(edges, dtype=np.float64), att, side="right")
    total = np.bincount(bucket, weights=dur, minlength=len(edges) + 1)
    return AttenuationHistogram(tuple(edges), tuple(float(x) / 60.0 for x in total))


def histogram_from_readings(
    times_s: npt.ArrayLike,
    attenuation_db: npt.ArrayLike,
    end_s: float,
    edges: Sequence[float] = ALL_EDGES,
    max_gap_s: float = 300.0,
) -> AttenuationHistogram:
    """The time-per-bucket histogram of one pair's readings, each standing
    until the next (``reading_durations``)."""
    credits = reading_durations(times_s, end_s, max_gap_s)
    return histogram_from_credits(credits, attenuation_db, edges)


# -- scoring -----------------------------------------------------------------


@dataclass(frozen=True)
class Rates:
    """Confusion counts of a binary decision against the truth."""

    tp: int
    fn: int
    fp: int
    tn: int

    @property
    def tpr(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else math.nan

    @property
    def fpr(self) -> float:
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else math.nan


def rates(decision: npt.ArrayLike, truth: npt.ArrayLike) -> Rates:
    d = np.asarray(decision, dtype=bool)
    y = np.asarray(truth, dtype=bool)
    if d.shape != y.shape:
        raise ValueError("one decision per truth value")
    return Rates(
        tp=int(np.sum(d & y)),
        fn=int(np.sum(~d & y)),
        fp=int(np.sum(d & ~y)),
        tn=int(np.sum(~d & ~y)),
    )
