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
profiles' business (``fast.PhoneArrays``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bluetrace.sim.arrays import hash_uniform, uniq
from bluetrace.sim.radio import MIN_DISTANCE, normal_cdf
from bluetrace.sim.world import World

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
#: Salt of the per-pair detectability hash (``arrays.hash_uniform``).
PAIR_SALT = 0x7061


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
    for e in uniq(env).tolist():
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
