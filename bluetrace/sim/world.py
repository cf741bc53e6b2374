"""The world: people, where they are, and who is near whom for how long.

``World.build(scenario, seed)`` draws everything that does not depend on the
engine: who runs the app, who is infected, each phone's profile and model
offsets, who sits where. ``intervals_for_day(day)`` then lists the day's
**co-location intervals**: one row per pair of people within
``scenario.cutoff`` metres of each other, with the time span, the distance and
the place. Both engines consume the same intervals, so they see the same
world; ground truth (``rules.true_contacts``) is computed from them too.

Each day has its own random stream (derived from the seed and the day), so a
day can be regenerated without replaying the ones before it, and the same
seed always gives the same world.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from bluetrace.sim.places import desk_grid, random_waypoint, seat_grid
from bluetrace.sim.profiles import PhoneProfile
from bluetrace.sim.radio import PRESETS, RadioModel, model_offsets
from bluetrace.sim.scenario import PlaceSpec, Scenario, ScenarioError
from bluetrace.sim.units import DAY

#: One co-location interval: people ``a < b`` were ``distance`` m apart from
#: ``t0`` to ``t1`` (seconds from the start of the run) at place instance
#: ``place``; ``env`` indexes ``World.radios`` (the radio model of that place).
INTERVAL_DTYPE: Final = np.dtype([
    ("a", np.int32),
    ("b", np.int32),
    ("t0", np.float64),
    ("t1", np.float64),
    ("distance", np.float32),
    ("place", np.int32),
    ("env", np.uint8),
])

#: Largest number of walkers in one open area (positions are held for a day).
MAX_WALKERS: Final = 5000
#: Population up to which every receiver is logged in detail by default.
AUTO_RECORD_ALL: Final = 2000
#: Above it: share of people logged in detail, and most infected people logged.
AUTO_RECORD_FRACTION: Final = 0.001
AUTO_RECORD_INFECTED: Final = 200

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
Intervals = npt.NDArray[np.void]


def empty_intervals() -> Intervals:
    """An empty interval array."""
    return np.empty(0, dtype=INTERVAL_DTYPE)


Columns = dict[str, npt.NDArray[np.generic]]


def make_columns(
    *,
    a: npt.ArrayLike, b: npt.ArrayLike, t0: npt.ArrayLike, t1: npt.ArrayLike,
    distance: npt.ArrayLike, place: npt.ArrayLike, env: int,
) -> Columns:
    """Interval columns in INTERVAL_DTYPE's types, each pair ordered so that a < b
    (one array per field: a day's parts are joined, filtered and ordered column by
    column, and packed into records once, by ``pack_intervals``)."""
    aa = np.asarray(a, dtype=np.int64).ravel()
    bb = np.asarray(b, dtype=np.int64).ravel()
    return {
        "a": np.minimum(aa, bb).astype(np.int32),
        "b": np.maximum(aa, bb).astype(np.int32),
        "t0": np.asarray(t0, dtype=np.float64).ravel(),
        "t1": np.asarray(t1, dtype=np.float64).ravel(),
        "distance": np.asarray(distance, dtype=np.float64).ravel().astype(np.float32),
        "place": np.asarray(place, dtype=np.int64).ravel().astype(np.int32),
        "env": np.full(aa.size, env, dtype=np.uint8),
    }


def pack_intervals(columns: Columns, rows: IntArray | None = None) -> Intervals:
    """Columns (``rows`` of them, in that order, or all) as an interval array."""
    size = columns["a"].size if rows is None else rows.size
    out = np.empty(size, dtype=INTERVAL_DTYPE)
    for name in INTERVAL_DTYPE.names or ():
        out[name] = columns[name] if rows is None else columns[name][rows]
    return out


def make_intervals(
    *,
    a: npt.ArrayLike, b: npt.ArrayLike, t0: npt.ArrayLike, t1: npt.ArrayLike,
    distance: npt.ArrayLike, place: npt.ArrayLike, env: int,
) -> Intervals:
    """Pack columns into an interval array, ordering each pair so that a < b."""
    return pack_intervals(make_columns(a=a, b=b, t0=t0, t1=t1, distance=distance,
                                       place=place, env=env))


@dataclass
class World:
    """People and places of one scenario under one seed (see module docstring).

    Per-person arrays have length ``n`` and are indexed by person id
    (0..n-1). ``profile`` indexes ``profile_names``; ``tx_offset`` and
    ``rx_offset`` are the per-phone-model offsets (dB) added to the attenuation
    when the person sends and receives. ``recorded`` marks the receivers whose
    every detection an engine must list (all infected people, plus a sample for
    continuity and timelines; in worlds above AUTO_RECORD_ALL people, by
    default at most AUTO_RECORD_INFECTED infected people and a 0.1 % sample).
    ``members[k]`` is the (count, per_place) array of
    the people of ``scenario.places[k]``; place instance ids of that spec start at
    ``place_base[k]``.
    """

    scenario: Scenario
    seed: int
    n: int
    app: BoolArray
    infected: BoolArray
    profile: npt.NDArray[np.int8]
    profile_names: list[str]
    tx_offset: FloatArray
    rx_offset: FloatArray
    recorded: BoolArray
    radios: list[RadioModel]
    members: list[npt.NDArray[np.int64]]
    place_base: list[int]
    _cache: dict[int, Intervals] = field(default_factory=dict, repr=False)
    _profiles: dict[str, PhoneProfile] | None = field(default=None, repr=False)

    @classmethod
    def build(cls, scenario: Scenario, seed: int) -> World:
        """Draw the people of ``scenario`` with ``seed`` (checks the scenario first)."""
        scenario.check()
        n = scenario.population
        rng = np.random.default_rng([seed, 0])
        app = rng.random(n) < scenario.uptake
        infected = np.zeros(n, dtype=bool)
        if isinstance(scenario.infected, list):
            infected[np.asarray(scenario.infected, dtype=np.int64)] = True
        else:
            infected[rng.choice(n, scenario.infected_count(), replace=False)] = True
        names = list(scenario.profiles)
        shares = np.asarray([scenario.profiles[k] for k in names], dtype=np.float64)
        profile = rng.choice(len(names), n, p=shares / shares.sum()).astype(np.int8)
        tx, rx = model_offsets(rng, n, scenario.model_offsets)
        fraction = scenario.record_fraction
        sampled = rng.random(n)
        if fraction >= 0 or n <= AUTO_RECORD_ALL:
            recorded = infected | (sampled < (1.0 if fraction < 0 else fraction))
        else:
            ids = np.flatnonzero(infected)
            keep = rng.permutation(ids)[:AUTO_RECORD_INFECTED]
            recorded = sampled < AUTO_RECORD_FRACTION
            recorded[keep] = True
        radios: list[RadioModel] = []
        members: list[npt.NDArray[np.int64]] = []
        base: list[int] = []
        next_place = 0
        for spec in scenario.places:
            try:
                radios.append(PRESETS[spec.radio].with_changes(**scenario.radio))
            except ValueError as exc:
                raise ScenarioError(str(exc)) from None
            if spec.kind == "open" and spec.per_place > MAX_WALKERS:
                raise ScenarioError(f"place {spec.name!r}: at most {MAX_WALKERS} walkers an area")
            people = rng.permutation(n)[: spec.count * spec.per_place]
            members.append(people.reshape(spec.count, spec.per_place).astype(np.int64))
            base.append(next_place)
            next_place += spec.count
        return cls(scenario, seed, n, app, infected, profile, names, tx, rx, recorded,
                   radios, members, base)

    # -- people -----------------------------------------------------------------------------

    @property
    def infected_ids(self) -> IntArray:
        """Ids of infected people, ascending."""
        return np.flatnonzero(self.infected).astype(np.int64)

    @property
    def phone_profiles(self) -> dict[str, PhoneProfile]:
        """Every profile of the scenario (presets with its settings, and its own)."""
        if self._profiles is None:
            self._profiles = self.scenario.phone_profiles()
        return self._profiles

    def profile_of(self, person: int) -> PhoneProfile:
        """The phone profile of one person."""
        return self.phone_profiles[self.profile_names[int(self.profile[person])]]

    # -- intervals --------------------------------------------------------------------------

    def intervals_for_day(self, day: int) -> Intervals:
        """Co-location intervals of day ``day`` (0-based), sorted by start time."""
        if day in self._cache:
            return self._cache[day]
        if not 0 <= day < self.scenario.days:
            raise ValueError(f"day {day} is outside the scenario's {self.scenario.days} days")
        rng = np.random.default_rng([self.seed, 1, day])
        parts = [make_columns(a=[], b=[], t0=[], t1=[], distance=[], place=[], env=0)]
        for k, spec in enumerate(self.scenario.places):
            if spec.kind == "room":
                parts.append(self._room_day(rng, k, spec, day))
            elif spec.kind in ("tram", "bus"):
                parts.append(self._vehicle_day(rng, k, spec, day))
            else:
                parts.append(self._open_day(rng, k, spec, day))
        columns = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
        parts.clear()
        near = columns["distance"] <= self.scenario.cutoff
        if not near.all():
            columns = {name: column[near] for name, column in columns.items()}
        out = pack_intervals(columns, start_order(columns, self.n))
        if self.n <= AUTO_RECORD_ALL:
            self._cache[day] = out
        return out

    def iter_days(self) -> Iterator[tuple[int, Intervals]]:
        """(day, intervals) for every day of the scenario."""
        for day in range(self.scenario.days):
            yield day, self.intervals_for_day(day)

    def intervals(self) -> Intervals:
        """All co-location intervals of the run (for small worlds; large ones go by day)."""
        return np.concatenate([iv for _, iv in self.iter_days()])

    def _room_day(self, rng: np.random.Generator, k: int, spec: PlaceSpec, day: int) -> Columns:
        people = self.members[k]
        count, m = people.shape
        desks = desk_grid(spec.rows, spec.cols, spec.pitch)[:m]
        present = rng.random((count, m)) < spec.attendance
        jitter = spec.jitter * 60.0
        base = day * DAY
        # Jitter never moves anyone out of their own day.
        arrive = np.clip(base + spec.start * 3600.0 + rng.uniform(-jitter, jitter, (count, m)),
                         base, base + DAY)
        leave = np.clip(base + spec.end * 3600.0 + rng.uniform(-jitter, jitter, (count, m)),
                        base, base + DAY)
        ia, ib = np.triu_indices(m, 1)
        dist = np.hypot(*(desks[ia] - desks[ib]).T)
        near = dist <= self.scenario.cutoff
        ia, ib, dist = ia[near], ib[near], dist[near]
        t0 = np.maximum(arrive[:, ia], arrive[:, ib])
        t1 = np.minimum(leave[:, ia], leave[:, ib])
        ok = present[:, ia] & present[:, ib] & (t1 > t0)
        place = (self.place_base[k] + np.arange(count))[:, None]
        return make_columns(
            a=people[:, ia][ok], b=people[:, ib][ok], t0=t0[ok], t1=t1[ok],
            distance=np.broadcast_to(dist, ok.shape)[ok],
            place=np.broadcast_to(place, ok.shape)[ok], env=k,
        )

    def _vehicle_day(
        self, rng: np.random.Generator, k: int, spec: PlaceSpec, day: int
    ) -> Columns:
        people = self.members[k]
        count, m = people.shape
        seats = seat_grid(spec.rows, spec.cols)
        trips = count * spec.trips
        who = np.argsort(rng.random((trips, m)), axis=1)[:, : spec.riders]
        where = np.argsort(rng.random((trips, seats.shape[0])), axis=1)[:, : spec.riders]
        riders = np.take_along_axis(np.repeat(people, spec.trips, axis=0), who, axis=1)
        pos = seats[where]  # (trips, riders, 2)
        ia, ib = np.triu_indices(spec.riders, 1)
        diff = pos[:, ia, :] - pos[:, ib, :]
        dist = np.hypot(diff[..., 0], diff[..., 1])
        spacing = (spec.end - spec.start) * 3600.0 / spec.trips
        trip_no = np.tile(np.arange(spec.trips), count)
        t0 = day * DAY + spec.start * 3600.0 + trip_no * spacing
        t1 = t0 + spec.trip_minutes * 60.0
        place = np.repeat(self.place_base[k] + np.arange(count), spec.trips)
        shape = dist.shape
        # The cutoff as intervals_for_day applies it (to the stored float32 distance),
        # here, before the columns are packed.
        near = dist.astype(np.float32) <= self.scenario.cutoff
        return make_columns(
            a=riders[:, ia][near], b=riders[:, ib][near],
            t0=np.broadcast_to(t0[:, None], shape)[near],
            t1=np.broadcast_to(t1[:, None], shape)[near], distance=dist[near],
            place=np.broadcast_to(place[:, None], shape)[near], env=k,
        )

    def _open_day(self, rng: np.random.Generator, k: int, spec: PlaceSpec, day: int) -> Columns:
        people = self.members[k]
        count, m = people.shape
        steps = int((spec.end - spec.start) * 3600.0 / spec.step)
        parts = [make_columns(a=[], b=[], t0=[], t1=[], distance=[], place=[], env=k)]
        cutoff = self.scenario.cutoff
        for c in range(count):
            track = random_waypoint(
                rng, m, spec.area, steps=steps, dt=spec.step, speed=spec.speed, pause=spec.pause
            )
            step_idx, i, j, dist = close_pairs(track, cutoff)
            t0 = day * DAY + spec.start * 3600.0 + step_idx * spec.step
            parts.append(make_columns(
                a=people[c, i], b=people[c, j], t0=t0, t1=t0 + spec.step, distance=dist,
                place=np.full(step_idx.size, self.place_base[k] + c), env=k,
            ))
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def start_order(columns: Columns, n: int) -> IntArray:
    """The order of intervals by (t0, a, b): ``np.lexsort((b, a, t0))``, faster.

    Most start times are shared (a tram trip's riders, a room's pairs waiting for
    the last to arrive), so the pair must break ties. One stable sort by start
    time ranks the starts; rank x n^2 + a x n + b is then one integer key whose
    order is (t0, a, b), and one stable sort of it replaces lexsort's three
    passes. Where the key could overflow 63 bits, lexsort itself.
    """
    t0, a, b = columns["t0"], columns["a"], columns["b"]
    a64 = np.asarray(a, dtype=np.int64)
    b64 = np.asarray(b, dtype=np.int64)
    size = t0.size
    if size == 0 or float(size) * float(n) * float(n) >= 2.0**62:
        return np.asarray(np.lexsort((b, a, t0)), dtype=np.int64)
    by_start = np.argsort(t0, kind="stable")
    sorted_t0 = t0[by_start]
    rank = np.empty(size, dtype=np.int64)
    rank[by_start] = np.cumsum(np.r_[False, sorted_t0[1:] != sorted_t0[:-1]])
    key = (rank * n + a64) * n + b64
    return np.asarray(np.argsort(key, kind="stable"), dtype=np.int64)


def close_pairs(
    track: FloatArray, cutoff: float
) -> tuple[IntArray, IntArray, IntArray, FloatArray]:
    """Pairs of walkers within ``cutoff`` m at each sampled step.

    ``track`` is (steps, n, 2). Walkers are sorted by x at every step; only
    neighbours in that order whose x differ by at most ``cutoff`` can be close,
    so the search looks k places ahead for k = 1, 2, ... until no step has such
    a neighbour left. Returns (step, walker i, walker j, distance).
    """
    n = track.shape[1]
    order = np.argsort(track[:, :, 0], axis=1, kind="stable")
    xs = np.take_along_axis(track[:, :, 0], order, axis=1)
    ys = np.take_along_axis(track[:, :, 1], order, axis=1)
    out_s: list[IntArray] = []
    out_i: list[IntArray] = []
    out_j: list[IntArray] = []
    out_d: list[FloatArray] = []
    for k in range(1, n):
        dx = xs[:, k:] - xs[:, :-k]
        reach = dx <= cutoff
        if not reach.any():
            break
        s_idx, p_idx = np.nonzero(reach)
        dy = ys[s_idx, p_idx + k] - ys[s_idx, p_idx]
        d = np.hypot(dx[s_idx, p_idx], dy)
        near = d <= cutoff
        s_idx, p_idx, d = s_idx[near], p_idx[near], d[near]
        out_s.append(s_idx.astype(np.int64))
        out_i.append(order[s_idx, p_idx].astype(np.int64))
        out_j.append(order[s_idx, p_idx + k].astype(np.int64))
        out_d.append(d)
    if not out_s:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty, np.empty(0)
    s_all = np.concatenate(out_s)
    i_all = np.concatenate(out_i)
    j_all = np.concatenate(out_j)
    d_all = np.concatenate(out_d)
    # A fixed order (step, then walkers) whatever the search order was.
    lo, hi = np.minimum(i_all, j_all), np.maximum(i_all, j_all)
    keep = np.lexsort((hi, lo, s_all))
    return s_all[keep], lo[keep], hi[keep], d_all[keep]
