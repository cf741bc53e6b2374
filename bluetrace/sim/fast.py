"""The fast engine: numpy, encounter level, for 100,000 phones and weeks.

Per-beacon events cannot reach 100k phones x 21 days (about 10^11 beacons), so
this engine works per co-location interval and per direction (receiver hears
sender):

1. Opportunities: the receiver's scans in the interval (a fixed period per
   profile and a random phase per phone), or, for a phone that listens always
   (the assignment profile), the sender's beacons every ``beacon_interval`` s.
2. Each opportunity succeeds as ``channel.Links`` says (shared with the exact
   engine): the scan's attenuation (radio model: mean at the interval's
   distance + pair offset + model offsets + per-scan noise) is at most the
   threshold, the sender is advertising (its duty cycle), the datagram is not
   lost (``p_loss``) and the directed pair can hear each other at all
   (``pair_detectable``, drawn once per directed interval).
3. After a success, a profile with a revisit rule (OpenTrace Android: 100 s)
   skips the scans that fall inside it.

For receivers in ``world.recorded`` (all infected people and a sample) every
opportunity is simulated one by one, giving each detection's time and
attenuation. For the others only the count matters: it is drawn as
Binomial(opportunities, p / (1 + k p)), where p is the per-scan success
probability and k the scans a success blocks (the renewal rate of the revisit
rule); it feeds the beacon counters and the both/one-sided pair-days.

TempIDs are integer indices (owner = the phone), so the health authority's
look-up of an uploaded TempID is the identity on the owner.
"""

from __future__ import annotations

import math
import time

import numpy as np
import numpy.typing as npt

from bluetrace.sim.arrays import uniq, uniq_inverse
from bluetrace.sim.channel import Links, draw_links
from bluetrace.sim.profiles import PROFILES
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

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class PhoneArrays:
    """Per-person arrays the engine needs, derived once from the world."""

    def __init__(self, world: World, rng: np.random.Generator) -> None:
        sc = world.scenario
        profiles = [PROFILES[name] for name in world.profile_names]
        idx = world.profile.astype(np.int64)
        self.listens = np.array([p.listens_always for p in profiles])[idx]
        self.skip = np.array([p.skip_after_hit for p in profiles], dtype=np.int64)[idx]
        scan_period = np.array([max(p.mean_period, 1e-9) for p in profiles])[idx]
        self.period = np.where(self.listens, sc.beacon_interval, scan_period)
        self.scan_phase = rng.uniform(0.0, 1.0, world.n) * scan_period
        self.beacon_phase = rng.uniform(0.0, 1.0, world.n) * sc.beacon_interval


def opportunities(
    phones: PhoneArrays, beacon_interval: float, rx: IntArray, tx: IntArray,
    span: tuple[FloatArray, FloatArray],
) -> tuple[FloatArray, FloatArray, IntArray]:
    """(period, first opportunity time, count) per directed interval."""
    t0, t1 = span
    use_beacon = phones.listens[rx]
    period = np.where(use_beacon, beacon_interval, phones.period[rx])
    phase = np.where(use_beacon, phones.beacon_phase[tx], phones.scan_phase[rx])
    k0 = np.ceil((t0 - phase) / period)
    k1 = np.ceil((t1 - phase) / period)
    first = phase + k0 * period
    return period, first, np.maximum(k1 - k0, 0).astype(np.int64)


def simulate_opportunities(
    rng: np.random.Generator, *, first: FloatArray, period: FloatArray, count: IntArray,
    att_mean: FloatArray, s_scan: FloatArray, threshold: FloatArray, q: FloatArray,
    skip: IntArray,
) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
    """Opportunity-by-opportunity draws for some directed intervals.

    Returns (hits per interval, interval index of each detection, detection
    times, detection attenuations).
    """
    hits = np.zeros(count.size, dtype=np.int64)
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
        rows = max(1, BATCH_CELLS // width)
        sel = order[start : start + rows]
        start += sel.size
        j_max = width
        j = np.arange(j_max)
        valid = j[None, :] < count[sel][:, None]
        noise = rng.standard_normal((sel.size, j_max))
        att = att_mean[sel][:, None] + s_scan[sel][:, None] * noise
        luck = rng.random((sel.size, j_max)) < q[sel][:, None]
        ok = valid & (att <= threshold[sel][:, None]) & luck
        sk = skip[sel]
        if (sk > 0).any():
            blocked = np.zeros(sel.size, dtype=np.int64)
            for col in range(j_max):
                free = blocked == 0
                kept = ok[:, col] & free
                ok[:, col] = kept
                blocked = np.where(kept, sk, np.where(free, 0, blocked - 1))
        gi, ji = np.nonzero(ok)
        hits[sel] = ok.sum(axis=1)
        g_out.append(sel[gi])
        t_out.append(first[sel][gi] + ji * period[sel][gi])
        a_out.append(att[gi, ji])
    if not g_out:
        empty_f = np.empty(0)
        return hits, np.empty(0, dtype=np.int64), empty_f, empty_f
    return hits, np.concatenate(g_out), np.concatenate(t_out), np.concatenate(a_out)


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
        self.pair_days = {"both": 0, "one": 0, "none": 0}
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
        heard = self.hear(draw_links(world, iv, self.rng))
        a = iv["a"].astype(np.int64)
        _, inverse = uniq_inverse(a * world.n + iv["b"])
        ab = np.bincount(inverse, weights=heard[:m]) > 0
        ba = np.bincount(inverse, weights=heard[m:]) > 0
        self.pair_days["both"] += int(np.sum(ab & ba))
        self.pair_days["one"] += int(np.sum(ab ^ ba))
        self.pair_days["none"] += int(np.sum(~ab & ~ba))

    def hear(self, links: Links) -> npt.NDArray[np.bool_]:
        """Draw the receptions on every link; True where the receiver heard the sender."""
        world, sc, rng, phones = self.world, self.sc, self.rng, self.phones
        rx, tx = links.receiver, links.sender
        period, first, count = opportunities(
            phones, sc.beacon_interval, rx, tx, (links.t0, links.t1)
        )
        skip = np.where(phones.listens[rx], 0, phones.skip[rx])
        hits = np.zeros(links.size, dtype=np.int64)
        detailed = world.recorded[rx] | self.uploader[rx]
        free = ~detailed
        if free.any():
            p_scan = links.success_probability()[free]
            p_eff = p_scan / (1.0 + skip[free] * p_scan)
            hits[free] = rng.binomial(count[free], p_eff)
        idx = np.flatnonzero(detailed & (count > 0))
        if idx.size:
            h, g, t, att = simulate_opportunities(
                rng, first=first[idx], period=period[idx], count=count[idx],
                att_mean=links.mean[idx], s_scan=links.s_scan[idx],
                threshold=links.threshold[idx], q=links.q[idx], skip=skip[idx],
            )
            hits[idx] = h
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
        # Scans the revisit rule skips are not opportunities: nothing was sent to them.
        offered = np.maximum(count - skip * hits, hits)
        self.sent += int(offered.sum())
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
        pair_days=run.pair_days,
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
