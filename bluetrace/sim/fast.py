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
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bluetrace.sim.arrays import hash_uniform, uniq
from bluetrace.sim.by_profile import PairDayCounter
from bluetrace.sim.channel import Links, draw_links
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

#: Cells (groups x opportunities) simulated at once for recorded receivers.
BATCH_CELLS = 2_000_000
#: Gaps drawn per profile for its scan cycle: every phone of a profile runs the same
#: cycle of randomised gaps (about 2.8 h for OpenTrace Android) from its own phase.
SCAN_CYCLE_GAPS = 256
#: Salt of the background-spell hash (``arrays.hash_uniform``).
BACKGROUND_SALT = 0x6B67

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class PhoneArrays:
    """Per-person arrays the engine needs, derived once from the world.

    Scans: profile ``p`` has one cycle of SCAN_CYCLE_GAPS gaps drawn uniformly in
    its ``scan_every`` (``cycle_start[p]``: each scan's start within the cycle,
    ``cycle_length[p]``); a phone repeats it from its own random phase, so its
    scans are the profile's randomised gaps and two phones are never in step.
    Scan ``j`` of a phone starts at ``phase + (j // K) * length + start[j % K]``.
    Advertising: on ``adv_on`` s, off ``adv_off`` s, from a random phase per phone.
    Background: a phone is in the background in a spell of ``background_spell`` s
    with probability ``background_share``, fixed per phone and spell by a hash.
    """

    def __init__(self, world: World, rng: np.random.Generator) -> None:
        sc = world.scenario
        profiles = [world.phone_profiles[name] for name in world.profile_names]
        idx = world.profile.astype(np.int64)
        n_prof = len(profiles)
        self.seed = world.seed
        self.profile = idx
        self.listens = np.array([p.listens_always for p in profiles], dtype=bool)[idx]
        self.skip = np.array([p.skip_after_hit for p in profiles], dtype=np.int64)[idx]
        scan_period = np.array([max(p.mean_period, 1e-9) for p in profiles])[idx]
        self.period = np.where(self.listens, sc.beacon_interval, scan_period)
        k = SCAN_CYCLE_GAPS
        starts = np.zeros((n_prof, k))
        lengths = np.ones(n_prof)
        for i, p in enumerate(profiles):
            if p.listens_always:
                continue
            low, high = p.scan_every
            gaps = rng.uniform(low, high, k) if high > low else np.full(k, low)
            starts[i, 1:] = np.cumsum(gaps)[:-1]
            lengths[i] = float(gaps.sum())
        self.cycle_start = starts
        self.cycle_length = lengths
        # Each profile's starts shifted into a band of its own: one sorted array.
        self._band = 2.0 * float(lengths.max()) + 1.0
        self._flat = (starts + self._band * np.arange(n_prof)[:, None]).ravel()
        self.scan_phase = rng.uniform(0.0, 1.0, world.n) * lengths[idx]
        self.beacon_phase = rng.uniform(0.0, 1.0, world.n) * sc.beacon_interval
        self.window = np.array([0.0 if p.listens_always else p.scan_window
                                for p in profiles])[idx]
        self.revisit = np.array([0.0 if p.listens_always else p.revisit
                                 for p in profiles])[idx]
        self.adv_on = np.array([p.adv_on for p in profiles])[idx]
        self.adv_off = np.array([p.adv_off for p in profiles])[idx]
        cycle = self.adv_on + self.adv_off
        self.adv_phase = rng.uniform(0.0, 1.0, world.n) * cycle
        # Per-OS detection: [profile, background?] and [sender profile, receiver profile].
        self.hear = np.array([[p.hear_fg, p.hear_bg] for p in profiles])
        self.heard = np.array([[p.heard_fg, p.heard_bg] for p in profiles])
        self.bg_share = np.array([p.background_share for p in profiles])
        self.bg_spell = np.array([p.background_spell for p in profiles])
        self.bg_visible = np.array([
            [("*" in p.background_heard_by) or (r.os in p.background_heard_by)
             for r in profiles]
            for p in profiles
        ], dtype=bool)
        self.per_os = bool(
            (self.hear[:, 0] < 1).any() or (self.heard[:, 0] < 1).any()
            or ((self.bg_share > 0) & (
                (self.hear[:, 1] < 1) | (self.heard[:, 1] < 1) | ~self.bg_visible.all(axis=1)
            )).any()
        )

    # -- scans ----------------------------------------------------------------------------
    def scans_before(self, person: IntArray, t: FloatArray) -> IntArray:
        """Index of the first scan of each ``person`` that starts at or after ``t``."""
        prof = self.profile[person]
        length = self.cycle_length[prof]
        u = t - self.scan_phase[person]
        cycles = np.floor(u / length)
        within = u - cycles * length
        k = np.searchsorted(self._flat, prof * self._band + within, side="left")
        return (cycles.astype(np.int64) * SCAN_CYCLE_GAPS
                + (k - prof * SCAN_CYCLE_GAPS)).astype(np.int64)

    def scan_time(self, person: IntArray, index: IntArray) -> FloatArray:
        """Start time of scan ``index`` of ``person`` (arrays broadcast)."""
        prof = self.profile[person]
        cycles, k = np.divmod(index, SCAN_CYCLE_GAPS)
        return np.asarray(self.scan_phase[person] + cycles * self.cycle_length[prof]
                          + self.cycle_start[prof, k], dtype=np.float64)

    # -- advertising and the background ---------------------------------------------------
    def advertising_overlap(self, rx: IntArray, tx: IntArray) -> FloatArray:
        """Chance a scan of ``rx`` at a random moment overlaps ``tx``'s advertising."""
        cycle = self.adv_on[tx] + self.adv_off[tx]
        share = np.minimum(1.0, (self.adv_on[tx] + self.window[rx]) / np.maximum(cycle, 1e-9))
        return np.asarray(np.where(self.adv_off[tx] > 0, share, 1.0), dtype=np.float64)

    def advertising_during(self, tx: IntArray, t: FloatArray, window: FloatArray) -> BoolArray:
        """Whether ``tx`` advertises at some moment of [t, t + window]."""
        on, off = self.adv_on[tx], self.adv_off[tx]
        cycle = on + off
        pos = np.mod(t - self.adv_phase[tx], np.maximum(cycle, 1e-9))
        return np.asarray((off <= 0) | (pos < on) | (pos > cycle - window), dtype=bool)

    def in_background(self, person: IntArray, t: FloatArray) -> BoolArray:
        """Whether each phone is in the background at ``t`` (fixed per phone and spell)."""
        prof = self.profile[person]
        spell = np.floor(t / self.bg_spell[prof]).astype(np.int64)
        u = hash_uniform(self.seed, BACKGROUND_SALT, person, spell)
        return np.asarray(u < self.bg_share[prof], dtype=bool)

    def os_factor_at(self, rx: IntArray, tx: IntArray, t: FloatArray) -> FloatArray:
        """P(an opportunity at ``t`` is not lost to either phone's OS state)."""
        pr, pt = self.profile[rx], self.profile[tx]
        brx = self.in_background(rx, t)
        btx = self.in_background(tx, t)
        seen = np.where(btx, self.bg_visible[pt, pr], True)
        return np.asarray(self.hear[pr, brx.astype(np.int64)]
                          * self.heard[pt, btx.astype(np.int64)] * seen, dtype=np.float64)

    def os_factor(self, rx: IntArray, tx: IntArray, t0: FloatArray, t1: FloatArray) -> FloatArray:
        """The OS factor of a whole directed interval, for drawing only a count: the
        states at its middle when it is shorter than both phones' spells (exact for
        the city's 10-s steps), else the mean over independent states."""
        if not self.per_os:
            return np.ones(rx.size)
        pr, pt = self.profile[rx], self.profile[tx]
        at_mid = self.os_factor_at(rx, tx, 0.5 * (t0 + t1))
        br, bt = self.bg_share[pr], self.bg_share[pt]
        vis = self.bg_visible[pt, pr]
        mean = np.zeros(rx.size)
        for s_rx, w_rx in ((0, 1.0 - br), (1, br)):
            for s_tx, w_tx in ((0, 1.0 - bt), (1, bt)):
                f = self.hear[pr, s_rx] * self.heard[pt, s_tx] * (vis if s_tx else 1.0)
                mean += w_rx * w_tx * f
        short = (t1 - t0) <= np.minimum(self.bg_spell[pr], self.bg_spell[pt])
        return np.asarray(np.where(short, at_mid, mean), dtype=np.float64)


@dataclass(frozen=True)
class Opportunities:
    """Detection opportunities of directed links: ``count`` of them from index
    ``first``: the receiver's scans, or, for a receiver that listens always, the
    sender's beacons (every ``beacon_interval`` s from its phase)."""

    receiver: IntArray
    sender: IntArray
    scanning: BoolArray
    first: IntArray
    count: IntArray
    beacon_interval: float

    def times(self, phones: PhoneArrays, sel: IntArray, width: int) -> FloatArray:
        """(len(sel), width) start times of opportunities 0..width-1 of rows ``sel``."""
        j = self.first[sel][:, None] + np.arange(width)[None, :]
        scanning = self.scanning[sel]
        if not scanning.any():  # only beacons: skip the scan cycle look-up
            return np.asarray(phones.beacon_phase[self.sender[sel]][:, None]
                              + j * self.beacon_interval, dtype=np.float64)
        scans = phones.scan_time(self.receiver[sel][:, None], j)
        if scanning.all():
            return scans
        beacons = phones.beacon_phase[self.sender[sel]][:, None] + j * self.beacon_interval
        return np.asarray(np.where(scanning[:, None], scans, beacons), dtype=np.float64)


def opportunities(
    phones: PhoneArrays, beacon_interval: float, rx: IntArray, tx: IntArray,
    span: tuple[FloatArray, FloatArray],
) -> Opportunities:
    """The opportunities of each directed link in [t0, t1)."""
    t0, t1 = span
    use_beacon = phones.listens[rx]
    phase = phones.beacon_phase[tx]
    b0 = np.ceil((t0 - phase) / beacon_interval)
    b1 = np.ceil((t1 - phase) / beacon_interval)
    s0 = phones.scans_before(rx, t0)
    s1 = phones.scans_before(rx, t1)
    first = np.where(use_beacon, b0.astype(np.int64), s0)
    last = np.where(use_beacon, b1.astype(np.int64), s1)
    return Opportunities(rx, tx, ~use_beacon, first.astype(np.int64),
                         np.maximum(last - first, 0).astype(np.int64), beacon_interval)


def simulate_opportunities(
    rng: np.random.Generator, phones: PhoneArrays, links: Links, opp: Opportunities,
    rows: IntArray,
) -> tuple[IntArray, IntArray, IntArray, FloatArray, FloatArray]:
    """Opportunity-by-opportunity draws for the directed links ``rows``.

    An opportunity at time t succeeds when its attenuation is at most the
    threshold, the sender advertises at some moment of the receiver's scan
    window, U(0,1) < q x the OS factor at t, and the receiver's revisit rule
    does not block it (no reading of this sender in the last ``revisit`` s).
    Returns (hits per row, opportunities the revisit rule blocked per row,
    position in ``rows`` of each detection, detection times, attenuations).
    """
    count = opp.count[rows]
    hits = np.zeros(rows.size, dtype=np.int64)
    blocked_total = np.zeros(rows.size, dtype=np.int64)
    g_out: list[IntArray] = []
    t_out: list[FloatArray] = []
    a_out: list[FloatArray] = []
    # Largest counts first: each batch is as wide as its first (widest) row.
    order = np.argsort(-count, kind="stable")
    start = 0
    while start < order.size:
        width = int(count[order[start]])
        if width == 0:
            break
        n_rows = max(1, BATCH_CELLS // width)
        pos = order[start : start + n_rows]
        start += pos.size
        sel = rows[pos]
        rx, tx = links.receiver[sel], links.sender[sel]
        valid = np.arange(width)[None, :] < count[pos][:, None]
        t = opp.times(phones, sel, width)
        noise = rng.standard_normal((sel.size, width))
        att = links.mean[sel][:, None] + links.s_scan[sel][:, None] * noise
        chance = np.broadcast_to(links.q[sel][:, None], t.shape)
        if phones.per_os:
            chance = chance * phones.os_factor_at(rx[:, None], tx[:, None], t)
        luck = rng.random((sel.size, width)) < chance
        ok = valid & (att <= links.threshold[sel][:, None]) & luck
        if (phones.adv_off[tx] > 0).any():
            window = np.where(opp.scanning[sel], phones.window[rx], 0.0)[:, None]
            ok &= phones.advertising_during(tx[:, None], t, window)
        revisit = phones.revisit[rx]
        blocked = np.zeros(sel.size, dtype=np.int64)
        if (revisit > 0).any():
            until = np.full(sel.size, -np.inf)
            for col in range(width):
                free = t[:, col] >= until
                blocked += valid[:, col] & ~free
                kept = ok[:, col] & free
                ok[:, col] = kept
                until = np.where(kept, t[:, col] + revisit, until)
        gi, ji = np.nonzero(ok)
        hits[pos] = ok.sum(axis=1)
        blocked_total[pos] = blocked
        g_out.append(pos[gi])
        t_out.append(t[gi, ji])
        a_out.append(att[gi, ji])
    if not g_out:
        empty_f = np.empty(0)
        return hits, blocked_total, np.empty(0, dtype=np.int64), empty_f, empty_f
    return (hits, blocked_total, np.concatenate(g_out), np.concatenate(t_out),
            np.concatenate(a_out))


class _Run:
    """State of one fast-engine run: counters and the detections listed so far."""

    def __init__(self, world: World, sc: Scenario, rng: np.random.Generator) -> None:
        self.world = world
        self.sc = sc
        self.rng = rng
        self.phones = PhoneArrays(world, rng)
        self.det_parts = [empty_detections()]
        self.kept_intervals: list[npt.NDArray[np.void]] = []
        self.sent = 0
        self.received = 0
        self.pair_days = PairDayCounter(world)
        self.uploader = world.infected & world.app
        self.entries = 0
        self.named_keys: list[IntArray] = [np.empty(0, dtype=np.int64)]

    def day(self, day_iv: npt.NDArray[np.void]) -> None:
        """Draw every detection of one day's intervals."""
        world = self.world
        keep = world.recorded | world.infected
        touching = keep[day_iv["a"]] | keep[day_iv["b"]]
        self.kept_intervals.append(day_iv[touching])
        iv = day_iv[world.app[day_iv["a"]] & world.app[day_iv["b"]]]
        m = iv.size
        if m == 0:
            return
        self.pair_days.add(iv, self.hear(draw_links(world, iv, self.rng)))

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
            src = tx[idx][g]
            keep = world.recorded[who]
            rows = np.empty(int(keep.sum()), dtype=DETECTION_DTYPE)
            rows["receiver"] = who[keep]
            rows["sender"] = src[keep]
            rows["t"] = t[keep]
            rows["attenuation"] = att[keep]
            self.det_parts.append(rows)
            up = sc.upload_time
            logged = self.uploader[who] & (t <= up) & (t >= up - sc.retention)
            self.entries += int(logged.sum())
            self.named_keys.append(uniq(who[logged] * world.n + src[logged]))
        self.sent += int((count - blocked).sum())
        self.received += int(hits.sum())
        return hits > 0


def run_fast(
    world: World,
    scenario: Scenario | None = None,
    rng: np.random.Generator | None = None,
    progress: Progress = no_progress,
) -> EngineResult:
    """Run the fast engine on ``world`` (``scenario`` defaults to the world's)."""
    started = time.perf_counter()
    sc = scenario if scenario is not None else world.scenario
    run = _Run(world, sc, rng if rng is not None else np.random.default_rng([world.seed, 2]))
    total = sc.duration
    progress(0.0, total)
    for day, iv in world.iter_days():
        run.day(iv)
        progress(min((day + 1) * DAY, total), total)
    detections = np.concatenate(run.det_parts)
    run.det_parts.clear()
    detections = sort_detections(detections)
    named = _named(world, uniq(np.concatenate(run.named_keys)))
    entries = run.entries
    issued, requests = tempid_counts(sc, int(world.app.sum()))
    return EngineResult(
        engine="fast",
        detections=detections,
        named=named,
        beacons_sent=run.sent,
        beacons_received=run.received,
        beacons_lost=run.sent - run.received,
        tempids_issued=issued,
        server_work={
            "tempid_requests": requests,
            "tempids_issued": issued,
            "uploads": len(named),
            "upload_entries": entries,
            "lookups": entries,
            "named": int(sum(v.size for v in named.values())),
        },
        pair_days=run.pair_days.totals,
        pair_days_by_profile=run.pair_days.by_label(),
        intervals=np.concatenate(run.kept_intervals) if run.kept_intervals else None,
        elapsed_s=time.perf_counter() - started,
    )


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
