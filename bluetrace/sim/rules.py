"""Close-contact rules (ground truth) and exposure rules (what a phone could decide).

A **contact rule** says who truly was a close contact, from the co-location
intervals: within ``distance`` metres for at least ``minutes``, either in one
stretch (BlueTrace's 2 m / 30 min) or added up over a day (COVIDSafe's
1.5 m / 15 min, the CDC's 6 ft / 15 min cumulative).

An **exposure rule** is what a phone that also logged attenuation and time
could decide (as Leith & Farrell applied the Swiss, German and Italian
configurations): time is put into attenuation buckets by ``thresholds``,
weighted by ``weights`` and summed per day; the rule notifies when the weighted
minutes reach ``minutes`` (or exceed it, for ``strict``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from bluetrace.sim.arrays import uniq
from bluetrace.sim.units import DAY

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


#: Weighted minutes this close to a rule's threshold count as on it (1e-9 min is
#: 60 ns: far below any clock, far above float rounding of human-scale sums).
MINUTES_TOLERANCE: Final = 1e-9


@dataclass(frozen=True)
class ContactRule:
    """Ground-truth close contact: within ``distance`` m for ``minutes``."""

    name: str
    distance: float
    minutes: float
    cumulative: bool  # add up over a calendar day, else one stretch


@dataclass(frozen=True)
class ExposureRule:
    """Phone-side rule on logged attenuation and time (weighted minutes per day)."""

    name: str
    thresholds: tuple[float, ...]  # bucket upper edges in dB, ascending
    weights: tuple[float, ...]  # one weight per bucket
    minutes: float
    strict: bool = False  # notify when weighted minutes > minutes (else >=)

    def weighted_seconds(self, attenuation: FloatArray, seconds: FloatArray) -> FloatArray:
        """Weighted seconds each reading contributes."""
        w = np.zeros(attenuation.shape)
        lower = -np.inf
        for edge, weight in zip(self.thresholds, self.weights, strict=True):
            w = np.where((attenuation >= lower) & (attenuation < edge), weight, w)
            lower = edge
        return np.asarray(w * seconds, dtype=np.float64)

    def notifies(self, weighted_minutes: FloatArray) -> npt.NDArray[np.bool_]:
        """Whether a pair-day with these weighted minutes is notified.

        Minutes within ``MINUTES_TOLERANCE`` of the threshold count as equal to
        it: decimal minutes such as 12.7 + 0.5 x 4.6 are not exact in binary,
        and a rule written as ">= 15 min" means the person's 15, not the float's.
        """
        if self.strict:
            return np.asarray(weighted_minutes > self.minutes + MINUTES_TOLERANCE)
        return np.asarray(weighted_minutes >= self.minutes - MINUTES_TOLERANCE)


CONTACT_RULES: Final[dict[str, ContactRule]] = {
    "bluetrace": ContactRule("bluetrace", 2.0, 30.0, cumulative=False),
    "covidsafe": ContactRule("covidsafe", 1.5, 15.0, cumulative=True),
    "cdc": ContactRule("cdc", 6 * 0.3048, 15.0, cumulative=True),
}

EXPOSURE_RULES: Final[dict[str, ExposureRule]] = {
    "swiss": ExposureRule("swiss", (50.0, 55.0), (1.0, 0.5), 15.0),
    "german": ExposureRule("german", (55.0, 63.0), (1.0, 0.5), 15.0),
    "italian": ExposureRule("italian", (50.0, 70.0), (1.0, 1.0), 15.0, strict=True),
    "below68-10min": ExposureRule("below68-10min", (68.0,), (1.0,), 10.0),
    "below70-15min": ExposureRule("below70-15min", (70.0,), (1.0,), 15.0),
}


def contact_rules(custom: Mapping[str, object]) -> dict[str, ContactRule]:
    """The built-in contact rules plus a scenario's own (its ``[contact_rules.NAME]``).

    A scenario rule needs ``distance`` (m) and ``minutes``; ``cumulative``
    (add up over a day) defaults to true. Raises ValueError on a bad rule.
    Takes the scenario's table rather than the scenario, so that the rules
    sit below the scenario module and the scenario can check its rules.
    """
    rules = dict(CONTACT_RULES)
    for name, spec in custom.items():
        rules[name] = _scenario_rule(name, spec)
    return rules


def _scenario_rule(name: str, spec: object) -> ContactRule:
    """A scenario's contact rule from its TOML table; ValueError says what is wrong."""
    if not isinstance(spec, dict):
        raise ValueError(f"contact rule {name!r}: must be a table")  # noqa: TRY004 (input)
    unknown = set(spec) - {"distance", "minutes", "cumulative"}
    if unknown:
        raise ValueError(f"contact rule {name!r}: unknown key {sorted(unknown)[0]!r}")
    limits: list[float] = []
    for key in ("distance", "minutes"):
        value = spec.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"contact rule {name!r}: needs {key} >= 0")
        limits.append(float(value))
    cumulative = spec.get("cumulative", True)
    if not isinstance(cumulative, bool):
        raise ValueError(  # noqa: TRY004 (bad input in a scenario file, not a bug)
            f"contact rule {name!r}: cumulative must be true or false"
        )
    return ContactRule(name, limits[0], limits[1], cumulative)


def pair_keys(a: IntArray, b: IntArray, n: int) -> IntArray:
    """Directed pair key ``a * n + b`` (a: the infected or receiving person)."""
    return np.asarray(a.astype(np.int64) * n + b.astype(np.int64), dtype=np.int64)


def true_contacts(
    intervals: npt.NDArray[np.void], rule: ContactRule, infected: npt.NDArray[np.bool_], n: int
) -> IntArray:
    """Sorted unique keys ``infected * n + other`` of true close contacts under ``rule``.

    ``intervals`` is an array of ``world.INTERVAL_DTYPE``. A pair-day qualifies
    when its time within ``rule.distance`` reaches ``rule.minutes``: summed over
    the day (cumulative) or in one stretch, where touching intervals of the
    same pair (gap under 1 s) join into one stretch.
    """
    near = intervals[intervals["distance"] <= rule.distance]
    touch = infected[near["a"]] | infected[near["b"]]
    near = near[touch]
    if near.size == 0:
        return np.empty(0, dtype=np.int64)
    a = near["a"].astype(np.int64)
    b = near["b"].astype(np.int64)
    t0 = near["t0"]
    t1 = near["t1"]
    day = np.floor(t0 / DAY).astype(np.int64)
    key = (a * n + b) * 4096 + day  # days < 4096
    order = np.lexsort((t0, key))
    key, t0, t1, a, b = key[order], t0[order], t1[order], a[order], b[order]
    if rule.cumulative:
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        total = np.add.reduceat(t1 - t0, starts)
        ok = total >= rule.minutes * 60.0 - 1e-6
        qa, qb = a[starts][ok], b[starts][ok]
    else:
        # A new stretch starts where the pair-day changes or a gap opens.
        running_end = t1.copy()
        new = np.r_[True, (key[1:] != key[:-1]) | (t0[1:] > t1[:-1] + 1.0)]
        starts = np.flatnonzero(new)
        ends = np.maximum.reduceat(running_end, starts)
        length = ends - t0[starts]
        ok = length >= rule.minutes * 60.0 - 1e-6
        qa, qb = a[starts][ok], b[starts][ok]
    keys = np.concatenate([
        pair_keys(qa[infected[qa]], qb[infected[qa]], n),
        pair_keys(qb[infected[qb]], qa[infected[qb]], n),
    ])
    return uniq(keys)
