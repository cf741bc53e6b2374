"""The exact engine: the real phone and server objects on a virtual clock.

Every phone is a real :class:`~bluetrace.phone.core.Phone` with its own real
:class:`~bluetrace.server.connection.ServerConnection` to one real
:class:`~bluetrace.server.core.ServerCore`; every request and reply is real
bytes through the real codec, every TempID is issued by the server and
recorded through its store, every beacon is a real 59-byte datagram through
the real beacon parser and the receiving phone's validity check, every log
entry expires through the phone's own timers, and every upload is checked by
the server. No sockets and no sleeping: a discrete-event loop (a heap) moves
one virtual clock.

Which beacons reach which phone, and when, is drawn exactly as the fast
engine draws it (``channel.draw_links`` and the same opportunity model), so
the two engines agree statistically; what differs is that here each
reception then goes through the protocol code, which is what the exact
engine is for: the health authority's answer comes from the real server's
contact checking of a real upload.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

import numpy as np
import numpy.typing as npt

from bluetrace.phone.contacts import MemoryContactStore
from bluetrace.phone.core import (
    BeaconAccepted,
    Phone,
    PhoneEvent,
    TempIDIssued,
    UploadAcknowledged,
)
from bluetrace.server.connection import Output, ServerConnection, ServerEvent
from bluetrace.server.core import Limits, ServerCore
from bluetrace.server.stores import MemoryCheckStore, MemoryTempIDStore
from bluetrace.sim.by_profile import PairDayCounter
from bluetrace.sim.channel import (
    PhoneArrays,
    draw_links,
    opportunities,
    simulate_opportunities,
)
from bluetrace.sim.fast import day_rng, day_stream_key
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
from bluetrace.testing import settle

MAX_PHONES: Final = 5000
"""More app users than this is a job for the fast engine."""
EPOCH: Final = datetime(2020, 5, 14, 0, 0, 0)
"""The virtual wall clock's midnight of day 0 (the specification's example day)."""
REFRESH_BEFORE: Final = 60.0
"""Seconds before expiry at which each phone asks for its next TempID."""
PUMP_ROUNDS: Final = 1000


class VirtualClock:
    """Both readings of one virtual time: monotonic seconds since the start,
    and the local wall clock at whole seconds from EPOCH."""

    def __init__(self, epoch: datetime = EPOCH) -> None:
        self.epoch = epoch
        self.t = 0.0
        self._second = 0
        self._wall = epoch

    def monotonic(self) -> float:
        return self.t

    def wall(self) -> datetime:
        second = int(self.t)
        if second != self._second:
            self._second = second
            self._wall = self.epoch + timedelta(seconds=second)
        return self._wall

    def advance_to(self, t: float) -> None:
        self.t = max(self.t, t)


def username_of(person: int) -> str:
    """A phone number per person: +61 4 and eight digits."""
    return f"+614{person:08d}"


@dataclass
class _Counters:
    sent: int = 0
    received: int = 0
    tempid_requests: int = 0
    uploads: int = 0
    upload_entries: int = 0
    rejected: int = 0
    detections: list[tuple[int, int, float, float]] = field(default_factory=list)


class ExactWorld:
    """The server and every app user's phone, joined by bytes, on one clock."""

    def __init__(self, world: World, scenario: Scenario) -> None:
        self.world = world
        self.scenario = scenario
        self.clock = VirtualClock()
        self.people = np.flatnonzero(world.app).astype(np.int64)
        if self.people.size > MAX_PHONES:
            raise ValueError(
                f"the exact engine runs up to {MAX_PHONES:,} phones; this world has "
                f"{self.people.size:,} app users (use the fast engine)"
            )
        self.person_of = {username_of(int(i)): int(i) for i in self.people}
        credentials = {name: f"pw{i}" for name, i in self.person_of.items()}
        self.tempid_store = MemoryTempIDStore()
        self.check_store = MemoryCheckStore()
        self.registry: dict[str, str] = {}
        unlimited = Limits(
            login_timeout=DAY,
            idle_timeout=scenario.duration + DAY,
            stall_timeout=scenario.duration + DAY,
            tempids_per_hour=1e9,
            tempid_burst=10**9,
            entries_per_hour=1e12,
            entry_burst=10**12,
            max_held_entries=10**12,
            failed_logins_per_minute=10**9,
        )
        self.core = ServerCore(
            credentials,
            60.0,
            self.clock,
            tempids=self.registry,
            tempid_store=self.tempid_store,
            check_store=self.check_store,
            tempid_lifetime=max(1, round(scenario.tempid_lifetime)),
            limits=unlimited,
        )
        self.phones: dict[int, Phone] = {}
        self.links: dict[int, ServerConnection] = {}
        self.stores: dict[int, MemoryContactStore] = {}
        for person in self.people.tolist():
            store = MemoryContactStore()
            self.stores[person] = store
            self.phones[person] = Phone(
                self.clock,
                _opener(store),
                retention=scenario.retention,
                reply_timeout=scenario.duration + DAY,
                max_contacts=10**9,
                refresh_before=REFRESH_BEFORE,
            )
            self.links[person] = ServerConnection(self.core, _address(person), 0.0)
        self.counters = _Counters()
        self.server_output: list[str] | None = None
        """Set to a list to keep the server's terminal text (tests, transcripts)."""
        self.upload_replies: dict[int, int] = {}
        self._timers: list[tuple[float, int, int]] = []
        self._armed: dict[int, float] = {}
        self._sequence = itertools.count()
        self._addresses = {person: (_ip(person), 8000) for person in self.phones}

    # -- bytes between a phone and the server -------------------------------------
    def pump(self, person: int) -> None:
        """Move bytes both ways until neither side has more to say."""
        phone, link, now = self.phones[person], self.links[person], self.clock.t
        for _ in range(PUMP_ROUNDS):
            up = phone.data_to_send()
            if up:
                link.receive_data(up, now)
            settle(link, self.core, now, self._server_event)
            down = link.data_to_send()
            if down:
                phone.receive_data(down, now)
            if not up and not down:
                break
        self.take_events(person)

    def _server_event(self, event: ServerEvent) -> None:
        if self.server_output is not None and isinstance(event, Output):
            self.server_output += event.text.split("\n")

    def take_events(self, person: int) -> list[PhoneEvent]:
        events = self.phones[person].next_events()
        for event in events:
            if isinstance(event, TempIDIssued):
                self.counters.tempid_requests += 1
            elif isinstance(event, UploadAcknowledged):
                self.upload_replies[person] = event.received
        self.arm(person)
        return events

    # -- time ---------------------------------------------------------------------
    def arm(self, person: int) -> None:
        """Keep one heap entry at the phone's nearest deadline."""
        deadline = self.phones[person].get_timer()
        if deadline is None:
            return
        armed = self._armed.get(person)
        if armed is None or deadline < armed:
            self._armed[person] = deadline
            heapq.heappush(self._timers, (deadline, next(self._sequence), person))

    def run_until(self, t: float) -> None:
        """Fire every phone timer due up to ``t``, in order, then move the clock."""
        while self._timers and self._timers[0][0] <= t:
            deadline, _, person = heapq.heappop(self._timers)
            if self._armed.get(person) != deadline:
                continue  # superseded by an earlier entry that already fired
            del self._armed[person]
            self.clock.advance_to(deadline)
            phone = self.phones[person]
            due = phone.get_timer()
            if due is not None and due <= self.clock.t:
                phone.handle_timer(self.clock.t)
                self.pump(person)
            else:
                self.arm(person)
        self.clock.advance_to(t)

    # -- the protocol's steps ------------------------------------------------------
    def log_in_everyone(self) -> None:
        for person, phone in self.phones.items():
            phone.login(username_of(person), f"pw{person}", self.clock.t)
            self.pump(person)
            phone.request_tempid(self.clock.t)
            self.pump(person)

    def deliver(self, sender: int, receiver: int, attenuation: float) -> bool:
        """One beacon from ``sender`` reaches ``receiver`` now; True if stored."""
        source = self.phones[sender]
        if source.tempid is None:
            return False
        datagram = source.make_beacon(self.clock.t)
        phone = self.phones[receiver]
        phone.receive_beacon(datagram, self._addresses[sender], self.clock.t)
        events = phone.next_events()
        # A beacon yields one event (two if the store failed), never a TempID
        # or an upload reply: only the removal deadline can have moved.
        stored = bool(events) and isinstance(events[0], BeaconAccepted)
        if not stored:
            self.counters.rejected += 1
        self.arm(receiver)
        return stored

    def upload(self, person: int) -> None:
        phone = self.phones[person]
        if phone.busy:
            return
        self.counters.upload_entries += phone.upload(self.clock.t)
        self.counters.uploads += 1
        self.pump(person)

    def named(self) -> dict[int, npt.NDArray[np.int64]]:
        """Who the server's checking named, per uploader, from its records."""
        found: dict[int, set[int]] = {}
        for records in self.check_store.uploads:
            for record in records:
                uploader = self.person_of[record.uploader]
                contacts = found.setdefault(uploader, set())
                if record.contact is not None:
                    contacts.add(self.person_of[record.contact])
        return {
            person: np.array(sorted(contacts), dtype=np.int64)
            for person, contacts in found.items()
        }


def _opener(store: MemoryContactStore) -> Callable[[str], MemoryContactStore]:
    """The phone's contact-log factory: its own store, whoever logs in."""

    def open_store(username: str) -> MemoryContactStore:
        del username
        return store

    return open_store


def _ip(person: int) -> str:
    return f"10.{(person >> 16) & 255}.{(person >> 8) & 255}.{person & 255}"


def _address(person: int) -> str:
    return f"{_ip(person)}:40000"


def run_exact(
    world: World,
    scenario: Scenario | None = None,
    rng: np.random.Generator | None = None,
    progress: Progress = no_progress,
) -> EngineResult:
    """Run ``world`` through the real protocol code (see the module docstring)."""
    started = time.perf_counter()
    sc = scenario if scenario is not None else world.scenario
    rng = rng if rng is not None else np.random.default_rng([world.seed, 2])
    sim = ExactWorld(world, sc)
    phones_model = PhoneArrays(world, rng)
    day_key = day_stream_key(rng)  # each day draws from its own stream, as in the fast engine
    total = sc.duration
    progress(0.0, total)
    sim.log_in_everyone()
    uploaders = [int(i) for i in np.flatnonzero(world.infected & world.app)]
    uploaded = False
    pair_days = PairDayCounter(world)
    kept: list[npt.NDArray[np.void]] = []
    keep = world.recorded | world.infected
    for day, day_iv in world.iter_days():
        kept.append(day_iv[keep[day_iv["a"]] | keep[day_iv["b"]]])
        iv = day_iv[world.app[day_iv["a"]] & world.app[day_iv["b"]]]
        receptions = _draw_day(sim, phones_model, iv, day_rng(day_key, day))
        heard = np.zeros(2 * iv.size, dtype=bool)
        recorded = world.recorded.tolist()
        upload_time = sc.upload_time
        columns = zip(
            receptions["t"].tolist(),
            receptions["receiver"].tolist(),
            receptions["sender"].tolist(),
            receptions["attenuation"].tolist(),
            receptions["link"].tolist(),
            strict=True,
        )
        for t, receiver, sender, attenuation, link in columns:
            if not uploaded and t > upload_time:
                sim.run_until(upload_time)
                for person in uploaders:
                    sim.upload(person)
                uploaded = True
            sim.run_until(t)
            if sim.deliver(sender, receiver, attenuation):
                sim.counters.received += 1
                heard[link] = True
                if recorded[receiver]:
                    sim.counters.detections.append((receiver, sender, t, attenuation))
        pair_days.add(iv, heard)
        sim.run_until(min((day + 1) * DAY, total))
        progress(min((day + 1) * DAY, total), total)
    if not uploaded:
        sim.run_until(sc.upload_time)
        for person in uploaders:
            sim.upload(person)
    detections = (
        np.array(sim.counters.detections, dtype=DETECTION_DTYPE)
        if sim.counters.detections
        else empty_detections()
    )
    named = sim.named()
    for person in uploaders:
        named.setdefault(person, np.empty(0, dtype=np.int64))
    issued = len(sim.tempid_store.records)
    lookups = sum(len(records) for records in sim.check_store.uploads)
    counters = sim.counters
    return EngineResult(
        engine="exact",
        detections=sort_detections(detections),
        named=named,
        beacons_sent=counters.sent,
        beacons_received=counters.received,
        beacons_lost=counters.sent - counters.received,
        tempids_issued=issued,
        server_work={
            "tempid_requests": counters.tempid_requests,
            "tempids_issued": issued,
            "uploads": counters.uploads,
            "upload_entries": counters.upload_entries,
            "lookups": lookups,
            "named": int(sum(v.size for v in named.values())),
        },
        pair_days=pair_days.totals,
        pair_days_by_profile=pair_days.by_label(),
        intervals=np.concatenate(kept) if kept else None,
        elapsed_s=time.perf_counter() - started,
        extra={
            "beacons_rejected_by_phones": float(counters.rejected),
            "phones": float(len(sim.phones)),
        },
    )


_RECEPTION = np.dtype(
    [
        ("t", np.float64),
        ("receiver", np.int64),
        ("sender", np.int64),
        ("attenuation", np.float64),
        ("link", np.int64),
    ]
)


def _draw_day(
    sim: ExactWorld, phones: PhoneArrays, iv: npt.NDArray[np.void], rng: np.random.Generator
) -> npt.NDArray[np.void]:
    """The day's receptions that the radio lets through, in time order (the
    phones then decide what to keep). Drawn as the fast engine draws them."""
    if iv.size == 0:
        return np.empty(0, dtype=_RECEPTION)
    links = draw_links(sim.world, iv, rng)
    rx, tx = links.receiver, links.sender
    opp = opportunities(phones, sim.scenario.beacon_interval, rx, tx, (links.t0, links.t1))
    rows = np.flatnonzero(opp.count > 0)
    hits, blocked, pos, t, att = simulate_opportunities(rng, phones, links, opp, rows)
    del hits
    sim.counters.sent += int(opp.count.sum() - blocked.sum())
    group = rows[pos]
    out = np.empty(t.size, dtype=_RECEPTION)
    out["t"] = t
    out["receiver"] = rx[group]
    out["sender"] = tx[group]
    out["attenuation"] = att
    out["link"] = group
    return out[np.argsort(t, kind="stable")]


__all__ = ["EPOCH", "MAX_PHONES", "ExactWorld", "VirtualClock", "run_exact"]
