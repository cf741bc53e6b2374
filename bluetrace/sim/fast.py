"""The fast engine: numpy, encounter level, for 100,000 phones and weeks.

Per-beacon events cannot reach 100k phones x 21 days (about 10^11 beacons), so
this engine works per co-location interval and per direction (receiver hears
sender):

1. Opportunities: the receiver's scans in the interval (randomised gaps in
   the profile's ``scan_every``, a random phase per phone; ``PhoneArrays``),
   or, for a phone that listens always (the assignment profile), the sender's
   beacons every ``beacon_interval`` s.
2. Each opportunity succeeds as ``channel.Links`` says (shared with the exact
   engine): the scan's attenuation (radio model: mean at the interval's
   distance + pair offset + model offsets + per-scan noise) is at most the
   threshold, the datagram is not lost (``p_loss``) and the directed pair can
   hear each other at all (``pair_detectable``, fixed per directed pair); and
   as the phones say: the sender advertises at some moment of the receiver's
   scan window (its on/off duty cycle), and neither phone's OS state (the
   background, per-OS ``hear``/``heard``) spoils it.
3. After a success, a profile with a revisit rule (OpenTrace Android: 100 s)
   skips the scans that start within it.

For receivers in ``world.recorded`` (all infected people and a sample) every
opportunity is simulated one by one, giving each detection's time and
attenuation. For the others only the count matters: it is drawn as
Binomial(opportunities, p / (1 + k p)), where p is the per-scan success
probability (the advertising overlap (on + window) / (on + off) and the OS
factor of the interval's middle, or its mean over states for an interval
longer than a background spell, stand in for the per-scan checks) and k the
scans a success blocks at the mean gap (the renewal rate of the revisit
rule); it feeds the beacon counters and the both/one-sided pair-days.

TempIDs are integer indices (owner = the phone), so the health authority's
look-up of an uploaded TempID is the identity on the owner.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bluetrace.sim.arrays import uniq
from bluetrace.sim.by_profile import PairDayCounter
from bluetrace.sim.channel import (
    Links,
    PhoneArrays,
    draw_links,
    opportunities,
    simulate_opportunities,
)
from bluetrace.sim.result import (
    DETECTION_DTYPE,
    EngineResult,
    Progress,
    empty_detections,
    no_progress,
    sort_detections,
)
from bluetrace.sim.scenario import Scenario
from bluetrace.sim.units import DAY
from bluetrace.sim.world import World

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def day_stream_key(rng: np.random.Generator) -> int:
    """The key of the run's per-day random streams, drawn once from the run's generator
    (after the phones' arrays): day ``d`` then draws from ``day_rng(key, d)``, so each
    day's draws are fixed by the seed and the day alone, whichever process runs the day,
    in whatever order (``cluster.py``). Both engines use it, so they keep drawing the
    same receptions."""
    return int(rng.integers(0, 2**63 - 1))


def day_rng(key: int, day: int) -> np.random.Generator:
    """The random stream of one day of a run (see ``day_stream_key``)."""
    return np.random.default_rng([key, day])


@dataclass
class DaysPart:
    """What some days of a run add up to: everything ``run_fast`` reports is a sum
    or a concatenation of these, so days can run anywhere and be merged
    (``merge``) into the same result as one process running them in turn.
    ``kept`` holds the kept intervals per day, in day order."""

    days: list[int]
    detections: list[npt.NDArray[np.void]]
    kept: list[npt.NDArray[np.void]]
    sent: int
    received: int
    entries: int
    named_keys: IntArray
    pair_totals: dict[str, int]
    pair_counts: IntArray

    def merge(self, other: DaysPart) -> DaysPart:
        """The two parts together (days in ascending order)."""
        first, second = (self, other) if self.days <= other.days else (other, self)
        return DaysPart(
            days=first.days + second.days,
            detections=first.detections + second.detections,
            kept=first.kept + second.kept,
            sent=first.sent + second.sent,
            received=first.received + second.received,
            entries=first.entries + second.entries,
            named_keys=uniq(np.concatenate([first.named_keys, second.named_keys])),
            pair_totals={k: first.pair_totals[k] + second.pair_totals[k]
                         for k in first.pair_totals},
            pair_counts=first.pair_counts + second.pair_counts,
        )


class _Run:
    """State of one fast-engine run over some days: counters and the detections
    listed so far. Per-day state (the day's intervals, links, opportunities) is
    dropped when the day ends; what is kept grows with the recorded people and
    the days, not with the population."""

    def __init__(self, world: World, sc: Scenario, phones: PhoneArrays, key: int) -> None:
        self.world = world
        self.sc = sc
        self.key = key
        self.rng = day_rng(key, 0)
        self.phones = phones
        self.days: list[int] = []
        self.det_parts = [empty_detections()]
        self.kept_intervals: list[npt.NDArray[np.void]] = []
        self.sent = 0
        self.received = 0
        self.pair_days = PairDayCounter(world)
        self.uploader = world.infected & world.app
        self.entries = 0
        self.named_keys: list[IntArray] = [np.empty(0, dtype=np.int64)]

    def day(self, day: int, day_iv: npt.NDArray[np.void]) -> None:
        """Draw every detection of one day's intervals (from the day's own stream)."""
        world = self.world
        self.days.append(day)
        self.rng = day_rng(self.key, day)
        keep = world.recorded | world.infected
        touching = keep[day_iv["a"]] | keep[day_iv["b"]]
        self.kept_intervals.append(day_iv[touching])
        iv = day_iv[world.app[day_iv["a"]] & world.app[day_iv["b"]]]
        m = iv.size
        if m == 0:
            return
        self.pair_days.add(iv, self.hear(draw_links(world, iv, self.rng)))

    def part(self) -> DaysPart:
        """The days run so far, as a part to merge."""
        return DaysPart(
            days=list(self.days), detections=self.det_parts, kept=self.kept_intervals,
            sent=self.sent, received=self.received, entries=self.entries,
            named_keys=uniq(np.concatenate(self.named_keys)),
            pair_totals=dict(self.pair_days.totals), pair_counts=self.pair_days.counts,
        )

    def hear(self, links: Links) -> npt.NDArray[np.bool_]:
        """Draw the receptions on every link; True where the receiver heard the sender."""
        world, sc, rng, phones = self.world, self.sc, self.rng, self.phones
        rx, tx = links.receiver, links.sender
        opp = opportunities(phones, sc.beacon_interval, rx, tx, (links.t0, links.t1))
        count = opp.count
        skip = np.where(phones.listens[rx], 0, phones.skip[rx])
        hits = np.zeros(links.size, dtype=np.int64)
        blocked = np.zeros(links.size, dtype=np.int64)
        detailed = world.recorded[rx] | self.uploader[rx]
        free = np.flatnonzero(~detailed)
        if free.size:
            p_scan = (links.success_probability()[free]
                      * phones.advertising_overlap(rx[free], tx[free])
                      * phones.os_factor(rx[free], tx[free], links.t0[free], links.t1[free]))
            p_eff = p_scan / (1.0 + skip[free] * p_scan)
            hits[free] = rng.binomial(count[free], p_eff)
            # Scans the revisit rule skips are not opportunities: nothing was sent to them.
            blocked[free] = np.minimum(skip[free] * hits[free], count[free] - hits[free])
        idx = np.flatnonzero(detailed & (count > 0))
        if idx.size:
            h, b, g, t, att = simulate_opportunities(rng, phones, links, opp, idx)
            hits[idx] = h
            blocked[idx] = b
            who = rx[idx][g]
            keep = world.recorded[who]
            self.det_parts.append(_sorted_day_rows(
                rx[idx], tx[idx], links.t0[idx], link=g[keep], t=t[keep], attenuation=att[keep]))
            up = sc.upload_time
            logged = self.uploader[who] & (t <= up) & (t >= up - sc.retention)
            self.entries += int(logged.sum())
            # A link's detections share its (receiver, sender): one key per link that
            # logged any, instead of one per detection, gives the same set.
            named_rows = idx[np.bincount(g[logged], minlength=idx.size) > 0]
            self.named_keys.append(uniq(rx[named_rows] * world.n + tx[named_rows]))
        self.sent += int((count - blocked).sum())
        self.received += int(hits.sum())
        return hits > 0


def run_fast(
    world: World,
    scenario: Scenario | None = None,
    rng: np.random.Generator | None = None,
    progress: Progress = no_progress,
) -> EngineResult:
    """Run the fast engine on ``world`` (``scenario`` defaults to the world's).

    Days run one after another here, holding one day at a time, or, inside
    ``cluster.scheduler(...)``, as tasks on a Dask cluster; the result is the same.
    """
    from bluetrace.sim import cluster  # noqa: PLC0415  (it imports this module)

    started = time.perf_counter()
    sc = scenario if scenario is not None else world.scenario
    rng = rng if rng is not None else np.random.default_rng([world.seed, 2])
    client = cluster.active_client()
    if client is not None:
        part = cluster.run_on_cluster(client, world, sc, rng, progress)
    else:
        phones = PhoneArrays(world, rng)
        part = run_days(world, sc, phones, day_stream_key(rng), range(sc.days),
                        progress=progress)
    return finish(world, sc, part, started)


def run_days(
    world: World, sc: Scenario, phones: PhoneArrays, key: int, days: Iterable[int],
    *, progress: Progress = no_progress,
) -> DaysPart:
    """Run ``days`` of the fast engine, one at a time (``key``: ``day_stream_key``)."""
    run = _Run(world, sc, phones, key)
    total = sc.duration
    progress(0.0, total)
    for day in days:
        run.day(day, world.intervals_for_day(day))
        progress(min((day + 1) * DAY, total), total)
    return run.part()


def finish(world: World, sc: Scenario, part: DaysPart, started: float) -> EngineResult:
    """The engine result of a whole run's merged parts."""
    detections = merge_sorted_detections(part.detections)
    part.detections.clear()
    named = _named(world, part.named_keys)
    entries = part.entries
    issued, requests = tempid_counts(sc, int(world.app.sum()))
    pair_days = PairDayCounter(world)
    pair_days.totals = dict(part.pair_totals)
    pair_days.counts = part.pair_counts
    return EngineResult(
        engine="fast",
        detections=detections,
        named=named,
        beacons_sent=part.sent,
        beacons_received=part.received,
        beacons_lost=part.sent - part.received,
        tempids_issued=issued,
        server_work={
            "tempid_requests": requests,
            "tempids_issued": issued,
            "uploads": len(named),
            "upload_entries": entries,
            "lookups": entries,
            "named": int(sum(v.size for v in named.values())),
        },
        pair_days=pair_days.totals,
        pair_days_by_profile=pair_days.by_label(),
        intervals=np.concatenate(part.kept) if part.kept else None,
        elapsed_s=time.perf_counter() - started,
    )


def _detection_rows(
    receiver: IntArray, sender: IntArray, t: FloatArray, attenuation: FloatArray,
) -> npt.NDArray[np.void]:
    """Detections as DETECTION_DTYPE rows (in the order given)."""
    rows = np.empty(receiver.size, dtype=DETECTION_DTYPE)
    rows["receiver"] = receiver
    rows["sender"] = sender
    rows["t"] = t
    rows["attenuation"] = attenuation
    return rows


def _sorted_day_rows(
    receiver: IntArray, sender: IntArray, start: FloatArray, *, link: IntArray, t: FloatArray,
    attenuation: FloatArray,
) -> npt.NDArray[np.void]:
    """One day's detections, ``sort_detections``'s order, from links ordered first.

    ``link`` is each detection's link (an index into ``receiver``, ``sender`` and
    ``start``), listed link by link in time order. Ordering the few links by
    (receiver, sender, start) and moving each link's detections with it is
    cheaper than sorting the detections by three keys; should a pair's times
    then not strictly increase (two links of one pair overlapping in time), the
    detections are sorted afresh, so the result is always ``sort_detections``'s.
    """
    rows = _detection_rows(receiver[link], sender[link], t, attenuation)
    if rows.size < 2:
        return rows
    by_link = np.lexsort((start, sender, receiver))
    rank = np.empty(receiver.size, dtype=np.int64)
    rank[by_link] = np.arange(receiver.size)
    det_rank = rank[link]
    small = np.int16 if receiver.size <= np.iinfo(np.int16).max else np.int64
    out = rows[np.argsort(det_rank.astype(small), kind="stable")]
    pair = out["receiver"].astype(np.int64) << 32 | out["sender"].astype(np.int64)
    if np.any((pair[1:] == pair[:-1]) & (out["t"][1:] <= out["t"][:-1])):
        return sort_detections(rows)
    return out


def merge_sorted_detections(parts: list[npt.NDArray[np.void]]) -> npt.NDArray[np.void]:
    """``sort_detections`` of the parts together, when each part is sorted already.

    The days' parts come in day order and a day's detections fall within it, so a
    stable sort by (receiver, sender) alone keeps every pair's times in order: a
    merge of sorted runs, far cheaper than sorting the whole run by three keys.
    Should the times of a pair still be out of order (a part outside its day),
    the whole array is sorted afresh, so the result is ``sort_detections``'s
    whatever the parts.
    """
    det = np.concatenate([empty_detections(), *parts])
    pair = det["receiver"].astype(np.int64) << 32 | det["sender"].astype(np.int64)
    order = np.argsort(pair, kind="stable")
    out = det[order]
    pair = pair[order]
    t = out["t"]
    if np.any((pair[1:] == pair[:-1]) & (t[1:] < t[:-1])):
        return sort_detections(det)
    return out


def tempid_counts(sc: Scenario, app_users: int) -> tuple[int, int]:
    """(TempIDs issued, requests) for phones that keep a valid TempID all run long.

    One TempID per request (the assignment): a phone asks again as each one
    expires. Batches (OpenTrace: 100 every 12 h): one request per refresh period.
    """
    if sc.tempid_batch <= 1:
        requests = math.ceil(sc.duration / sc.tempid_lifetime)
        return requests * app_users, requests * app_users
    refresh = sc.tempid_refresh if sc.tempid_refresh > 0 else sc.tempid_lifetime * sc.tempid_batch
    requests = math.ceil(sc.duration / refresh)
    return requests * sc.tempid_batch * app_users, requests * app_users


def _named(world: World, keys: IntArray) -> dict[int, IntArray]:
    """Who the health authority names from each infected app user's upload.

    ``keys`` are the sorted unique ``receiver * n + sender`` of log entries
    retained at upload time (received in [upload - retention, upload]). Since
    TempIDs are integer indices, the server's look-up returns the sender.
    """
    uploaders = np.flatnonzero(world.infected & world.app)
    named: dict[int, IntArray] = {int(i): np.empty(0, dtype=np.int64) for i in uploaders}
    if keys.size:
        rec, snd = np.divmod(keys, world.n)
        cuts = np.flatnonzero(np.r_[True, rec[1:] != rec[:-1]])
        for start, stop in zip(cuts, np.r_[cuts[1:], rec.size], strict=True):
            named[int(rec[start])] = snd[start:stop].astype(np.int64)
    return named
