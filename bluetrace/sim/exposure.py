"""Exposure rules as health authorities configured them, and how well they separate pairs.

A phone that logs attenuation readings of another phone can decide "exposed"
by a rule on the time spent at each attenuation. Leith & Farrell applied the
Swiss, German (Corona-Warn-App) and Italian (Immuni) configurations of the
Google/Apple exposure notification API to handsets at known distances in a
Dublin tram and bus; this module holds those rules, turns a pair's readings
into the time-per-attenuation histogram the rules read, and scores a rule or a
continuous score (mean attenuation) against the truth with TPR/FPR, ROC and
AUC (Mann-Whitney). It also runs the synthetic version of that experiment
(``synthetic_tram``) on a radio model, so a room's radio can be judged by the
same yardstick as the published measurements.

Time is in seconds in the arrays and in minutes in the rules, as published.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Final

import numpy as np
import numpy.typing as npt

from bluetrace.sim.radio import PRESETS, RadioModel
from bluetrace.sim.rules import EXPOSURE_RULES, ExposureRule
from bluetrace.sim.sweep import param_float

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


def auc(score: npt.ArrayLike, truth: npt.ArrayLike) -> float:
    """Area under the ROC curve by Mann-Whitney: P(score of a positive > a negative).

    Ties count one half. Computed from mid-ranks, so it is exact and O(n log n).
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


def roc_curve(score: npt.ArrayLike, truth: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """(FPR, TPR) at every threshold "score >= t", from (0, 0) to (1, 1)."""
    s = np.asarray(score, dtype=np.float64)
    y = np.asarray(truth, dtype=bool)
    n_pos, n_neg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    thresholds = np.unique(s)[::-1]
    tpr = [0.0] + [float(np.sum(y & (s >= t))) / n_pos for t in thresholds]
    fpr = [0.0] + [float(np.sum(~y & (s >= t))) / n_neg for t in thresholds]
    return np.asarray(fpr), np.asarray(tpr)


# -- the synthetic tram experiment ---------------------------------------------


@dataclass(frozen=True)
class ScanProfile:
    """When a receiving phone scans, when it may log the same device again, and
    how much time each logged reading is credited with.

    Defaults are OpenTrace Android: an 8-s scan every 36-43 s, a device once
    logged is not logged again for 100 s, and a reading stands for the time
    until the next one (``credit = "until-next"``, at most ``max_credit_s``).
    An 8-s scan always overlaps the sender's 180-s-on / 5-s-off advertising, so
    advertising gaps never hide a sender from it and are not modelled here.

    ``GAEN_SCANS`` is the Google/Apple exposure notification system the
    published rules were written for: a 4-s scan every 210-300 s, every scan
    logs what it hears, and each reading is credited with the seconds since
    the scanner's previous scan (``credit = "since-scan"``, the API's
    ``secondsSinceLastScan``), so the first reading of an encounter also counts
    the time before the pair met.
    """

    period_s: tuple[float, float] = (36.0, 43.0)
    revisit_s: float = 100.0
    credit: str = "until-next"
    max_credit_s: float = 300.0

    def __post_init__(self) -> None:
        low, high = self.period_s
        if not 0.0 < low <= high:
            raise ValueError("scan profile: need 0 < shortest period <= longest period")
        if self.credit not in CREDITS:
            raise ValueError(f"scan profile: credit must be one of {', '.join(CREDITS)}")
        if self.revisit_s < 0 or self.max_credit_s <= 0:
            raise ValueError("scan profile: revisit must be >= 0 and max credit > 0")


#: How a logged reading is turned into time: until the next reading (OpenTrace's
#: log read as a timeline) or since the scanner's previous scan (GAEN).
CREDITS: Final = ("until-next", "since-scan")

OPENTRACE_SCANS: Final = ScanProfile()
GAEN_SCANS: Final = ScanProfile(period_s=(210.0, 300.0), revisit_s=0.0, credit="since-scan")
SCAN_PROFILES: Final[dict[str, ScanProfile]] = {"opentrace": OPENTRACE_SCANS, "gaen": GAEN_SCANS}


@dataclass(frozen=True)
class PairLayout:
    """The pairs of one experiment: how many close and far, their distances and duration.

    Defaults follow Leith's tram data as the notes describe it: 72 pair-rows of
    about 15 minutes, 34 at <= 2 m and 38 beyond. Distances are drawn uniformly
    within a tram car's reach (0.5-2 m close, 2-4 m far); "about 15 minutes" is
    drawn uniformly in 12-18 min.
    """

    n_close: int = 34
    n_far: int = 38
    close_m: tuple[float, float] = (0.5, 2.0)
    far_m: tuple[float, float] = (2.0, 4.0)
    duration_min: tuple[float, float] = (12.0, 18.0)
    #: Exact distances of every pair instead of the draws above (a grid of
    #: desks, say); a pair is close when within ``close_m[1]``.
    fixed_m: tuple[float, ...] = ()


def grid_layout(rows: int = 4, cols: int = 5, pitch_m: float = 2.0,
                minutes: float = 30.0) -> PairLayout:
    """Every pair of phones on a grid of desks, together for ``minutes``.

    The defaults are the Herald project's standard office test (2-4 rows of up
    to 5 phones 2 m apart, 30 minutes) at its largest, which is also the
    simulator's ``office`` scenario: 190 pairs, 31 of them neighbours at 2 m.
    """
    if rows < 1 or cols < 1 or rows * cols < 2 or pitch_m <= 0:
        raise ValueError("grid: need at least two desks and a positive pitch")
    spots = [(c * pitch_m, r * pitch_m) for r in range(rows) for c in range(cols)]
    dist = tuple(math.dist(a, b) for i, a in enumerate(spots) for b in spots[i + 1:])
    close = sum(d <= 2.0 for d in dist)
    return PairLayout(n_close=close, n_far=len(dist) - close, close_m=(0.0, 2.0),
                      duration_min=(minutes, minutes), fixed_m=dist)


#: Leith's bus as the notes describe it: 60 pairs of seats, all within 2 m, "within
#: 2 m of one another for at least 15 mins" (drawn as 15-20 min).
BUS_LAYOUT: Final = PairLayout(n_close=60, n_far=0, close_m=(0.5, 2.0),
                               duration_min=(15.0, 20.0))


@dataclass
class PairReadings:
    """One simulated experiment: per pair, truth, distance and what the receiver logged."""

    close: BoolArray
    distance_m: FloatArray
    end_s: FloatArray
    times_s: list[FloatArray] = field(default_factory=list)
    attenuation_db: list[FloatArray] = field(default_factory=list)
    credit_s: list[FloatArray] = field(default_factory=list)  # seconds each reading counts

    def histograms(self) -> list[AttenuationHistogram]:
        return [
            histogram_from_credits(c, a)
            for c, a in zip(self.credit_s, self.attenuation_db, strict=True)
        ]

    def mean_attenuation(self) -> FloatArray:
        """Mean logged attenuation per pair; a pair never heard scores +inf (farthest)."""
        return np.asarray([float(a.mean()) if a.size else math.inf for a in self.attenuation_db])


def simulate_pairs(
    radio: RadioModel,
    rng: np.random.Generator,
    layout: PairLayout | None = None,
    scans: ScanProfile | None = None,
) -> PairReadings:
    """Draw one experiment: every pair's scans, detections and logged attenuations.

    Vectorised over pairs; the only loop is over scan slots, because whether a
    scan may log depends on when the device was last logged (the revisit rule).
    """
    lay = layout or PairLayout()
    prof = scans or ScanProfile()
    if lay.fixed_m:
        dist = np.asarray(lay.fixed_m, dtype=np.float64)
        n = dist.size
        close = dist <= lay.close_m[1]
    else:
        n = lay.n_close + lay.n_far
        close = np.arange(n) < lay.n_close
        dist = np.where(close, rng.uniform(*lay.close_m, n),
                        rng.uniform(lay.far_m[0], lay.far_m[1], n))
    end = rng.uniform(lay.duration_min[0] * 60.0, lay.duration_min[1] * 60.0, n)
    offsets = radio.pair_offsets(rng, n)
    n_slots = math.ceil(float(end.max()) / prof.period_s[0]) + 1
    # the scanner's cycle runs regardless of the pair: the pair meets at a uniform
    # moment within one scan gap, so its first scan comes at most one gap later
    gap0 = rng.uniform(prof.period_s[0], prof.period_s[1], (n, 1))
    first = gap0 * rng.random((n, 1))
    gaps = rng.uniform(prof.period_s[0], prof.period_s[1], (n, n_slots - 1))
    scan_t = np.concatenate([first, first + np.cumsum(gaps, axis=1)], axis=1)
    att = radio.scan_attenuation(rng, np.repeat(dist[:, None], n_slots, 1), offsets[:, None])
    heard = (att <= radio.threshold) & (scan_t < end[:, None])
    logged = np.zeros_like(heard)
    last = np.full(n, -math.inf)
    for k in range(n_slots):
        ok = heard[:, k] & (scan_t[:, k] - last >= prof.revisit_s)
        logged[:, k] = ok
        last = np.where(ok, scan_t[:, k], last)
    times = [scan_t[i, logged[i]] for i in range(n)]
    if prof.credit == "since-scan":
        before = first - gap0  # the scanner's last scan before the pair met
        since = np.minimum(np.diff(np.concatenate([before, scan_t], axis=1), axis=1),
                           prof.max_credit_s)
        credit = [since[i, logged[i]] for i in range(n)]
    else:
        credit = [
            reading_durations(t, float(e), prof.max_credit_s)
            for t, e in zip(times, end, strict=True)
        ]
    return PairReadings(
        close=close,
        distance_m=dist,
        end_s=end,
        times_s=times,
        attenuation_db=[att[i, logged[i]] for i in range(n)],
        credit_s=credit,
    )


@dataclass(frozen=True)
class SeedOutcome:
    """What one synthetic experiment gives: decisions per rule and the AUC."""

    rates: dict[str, Rates]
    auc: float
    max_weighted: dict[str, float]


def score_experiment(readings: PairReadings, rules: Sequence[ExposureRule] = RULES) -> SeedOutcome:
    hists = readings.histograms()
    out: dict[str, Rates] = {}
    peak: dict[str, float] = {}
    for rule in rules:
        minutes = np.asarray([weighted_minutes(rule, h) for h in hists])
        out[rule.name] = rates(rule.notifies(minutes), readings.close)
        peak[rule.name] = float(minutes.max())
    score = -readings.mean_attenuation()
    return SeedOutcome(out, auc(score, readings.close), peak)


@dataclass(frozen=True)
class SyntheticSummary:
    """A synthetic experiment repeated over seeds, summarised as V1 states its checks."""

    radio: RadioModel
    seeds: int
    notify_share: dict[str, float]  # share of seeds in which the rule notified any pair
    tpr: dict[str, float]  # pooled over seeds
    fpr: dict[str, float]
    max_weighted: dict[str, float]  # largest weighted minutes of any pair in any seed
    auc_mean: float
    auc_low: float  # 2.5 % and 97.5 % quantiles over seeds
    auc_high: float
    aucs: tuple[float, ...]
    tpr_by_seed: dict[str, tuple[float, ...]] = field(default_factory=dict)
    #: seeds in which neither the Swiss nor the German rule notified any pair
    #: (Leith's tram run: neither did), as a count: restated V1 (a) checks its share
    silent_seeds: int = 0

    @property
    def silent_share(self) -> tuple[float, float, float]:
        """Share of seeds in which neither Swiss nor German notified, with its 95 %
        Wilson interval (seeds are pooled counts: k of n)."""
        from bluetrace.sim.metrics import wilson  # noqa: PLC0415 (metrics is heavier)

        est = wilson(float(self.silent_seeds), float(self.seeds))
        return est.value, est.low, est.high

    def to_json(self) -> dict[str, object]:
        return {
            "radio": {k: getattr(self.radio, k) for k in self.radio.__dataclass_fields__},
            "seeds": self.seeds,
            "notify_share_of_seeds": self.notify_share,
            "tpr": self.tpr,
            "fpr": self.fpr,
            "max_weighted_minutes": self.max_weighted,
            "auc_mean": self.auc_mean,
            "auc_95": [self.auc_low, self.auc_high],
            "silent_share_swiss_and_german": list(self.silent_share),
        }


def synthetic_tram(
    radio: RadioModel | None = None,
    seeds: int = 100,
    first_seed: int = 0,
    layout: PairLayout | None = None,
    scans: ScanProfile | None = None,
) -> SyntheticSummary:
    """V1 synthetic: a layout (the tram's by default) over ``seeds`` independent experiments."""
    model = radio or PRESETS["tram"]
    outcomes = [
        score_experiment(simulate_pairs(model, np.random.default_rng(s), layout, scans))
        for s in range(first_seed, first_seed + seeds)
    ]
    names = [r.name for r in RULES]
    pooled = {
        n: Rates(
            sum(o.rates[n].tp for o in outcomes),
            sum(o.rates[n].fn for o in outcomes),
            sum(o.rates[n].fp for o in outcomes),
            sum(o.rates[n].tn for o in outcomes),
        )
        for n in names
    }
    aucs = np.asarray([o.auc for o in outcomes])
    return SyntheticSummary(
        radio=model,
        seeds=seeds,
        notify_share={
            n: float(np.mean([o.rates[n].tp + o.rates[n].fp > 0 for o in outcomes])) for n in names
        },
        tpr={n: pooled[n].tpr for n in names},
        fpr={n: pooled[n].fpr for n in names},
        max_weighted={n: max(o.max_weighted[n] for o in outcomes) for n in names},
        auc_mean=float(aucs.mean()),
        auc_low=float(np.quantile(aucs, 0.025)),
        auc_high=float(np.quantile(aucs, 0.975)),
        aucs=tuple(float(a) for a in aucs),
        tpr_by_seed={n: tuple(o.rates[n].tpr for o in outcomes) for n in names},
        silent_seeds=sum(
            all(o.rates[n].tp + o.rates[n].fp == 0 for n in ("swiss", "german"))
            for o in outcomes
        ),
    )


#: Keys of a V1 sweep task that are not radio parameters.
V1_KEYS: Final = ("preset", "far_max_m", "scan", "offsets", "ride_spread_min")
#: Shapes of the pair offset: the radio model's normal, or a uniform of the same
#: sd (the bounded +-10 dB "who holds the phones" spread Leith measured).
OFFSET_SHAPES: Final = ("normal", "bounded")


def bounded_offsets(radio: RadioModel) -> RadioModel:
    """The same radio with its normal pair offset replaced by a uniform of the same sd.

    A uniform on +-a has sd a / sqrt(3), so s_pair = 6 dB becomes +-10.4 dB,
    the size of the "who sits there and holds the phone how" variation Leith
    reported on the bus. The spread is the same; only the tails go.
    """
    extra = math.sqrt(3.0) * radio.s_pair
    return radio.with_changes(s_pair=0.0, holder_spread=radio.holder_spread + extra)


def _choice(params: dict[str, object], key: str, default: str, allowed: Sequence[str]) -> str:
    value = str(params.get(key, default))
    if value not in allowed:
        raise ValueError(f"{key} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def v1_task(params: dict[str, object], seed: int) -> dict[str, float]:
    """One synthetic tram experiment as a sweep task.

    ``params`` may hold ``preset`` (a radio preset, default "tram"), any
    ``RadioModel`` field (``a0``, ``n``, ``s_pair``, ``s_scan``, ...),
    ``far_max_m`` (the farthest far pair, default 4 m), ``scan`` ("opentrace",
    the default, or "gaen": whose scanning feeds the rules), ``offsets``
    ("normal", the default, or "bounded": see ``bounded_offsets``) and
    ``ride_spread_min`` (pairs last 15 min +- this, default 3). Returns the
    AUC, each published rule's TPR and FPR, and whether it notified any pair
    (0 or 1, so its mean over seeds is the share of seeds that notified).
    """
    preset = _choice(params, "preset", "tram", tuple(PRESETS))
    scan = _choice(params, "scan", "opentrace", tuple(SCAN_PROFILES))
    shape = _choice(params, "offsets", "normal", OFFSET_SHAPES)
    layout = PairLayout()
    far_max = param_float(params, "far_max_m", layout.far_m[1])
    if far_max <= layout.far_m[0]:
        raise ValueError(f"far_max_m must exceed {layout.far_m[0]} m")
    spread = param_float(params, "ride_spread_min", 3.0)
    if not 0.0 <= spread < 15.0:
        raise ValueError("ride_spread_min must be in [0, 15)")
    radio_keys = [k for k in params if k not in V1_KEYS]
    model = PRESETS[preset].with_changes(**{k: param_float(params, k, 0.0) for k in radio_keys})
    if shape == "bounded":
        model = bounded_offsets(model)
    layout = replace(layout, far_m=(layout.far_m[0], far_max),
                     duration_min=(15.0 - spread, 15.0 + spread))
    readings = simulate_pairs(model, np.random.default_rng(seed), layout, SCAN_PROFILES[scan])
    outcome = score_experiment(readings)
    row: dict[str, float] = {"auc": outcome.auc}
    for rule in (SWISS, GERMAN, ITALIAN):
        r = outcome.rates[rule.name]
        row[f"{rule.name}_tpr"] = r.tpr
        row[f"{rule.name}_fpr"] = r.fpr
        row[f"{rule.name}_notified"] = float(r.tp + r.fp > 0)
    return row
