"""The fast engine's quicker steps give exactly what the plain ones give.

Each shortcut (one-key interval order, bucket look-up of scans, per-link and
per-day detection ordering) is checked against the plain numpy call it
replaces, on inputs built to hit its awkward cases: ties, duplicates, links of
one pair overlapping in time, profiles whose scans all start together.
"""

from __future__ import annotations

import numpy as np

from bluetrace.sim.channel import PhoneArrays, _search_from
from bluetrace.sim.fast import _sorted_day_rows, merge_sorted_detections
from bluetrace.sim.result import DETECTION_DTYPE, sort_detections
from bluetrace.sim.scenario import apply_overrides, load_scenario
from bluetrace.sim.world import World, make_columns, start_order


def test_start_order_is_lexsort_with_ties_and_repeated_rows() -> None:
    rng = np.random.default_rng(5)
    n = 50
    size = 4000
    t0 = rng.choice(rng.uniform(0, 86400, 40), size)  # few distinct starts: many ties
    a = rng.integers(0, n, size)
    b = rng.integers(0, n, size)
    t0[:100] = t0[100:200]  # whole rows repeated: the order must be stable
    a[:100], b[:100] = a[100:200], b[100:200]
    columns = make_columns(a=a, b=b, t0=t0, t1=t0 + 10, distance=np.ones(size),
                           place=np.zeros(size), env=0)
    expected = np.lexsort((columns["b"], columns["a"], columns["t0"]))
    assert np.array_equal(start_order(columns, n), expected)
    # beyond 63 bits of key: lexsort itself
    assert np.array_equal(start_order(columns, 2**40), expected)


def test_search_from_any_guess_is_searchsorted_left() -> None:
    rng = np.random.default_rng(6)
    values = np.sort(np.concatenate([rng.uniform(0, 100, 300), np.full(50, 42.0)]))
    queries = np.concatenate([rng.uniform(-5, 105, 2000), values[::7], [42.0]])
    guesses = rng.integers(0, values.size + 1, queries.size)
    assert np.array_equal(_search_from(values, queries, guesses),
                          np.searchsorted(values, queries, side="left"))


def test_scans_before_is_the_binary_search_it_replaces() -> None:
    scenario = apply_overrides(load_scenario("office"), [
        "profiles.opentrace-android=0.4", "profiles.opentrace-ios=0.3", "profiles.gaen=0.2",
        "profiles.assignment=0.1",
    ])
    world = World.build(scenario, 3)
    phones = PhoneArrays(world, np.random.default_rng(3))
    rng = np.random.default_rng(4)
    person = rng.integers(0, world.n, 20000)
    t = rng.uniform(0, 3 * 86400, person.size)
    t[:500] = phones.scan_time(person[:500], rng.integers(0, 5000, 500))  # exactly on a scan
    prof = phones.profile[person]
    length = phones.cycle_length[prof]
    u = t - phones.scan_phase[person]
    cycles = np.floor(u / length)
    within = u - cycles * length
    k = np.searchsorted(phones._flat, prof * phones._band + within, side="left")
    expected = cycles.astype(np.int64) * 256 + (k - prof * 256)
    listens = phones.listens[person]  # their scans are unused (beacons are counted)
    assert np.array_equal(phones.scans_before(person, t)[~listens], expected[~listens])


def _detections(receiver: list[int], sender: list[int], t: list[float]) -> np.ndarray:
    rows = np.empty(len(t), dtype=DETECTION_DTYPE)
    rows["receiver"], rows["sender"], rows["t"] = receiver, sender, t
    rows["attenuation"] = np.arange(len(t))  # tells equal rows apart
    return rows


def test_per_link_ordering_is_sort_detections_even_for_overlapping_links() -> None:
    # links: 0 = (2 hears 1) from 100; 1 = (1 hears 2); 2 = (2 hears 1) from 50,
    # overlapping link 0 in time (one scan at 130 in both)
    receiver = np.array([2, 1, 2])
    sender = np.array([1, 2, 1])
    start = np.array([100.0, 0.0, 50.0])
    for link, t in ([[0, 0, 1, 2, 2], [130.0, 170.0, 10.0, 60.0, 130.0]],
                    [[0, 1, 2], [130.0, 10.0, 60.0]]):
        link_ids = np.array(link)
        times = np.array(t)
        att = np.arange(times.size, dtype=np.float64)
        got = _sorted_day_rows(receiver, sender, start, link=link_ids, t=times, attenuation=att)
        plain = _detections(receiver[link_ids].tolist(), sender[link_ids].tolist(), t)
        assert got.tobytes() == sort_detections(plain).tobytes()


def test_merging_sorted_days_is_sort_detections() -> None:
    day0 = sort_detections(_detections([1, 1, 2, 1], [2, 2, 1, 3], [5.0, 5.0, 7.0, 1.0]))
    day1 = sort_detections(_detections([1, 2, 0], [2, 1, 1], [90.0, 80.0, 99.0]))
    whole = sort_detections(np.concatenate([day0, day1]))
    assert merge_sorted_detections([day0, day1]).tobytes() == whole.tobytes()
    # a part out of time order still comes out sorted
    late = sort_detections(_detections([1], [2], [1.0]))
    assert (merge_sorted_detections([day0, late]).tobytes()
            == sort_detections(np.concatenate([day0, late])).tobytes())


def test_the_advertising_short_cut_only_skips_windows_that_always_overlap() -> None:
    scenario = apply_overrides(load_scenario("office"), [
        "profiles.opentrace-android=0.5", "profiles.assignment=0.3", "profiles.gaen=0.2",
        "profiles.opentrace-android.adv_off=9",
    ])
    world = World.build(scenario, 2)
    phones = PhoneArrays(world, np.random.default_rng(2))
    rng = np.random.default_rng(8)
    tx = rng.integers(0, world.n, 5000)
    window = rng.choice([0.0, 4.0, 8.0, 9.0, 10.0], tx.size)
    t = rng.uniform(0, 86400, (tx.size, 50))
    during = phones.advertising_during(tx[:, None], t, window[:, None]).all(axis=1)
    always = phones.always_advertising_in(tx, window)
    assert always.any()
    assert not always.all()
    assert during[always].all()
    assert not during[~always & (phones.adv_off[tx] > 0) & (window < 9.0)].all()
