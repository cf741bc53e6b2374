"""Results split by the pair of phone profiles (OS) of the two people in a contact.

Centralised apps such as BlueTrace publish, per OS pair, how often a contact is
seen by both phones, by one or by neither; a tracer that pools both phones'
logs recovers more than either log alone. Here every pair of profiles gets a
label ``"A|B"`` (names sorted, so ``A`` is the *first* profile) and:

* pair-days (both with the app) logged by both phones, by the first profile's
  phone only, by the second's only, or by neither (counted by the engines for
  every pair, ``count_pair_days``);
* from those, the per-direction detection estimates: with S both-sided and A
  one-sided pair-days, 2S / (2S + A) estimates p when both directions hear with
  the same p (P(both) = p^2, P(one) = 2p(1-p)); for two profiles with p1 and p2,
  S / (S + second only) estimates p1 (the first profile hearing the second) and
  S / (S + first only) estimates p2;
* recall of true contacts (the scenario's primary rule) through the infected
  person's uploaded log, and either-side recall (the infected person's log or
  the contact's log holds the other; counted where the contact's detections are
  recorded, which is every phone in worlds up to 2,000 people);
* continuity one-way (a directed pair's share of co-located 30-s windows with a
  reception) and either-phone (an unordered pair's share of windows in which
  either phone heard the other), for pairs whose phones are both recorded.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt

from bluetrace.sim.arrays import member, uniq, uniq_inverse
from bluetrace.sim.stats import mean_estimate, ratio_estimate
from bluetrace.sim.world import World

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Pair-day outcomes, in the order the count arrays hold them.
KINDS: Final = ("both", "first_only", "second_only", "none")
#: Continuity window (s), as in metrics.WINDOW (Herald's 30 s).
WINDOW: Final = 30.0
#: Unordered pairs measured for continuity by profile pair (a fixed sample beyond:
#: 500 pairs put a share within about +-2 points, and keep the metrics quick).
MAX_PAIRS: Final = 500


def label(names: list[str], first: int, second: int) -> str:
    """``"A|B"`` for profile indices ``first`` and ``second`` (names sorted)."""
    a, b = sorted((names[first], names[second]))
    return f"{a}|{b}"


class PairDayCounter:
    """Pair-days logged both ways / one way / not at all, in total and per profile
    pair; both engines feed it the same way, so they report the same counts."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.names = list(world.profile_names)
        size = len(self.names)
        # rank of each profile index by name: the "first" of a pair sorts first
        self.rank = np.argsort(np.argsort(np.asarray(self.names)))
        self.counts = np.zeros((size, size, len(KINDS)), dtype=np.int64)
        self.totals = {"both": 0, "one": 0, "none": 0}

    def add(self, iv: npt.NDArray[np.void], heard: BoolArray) -> None:
        """One day's intervals (both phones with the app) and ``heard`` per directed
        link (rows 0..m-1: a heard b; m..2m-1: b heard a)."""
        m = iv.size
        if m == 0:
            return
        n = self.world.n
        keys, inverse = uniq_inverse(iv["a"].astype(np.int64) * n + iv["b"])
        ab = np.bincount(inverse, weights=heard[:m]) > 0
        ba = np.bincount(inverse, weights=heard[m:]) > 0
        self.totals["both"] += int(np.sum(ab & ba))
        self.totals["one"] += int(np.sum(ab ^ ba))
        self.totals["none"] += int(np.sum(~ab & ~ba))
        profile = self.world.profile.astype(np.int64)
        pa, pb = profile[keys // n], profile[keys % n]
        swap = self.rank[pa] > self.rank[pb]
        first_heard = np.where(swap, ba, ab)
        second_heard = np.where(swap, ab, ba)
        lo, hi = np.where(swap, pb, pa), np.where(swap, pa, pb)
        kind = np.where(first_heard & second_heard, 0,
                        np.where(first_heard, 1, np.where(second_heard, 2, 3)))
        size = len(self.names)
        flat = (lo * size + hi) * len(KINDS) + kind
        self.counts += np.bincount(flat, minlength=self.counts.size).reshape(self.counts.shape)

    def by_label(self) -> dict[str, dict[str, int]]:
        """Counts per profile-pair label (pairs that met at all)."""
        out: dict[str, dict[str, int]] = {}
        size = len(self.names)
        for i in range(size):
            for j in range(size):
                row = self.counts[i, j]
                if row.sum() == 0:
                    continue
                key = label(self.names, i, j)
                cell = out.setdefault(key, dict.fromkeys(KINDS, 0))
                for kind, value in zip(KINDS, row.tolist(), strict=True):
                    cell[kind] += int(value)
        return out


def _labels_of(world: World, first: IntArray, second: IntArray) -> list[str]:
    names = list(world.profile_names)
    prof = world.profile.astype(np.int64)
    return [label(names, int(a), int(b)) for a, b in zip(prof[first], prof[second],
                                                         strict=True)]


def _tally(labels: list[str], hit: BoolArray) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for lab, h in zip(labels, hit.tolist(), strict=True):
        cell = out.setdefault(lab, {"tp": 0, "true": 0})
        cell["true"] += 1
        cell["tp"] += int(h)
    return out


def recall_by_pair(
    world: World, truth: IntArray, named: IntArray, detections: npt.NDArray[np.void],
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """(log recall counts, either-side recall counts) per profile-pair label.

    ``truth`` and ``named`` are sorted keys ``infected * n + contact``. Either
    side: named, or the contact logged the infected person within the upload's
    retention window; counted over true contacts whose phone is recorded.
    """
    n = world.n
    sc = world.scenario
    infected, contact = np.divmod(truth, n)
    log = _tally(_labels_of(world, infected, contact), member(truth, named))
    det = detections
    up = sc.upload_time
    window = (det["t"] <= up) & (det["t"] >= up - sc.retention)
    reverse = uniq(det["sender"][window].astype(np.int64) * n + det["receiver"][window])
    eligible = world.recorded[contact]
    either_hit = member(truth, named) | member(truth, reverse)
    either = _tally(_labels_of(world, infected[eligible], contact[eligible]),
                    either_hit[eligible])
    return log, either


def continuity_by_pair(
    world: World, detections: npt.NDArray[np.void], iv: npt.NDArray[np.void],
) -> dict[str, dict[str, list[float]]]:
    """Per label: ``one_way`` shares (each direction of a pair) and ``either`` shares
    (the pair) of co-located 30-s windows with a reception, for pairs whose two
    phones are recorded and run the app (at most MAX_PAIRS pairs, a fixed sample)."""
    n = world.n
    both = world.app[iv["a"]] & world.app[iv["b"]] & world.recorded[iv["a"]] \
        & world.recorded[iv["b"]]
    iv = iv[both]
    pairs = uniq(iv["a"].astype(np.int64) * n + iv["b"])
    if pairs.size > MAX_PAIRS:
        rng = np.random.default_rng([world.seed, 4])
        pairs = np.sort(rng.choice(pairs, MAX_PAIRS, replace=False))
    if pairs.size == 0:
        return {}
    key = iv["a"].astype(np.int64) * n + iv["b"]
    keep = member(key, pairs)
    key, t0, t1 = key[keep], iv["t0"][keep], iv["t1"][keep]
    w0 = np.floor(t0 / WINDOW).astype(np.int64)
    w1 = np.ceil(t1 / WINDOW).astype(np.int64)
    lengths = np.maximum(w1 - w0, 0)
    rep = np.repeat(np.arange(key.size), lengths)
    offs = np.arange(rep.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    windows = uniq(key[rep] * (1 << 24) + (w0[rep] + offs))
    det = detections
    rx = det["receiver"].astype(np.int64)
    tx = det["sender"].astype(np.int64)
    unordered = np.minimum(rx, tx) * n + np.maximum(rx, tx)
    mine = member(unordered, pairs)
    slot = np.floor(det["t"][mine] / WINDOW).astype(np.int64)
    first_hears = rx[mine] < tx[mine]  # the lower id heard the higher
    wkey = unordered[mine] * (1 << 24) + slot
    heard_lo = uniq(wkey[first_hears])
    heard_hi = uniq(wkey[~first_hears])
    heard_lo = heard_lo[member(heard_lo, windows)]
    heard_hi = heard_hi[member(heard_hi, windows)]
    heard_any = uniq(np.concatenate([heard_lo, heard_hi]))

    def per_pair(keys: IntArray) -> IntArray:
        return np.bincount(np.searchsorted(pairs, keys >> 24), minlength=pairs.size)

    total = np.maximum(per_pair(windows), 1)
    shares_lo = per_pair(heard_lo) / total
    shares_hi = per_pair(heard_hi) / total
    shares_any = per_pair(heard_any) / total
    a, b = np.divmod(pairs, n)
    out: dict[str, dict[str, list[float]]] = {}
    for lab, lo, hi, anyway in zip(_labels_of(world, a, b), shares_lo.tolist(),
                                   shares_hi.tolist(), shares_any.tolist(), strict=True):
        cell = out.setdefault(lab, {"one_way": [], "either": []})
        cell["one_way"] += [lo, hi]
        cell["either"].append(anyway)
    return out


def seed_by_pair(
    world: World, *, pair_days: dict[str, dict[str, int]] | None, truth: IntArray,
    named: IntArray, detections: npt.NDArray[np.void], iv: npt.NDArray[np.void],
) -> dict[str, dict[str, Any]]:
    """One seed's raw counts and shares per profile-pair label."""
    log, either = recall_by_pair(world, truth, named, detections)
    cont = continuity_by_pair(world, detections, iv)
    labels = sorted(set(log) | set(either) | set(cont) | set(pair_days or {}))
    out: dict[str, dict[str, Any]] = {}
    for lab in labels:
        out[lab] = {
            "pair_days": dict((pair_days or {}).get(lab, dict.fromkeys(KINDS, 0))),
            "recall": log.get(lab, {"tp": 0, "true": 0}),
            "either_recall": either.get(lab, {"tp": 0, "true": 0}),
            "continuity": cont.get(lab, {"one_way": [], "either": []}),
        }
    return out


def continuity_estimate(lists: list[list[float]]) -> dict[str, Any]:
    """As the headline continuity: over seeds with three or more, else over pairs."""
    means = np.array([np.mean(v) if v else np.nan for v in lists])
    if len(lists) >= 3:
        return mean_estimate(means).as_dict()
    pooled = np.concatenate([np.asarray(v, float) for v in lists]) if lists else np.empty(0)
    if pooled.size >= 3:
        est = mean_estimate(pooled).as_dict()
        est["method"] = "bootstrap over pairs"
        return est
    return mean_estimate(means).as_dict()


def combine_by_pair(per_seed: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Estimates with 95 % intervals per profile-pair label, from every seed's
    ``seed_by_pair`` (the same interval methods as the headline numbers)."""
    labels = sorted({lab for seed in per_seed for lab in seed})
    out: dict[str, dict[str, Any]] = {}
    empty: dict[str, Any] = {"pair_days": dict.fromkeys(KINDS, 0), "recall": {"tp": 0, "true": 0},
                             "either_recall": {"tp": 0, "true": 0},
                             "continuity": {"one_way": [], "either": []}}
    for lab in labels:
        rows = [seed.get(lab, empty) for seed in per_seed]
        pd = [r["pair_days"] for r in rows]
        both = [d["both"] for d in pd]
        first = [d["first_only"] for d in pd]
        second = [d["second_only"] for d in pd]
        one = [f + s for f, s in zip(first, second, strict=True)]
        a, b = lab.split("|")
        out[lab] = {
            "pair_days": {k: sum(d[k] for d in pd) for k in KINDS},
            "recall": ratio_estimate([r["recall"]["tp"] for r in rows],
                                     [r["recall"]["true"] for r in rows]).as_dict(),
            "recall_counts": {k: sum(r["recall"][k] for r in rows) for k in ("tp", "true")},
            "either_recall": ratio_estimate(
                [r["either_recall"]["tp"] for r in rows],
                [r["either_recall"]["true"] for r in rows]).as_dict(),
            "seen_by_both": ratio_estimate(
                both, [s + o for s, o in zip(both, one, strict=True)]).as_dict(),
            "per_direction": ratio_estimate(
                [2 * s for s in both],
                [2 * s + o for s, o in zip(both, one, strict=True)]).as_dict(),
            f"{a}_hears_{b}": ratio_estimate(
                both, [s + o for s, o in zip(both, second, strict=True)]).as_dict(),
            f"{b}_hears_{a}": ratio_estimate(
                both, [s + o for s, o in zip(both, first, strict=True)]).as_dict(),
            "continuity_one_way": continuity_estimate(
                [r["continuity"]["one_way"] for r in rows]),
            "continuity_either": continuity_estimate(
                [r["continuity"]["either"] for r in rows]),
        }
    return out
