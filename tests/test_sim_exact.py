"""The exact engine: the real protocol objects on a virtual clock."""

from datetime import timedelta

import numpy as np
import pytest

from bluetrace.phone.core import BeaconAccepted, BeaconRejected
from bluetrace.sim.exact import EPOCH, ExactWorld, run_exact, username_of
from bluetrace.sim.fast import run_fast
from bluetrace.sim.metrics import seed_metrics
from bluetrace.sim.scenario import apply_overrides, load_scenario
from bluetrace.sim.world import World


def test_the_specifications_section_8_from_the_real_objects() -> None:
    """TempID issue, a valid then an expired beacon, the upload and the
    server's contact checking, on the built-in three-phone scenario."""
    scenario = load_scenario("spec")
    sim = ExactWorld(World.build(scenario, 1), scenario)
    sim.server_output = []
    sim.clock.advance_to(18 * 3600.0)  # 18:00:00 on 14/05/2020
    sim.log_in_everyone()
    sender, receiver = 1, 2
    window = sim.phones[sender].tempid
    assert window is not None
    assert window.expiry - window.start == timedelta(minutes=14, seconds=59)
    assert sim.server_output[:2] == [
        f"user: {username_of(0)}",
        f"TempID: {sim.phones[0].tempid.tempid}",  # type: ignore[union-attr]
    ]
    assert f"user: {username_of(sender)}" in sim.server_output

    sim.clock.advance_to(sim.clock.t + 60)
    assert sim.deliver(sender, receiver, 60.0)  # valid: stored
    beacon = sim.phones[sender].make_beacon(sim.clock.t)
    sim.clock.advance_to(sim.clock.t + 15 * 60)  # the window has passed
    sim.phones[receiver].receive_beacon(beacon, ("10.0.0.1", 8000), sim.clock.t)
    (event,) = sim.phones[receiver].next_events()
    assert isinstance(event, BeaconRejected)
    assert event.at == EPOCH + timedelta(hours=18, minutes=16)

    sim.server_output.clear()
    sim.upload(receiver)
    assert sim.upload_replies[receiver] == 1
    assert sim.server_output == [
        f"received contact log from {username_of(receiver)}",
        f"{window.tempid},",
        f"{window.start_text},",
        f"{window.expiry_text};",
        "Contact log checking",
        f"{username_of(sender)},",
        f"{window.start_text},",
        f"{window.tempid};",
    ]
    assert sim.named() == {receiver: np.array([sender])}


def test_entries_leave_the_log_through_the_phones_own_timers() -> None:
    scenario = load_scenario("spec")  # 3-minute retention
    sim = ExactWorld(World.build(scenario, 1), scenario)
    sim.log_in_everyone()
    assert sim.deliver(0, 1, 60.0)
    assert len(sim.stores[1].entries) == 1
    sim.run_until(179.0)
    assert len(sim.stores[1].entries) == 1
    sim.run_until(181.0)
    assert sim.stores[1].entries == []


def test_phones_refresh_their_tempids_through_the_server() -> None:
    scenario = load_scenario("spec")
    sim = ExactWorld(World.build(scenario, 1), scenario)
    sim.log_in_everyone()
    first = sim.phones[0].tempid
    sim.run_until(2 * 900.0)
    assert sim.phones[0].tempid != first
    assert len(sim.tempid_store.records) >= 3 * 3  # every phone, every 14 minutes
    assert sim.counters.tempid_requests == len(sim.tempid_store.records)


@pytest.mark.parametrize(
    ("name", "overrides"),
    [("office", []), ("spec", []), ("office", ["p_loss=0.3", "uptake=0.7"]),
     # scan windows, randomised gaps, advertising off-time, background spells, per-pair
     # detectability: everything the phones decide
     ("office", ["profiles.opentrace-ios.background_share=0.5",
                 "profiles.opentrace-ios.background_spell=900",
                 "profiles.opentrace-android.adv_off=60",
                 "profiles.opentrace-android.scan_window=4", "pair_detectable=0.7"])],
)
def test_the_two_engines_agree_on_a_shared_scenario(name: str, overrides: list[str]) -> None:
    """Both draw the radio the same way; the exact engine then runs every
    reception through the real phone, and the upload through the real server.
    Same seed, so the same receptions: the health authority must name the
    same people, and the metrics must agree."""
    scenario = apply_overrides(load_scenario(name), overrides)
    world = World.build(scenario, 3)
    fast = run_fast(world, scenario, np.random.default_rng([3, 2]))
    exact = run_exact(world, scenario, np.random.default_rng([3, 2]))
    exact.check()
    assert exact.beacons_sent == fast.beacons_sent
    assert exact.beacons_received == fast.beacons_received
    assert exact.extra["beacons_rejected_by_phones"] == 0
    assert exact.named.keys() == fast.named.keys()
    for person, named in fast.named.items():
        assert np.array_equal(exact.named[person], named)
    assert exact.pair_days == fast.pair_days
    fast_metrics, exact_metrics = seed_metrics(world, fast), seed_metrics(world, exact)
    assert exact_metrics["detection"] == fast_metrics["detection"]
    assert exact_metrics["detection"]["log"]  # not two empty tables
    assert exact_metrics["continuity"] == fast_metrics["continuity"]


def test_a_world_too_large_for_the_exact_engine_is_refused_clearly() -> None:
    scenario = apply_overrides(load_scenario("office"), ["uptake=1.0"])
    world = World.build(scenario, 1)
    from bluetrace.sim import exact  # noqa: PLC0415

    limit = exact.MAX_PHONES
    exact.MAX_PHONES = 5  # type: ignore[misc]
    try:
        with pytest.raises(ValueError, match="use the fast engine"):
            ExactWorld(world, scenario)
    finally:
        exact.MAX_PHONES = limit  # type: ignore[misc]


def test_the_beacon_is_accepted_only_in_its_window() -> None:
    scenario = load_scenario("spec")
    sim = ExactWorld(World.build(scenario, 1), scenario)
    sim.log_in_everyone()
    events = []
    sim.phones[1].receive_beacon(sim.phones[0].make_beacon(0.0), ("10.0.0.0", 8000), 0.0)
    events += sim.phones[1].next_events()
    assert isinstance(events[0], BeaconAccepted)
