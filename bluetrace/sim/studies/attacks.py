"""Experiments that need the real protocol code: V4 (uptake), replay and relay.

Each one runs real phones and a real server through the exact engine
(``exact.ExactWorld``), so acceptance is decided by the real beacon parser
and the receiving phone's validity check, and who is named by the real
server's checking of real uploads, not by a formula. The formulas are what
the results are compared with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bluetrace.phone.core import BeaconAccepted
from bluetrace.sim.exact import ExactWorld, run_exact
from bluetrace.sim.metrics import seed_metrics
from bluetrace.sim.scenario import Scenario, scenario_from_dict
from bluetrace.sim.stats import wilson
from bluetrace.sim.world import World

TEMPID_WINDOW = 900.0
"""Seconds in a TempID's validity window (start to expiry inclusive, 15 minutes)."""


# -- V4: uptake, end to end -------------------------------------------------------------
def uptake_scenario(uptake: float, p: float, rooms: int = 40) -> Scenario:
    """Rooms of ten desks 1.5 m apart for an hour, everyone infected (so every
    app user uploads), a strong radio, and each directed pair able to hear
    the other with probability ``p``: a contact is traced with probability
    u^2 x p if the machinery works."""
    return scenario_from_dict(
        {
            "name": f"uptake-{uptake:g}-{p:g}",
            "description": "V4: uptake u and detection p; everyone infected and uploading.",
            "days": 1,
            "population": rooms * 10,
            "uptake": uptake,
            "pair_detectable": p,
            "infected": 1.0,
            "profiles": {"opentrace-android": 1.0},
            "retention": 86_400.0,
            "primary_rule": "bluetrace",
            "place": [
                {
                    "name": "room",
                    "kind": "room",
                    "count": rooms,
                    "per_place": 10,
                    "rows": 2,
                    "cols": 5,
                    "pitch": 1.5,
                    "start": 9.0,
                    "end": 10.0,
                    "jitter": 0.0,
                    "radio": "open",
                }
            ],
        }
    )


@dataclass(frozen=True)
class UptakeResult:
    uptake: float
    p: float
    traced: int
    true: int
    seeds: int

    @property
    def recall(self) -> float:
        return self.traced / self.true if self.true else float("nan")

    @property
    def expected(self) -> float:
        return self.uptake**2 * self.p

    def as_dict(self) -> dict[str, Any]:
        estimate = wilson(float(self.traced), float(self.true))
        return {
            "uptake": self.uptake,
            "p": self.p,
            "seeds": self.seeds,
            "true_contacts": self.true,
            "traced": self.traced,
            "recall": self.recall,
            "recall_ci95": [estimate.low, estimate.high],
            "expected_u2p": self.expected,
        }


def uptake_end_to_end(
    uptake: float = 0.6, p: float = 0.8, seeds: int = 4, rooms: int = 40
) -> UptakeResult:
    """V4 through real uploads and the real server's checking (exact engine)."""
    scenario = uptake_scenario(uptake, p, rooms)
    traced = true = 0
    for seed in range(1, seeds + 1):
        world = World.build(scenario, seed)
        result = run_exact(world, scenario, np.random.default_rng([seed, 2]))
        counts = seed_metrics(world, result)["detection"]["log"]["bluetrace"]
        traced += int(counts["tp"])
        true += int(counts["true"])
    return UptakeResult(uptake, p, traced, true, seeds)


# -- replay ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ReplayPoint:
    delay: float
    accepted: int
    tried: int

    @property
    def rate(self) -> float:
        return self.accepted / self.tried if self.tried else float("nan")

    @property
    def analytic(self) -> float:
        return max(0.0, 1.0 - self.delay / TEMPID_WINDOW)


def _pair_world(refresh_before: float | None) -> ExactWorld:
    scenario = scenario_from_dict(
        {
            "name": "two-phones",
            "days": 1,
            "population": 2,
            "uptake": 1.0,
            "infected": [0],
            "place": [
                {"name": "room", "kind": "room", "count": 1, "per_place": 2, "rows": 1,
                 "cols": 2, "pitch": 1.0, "start": 9.0, "end": 17.0, "jitter": 0.0}
            ],
        }
    )
    world = World.build(scenario, 1)
    sim = ExactWorld(world, scenario)
    for phone in sim.phones.values():
        phone.refresh_before = refresh_before
    return sim


def replay_curve(delays: list[float], trials: int = 400, seed: int = 7) -> list[ReplayPoint]:
    """A beacon recorded at a uniformly random moment of the victim's TempID
    window, replayed ``delay`` seconds later to another real phone.

    The victim's phone takes a new TempID from the real server as each one
    expires (refresh 0 s before expiry), so its windows tile time exactly, as
    the analytic 1 - D/900 assumes."""
    rng = np.random.default_rng(seed)
    points = []
    for delay in delays:
        sim = _pair_world(refresh_before=0.0)
        sim.log_in_everyone()
        victim, target = sim.phones[0], sim.phones[1]
        accepted = 0
        for _ in range(trials):
            sim.run_until(sim.clock.t + float(rng.uniform(0.0, TEMPID_WINDOW)))
            recorded = victim.make_beacon(sim.clock.t)
            sim.run_until(sim.clock.t + delay)
            target.receive_beacon(recorded, ("10.9.9.9", 8000), sim.clock.t)
            events = target.next_events()
            accepted += int(isinstance(events[0], BeaconAccepted))
        points.append(ReplayPoint(delay, accepted, trials))
    return points


# -- relay ----------------------------------------------------------------------------
@dataclass(frozen=True)
class RelayPoint:
    relays: int
    hours: float
    false_contacts: int
    named_falsely: int

    @property
    def per_hour(self) -> float:
        return self.false_contacts / self.hours


def relay_lab(relays: list[int], people: int = 20, hours: float = 1.0, seed: int = 11,
              reach: int = 3) -> list[RelayPoint]:
    """Two offices far apart, ``people`` phones each. Each relay sits by
    ``reach`` desks in office A and ``reach`` in office B and forwards, live,
    every beacon it hears in A to the phones near it in B, every 10 s. The
    phones in B run the real validity check (a live beacon is always valid),
    store the entries, and at the end everyone in B uploads to the real
    server: every name it gives from A is a false contact."""
    rng = np.random.default_rng(seed)
    out = []
    for count in relays:
        scenario = scenario_from_dict(
            {
                "name": "relay",
                "days": 1,
                "population": 2 * people,
                "uptake": 1.0,
                "infected": 1.0,
                "retention": 86_400.0,
                "place": [
                    {"name": "A", "kind": "room", "count": 2, "per_place": people, "rows": 4,
                     "cols": (people + 3) // 4, "pitch": 2.0, "start": 9.0, "end": 17.0,
                     "jitter": 0.0}
                ],
            }
        )
        world = World.build(scenario, seed)
        sim = ExactWorld(world, scenario)
        sim.log_in_everyone()
        office_a, office_b = world.members[0][0].tolist(), world.members[0][1].tolist()
        hops = [
            (rng.choice(office_a, reach, replace=False).tolist(),
             rng.choice(office_b, reach, replace=False).tolist())
            for _ in range(count)
        ]
        false_pairs: set[tuple[int, int]] = set()
        steps = int(hours * 3600 / 10)
        for step in range(steps):
            sim.run_until(step * 10.0)
            for heard, near in hops:
                for sender in heard:
                    for receiver in near:
                        if sim.deliver(sender, receiver, 60.0):
                            false_pairs.add((receiver, sender))
        sim.run_until(hours * 3600)
        for person in office_b:
            sim.upload(person)
        named = sim.named()
        named_falsely = sum(
            int(np.isin(named.get(person, np.empty(0)), office_a).sum()) for person in office_b
        )
        out.append(RelayPoint(count, hours, len(false_pairs), named_falsely))
    return out
