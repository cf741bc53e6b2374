"""The fast engine and the metrics: estimators recover what the model sets.

Each property test sets a probability in the model (uptake, detectability,
datagram loss, per-scan detection) and checks that the estimator returns it
within its own 95 % interval and within a small absolute margin.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bluetrace.sim.channel import draw_links
from bluetrace.sim.fast import run_fast, tempid_counts
from bluetrace.sim.metrics import combine, seed_metrics
from bluetrace.sim.radio import normal_cdf
from bluetrace.sim.result import DETECTION_DTYPE, EngineResult
from bluetrace.sim.runs import run_seeds
from bluetrace.sim.scenario import PlaceSpec, Scenario, apply_overrides, load_scenario
from bluetrace.sim.stats import ratio_estimate, wilson
from bluetrace.sim.world import World


def _grid(**kw: object) -> Scenario:
    """40 rooms of 10 people at desks 1 m apart, 9:00-13:00, phones beaconing (assignment)."""
    place = PlaceSpec(name="room", kind="room", count=40, per_place=10, rows=2, cols=5,
                      pitch=1.0, start=9.0, end=13.0)
    sc = Scenario(name="grid", population=400, places=[place], infected=0.25,
                  profiles={"assignment": 1.0}, beacon_interval=30.0,
                  radio={"threshold": 500.0}, primary_rule="covidsafe")
    return dataclasses.replace(sc, **kw)  # type: ignore[arg-type]


def _inside(est: dict[str, float], expected: float, margin: float) -> None:
    assert est["low"] <= expected <= est["high"], (est, expected)
    assert abs(est["value"] - expected) <= margin, (est, expected)


def test_recall_is_uptake_squared_times_detectability() -> None:
    u, p = 0.6, 0.8
    _, combined = run_seeds(_grid(uptake=u, pair_detectable=p), [1, 2, 3, 4, 5, 6], "fast")
    recall = combined["detection"]["log"]["covidsafe"]["recall"]
    _inside(recall, u * u * p, 0.04)


def test_everyone_detectable_gives_full_recall() -> None:
    _, combined = run_seeds(_grid(), [1], "fast")
    cell = combined["detection"]["log"]["covidsafe"]
    assert cell["true"] > 0
    assert cell["tp"] == cell["true"]


def test_continuity_recovers_datagram_loss() -> None:
    # One beacon per aligned 30-s window: each window is heard with probability 1 - p_loss.
    _, combined = run_seeds(_grid(p_loss=0.4, infected=0.05), [3], "fast")
    _inside(combined["continuity"], 0.6, 0.01)


def test_beacon_counters_recover_the_radio_detection_probability() -> None:
    z = -0.5244005127080407  # Phi(z) = 0.3
    radio = {"a0": 40.0, "n": 2.0, "s_pair": 0.0, "s_scan": 4.0, "threshold": 40.0 + 4.0 * z}
    place = PlaceSpec(name="row", kind="room", count=30, per_place=2, rows=1, cols=2,
                      pitch=1.0, start=9.0, end=11.0)
    # Half the receivers simulated scan by scan, half by the binomial short cut.
    sc = Scenario(name="radio", population=60, places=[place], infected=0.0,
                  profiles={"assignment": 1.0}, radio=radio, record_fraction=0.5)
    run = run_fast(World.build(sc, 4))
    est = wilson(run.beacons_received, run.beacons_sent)
    assert float(normal_cdf(z)) == pytest.approx(0.3, abs=1e-6)
    _inside(est.as_dict(), 0.3, 0.01)
    assert run.beacons_sent == run.beacons_received + run.beacons_lost


def test_seen_by_both_recovers_directed_detectability() -> None:
    p = 0.7
    _, combined = run_seeds(_grid(pair_detectable=p, infected=0.05), [2], "fast")
    _inside(combined["seen_by_both"], p * p / (p * p + 2 * p * (1 - p)), 0.03)


def test_same_seed_same_result() -> None:
    sc = load_scenario("tram")
    a = run_fast(World.build(sc, 11))
    b = run_fast(World.build(sc, 11))
    assert a.detections.tobytes() == b.detections.tobytes()
    assert a.summary() | {"elapsed_s": 0} == b.summary() | {"elapsed_s": 0}
    named_a = {k: v.tolist() for k, v in a.named.items()}
    assert named_a == {k: v.tolist() for k, v in b.named.items()}
    c = run_fast(World.build(sc, 12))
    assert a.detections.tobytes() != c.detections.tobytes()


def test_spec_scenario_three_phones_and_retention() -> None:
    sc = load_scenario("spec")
    world = World.build(sc, 1)
    run = run_fast(world)
    run.check()
    assert world.intervals().size == 3
    assert run.named[0].tolist() == [1, 2]
    # Only the last 3 minutes before the upload are in the log: 18 beacons from each.
    assert run.server_work["upload_entries"] == 36
    # 20 min together, a beacon every 10 s, six directions.
    assert run.beacons_sent == 720
    assert run.beacons_lost == 0


def test_tempid_counts() -> None:
    sc = load_scenario("office")
    assert tempid_counts(sc, 10) == (96 * 10, 96 * 10)  # one per 15 min for a day
    batch = dataclasses.replace(sc, tempid_batch=100, tempid_refresh=12 * 3600.0)
    assert tempid_counts(batch, 10) == (2 * 100 * 10, 2 * 10)


def test_revisit_rule_limits_android_readings() -> None:
    sc = _grid(profiles={"opentrace-android": 1.0}, infected=0.05)
    run = run_fast(World.build(sc, 5))
    det = run.detections
    same = (det["receiver"][1:] == det["receiver"][:-1]) & (det["sender"][1:] == det["sender"][:-1])
    gaps = np.diff(det["t"])[same]
    assert gaps.size > 100
    assert gaps.min() >= 100.0


def test_metrics_on_a_hand_made_result() -> None:
    sc = _grid(infected=[0], uptake=1.0)
    world = World.build(sc, 1)
    det = np.zeros(0, dtype=DETECTION_DTYPE)
    result = EngineResult("hand", det, {0: np.array([], dtype=np.int64)}, 10, 0, 10, 0)
    result.check()
    m = seed_metrics(world, result)
    cell = m["detection"]["log"]["covidsafe"]
    assert cell["tp"] == 0
    assert cell["named"] == 0
    assert cell["true"] > 0
    assert m["pair_days"]["both"] == 0
    assert m["pair_days"]["none"] > 0
    combined = combine([m])
    assert combined["detection"]["log"]["covidsafe"]["recall"]["value"] == 0.0
    with pytest.raises(ValueError, match="received"):
        EngineResult("bad", det, {}, 10, 1, 10, 0).check()


def test_ratio_estimate_switches_to_bootstrap_with_three_seeds() -> None:
    w = ratio_estimate([5, 6], [10, 10])
    b = ratio_estimate([5, 6, 4], [10, 10, 10])
    assert w.method == "wilson"
    assert b.method == "bootstrap"
    assert b.value == pytest.approx(0.5)
    assert b.low <= 0.5 <= b.high


def test_progress_runs_over_simulated_time() -> None:
    seen: list[tuple[float, float]] = []
    sc = load_scenario("classroom")
    run_fast(World.build(sc, 1), progress=lambda done, total: seen.append((done, total)))
    done = [d for d, _ in seen]
    assert seen[0] == (0.0, sc.duration)
    assert seen[-1] == (sc.duration, sc.duration)
    assert done == sorted(done)
    assert len(seen) == sc.days + 1


def test_links_draw_matches_their_success_probability() -> None:
    sc = _grid(radio={"a0": 40.0, "n": 2.0, "s_pair": 3.0, "s_scan": 4.0, "threshold": 52.0},
               p_loss=0.25, pair_detectable=0.9)
    world = World.build(sc, 6)
    links = draw_links(world, world.intervals(), np.random.default_rng(1))
    assert links.size == 2 * world.intervals().size
    p = links.success_probability()
    rows = np.repeat(np.arange(links.size), 50)
    _, ok = links.draw(np.random.default_rng(2), rows)
    est = wilson(float(ok.sum()), float(ok.size)).as_dict()
    _inside(est, float(p.mean()), 0.01)
    # Links that cannot hear at all never succeed.
    dead = np.repeat(links.q == 0, 50)
    assert dead.any()
    assert not ok[dead].any()


@pytest.mark.parametrize("n", [1, 3, 7, 10, 29, 1000])
def test_wilson_interval_holds_its_estimate_at_the_edges(n: int) -> None:
    for k in (0, n):
        est = wilson(k, n)
        assert est.low <= est.value <= est.high
        assert est.low >= 0.0
        assert est.high <= 1.0
    mid = wilson(n / 2, n)
    assert mid.low < 0.5 < mid.high


@pytest.mark.parametrize("name", ["spec", "office", "tram", "bus"])
def test_fast_result_keeps_the_engine_contract(name: str) -> None:
    world = World.build(load_scenario(name), 2)
    result = run_fast(world)
    result.check()
    uploaders = set(np.flatnonzero(world.infected & world.app).tolist())
    assert set(result.named) == uploaders
    det = result.detections
    assert world.recorded[det["receiver"]].all()
    assert world.app[det["receiver"]].all()
    assert world.app[det["sender"]].all()
    for person, named in result.named.items():
        assert person not in named.tolist()
        assert world.app[named].all()
    assert result.tempids_issued == result.server_work["tempids_issued"]


@pytest.mark.parametrize("change", ["infected=0", "cutoff=0.5", "place.office.attendance=0"])
def test_worlds_with_nothing_to_measure_still_report(change: str) -> None:
    sc = apply_overrides(load_scenario("office"), [change])
    _, combined = run_seeds(sc, [1], "fast")
    cell = combined["detection"]["log"]["bluetrace"]
    assert cell["true"] == 0
    assert cell["recall"]["value"] is None
