"""The synthetic Leith & Farrell experiment: how well exposure rules separate pairs.

Leith & Farrell applied the Swiss, German (Corona-Warn-App) and Italian
(Immuni) configurations of the Google/Apple exposure notification API to
handsets at known distances in a Dublin tram and bus. This study runs the
synthetic version of that experiment (``synthetic_tram``) on a radio model:
pairs at known distances, their scans and readings, the rules
(``bluetrace.sim.histograms``) and AUC (``bluetrace.sim.stats``), so a room's
radio can be judged by the same yardstick as the published measurements.

Time is in seconds in the arrays and in minutes in the rules, as published.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Final

import numpy as np
import numpy.typing as npt

from bluetrace.sim.histograms import (
    GERMAN,
    ITALIAN,
    RULES,
    SWISS,
    AttenuationHistogram,
    Rates,
    histogram_from_credits,
    rates,
    reading_durations,
    weighted_minutes,
)
from bluetrace.sim.radio import PRESETS, RadioModel
from bluetrace.sim.rules import ExposureRule
from bluetrace.sim.runs import param_float
from bluetrace.sim.stats import auc, wilson

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


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
