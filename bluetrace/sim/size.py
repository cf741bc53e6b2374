"""How big a run is, estimated from the scenario before anything is drawn.

A scenario file or ``--set days=4000`` can ask for a run that cannot fit: the
world keeps every interval that touches a recorded person for the metrics, and
small worlds (everyone recorded) keep every detection. Rather than fail after
minutes and gigabytes, ``estimate_run`` counts what the run will hold from the
places' geometry and schedules, and ``RunEstimate.check`` refuses a run whose
estimated peak memory is above the limit, naming the estimate.

The estimate is rough (within a factor of about 2 of the measured peak; the
constants are measured on ``town`` and ``office`` runs) and errs high.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Final

from bluetrace.sim.places import VEHICLE_ROW_PITCH
from bluetrace.sim.scenario import PlaceSpec, Scenario, ScenarioError

#: Most seeds one command runs (each is a whole run; a list of 10^9 seeds alone is GBs).
MAX_SEEDS: Final = 10_000
#: Bytes a day's co-location interval costs while the engine works through the day
#: (the interval, its two directed links and their temporaries). Measured on town.
BYTES_PER_DAY_INTERVAL: Final = 900
#: Bytes an interval kept for the whole run costs (the packed row and its metrics share).
BYTES_PER_KEPT_INTERVAL: Final = 80
#: Bytes one detection of a recorded receiver costs (the row, sorting, metrics).
BYTES_PER_DETECTION: Final = 80
#: Bytes per person (per-person arrays of the world, the engine and the metrics).
BYTES_PER_PERSON: Final = 200
#: Bytes the interpreter, numpy and matplotlib take before any run.
BASE_BYTES: Final = 150 * 2**20
#: Population up to which every receiver is recorded (``world.AUTO_RECORD_ALL``).
_RECORD_ALL: Final = 2000
_RECORD_INFECTED: Final = 200
_RECORD_FRACTION: Final = 0.001


def default_memory_limit() -> int:
    """Bytes a run may take by default: 3/4 of this machine's memory (4 GiB when unknown)."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 * 2**30
    return int(0.75 * total) if total > 0 else 4 * 2**30


@dataclass(frozen=True)
class RunEstimate:
    """What one run of a scenario will hold, and how many runs are asked for."""

    scenario: str
    people: int
    days: int
    seeds: int
    intervals_per_day: float
    total_intervals: float
    kept_intervals: float
    detections: float
    peak_bytes: float

    def describe(self) -> str:
        """One line: people x days, intervals, detections and the estimated peak."""
        return (
            f"{self.people:,} people x {self.days:,} days: about "
            f"{self.intervals_per_day:,.0f} co-location intervals a day "
            f"({self.total_intervals:,.0f} in all), {self.detections:,.0f} detections kept, "
            f"peak memory about {self.peak_bytes / 2**30:,.1f} GiB"
        )

    def check(self, memory_limit: float | None = None) -> None:
        """Raise ScenarioError when the seeds or the estimated peak do not fit."""
        if self.seeds > MAX_SEEDS:
            raise ScenarioError(f"--seeds {self.seeds:,}: at most {MAX_SEEDS:,} seeds in one run")
        limit = default_memory_limit() if memory_limit is None else memory_limit
        if self.peak_bytes > limit:
            raise ScenarioError(
                f"scenario {self.scenario!r} is too big to run here: {self.describe()}, "
                f"above the limit of {limit / 2**30:,.1f} GiB (--max-memory; fewer days "
                "or people, or a lower record_fraction)"
            )


def _room_pairs(spec: PlaceSpec, cutoff: float) -> float:
    """Desk pairs within ``cutoff`` m in one room (counted by grid offset), scaled to
    the desks actually taken."""
    reach_r = min(spec.rows - 1, int(cutoff / spec.pitch))
    reach_c = min(spec.cols - 1, int(cutoff / spec.pitch))
    pairs = 0
    for dr in range(0, reach_r + 1):
        for dc in range(-reach_c, reach_c + 1):
            if (dr, dc) <= (0, 0):
                continue  # each unordered pair once
            if math.hypot(dr, dc) * spec.pitch <= cutoff:
                pairs += (spec.rows - dr) * (spec.cols - abs(dc))
    seats = spec.rows * spec.cols
    return pairs * (spec.per_place / seats) ** 2


def _place_day(spec: PlaceSpec, cutoff: float) -> tuple[float, float]:
    """(intervals a day, mean seconds an interval lasts) of one place spec."""
    if spec.kind == "room":
        hours = max(spec.end - spec.start, 0.0)
        return spec.count * _room_pairs(spec, cutoff) * spec.attendance**2, hours * 3600.0
    if spec.kind in ("tram", "bus"):
        length = spec.rows * VEHICLE_ROW_PITCH
        share = min(1.0, cutoff / max(length, 1e-9))
        pairs = spec.riders * (spec.riders - 1) / 2 * share
        return spec.count * spec.trips * pairs, spec.trip_minutes * 60.0
    steps = (spec.end - spec.start) * 3600.0 / spec.step
    near = min(1.0, math.pi * cutoff**2 / spec.area**2)
    pairs = spec.per_place * (spec.per_place - 1) / 2 * near
    return spec.count * steps * pairs, spec.step


def estimate_run(scenario: Scenario, *, seeds: int = 1, days: int | None = None) -> RunEstimate:
    """Estimate one run of ``scenario`` (``days`` overrides its days) and carry ``seeds``."""
    n_days = scenario.days if days is None else days
    per_day = 0.0
    seconds_a_day = 0.0  # co-located seconds a day, summed over intervals
    for spec in scenario.places:
        count, seconds = _place_day(spec, scenario.cutoff)
        per_day += count
        seconds_a_day += count * seconds
    # Readings per co-located second and direction: each profile's scans (or the
    # sender's beacons) thinned by its revisit rule, weighted by the profiles' shares.
    profiles = scenario.phone_profiles()
    shares = {k: v for k, v in scenario.profiles.items() if v > 0}
    rate = sum(
        share / (scenario.beacon_interval if p.listens_always
                 else max(p.mean_period, 1e-3) * (1 + p.skip_after_hit))
        for p, share in ((profiles[k], v) for k, v in shares.items())
    ) / max(sum(shares.values()), 1e-12)
    n = scenario.population
    if n <= _RECORD_ALL or scenario.record_fraction >= 1.0:
        recorded_share = 1.0
    else:
        share = _RECORD_FRACTION if scenario.record_fraction < 0 else scenario.record_fraction
        infected = min(scenario.infected_count(), _RECORD_INFECTED)
        recorded_share = min(1.0, share + infected / n)
    infected_share = min(1.0, scenario.infected_count() / max(n, 1))
    kept_share = min(1.0, 2 * (recorded_share + infected_share))
    total = per_day * n_days
    kept = total * kept_share
    uptake2 = scenario.uptake**2
    detections = 2 * seconds_a_day * rate * n_days * recorded_share * uptake2
    peak = (
        BASE_BYTES
        + BYTES_PER_PERSON * n
        + BYTES_PER_DAY_INTERVAL * per_day
        + BYTES_PER_KEPT_INTERVAL * kept
        + BYTES_PER_DETECTION * detections
    )
    return RunEstimate(
        scenario=scenario.name, people=n, days=n_days, seeds=seeds, intervals_per_day=per_day,
        total_intervals=total, kept_intervals=kept, detections=detections, peak_bytes=peak,
    )
