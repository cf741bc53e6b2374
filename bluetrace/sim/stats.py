"""Statistics shared by every part of the simulator: each interval and score once.

The runs (``metrics``), the sweeps (``runs``) and the studies all report 95 %
intervals and ROC figures; written once here, a run's interval and a sweep's
interval of the same numbers cannot drift apart.

* ``wilson``: the Wilson score interval for k of n (stays inside [0, 1] and is
  not zero-width at k = 0 or k = n).
* ``bootstrap_ratio``, ``mean_estimate``, ``ratio_estimate``: intervals over
  seeds (a percentile bootstrap with fixed resamples, so the same runs give the
  same interval).
* ``mean_ci``: a sweep's mean over seeds with its interval.
* ``auc`` and ``roc_points``: the area under the ROC curve and its points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: The two-sided 95 % normal quantile.
Z95: Final = 1.959963984540054
#: The rounded quantile the sweeps' yes/no intervals have always used; kept so that
#: the committed sweep figures do not move (the runs use ``Z95``).
Z95_ROUNDED: Final = 1.96
#: Bootstrap resamples for an interval over seeds.
BOOTSTRAP: Final = 2000


@dataclass(frozen=True)
class Estimate:
    """A value with a 95 % interval and how it was made."""

    value: float
    low: float
    high: float
    method: str

    def as_dict(self) -> dict[str, Any]:
        """Plain data with NaN turned into None (valid JSON)."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in asdict(self).items()}


def wilson(k: float, n: float, z: float = Z95) -> Estimate:
    """Wilson score interval for k successes in n trials (NaN when n = 0)."""
    if n <= 0:
        nan = float("nan")
        return Estimate(nan, nan, nan, "wilson")
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # Rounding must not put the estimate outside its own interval (k = 0 or k = n).
    low = min(p, max(0.0, centre - half))
    high = max(p, min(1.0, centre + half))
    return Estimate(p, low, high, "wilson")


def bootstrap_ratio(ks: FloatArray, ns: FloatArray, seed: int = 0) -> Estimate:
    """Ratio of sums with a percentile bootstrap over seeds (rows)."""
    ks = np.asarray(ks, dtype=np.float64)
    ns = np.asarray(ns, dtype=np.float64)
    if ns.sum() <= 0:
        nan = float("nan")
        return Estimate(nan, nan, nan, "bootstrap")
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, ks.size, (BOOTSTRAP, ks.size))
    num = ks[pick].sum(axis=1)
    den = ns[pick].sum(axis=1)
    ratios = num[den > 0] / den[den > 0]
    low, high = np.percentile(ratios, [2.5, 97.5])
    return Estimate(float(ks.sum() / ns.sum()), float(low), float(high), "bootstrap")


def mean_estimate(values: FloatArray, seed: int = 0) -> Estimate:
    """Mean with a percentile bootstrap (three or more values) or a normal interval."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        nan = float("nan")
        return Estimate(nan, nan, nan, "none")
    if v.size >= 3:
        rng = np.random.default_rng(seed)
        means = v[rng.integers(0, v.size, (BOOTSTRAP, v.size))].mean(axis=1)
        low, high = np.percentile(means, [2.5, 97.5])
        return Estimate(float(v.mean()), float(low), float(high), "bootstrap")
    if v.size == 2:
        half = Z95 * float(v.std(ddof=1)) / math.sqrt(2)
        return Estimate(float(v.mean()), float(v.mean() - half), float(v.mean() + half), "normal")
    return Estimate(float(v[0]), float("nan"), float("nan"), "single")


def ratio_estimate(ks: list[int], ns: list[int]) -> Estimate:
    """Pooled ratio: bootstrap over seeds with three or more, Wilson on the pooled
    counts otherwise, and also when every seed gives the same ratio (the bootstrap
    would then claim a zero-width interval that no count supports)."""
    if len(ks) >= 3:
        est = bootstrap_ratio(np.asarray(ks, float), np.asarray(ns, float))
        if not est.low < est.high and sum(ns) > 0:
            pooled = wilson(float(sum(ks)), float(sum(ns)))
            return Estimate(est.value, pooled.low, pooled.high, "wilson (every seed alike)")
        return est
    return wilson(float(sum(ks)), float(sum(ns)))


def mean_ci(values: Sequence[float] | npt.NDArray[Any]) -> tuple[float, float, float]:
    """Mean and 95 % confidence interval of the mean, by the run's method.

    For a 0/1 metric (did a rule notify in this seed?) the seeds are pooled
    counts: the Wilson score interval, which stays inside [0, 1] and is not
    zero-width when every seed agrees. Otherwise the run's ``mean_estimate``
    (a percentile bootstrap over three or more seeds, a normal interval over
    two); one value gives a zero-width interval.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(v.mean())
    if v.size == 1:
        return mean, mean, mean
    if np.all((v == 0.0) | (v == 1.0)):
        est = wilson(float(v.sum()), v.size, z=Z95_ROUNDED)
        return mean, est.low, est.high
    est = mean_estimate(v)
    return est.value, est.low, est.high


def auc(score: npt.ArrayLike, truth: npt.ArrayLike) -> float:
    """Area under the ROC curve by Mann-Whitney: P(score of a positive > a negative).

    Ties count one half. Computed from mid-ranks, so it is exact and O(n log n);
    NaN without both classes.
    """
    s = np.asarray(score, dtype=np.float64)
    y = np.asarray(truth, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(s.size)
    # mid-ranks: every member of a tie group gets the mean of the group's ranks
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    mid = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(mid, counts)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_points(score: npt.ArrayLike, truth: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """(FPR, TPR) at every threshold "score >= t", from (0, 0) to (1, 1).

    One point per distinct score (infinite scores included: a pair never heard
    scores -inf), so ties never draw a staircase that no threshold gives.
    """
    s = np.asarray(score, dtype=np.float64)
    y = np.asarray(truth, dtype=bool)
    if s.size == 0:
        return np.array([0.0, 1.0]), np.array([0.0, 1.0])
    n_pos = max(int(y.sum()), 1)
    n_neg = max(int((~y).sum()), 1)
    order = np.argsort(-s, kind="mergesort")
    ranked = s[order]
    tp = np.cumsum(y[order])
    fp = np.cumsum(~y[order])
    last_of_tie = np.r_[ranked[1:] != ranked[:-1], True]
    return (np.r_[0.0, fp[last_of_tie] / n_neg], np.r_[0.0, tp[last_of_tie] / n_pos])
