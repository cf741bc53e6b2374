"""The radio channel between two phones during one co-location interval.

Both engines draw detections the same way, so they agree: for each
co-location interval (two people with the app, a span of time, a distance,
a place) and each direction (receiver hears sender) ``draw_links`` fixes

* the mean attenuation: the place's radio model at the interval's distance,
  plus one pair offset for the interval (shadowing, body, holder; the same in
  both directions, since the channel is reciprocal), plus the sender's
  transmit and the receiver's receive model offsets;
* ``q``: the chance an opportunity is not spoiled by the channel: (1 - p_loss),
  or 0 when the directed pair cannot hear each other at all
  (``pair_detectable``: fixed per directed pair for the whole run by a hash of
  the seed and the pair, or, with ``pair_detectable_per = "interval"``, drawn
  afresh per co-location interval).

One **opportunity** (a scan by the receiver, or, for a phone that always
listens, a beacon of the sender) then succeeds when its attenuation
``mean + s_scan * N(0, 1)`` is at most the threshold and ``U(0, 1) < q``:
``Links.draw`` does exactly that for the exact engine's beacons, and the fast
engine does it in bulk. What counts as an opportunity, the sender's
advertising, the phones' background states and the revisit rule are the phone
profiles' business: ``PhoneArrays`` (per phone: scan cycle, advertising,
background), ``opportunities`` (which scans or beacons fall in a link's span)
and ``simulate_opportunities`` (each one drawn, with the revisit rule). This
opportunity model lives here, beside the links, because both engines share it:
the fast engine draws counts or every opportunity from it, the exact engine
draws the receptions it then delivers to the real phones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bluetrace.sim.arrays import hash_uniform
from bluetrace.sim.radio import MIN_DISTANCE, normal_cdf
from bluetrace.sim.world import World

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
#: Salt of the per-pair detectability hash (``arrays.hash_uniform``).
PAIR_SALT = 0x7061
#: Cells (groups x opportunities) simulated at once for recorded receivers.
BATCH_CELLS = 2_000_000
#: Gaps drawn per profile for its scan cycle: every phone of a profile runs the same
#: cycle of randomised gaps (about 2.8 h for OpenTrace Android) from its own phase.
SCAN_CYCLE_BITS = 8
SCAN_CYCLE_GAPS = 1 << SCAN_CYCLE_BITS
#: Buckets per profile of ``scans_before``'s table (a bucket narrower than a gap
#: holds at most one scan start, so a look-up is one step from its answer).
SCAN_BUCKETS = 4 * SCAN_CYCLE_GAPS
#: Salt of the background-spell hash (``arrays.hash_uniform``).
BACKGROUND_SALT = 0x6B67


@dataclass(frozen=True)
class Links:
    """Directed links: row k is ``receiver[k]`` listening to ``sender[k]``.

    For ``m`` intervals, rows 0..m-1 are "a hears b" and rows m..2m-1 are
    "b hears a", both for interval ``interval[k]`` (a row of the intervals
    array given to ``draw_links``), over [t0, t1).
    """

    interval: IntArray
    receiver: IntArray
    sender: IntArray
    t0: FloatArray
    t1: FloatArray
    mean: FloatArray  # mean attenuation (dB) of one opportunity
    s_scan: FloatArray  # per-opportunity shadowing sd (dB)
    threshold: FloatArray  # attenuation above which nothing is heard
    q: FloatArray  # P(not lost, pair able to hear) per opportunity

    @property
    def size(self) -> int:
        """Number of directed links."""
        return int(self.receiver.size)

    def success_probability(self) -> FloatArray:
        """P(one opportunity succeeds) per link."""
        margin = self.threshold - self.mean
        sd = np.where(self.s_scan > 0, self.s_scan, 1.0)
        radio = np.where(self.s_scan > 0, normal_cdf(margin / sd), margin >= 0)
        return np.asarray(radio * self.q, dtype=np.float64)

    def draw(
        self, rng: np.random.Generator, rows: npt.ArrayLike
    ) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
        """One opportunity on each of ``rows`` (repeats allowed): (attenuation, success)."""
        k = np.asarray(rows, dtype=np.int64)
        att = self.mean[k] + self.s_scan[k] * rng.standard_normal(k.size)
        ok = (att <= self.threshold[k]) & (rng.random(k.size) < self.q[k])
        return np.asarray(att, dtype=np.float64), np.asarray(ok)


def draw_links(
    world: World, intervals: npt.NDArray[np.void], rng: np.random.Generator
) -> Links:
    """Draw the links of ``intervals`` (people with and without the app alike).

    Draw order is fixed (pair offsets by place in ascending order, then, per
    interval if so asked, the detectability of each direction), so the same
    generator state gives the same links.
    """
    sc = world.scenario
    m = intervals.size
    env = intervals["env"].astype(np.int64)
    offset = np.zeros(m)
    for e in np.flatnonzero(np.bincount(env)).tolist():  # places present, ascending
        sel = env == e
        offset[sel] = world.radios[e].pair_offsets(rng, int(sel.sum()))
    a0 = np.array([r.a0 for r in world.radios])
    slope = np.array([10.0 * r.n for r in world.radios])
    s_scan = np.array([r.s_scan for r in world.radios])
    thr = np.array([r.threshold for r in world.radios])
    dist = np.maximum(intervals["distance"].astype(np.float64), MIN_DISTANCE)
    base = a0[env] + slope[env] * np.log10(dist) + offset
    a = intervals["a"].astype(np.int64)
    b = intervals["b"].astype(np.int64)
    rx = np.concatenate([a, b])
    tx = np.concatenate([b, a])
    if sc.pair_detectable_per == "interval":
        able = rng.random(2 * m) < sc.pair_detectable
    else:
        able = hash_uniform(world.seed, PAIR_SALT, rx * world.n + tx) < sc.pair_detectable
    both = np.concatenate([env, env])
    return Links(
        interval=np.tile(np.arange(m, dtype=np.int64), 2),
        receiver=rx,
        sender=tx,
        t0=np.tile(intervals["t0"], 2),
        t1=np.tile(intervals["t1"], 2),
        mean=np.concatenate([base, base]) + world.tx_offset[tx] + world.rx_offset[rx],
        s_scan=s_scan[both],
        threshold=thr[both],
        q=np.asarray((1.0 - sc.p_loss) * able, dtype=np.float64),
    )


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
        self._start_flat = starts.ravel()
        self.cycle_length = lengths
        # Each profile's starts shifted into a band of its own: one sorted array.
        self._band = 2.0 * float(lengths.max()) + 1.0
        self._flat = (starts + self._band * np.arange(n_prof)[:, None]).ravel()
        # A look-up table for scans_before: the answer at each bucket's lower edge.
        edges = np.arange(SCAN_BUCKETS)[None, :] * (lengths / SCAN_BUCKETS)[:, None]
        self._bucket_first = np.searchsorted(
            self._flat, (edges + self._band * np.arange(n_prof)[:, None]).ravel(), side="left"
        ).astype(np.int64)
        self._bucket_scale = SCAN_BUCKETS / lengths
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
        k = _search_from(self._flat, prof * self._band + within, self._bucket_first[
            prof * SCAN_BUCKETS
            + np.clip(within * self._bucket_scale[prof], 0, SCAN_BUCKETS - 1).astype(np.int64)
        ])
        return (cycles.astype(np.int64) * SCAN_CYCLE_GAPS
                + (k - prof * SCAN_CYCLE_GAPS)).astype(np.int64)

    def scan_time(self, person: IntArray, index: IntArray) -> FloatArray:
        """Start time of scan ``index`` of ``person`` (arrays broadcast)."""
        prof = self.profile[person]
        # floor division and modulo by a power of two, as shifts (also for index < 0)
        cycles = index >> SCAN_CYCLE_BITS
        flat = (prof << SCAN_CYCLE_BITS) | (index & (SCAN_CYCLE_GAPS - 1))
        return np.asarray(self.scan_phase[person] + cycles * self.cycle_length[prof]
                          + self._start_flat[flat], dtype=np.float64)

    # -- advertising and the background ---------------------------------------------------
    def advertising_overlap(self, rx: IntArray, tx: IntArray) -> FloatArray:
        """Chance a scan of ``rx`` at a random moment overlaps ``tx``'s advertising."""
        cycle = self.adv_on[tx] + self.adv_off[tx]
        share = np.minimum(1.0, (self.adv_on[tx] + self.window[rx]) / np.maximum(cycle, 1e-9))
        return np.asarray(np.where(self.adv_off[tx] > 0, share, 1.0), dtype=np.float64)

    def always_advertising_in(self, tx: IntArray, window: FloatArray) -> BoolArray:
        """Whether every window of ``window`` s holds some advertising of ``tx``: it
        never pauses, or its pause is shorter than the window (then
        ``advertising_during`` is true at every moment, as computed there: any
        position in the cycle is below ``adv_on`` or above ``cycle - window``)."""
        on, off = self.adv_on[tx], self.adv_off[tx]
        return np.asarray((off <= 0) | ((on + off) - window < on), dtype=bool)

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


def _search_from(sorted_values: FloatArray, v: FloatArray, guess: IntArray) -> IntArray:
    """``np.searchsorted(sorted_values, v, side="left")``, walking from ``guess``.

    With a guess a step or two from the answer (``scans_before``'s bucket table)
    this is a few passes over ``v`` instead of a binary search per value; the
    walk ends where sorted_values[k - 1] < v <= sorted_values[k], which is the
    binary search's answer whatever the guess.
    """
    k = np.array(guess, dtype=np.int64)
    top = sorted_values.size
    down = np.flatnonzero((k > 0) & (sorted_values[np.maximum(k - 1, 0)] >= v))
    while down.size:
        k[down] -= 1
        down = down[(k[down] > 0) & (sorted_values[np.maximum(k[down] - 1, 0)] >= v[down])]
    up = np.flatnonzero((k < top) & (sorted_values[np.minimum(k, top - 1)] < v))
    while up.size:
        k[up] += 1
        up = up[(k[up] < top) & (sorted_values[np.minimum(k[up], top - 1)] < v[up])]
    return k


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

    def times_by_column(self, phones: PhoneArrays, sel: IntArray, width: int) -> FloatArray:
        """``times(...)`` transposed, (width, len(sel)), laid out column by column."""
        j = self.first[sel][None, :] + np.arange(width)[:, None]
        scanning = self.scanning[sel]
        if not scanning.any():
            return np.asarray(phones.beacon_phase[self.sender[sel]][None, :]
                              + j * self.beacon_interval, dtype=np.float64)
        scans = phones.scan_time(self.receiver[sel][None, :], j)
        if scanning.all():
            return scans
        beacons = phones.beacon_phase[self.sender[sel]][None, :] + j * self.beacon_interval
        return np.asarray(np.where(scanning[None, :], scans, beacons), dtype=np.float64)

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
    first = phones.scans_before(rx, t0)
    last = phones.scans_before(rx, t1)
    if use_beacon.any():  # receivers that always listen count the sender's beacons
        phase = phones.beacon_phase[tx]
        b0 = np.ceil((t0 - phase) / beacon_interval)
        b1 = np.ceil((t1 - phase) / beacon_interval)
        first = np.where(use_beacon, b0.astype(np.int64), first)
        last = np.where(use_beacon, b1.astype(np.int64), last)
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
        n_sel = sel.size
        # Times and validity are built column by column (one column per opportunity
        # index), the layout the revisit rule walks; the draws stay row by row.
        t_cols = opp.times_by_column(phones, sel, width)
        t = t_cols.T
        valid_cols = np.arange(width)[:, None] < count[pos][None, :]
        att = rng.standard_normal((n_sel, width))
        att *= links.s_scan[sel][:, None]
        att += links.mean[sel][:, None]  # mean + s_scan x N(0, 1)
        luck = rng.random((n_sel, width))
        if phones.per_os:
            chance = links.q[sel][:, None] * phones.os_factor_at(rx[:, None], tx[:, None], t)
            ok = luck < chance
        else:
            ok = luck < links.q[sel][:, None]
        ok &= att <= links.threshold[sel][:, None]
        ok &= valid_cols.T
        _advertising(phones, opp.scanning[sel], rx, tx, t=t, ok=ok)
        revisit = phones.revisit[rx]
        blocked = np.zeros(n_sel, dtype=np.int64)
        if (revisit > 0).any():
            ok_cols, blocked = _revisit_rule(t_cols, np.ascontiguousarray(ok.T), valid_cols,
                                             revisit)
            ok = np.ascontiguousarray(ok_cols.T)
        found = np.flatnonzero(ok)
        gi, ji = np.divmod(found, width)
        hits[pos] = np.bincount(gi, minlength=n_sel)
        blocked_total[pos] = blocked
        g_out.append(pos[gi])
        t_out.append(t_cols[ji, gi])
        a_out.append(att.ravel()[found])
    if not g_out:
        empty_f = np.empty(0)
        return hits, blocked_total, np.empty(0, dtype=np.int64), empty_f, empty_f
    return (hits, blocked_total, np.concatenate(g_out), np.concatenate(t_out),
            np.concatenate(a_out))


def _advertising(
    phones: PhoneArrays, scanning: BoolArray, rx: IntArray, tx: IntArray, *, t: FloatArray,
    ok: BoolArray,
) -> None:
    """Clear in ``ok`` the opportunities at ``t`` whose receiver's scan window holds
    none of the sender's advertising; rows whose windows always hold some are skipped."""
    window = np.where(scanning, phones.window[rx], 0.0)
    check = np.flatnonzero(~phones.always_advertising_in(tx, window))
    if check.size:
        ok[check] &= phones.advertising_during(tx[check][:, None], t[check],
                                               window[check][:, None])


def _revisit_rule(
    t_cols: FloatArray, ok_cols: BoolArray, valid_cols: BoolArray, revisit: FloatArray
) -> tuple[BoolArray, IntArray]:
    """Apply the revisit rule to (opportunities, rows) successes in time order: a
    success is kept only when no kept reading of the row's sender falls in the
    last ``revisit[row]`` s. Returns (kept successes, updated in ``ok_cols`` in
    place, and the opportunities blocked per row).

    Column by column in time (each row's state is the end of its last reading);
    the arrays are laid out by column, so each column is contiguous, which is
    what makes the loop cheap next to the draws.
    """
    rows = t_cols.shape[1]
    blocked = np.zeros(rows, dtype=np.int64)
    until = np.full(rows, -np.inf)
    free = np.empty(rows, dtype=bool)
    for t_col, ok_col, valid_col in zip(t_cols, ok_cols, valid_cols, strict=True):
        np.greater_equal(t_col, until, out=free)
        blocked += valid_col & ~free
        np.logical_and(ok_col, free, out=ok_col)  # in place: ok_cols holds the result
        np.copyto(until, t_col + revisit, where=ok_col)
    return ok_cols, blocked
