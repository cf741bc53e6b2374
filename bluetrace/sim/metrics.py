"""Metrics: what the health authority recovers, against ground truth, with intervals.

Per run (one seed) ``seed_metrics`` turns a ``World`` and an ``EngineResult``
into raw counts; ``combine`` pools the runs of several seeds into estimates
with 95 % confidence intervals.

Detectors (who gets named) and truths (who truly was a close contact):

* ``log`` is BlueTrace as specified: every phone whose TempID is in the
  infected person's uploaded log is named (``EngineResult.named``).
* each exposure rule (``rules.EXPOSURE_RULES``) is what a phone that also
  logged attenuation and time would decide: weighted minutes per pair and day
  from the detections of the same upload window, each reading standing for the
  time to the next reading of the same sender (at most twice the receiver's
  nominal spacing; the last one for half the nominal spacing).
* truths are the contact rules (``rules.contact_rules``: the built-in ones and
  the scenario's own) applied to the
  co-location intervals.

recall = named true contacts / true contacts; precision = named true contacts /
named. Both are pooled over infected people (an infected person without the
app names nobody, which is how uptake u enters as u^2).

Confidence intervals: with three or more seeds, a percentile bootstrap over
seeds (ratios as ratio of sums); with fewer, Wilson score intervals on the
pooled counts (which treat pairs as independent, so they are narrower than the
truth when contacts cluster).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt

from bluetrace.sim.arrays import member, uniq, uniq_inverse
from bluetrace.sim.by_profile import combine_by_pair, continuity_estimate, seed_by_pair
from bluetrace.sim.result import EngineResult
from bluetrace.sim.rules import EXPOSURE_RULES, ExposureRule, contact_rules, true_contacts
from bluetrace.sim.stats import auc, mean_estimate, ratio_estimate, roc_points
from bluetrace.sim.units import DAY
from bluetrace.sim.world import World

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

WINDOW: Final = 30.0  # seconds per continuity window (Herald)
MAX_CONTINUITY_PAIRS: Final = 2000


# -- per seed ---------------------------------------------------------------------------------


def _intervals(world: World, result: EngineResult) -> npt.NDArray[np.void]:
    if result.intervals is not None:
        return result.intervals
    return world.intervals()


def named_keys(world: World, result: EngineResult) -> IntArray:
    """Sorted keys ``infected * n + named`` of the log detector."""
    parts = [np.asarray(v, dtype=np.int64) + int(k) * world.n for k, v in result.named.items()]
    return uniq(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)


def reading_spacing(world: World) -> FloatArray:
    """Nominal seconds between two readings of the same sender, per receiver."""
    sc = world.scenario
    out = np.empty(len(world.profile_names))
    for i, name in enumerate(world.profile_names):
        p = world.phone_profiles[name]
        out[i] = sc.beacon_interval if p.listens_always else p.mean_period * (1 + p.skip_after_hit)
    return np.asarray(out[world.profile.astype(np.int64)], dtype=np.float64)


def upload_entries(world: World, result: EngineResult) -> npt.NDArray[np.void]:
    """Detections of recorded infected app users within the upload window."""
    sc = world.scenario
    det = result.detections
    up = sc.upload_time
    who = world.infected & world.app & world.recorded
    sel = who[det["receiver"]] & (det["t"] <= up) & (det["t"] >= up - sc.retention)
    out: npt.NDArray[np.void] = det[sel]
    return out


def exposure_minutes(
    world: World, entries: npt.NDArray[np.void], rule: ExposureRule
) -> tuple[IntArray, FloatArray]:
    """(keys ``receiver * n + sender``, max over days of weighted minutes) per pair."""
    if entries.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0)
    spacing = reading_spacing(world)[entries["receiver"]]
    pair = entries["receiver"].astype(np.int64) * world.n + entries["sender"]
    t = entries["t"]
    gap = np.r_[t[1:] - t[:-1], np.inf]
    last = np.r_[pair[1:] != pair[:-1], True]
    # The last reading of a run stands for half a spacing: on average the
    # co-location ends half-way to the reading that did not come.
    seconds = np.where(last, 0.5 * spacing, np.minimum(gap, 2.0 * spacing))
    weighted = rule.weighted_seconds(entries["attenuation"].astype(np.float64), seconds)
    day = np.floor(t / DAY).astype(np.int64)
    key = pair * 4096 + day
    uk, inv = uniq_inverse(key)
    minutes = np.bincount(inv, weights=weighted) / 60.0
    pairs = uk // 4096
    up, inv2 = uniq_inverse(pairs)
    best = np.zeros(up.size)
    np.maximum.at(best, inv2, minutes)
    return up, best


def _counts(truth: IntArray, named: IntArray) -> dict[str, int]:
    tp = int(np.intersect1d(truth, named, assume_unique=True).size)
    return {"tp": tp, "true": int(truth.size), "named": int(named.size)}


def seed_metrics(world: World, result: EngineResult) -> dict[str, Any]:
    """Raw counts and per-seed values of every metric for one run."""
    sc = world.scenario
    n = world.n
    iv = _intervals(world, result)
    named = named_keys(world, result)
    truths = {name: true_contacts(iv, rule, world.infected, n) for name, rule in
              contact_rules(sc.contact_rules).items()}
    detection: dict[str, dict[str, dict[str, int]]] = {"log": {}}
    for tname, truth in truths.items():
        detection["log"][tname] = _counts(truth, named)
    # Exposure rules: only infected people whose logs are recorded in detail.
    rec_inf = world.infected & world.recorded
    entries = upload_entries(world, result)
    roc: dict[str, Any] = {}
    primary = truths[sc.primary_rule]
    cand = _candidate_pairs(world, iv, rec_inf)
    labels = member(cand, primary)
    for ename, rule in EXPOSURE_RULES.items():
        keys, minutes = exposure_minutes(world, entries, rule)
        chosen = keys[rule.notifies(minutes)]
        detection[ename] = {}
        for tname, truth in truths.items():
            t_rec = truth[rec_inf[truth // n]]
            detection[ename][tname] = _counts(t_rec, chosen)
        score = np.zeros(cand.size)
        hit = member(cand, keys)
        score[hit] = minutes[np.searchsorted(keys, cand[hit])]
        fpr, tpr = roc_points(score, labels)
        roc[ename] = {"auc": auc(score, labels), "fpr": fpr.tolist(), "tpr": tpr.tolist()}
    # Pairs never heard score below every heard pair.
    closeness = np.nan_to_num(-_mean_attenuation(world, entries, cand), neginf=-1e9)
    fpr, tpr = roc_points(closeness, labels)
    roc["mean-attenuation"] = {"auc": auc(closeness, labels), "fpr": fpr.tolist(),
                               "tpr": tpr.tolist()}
    pair_days = result.pair_days if result.pair_days is not None else _pair_days(world, result, iv)
    continuity = _continuity(world, result, iv)
    by_pair = seed_by_pair(world, pair_days=result.pair_days_by_profile, truth=primary,
                           named=named, detections=result.detections, iv=iv)
    either = [v for cell in by_pair.values() for v in cell["continuity"]["either"]]
    return {
        "detection": detection,
        "roc": roc,
        "roc_positives": int(labels.sum()),
        "roc_negatives": int((~labels).sum()),
        "pair_days": pair_days,
        "continuity": continuity,
        "continuity_either": either,
        "by_profile_pair": by_pair,
        "beacons": {"sent": result.beacons_sent, "received": result.beacons_received,
                    "lost": result.beacons_lost},
        "tempids_issued": result.tempids_issued,
        "server_work": dict(result.server_work),
    }


def _candidate_pairs(
    world: World, iv: npt.NDArray[np.void], who: npt.NDArray[np.bool_]
) -> IntArray:
    """Keys ``infected * n + other`` of everyone co-located with a recorded infected person."""
    a = iv["a"].astype(np.int64)
    b = iv["b"].astype(np.int64)
    keys = np.concatenate([a[who[a]] * world.n + b[who[a]], b[who[b]] * world.n + a[who[b]]])
    return uniq(keys)


def _mean_attenuation(world: World, entries: npt.NDArray[np.void], cand: IntArray) -> FloatArray:
    """Mean logged attenuation per candidate pair (+inf when never heard)."""
    out = np.full(cand.size, np.inf)
    if entries.size == 0:
        return out
    pair = entries["receiver"].astype(np.int64) * world.n + entries["sender"]
    uk, inv = uniq_inverse(pair)
    mean = np.bincount(inv, weights=entries["attenuation"].astype(np.float64)) / np.bincount(inv)
    hit = member(cand, uk)
    out[hit] = mean[np.searchsorted(uk, cand[hit])]
    return out


def _pair_days(world: World, result: EngineResult, iv: npt.NDArray[np.void]) -> dict[str, int]:
    """Pair-days (both with the app) heard both ways / one way / not at all, from detections."""
    n = world.n
    both_app = world.app[iv["a"]] & world.app[iv["b"]]
    iv = iv[both_app]
    day = np.floor(iv["t0"] / DAY).astype(np.int64)
    pd = uniq((iv["a"].astype(np.int64) * n + iv["b"]) * 4096 + day)
    det = result.detections
    dday = np.floor(det["t"] / DAY).astype(np.int64)
    heard = uniq((det["receiver"].astype(np.int64) * n + det["sender"]) * 4096 + dday)
    a, rest = np.divmod(pd // 4096, n)
    d = pd % 4096
    ab = member((a * n + rest) * 4096 + d, heard)
    ba = member((rest * n + a) * 4096 + d, heard)
    return {"both": int(np.sum(ab & ba)), "one": int(np.sum(ab ^ ba)),
            "none": int(np.sum(~ab & ~ba))}


def _continuity(world: World, result: EngineResult, iv: npt.NDArray[np.void]) -> dict[str, Any]:
    """Share of co-located 30-s windows with at least one reception, per directed pair.

    Directed pairs (receiver recorded, both with the app), at most
    MAX_CONTINUITY_PAIRS of them, chosen by a fixed generator so the same run
    gives the same figure.
    """
    n = world.n
    sel = world.app[iv["a"]] & world.app[iv["b"]]
    iv = iv[sel]
    a = iv["a"].astype(np.int64)
    b = iv["b"].astype(np.int64)
    rx = np.concatenate([a, b])
    tx = np.concatenate([b, a])
    t0 = np.concatenate([iv["t0"], iv["t0"]])
    t1 = np.concatenate([iv["t1"], iv["t1"]])
    keep = world.recorded[rx]
    rx, tx, t0, t1 = rx[keep], tx[keep], t0[keep], t1[keep]
    pairs = uniq(rx * n + tx)
    if pairs.size > MAX_CONTINUITY_PAIRS:
        rng = np.random.default_rng([world.seed, 3])
        pairs = np.sort(rng.choice(pairs, MAX_CONTINUITY_PAIRS, replace=False))
    if pairs.size == 0:
        return {"pairs": 0, "per_pair": [], "pooled_windows": 0, "pooled_heard": 0}
    key = rx * n + tx
    m = member(key, pairs)
    key, t0, t1 = key[m], t0[m], t1[m]
    w0 = np.floor(t0 / WINDOW).astype(np.int64)
    w1 = np.ceil(t1 / WINDOW).astype(np.int64)
    lengths = np.maximum(w1 - w0, 0)
    rep = np.repeat(np.arange(key.size), lengths)
    offs = np.arange(rep.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    windows = uniq(key[rep] * (1 << 24) + (w0[rep] + offs))
    det = result.detections
    dkey = det["receiver"].astype(np.int64) * n + det["sender"]
    dm = member(dkey, pairs)
    heard = uniq(dkey[dm] * (1 << 24) + np.floor(det["t"][dm] / WINDOW).astype(np.int64))
    heard = heard[member(heard, windows)]
    total = np.bincount(np.searchsorted(pairs, windows >> 24), minlength=pairs.size)
    got = np.bincount(np.searchsorted(pairs, heard >> 24), minlength=pairs.size)
    share = got / np.maximum(total, 1)
    return {"pairs": int(pairs.size), "per_pair": share.tolist(),
            "pooled_windows": int(total.sum()), "pooled_heard": int(got.sum()),
            "pair_keys": pairs.tolist()}


# -- over seeds -------------------------------------------------------------------------------


def combine(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Estimates with 95 % intervals from the per-seed metrics of one configuration."""
    first = per_seed[0]
    out: dict[str, Any] = {"seeds": len(per_seed), "detection": {}}
    for det, by_truth in first["detection"].items():
        out["detection"][det] = {}
        for truth in by_truth:
            rows = [s["detection"][det][truth] for s in per_seed]
            tp = [r["tp"] for r in rows]
            out["detection"][det][truth] = {
                "recall": ratio_estimate(tp, [r["true"] for r in rows]).as_dict(),
                "precision": ratio_estimate(tp, [r["named"] for r in rows]).as_dict(),
                "tp": sum(tp), "true": sum(r["true"] for r in rows),
                "named": sum(r["named"] for r in rows),
            }
    out["auc"] = {name: mean_estimate(np.array([s["roc"][name]["auc"] for s in per_seed]))
                  .as_dict() for name in first["roc"]}
    pd = {k: sum(s["pair_days"][k] for s in per_seed) for k in ("both", "one", "none")}
    heard = pd["both"] + pd["one"]
    out["pair_days"] = dict(pd)
    # What phones themselves count (Smittestopp's "all"): each pair-day heard both
    # ways is in two phones' logs, so all = one-sided + 2 x both-sided.
    out["pair_days"]["phone_records"] = pd["one"] + 2 * pd["both"]
    out["seen_by_both"] = ratio_estimate(
        [s["pair_days"]["both"] for s in per_seed],
        [s["pair_days"]["both"] + s["pair_days"]["one"] for s in per_seed],
    ).as_dict()
    out["seen_by_both"]["of_pair_days_heard"] = heard
    cont_means = np.array([np.mean(s["continuity"]["per_pair"]) if s["continuity"]["pairs"]
                           else np.nan for s in per_seed])
    if len(per_seed) >= 3:
        out["continuity"] = mean_estimate(cont_means).as_dict()
    else:
        all_pairs = np.concatenate([np.asarray(s["continuity"]["per_pair"], float)
                                    for s in per_seed])
        out["continuity"] = mean_estimate(all_pairs).as_dict() if all_pairs.size >= 3 else (
            mean_estimate(cont_means).as_dict())
        if all_pairs.size >= 3:
            out["continuity"]["method"] = "bootstrap over pairs"
    out["continuity"]["pairs"] = sum(s["continuity"]["pairs"] for s in per_seed)
    out["continuity_either"] = continuity_estimate(
        [list(s.get("continuity_either", [])) for s in per_seed])
    out["by_profile_pair"] = combine_by_pair([s.get("by_profile_pair", {}) for s in per_seed])
    for group in ("beacons",):
        out[group] = {k: mean_estimate(np.array([s[group][k] for s in per_seed], float)).as_dict()
                      for k in first[group]}
    out["beacon_loss"] = ratio_estimate([s["beacons"]["lost"] for s in per_seed],
                                        [s["beacons"]["sent"] for s in per_seed]).as_dict()
    out["tempids_issued"] = mean_estimate(
        np.array([s["tempids_issued"] for s in per_seed], float)).as_dict()
    out["server_work"] = {k: mean_estimate(np.array([s["server_work"].get(k, 0)
                                                     for s in per_seed], float)).as_dict()
                          for k in first["server_work"]}
    return out
