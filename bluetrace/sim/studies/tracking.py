"""Tracking by sniffers: how much of a walker's day a grid of listening devices can link.

BlueTrace phones broadcast a TempID that changes every so often (15 minutes in
OpenTrace, 2 hours in COVIDSafe). Anyone can put cheap Bluetooth listeners
("sniffers") on a grid and log which TempID was heard where and when. This
module measures what such a network learns about people walking through a
city, against sniffer pitch and TempID rotation, with two ways of linking:

* **equal TempID**: sightings of the same TempID belong together;
* **rotation stitching**: in addition, when one TempID is last heard at a
  sniffer and a new one is first heard at the same sniffer within a short gap,
  and neither has another candidate there, the two are taken to be one person.

The model: random-waypoint walkers in a square, sniffers at the centres of a
square grid, and one scan per sniffer and walker every ``step_s`` seconds
through the log-distance ``RadioModel`` (n = 2) with a threshold that puts the
50 % range at 30 m (about 96 % at 20 m, 11 % at 40 m). Everything is numpy;
the only Python loops are over walkers (to build paths) and time chunks.

Figures of merit, per walker then averaged:

* ``observed_share``: share of time steps in which some sniffer heard the walker;
* ``linked_share``: share of the walker's time covered by correctly linked
  tracks (from a track's first to its last sighting: the span over which the
  network knows where the walker went), and ``longest_share``: the share
  covered by the walker's single longest track (how much of the day joins up
  into one trajectory);
* ``mean_track_min``: mean time span of a linked track (a single sighting is a
  track of length 0), and ``stitch_precision``: the share of stitches that
  joined two TempIDs of the same walker (wrong stitches are not counted as
  linked time).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from bluetrace.sim import places, scenario
from bluetrace.sim.radio import RadioModel
from bluetrace.sim.runs import param_float

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
#: sightings run to millions of rows on a dense grid: stored as 32-bit integers
SmallIntArray = npt.NDArray[np.int32]

#: 50 % of scans hear a phone at 30 m: threshold = 40 + 20 log10(30) dB.
SNIFFER_RADIO: Final = RadioModel(
    a0=40.0, n=2.0, s_pair=0.0, s_scan=2.0, threshold=40.0 + 20.0 * math.log10(30.0)
)
NEVER: Final = 0.0  # rotation period meaning "the TempID never changes"
PITCHES_M: Final = (25.0, 75.0, 200.0)
ROTATIONS_S: Final = (900.0, 7200.0, NEVER)
METHODS: Final = ("equal", "stitched")


@dataclass(frozen=True)
class TrackingSetup:
    """A city of walkers and the sniffer network's listening model.

    The defaults are those of the simulator's built-in city scenario (and of the
    corona-sniffer setting): 300 random-waypoint walkers in a 1,500 m square,
    0.5-1.5 m/s with pauses up to 2 minutes, from 8:00 to 20:00, sampled every
    10 s. ``from_scenario`` reads them from a scenario's open place instead.
    """

    side_m: float = 1500.0
    n_walkers: int = 300
    hours: float = 12.0
    step_s: float = 10.0
    speed_mps: tuple[float, float] = (0.5, 1.5)
    pause_s: tuple[float, float] = (0.0, 120.0)
    radio: RadioModel = SNIFFER_RADIO
    stitch_gap_s: float = 60.0
    #: sightings are not drawn beyond the distance where a scan's chance is below this
    min_detect: float = 1e-4

    @classmethod
    def from_scenario(cls, name: str = "city") -> TrackingSetup:
        """The walkers of a scenario's first open place (area, people, speed, pause,
        step and hours); the sniffers' radio stays this module's."""
        sc = scenario.load_scenario(name)
        place = next((p for p in sc.places if p.kind == "open"), None)
        if place is None:
            raise ValueError(f"scenario {name!r} has no open place to walk in")
        return cls(
            side_m=place.area,
            n_walkers=place.per_place,
            hours=place.end - place.start,
            step_s=place.step,
            speed_mps=(float(place.speed[0]), float(place.speed[1])),
            pause_s=(float(place.pause[0]), float(place.pause[1])),
        )

    @property
    def n_steps(self) -> int:
        return round(self.hours * 3600.0 / self.step_s)

    def max_range_m(self) -> float:
        """Distance beyond which a scan hears nothing worth drawing (``min_detect``)."""
        d = np.geomspace(1.0, 10 * self.side_m, 4000)
        p = self.radio.detect_probability(d)
        beyond = np.nonzero(p < self.min_detect)[0]
        return float(d[beyond[0]]) if beyond.size else float(d[-1])


def random_waypoint(rng: np.random.Generator, setup: TrackingSetup) -> FloatArray:
    """Positions (steps x walkers x 2) of the walkers, by the simulator's own
    random-waypoint model (``bluetrace.sim.places``), so sniffers watch the same
    kind of walking the simulator's city scenario does."""
    return places.random_waypoint(
        rng,
        setup.n_walkers,
        setup.side_m,
        steps=setup.n_steps,
        dt=setup.step_s,
        speed=setup.speed_mps,
        pause=setup.pause_s,
    )


def sniffer_grid(side_m: float, pitch_m: float) -> FloatArray:
    """Sniffer positions at the centres of a square grid of the given pitch."""
    axis = np.arange(pitch_m / 2.0, side_m, pitch_m)
    xx, yy = np.meshgrid(axis, axis, indexing="ij")
    return np.column_stack([xx.ravel(), yy.ravel()])


@dataclass
class Sightings:
    """Every (step, walker, sniffer) in which a sniffer heard a walker."""

    step: SmallIntArray
    walker: SmallIntArray
    sniffer: SmallIntArray


def draw_sightings(
    rng: np.random.Generator,
    positions: FloatArray,
    pitch_m: float,
    setup: TrackingSetup,
    chunk_steps: int = 60,
) -> Sightings:
    """One scan per sniffer, walker and step, for sniffers within range.

    Candidates are found by grid arithmetic (the sniffers in the cells around a
    walker's cell), never by an all-pairs distance matrix, so the cost grows
    with walkers x nearby sniffers, not walkers x sniffers.
    """
    n_axis = len(np.arange(pitch_m / 2.0, setup.side_m, pitch_m))
    reach = math.ceil(setup.max_range_m() / pitch_m)
    around = np.arange(-reach, reach + 1)
    di = np.repeat(around, around.size)  # every (di, dj) cell offset within reach
    dj = np.tile(around, around.size)
    walker_offset = setup.radio.pair_offsets(rng, positions.shape[1])
    parts: list[tuple[SmallIntArray, SmallIntArray, SmallIntArray]] = []
    for start in range(0, positions.shape[0], chunk_steps):
        pos = positions[start : start + chunk_steps]  # (s, w, 2)
        cell = np.clip(np.floor(pos / pitch_m).astype(np.int64), 0, n_axis - 1)
        ci = cell[..., 0, None] + di  # (s, w, k)
        cj = cell[..., 1, None] + dj
        valid = (ci >= 0) & (ci < n_axis) & (cj >= 0) & (cj < n_axis)
        sx = (ci + 0.5) * pitch_m
        sy = (cj + 0.5) * pitch_m
        dist = np.hypot(sx - pos[..., 0, None], sy - pos[..., 1, None])
        att = setup.radio.scan_attenuation(rng, dist, walker_offset[None, :, None])
        heard = valid & (att <= setup.radio.threshold)
        s_idx, w_idx, k_idx = np.nonzero(heard)
        parts.append(
            (
                (s_idx + start).astype(np.int32),
                w_idx.astype(np.int32),
                (ci[s_idx, w_idx, k_idx] * n_axis + cj[s_idx, w_idx, k_idx]).astype(np.int32),
            )
        )
    return Sightings(
        step=np.concatenate([p[0] for p in parts]),
        walker=np.concatenate([p[1] for p in parts]),
        sniffer=np.concatenate([p[2] for p in parts]),
    )


def tempid_of(
    walker: npt.NDArray[np.integer[Any]],
    step: npt.NDArray[np.integer[Any]],
    rotation_s: float,
    phase_s: FloatArray,
    step_s: float,
) -> IntArray:
    """The TempID (a unique integer) a walker broadcast at a step.

    A walker's TempIDs change every ``rotation_s`` seconds from its own phase
    (phones got their first TempID at different times); ``NEVER`` keeps one.
    """
    w = walker.astype(np.int64)
    if rotation_s == NEVER:
        epoch = np.zeros_like(w)
    else:
        epoch = np.floor((step * step_s + phase_s[w]) / rotation_s).astype(np.int64)
    n_epochs = 1 + int(epoch.max()) if epoch.size else 1
    return np.asarray(w * n_epochs + epoch, dtype=np.int64)


@dataclass
class Tracks:
    """Linked tracks: for each, the true walker, first and last step, sightings, IDs."""

    walker: IntArray
    first: IntArray
    last: IntArray
    n_sightings: IntArray
    n_ids: IntArray
    stitches: int = 0
    wrong_stitches: int = 0
    members: list[IntArray] = field(default_factory=list)  # TempID indices per track


@dataclass
class _IdTable:
    """Per TempID (dense index): walker, first and last step, sighting count."""

    walker: IntArray
    first: IntArray
    last: IntArray
    count: IntArray
    dense: IntArray  # dense TempID index of every sighting


def _id_table(s: Sightings, tempid: IntArray) -> _IdTable:
    if tempid.size and int(tempid.min()) >= 0 and int(tempid.max()) < 1 << 26:
        # TempIDs are small integers: a dense index by counting, not by sorting millions
        present = np.bincount(tempid) > 0
        dense = (np.cumsum(present) - 1)[tempid]
        n = int(present.sum())
    else:
        ids, dense = np.unique(tempid, return_inverse=True)
        n = ids.size
    first = np.full(n, np.iinfo(np.int64).max)
    last = np.full(n, -1)
    np.minimum.at(first, dense, s.step)
    np.maximum.at(last, dense, s.step)
    walker = np.zeros(n, dtype=np.int64)
    walker[dense] = s.walker
    return _IdTable(walker, first, last, np.bincount(dense, minlength=n), dense)


def stitch_edges(s: Sightings, table: _IdTable, gap_steps: int) -> tuple[IntArray, IntArray]:
    """Pairs (A, B) of TempIDs to stitch: A vanishes and B appears at one sniffer.

    A's last sighting and B's first share a sniffer, B's first step is 1 to
    ``gap_steps`` steps after A's last, and the match is unique both ways (A
    has no other candidate B, B no other candidate A): an ambiguous handover
    is not guessed.
    """
    d = table.dense
    at_end = s.step == table.last[d]
    at_start = s.step == table.first[d]
    ends = np.unique(np.column_stack([s.sniffer[at_end], s.step[at_end], d[at_end]]), axis=0)
    starts = np.unique(
        np.column_stack([s.sniffer[at_start], s.step[at_start], d[at_start]]), axis=0
    )
    if ends.size == 0 or starts.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    # starts sorted by (sniffer, step): for each end, the window of starts at the
    # same sniffer with step in (end step, end step + gap]
    key_scale = int(max(ends[:, 1].max(), starts[:, 1].max())) + gap_steps + 2
    start_key = starts[:, 0] * key_scale + starts[:, 1]
    lo = np.searchsorted(start_key, ends[:, 0] * key_scale + ends[:, 1] + 1, side="left")
    hi = np.searchsorted(start_key, ends[:, 0] * key_scale + ends[:, 1] + gap_steps, side="right")
    counts = hi - lo
    end_rep = np.repeat(np.arange(len(ends)), counts)
    offs = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    a = ends[end_rep, 2]
    b = starts[lo[end_rep] + offs, 2]
    keep = a != b
    pairs = np.unique(np.column_stack([a[keep], b[keep]]), axis=0)
    if pairs.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    n_ids = table.walker.size
    out_deg = np.bincount(pairs[:, 0], minlength=n_ids)
    in_deg = np.bincount(pairs[:, 1], minlength=n_ids)
    unique = (out_deg[pairs[:, 0]] == 1) & (in_deg[pairs[:, 1]] == 1)
    return pairs[unique, 0].astype(np.int64), pairs[unique, 1].astype(np.int64)


def link(s: Sightings, tempid: IntArray, method: str, gap_steps: int = 6) -> Tracks:
    """Group sightings into tracks by equal TempID, then optionally stitch.

    Stitches that join two different walkers are counted (``wrong_stitches``)
    and then cut, so the tracks returned are what the network got right.
    """
    if method not in METHODS:
        raise ValueError(f"unknown linking method {method!r} (one of {', '.join(METHODS)})")
    table = _id_table(s, tempid)
    n = table.walker.size
    parent = np.arange(n)
    stitches = wrong = 0
    if method == "stitched":
        a, b = stitch_edges(s, table, gap_steps)
        stitches = int(a.size)
        right = table.walker[a] == table.walker[b]
        wrong = int((~right).sum())
        # each ID has at most one successor and one predecessor: chains.
        # Label every chain by its head through pointer jumping.
        nxt_of = np.full(n, -1)
        nxt_of[a[right]] = b[right]
        has_pred = np.zeros(n, dtype=bool)
        has_pred[b[right]] = True
        label = np.where(has_pred, -1, np.arange(n))
        cur = np.where(~has_pred, np.arange(n), -1)
        while True:
            nxt = np.where(cur >= 0, nxt_of[np.maximum(cur, 0)], -1)
            heads = np.nonzero(nxt >= 0)[0]
            if heads.size == 0:
                break
            label[nxt[heads]] = label[heads]
            cur = np.full(n, -1)
            cur[heads] = nxt[heads]
        parent = label
    roots, track_of = np.unique(parent, return_inverse=True)
    m = roots.size
    first = np.full(m, np.iinfo(np.int64).max)
    last = np.full(m, -1)
    np.minimum.at(first, track_of, table.first)
    np.maximum.at(last, track_of, table.last)
    walker = np.zeros(m, dtype=np.int64)
    walker[track_of] = table.walker
    order = np.argsort(track_of, kind="stable")
    bounds = np.cumsum(np.bincount(track_of, minlength=m))[:-1]
    return Tracks(
        walker=walker,
        first=first,
        last=last,
        n_sightings=np.bincount(track_of, weights=table.count, minlength=m).astype(np.int64),
        n_ids=np.bincount(track_of, minlength=m).astype(np.int64),
        stitches=stitches,
        wrong_stitches=wrong,
        members=list(np.split(order, bounds)),
    )


@dataclass(frozen=True)
class LinkMetrics:
    observed_share: float
    linked_share: float
    longest_share: float
    mean_track_min: float
    n_tracks: int
    stitch_precision: float
    track_minutes: tuple[float, ...]


def link_metrics(s: Sightings, tracks: Tracks, setup: TrackingSetup) -> LinkMetrics:
    """The figures of merit of one linking (see the module docstring)."""
    n_w, n_t = setup.n_walkers, setup.n_steps
    seen = np.zeros((n_w, n_t), dtype=bool)
    seen[s.walker, s.step] = True
    span = (tracks.last - tracks.first).astype(np.float64) * setup.step_s
    per_walker = np.bincount(tracks.walker, weights=span, minlength=n_w)
    longest = np.zeros(n_w)
    np.maximum.at(longest, tracks.walker, span)
    total = max(n_t - 1, 1) * setup.step_s
    minutes = span / 60.0
    return LinkMetrics(
        observed_share=float(seen.mean()),
        linked_share=float(np.mean(np.minimum(per_walker / total, 1.0))),
        longest_share=float(np.mean(longest / total)),
        mean_track_min=float(minutes.mean()) if minutes.size else 0.0,
        n_tracks=int(minutes.size),
        stitch_precision=(
            (tracks.stitches - tracks.wrong_stitches) / tracks.stitches
            if tracks.stitches
            else math.nan
        ),
        track_minutes=tuple(float(x) for x in minutes),
    )


@dataclass
class TrackingRun:
    """One seed at one pitch: the world, the sightings and every rotation x method."""

    pitch_m: float
    seed: int
    positions: FloatArray
    sightings: Sightings
    phase_s: FloatArray
    results: dict[tuple[float, str], LinkMetrics]
    tracks: dict[tuple[float, str], Tracks]

    def light(self) -> PitchResults:
        """The figures of merit without the world and sightings (which can be large)."""
        return PitchResults(self.pitch_m, self.seed, self.results)


@dataclass(frozen=True)
class PitchResults:
    """One seed at one pitch: the figures of merit of every rotation x method."""

    pitch_m: float
    seed: int
    results: dict[tuple[float, str], LinkMetrics]


def run_pitch(
    setup: TrackingSetup,
    pitch_m: float,
    seed: int,
    rotations: Sequence[float] = ROTATIONS_S,
    methods: Sequence[str] = METHODS,
) -> TrackingRun:
    """Walk, listen once, then link the same sightings under every rotation and method.

    The walkers and the sniffers' draws do not depend on the rotation, so all
    rotations see the very same world: differences come from linking alone.
    """
    rng = np.random.default_rng([seed, int(pitch_m * 1000)])
    pos = random_waypoint(np.random.default_rng(seed), setup)
    s = draw_sightings(rng, pos, pitch_m, setup)
    # each phone's TempID schedule began at a random moment of the day before, the
    # same for every rotation period: 15-min epochs then nest inside 2-h epochs
    phase = np.random.default_rng([seed, 1]).uniform(0.0, 86400.0, setup.n_walkers)
    gap_steps = max(1, int(setup.stitch_gap_s // setup.step_s))
    results: dict[tuple[float, str], LinkMetrics] = {}
    tracks: dict[tuple[float, str], Tracks] = {}
    for rot in rotations:
        tid = tempid_of(s.walker, s.step, rot, phase, setup.step_s)
        for method in methods:
            t = link(s, tid, method, gap_steps)
            tracks[rot, method] = t
            results[rot, method] = link_metrics(s, t, setup)
    return TrackingRun(pitch_m, seed, pos, s, phase, results, tracks)


def rotation_label(rotation_s: float) -> str:
    if rotation_s == NEVER:
        return "never"
    return f"{rotation_s / 60:g} min" if rotation_s < 3600 else f"{rotation_s / 3600:g} h"


@dataclass(frozen=True)
class TableRow:
    pitch_m: float
    rotation: str
    method: str
    observed_share: float
    linked_share: float
    linked_share_sd: float
    longest_share: float
    mean_track_min: float
    n_tracks: float
    stitch_precision: float


def tracking_table(
    setup: TrackingSetup | None = None,
    seeds: Sequence[int] = (0, 1),
    pitches: Sequence[float] = PITCHES_M,
    rotations: Sequence[float] = ROTATIONS_S,
) -> tuple[list[TableRow], list[PitchResults]]:
    """The full V5 table: pitch x rotation x method, each averaged over seeds.

    Only each run's figures of merit are kept (a dense grid's sightings run to
    millions of rows), so memory stays that of one run at a time.
    """
    cfg = setup or TrackingSetup()
    runs = [run_pitch(cfg, p, seed, rotations).light() for p in pitches for seed in seeds]
    rows: list[TableRow] = []
    for p in pitches:
        mine = [r for r in runs if r.pitch_m == p]
        for rot in rotations:
            for method in METHODS:
                ms = [r.results[rot, method] for r in mine]
                shares = np.asarray([m.linked_share for m in ms])
                precision = [m.stitch_precision for m in ms if not math.isnan(m.stitch_precision)]
                rows.append(
                    TableRow(
                        pitch_m=p,
                        rotation=rotation_label(rot),
                        method=method,
                        observed_share=float(np.mean([m.observed_share for m in ms])),
                        linked_share=float(shares.mean()),
                        linked_share_sd=float(shares.std(ddof=1)) if shares.size > 1 else 0.0,
                        longest_share=float(np.mean([m.longest_share for m in ms])),
                        mean_track_min=float(np.mean([m.mean_track_min for m in ms])),
                        n_tracks=float(np.mean([m.n_tracks for m in ms])),
                        stitch_precision=float(np.mean(precision)) if precision else math.nan,
                    )
                )
    return rows, runs


def table_markdown(rows: Sequence[TableRow]) -> str:
    """The table as GitHub markdown, one row per pitch x rotation, methods side by side."""
    lines = [
        "| pitch | rotation | heard | linked: equal ID | linked: stitched "
        "| longest track: equal | longest track: stitched "
        "| mean track: equal | mean track: stitched | stitches right |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    by_key = {(r.pitch_m, r.rotation, r.method): r for r in rows}
    for r in rows:
        if r.method != "equal":
            continue
        st = by_key[r.pitch_m, r.rotation, "stitched"]
        prec = "n/a" if math.isnan(st.stitch_precision) else f"{st.stitch_precision:.0%}"
        lines.append(
            f"| {r.pitch_m:g} m | {r.rotation} | {r.observed_share:.1%} | {r.linked_share:.1%} "
            f"| {st.linked_share:.1%} | {r.longest_share:.1%} | {st.longest_share:.1%} "
            f"| {r.mean_track_min:.1f} min | {st.mean_track_min:.1f} min | {prec} |"
        )
    return "\n".join(lines) + "\n"


def table_json(
    rows: Sequence[TableRow], setup: TrackingSetup, seeds: Sequence[int]
) -> dict[str, object]:
    """The table with the setup it came from, for results files."""
    return {
        "setup": {
            "side_m": setup.side_m,
            "n_walkers": setup.n_walkers,
            "hours": setup.hours,
            "step_s": setup.step_s,
            "speed_mps": list(setup.speed_mps),
            "pause_s": list(setup.pause_s),
            "stitch_gap_s": setup.stitch_gap_s,
            "radio": {k: getattr(setup.radio, k) for k in setup.radio.__dataclass_fields__},
            "max_range_m": setup.max_range_m(),
        },
        "seeds": list(seeds),
        "rows": [
            {
                k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in asdict(r).items()
            }
            for r in rows
        ],
    }


def tracking_task(params: dict[str, object], seed: int) -> dict[str, float]:
    """One pitch and rotation as a sweep task: linked share and track length per method.

    ``params``: ``pitch_m``, ``rotation_s`` (0 = never), and optionally any
    ``TrackingSetup`` number (``n_walkers``, ``hours``, ``step_s``, ``side_m``,
    ``stitch_gap_s``).
    """
    base = TrackingSetup()
    setup = replace(
        base,
        side_m=param_float(params, "side_m", base.side_m),
        hours=param_float(params, "hours", base.hours),
        step_s=param_float(params, "step_s", base.step_s),
        stitch_gap_s=param_float(params, "stitch_gap_s", base.stitch_gap_s),
        n_walkers=int(param_float(params, "n_walkers", base.n_walkers)),
    )
    pitch = param_float(params, "pitch_m", 75.0)
    rot = param_float(params, "rotation_s", 900.0)
    run = run_pitch(setup, pitch, seed, rotations=(rot,))
    out: dict[str, float] = {}
    for method in METHODS:
        m = run.results[rot, method]
        out["observed_share"] = m.observed_share
        out[f"linked_share_{method}"] = m.linked_share
        out[f"longest_share_{method}"] = m.longest_share
        out[f"mean_track_min_{method}"] = m.mean_track_min
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bluetrace.sim.studies.tracking``: the V5 table; ``--out`` also saves JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m bluetrace.sim.studies.tracking",
        description="Tracking by sniffers: share of each walker's time a sniffer grid links, "
        "against sniffer pitch and TempID rotation (markdown table on stdout).",
    )
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument("--walkers", type=int, default=TrackingSetup.n_walkers)
    parser.add_argument("--hours", type=float, default=TrackingSetup.hours)
    parser.add_argument("--out", type=Path, metavar="FILE", help="also write the table as JSON")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.walkers < 1 or not 0 < args.hours <= 24 * 7:
        parser.error("--seeds and --walkers must be at least 1, --hours in (0, 168]")
    setup = TrackingSetup(n_walkers=args.walkers, hours=args.hours)
    seeds = tuple(range(args.seeds))
    rows, _ = tracking_table(setup, seeds=seeds)
    print(table_markdown(rows), end="")
    if args.out is not None:
        try:
            args.out.write_text(
                json.dumps(table_json(rows, setup, seeds), indent=1) + "\n", encoding="utf-8"
            )
        except OSError as exc:
            print(
                f"tracking: error: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr
            )
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
