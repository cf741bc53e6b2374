"""Who may hold a connection to the server, and the log lines refusals cost.

No sockets and no clock: the server asks :class:`Admission` at every accept
and tells it when a connection logs in or ends. A peer that opens thousands
of connections and never logs in (or never finishes a TLS handshake) is
the cheapest way to deny service, so connections not yet logged in are
capped per source address and server-wide, below the total, which keeps
room for sessions that log in. At a cap on connections not yet logged in,
the OLDEST of them makes way for the newcomer: an attacker's idle
connections are the old ones, a phone logs in within milliseconds, so
phones behind the same address (a NAT) still get through. Logged-in
connections are never pushed out; past the total caps a new connection is
refused.

:class:`LineSummary` keeps what such floods cost in log lines bounded: the
first few lines of an interval are shown, the rest counted by kind.
"""

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import Generic, TypeVar, cast

Key = TypeVar("Key", bound=Hashable)


@dataclass(frozen=True)
class Caps:
    """Connection caps (protocol_spec.md, section 4; the server's --help)."""

    max_connections: int = 16_384
    """Connections open at once, server-wide; past it new ones are refused."""
    per_address: int = 8_192
    """Connections open at once from one source address; past it refused."""
    unauthenticated_per_address: int = 256
    """Connections from one address not yet logged in (TLS handshakes included);
    past it, that address's oldest such connection is closed."""
    unauthenticated_share: float = 0.5
    """Share of max_connections that connections not yet logged in may hold
    together; past it the server's oldest such connection is closed."""
    handshakes_per_second: float = 50.0
    """With TLS: handshakes one address may begin per second, after a burst of
    HANDSHAKE_BURST_SECONDS' worth; past it new connections are closed at once."""

    def __post_init__(self) -> None:
        if min(self.max_connections, self.per_address, self.unauthenticated_per_address) < 1:
            raise ValueError("connection caps must be at least 1")
        if not 0 < self.unauthenticated_share <= 1:
            raise ValueError("the share of connections not logged in must be in (0, 1]")
        if self.handshakes_per_second <= 0:
            raise ValueError("the TLS handshake rate must be positive")

    @property
    def unauthenticated(self) -> int:
        """Connections not yet logged in, server-wide."""
        return max(1, int(self.max_connections * self.unauthenticated_share))


HANDSHAKE_BURST_SECONDS = 2.0
"""An address may begin this many seconds' worth of TLS handshakes at once
(phones behind one address reconnecting together after a restart)."""


class AddressRate:
    """A token bucket per source address: ``rate`` events a second after a
    burst of ``burst``. A ClientHello costs its sender nothing and the server
    a key exchange and a signature (about half a millisecond), so the server
    asks this before any TLS work and closes a connection over the rate at
    once, which costs it an accept and a close.

    At most MAX_ADDRESSES addresses are remembered; past that the one seen
    longest ago is forgotten (its bucket has had the longest to refill, so
    forgetting it gives away the least)."""

    MAX_ADDRESSES = 65_536

    def __init__(self, rate: float, burst: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate must be positive and its burst at least 1")
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        """Address -> (tokens, when last counted), least recently seen first."""

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, address: str, now: float) -> bool:
        """Whether ``address`` may begin one more now (and count it if so)."""
        tokens, then = self._buckets.pop(address, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - then) * self.rate)
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        self._buckets[address] = (tokens, now)
        if len(self._buckets) > self.MAX_ADDRESSES:
            del self._buckets[next(iter(self._buckets))]
        return allowed


@dataclass
class _Address:
    open: int = 0
    waiting: dict[object, None] = field(default_factory=dict)
    """Connections not yet logged in, oldest first (a dict keeps insertion order)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a newly accepted connection."""

    admitted: bool
    evict: tuple[object, ...] = ()
    """Older connections, not yet logged in, to close to make room."""
    reason: str = ""
    """Why it was refused, or why the evicted ones were closed."""


EVICTION_SCAN = 8
"""Connections not yet logged in looked at, oldest first, for one that may
give way: the cost of an accept stays constant however many are waiting."""


class Admission(Generic[Key]):
    """Counts of open and not-yet-logged-in connections, per address and in all.

    ``busy`` tells whether a connection not yet logged in is being answered
    (its password checked, a refusal held back): such a connection has done
    what a phone does, so it does not give way to a newcomer. Pushing it out
    would waste the work begun for it, and a client that reconnects when it
    is dropped would turn every push into another accept."""

    def __init__(self, caps: Caps, busy: Callable[[Key], bool] = lambda key: False) -> None:
        self.caps = caps
        self.busy = busy
        self.open = 0
        self._addresses: dict[str, _Address] = {}
        self._waiting: dict[object, str] = {}
        """Every connection not yet logged in, oldest first, to its address."""
        self._address_of: dict[object, str] = {}

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def admit(self, key: Key, address: str) -> Decision:
        """Whether ``key``, just accepted from ``address``, may stay; if it may,
        it counts as open and not yet logged in from now on."""
        caps = self.caps
        if self.open >= caps.max_connections:
            return Decision(False, reason="the server's connection cap")
        entry = self._addresses.get(address)
        if entry is not None and entry.open >= caps.per_address:
            return Decision(False, reason="the address's connection cap")
        evict: tuple[object, ...] = ()
        reason = ""
        if entry is not None and len(entry.waiting) >= caps.unauthenticated_per_address:
            reason = "the address's cap on connections not logged in"
            evict = self._idle(entry.waiting)
        elif len(self._waiting) >= caps.unauthenticated:
            reason = "the server's cap on connections not logged in"
            evict = self._idle(self._waiting)
        if reason and not evict:
            return Decision(False, reason=reason)
        for old in evict:
            self.gone(old)
        if entry is None:
            entry = self._addresses[address] = _Address()
        entry.open += 1
        entry.waiting[key] = None
        self._waiting[key] = address
        self._address_of[key] = address
        self.open += 1
        return Decision(True, evict, reason)

    def _idle(self, waiting: Iterable[object]) -> tuple[object, ...]:
        """The oldest of the first EVICTION_SCAN connections in ``waiting``
        that is not busy, as the one to push out; none if all are busy."""
        for key in islice(waiting, EVICTION_SCAN):
            if not self.busy(cast(Key, key)):
                return (key,)
        return ()

    def logged_in(self, key: Key) -> None:
        """``key`` logged in: it no longer counts against the caps on waiting."""
        address = self._waiting.pop(key, None)
        if address is not None:
            self._addresses[address].waiting.pop(key, None)

    def gone(self, key: object) -> None:
        """``key`` closed (or was pushed out): forget it; twice is harmless."""
        address = self._address_of.pop(key, None)
        if address is None:
            return
        self._waiting.pop(key, None)
        entry = self._addresses[address]
        entry.waiting.pop(key, None)
        entry.open -= 1
        self.open -= 1
        if entry.open <= 0:
            del self._addresses[address]


class LineSummary:
    """Log lines of one family (malformed connections, refused connections):
    the first LINES_PER_INTERVAL of each interval one line each, the rest
    counted by kind and told in one line, as failed logins are."""

    INTERVAL = 10.0
    LINES_PER_INTERVAL = 5
    MAX_ADDRESSES = 10_000

    def __init__(self, what: str) -> None:
        self.what = what
        """What a counted line is, plural ("malformed connections")."""
        self.started = float("-inf")
        self.shown = 0
        self.counts: dict[str, int] = {}
        self.addresses: set[str] = set()

    def note(self, kind: str, text: str, address: str, now: float) -> list[str]:
        """The lines to log now for one occurrence (maybe none)."""
        lines: list[str] = []
        if now - self.started >= self.INTERVAL:
            lines = self.summary(now)
            self.started, self.shown = now, 0
        if self.shown < self.LINES_PER_INTERVAL:
            self.shown += 1
            return [*lines, text]
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if len(self.addresses) < self.MAX_ADDRESSES:
            self.addresses.add(address)
        return lines

    def summary(self, now: float) -> list[str]:
        """The counts since the interval began, if any; starts a fresh count."""
        total = sum(self.counts.values())
        lines: list[str] = []
        if total:
            kinds = ", ".join(f"{count:,} {kind}" for kind, count in self.counts.items())
            lines.append(
                f"{total:,} more {self.what} not shown: {kinds}, "
                f"from {len(self.addresses):,} addresses"
            )
        self.counts = {}
        self.addresses = set()
        self.started = now
        self.shown = 0
        return lines
