"""What every connection of one server shares: users, blocks, TempIDs, stores.

No sockets, files or system clock: the stores and the clock are injected,
so the same object runs behind real sockets, behind an in-memory pair in the
tests, and behind thousands of simulated phones. Per-connection protocol
(framing, the state table, timers, closing) is in ``server_connection``.
"""

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from bluetrace.protocol import wire
from bluetrace.protocol.clock import Clock
from bluetrace.protocol.messages import TempIDWindow
from bluetrace.protocol.states import Event
from bluetrace.protocol.wire import ErrorCode
from bluetrace.server import passwords
from bluetrace.server.stores import (
    CheckBatch,
    CheckStore,
    CredentialStore,
    TempIDRecord,
    TempIDStore,
)

MAX_FAILURES = 3
PHONE_NUMBER = wire.PHONE_NUMBER
"""An international (E.164) phone number: the only usernames registration takes."""
MAX_UPLOAD_ENTRIES = 200_000
DEFAULT_TEMPID_LIFETIME = 900
DEFAULT_LOGIN_TIMEOUT = 120.0
LINGER = 2.0
MAX_REFUSAL_DELAY = 10.0
"""The longest --refusal-delay: well inside the phone's wait for a reply."""
"""Seconds the server waits for a client to close after its last reply."""


class TempIDRegistry(Protocol):
    """Every TempID ever issued, to its phone: a dict, or a compact equivalent."""

    def get(self, tempid: str, /) -> str | None: ...

    def __contains__(self, tempid: object, /) -> bool: ...

    def __setitem__(self, tempid: str, username: str, /) -> None: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True)
class Limits:
    """Every bound a connection works within (protocol_spec.md, section 4)."""

    login_timeout: float = DEFAULT_LOGIN_TIMEOUT
    linger: float = LINGER
    max_upload_entries: int = MAX_UPLOAD_ENTRIES
    frames_per_call: int = 32
    """Frames handled per call before the connection yields to the others."""
    entries_per_call: int = 1024
    """Upload entries checked per call once the final chunk has arrived."""
    output_high_water: int = 256 * 1024
    """Unsent reply bytes (held ones included) above which reading pauses."""
    idle_timeout: float = 3600.0
    """A logged-in connection that completes no frame for this long is closed."""
    stall_timeout: float = 60.0
    """The same, while an upload or a partial frame is held for it."""
    max_held_entries: int = 2_000_000
    """Upload entries held across every unfinished upload of the server."""
    tempids_per_hour: float = 120.0
    tempid_burst: int = 20
    entries_per_hour: float = 2_000_000.0
    entry_burst: int = 400_000
    failed_logins_per_minute: int = 30
    """Failed logins (wrong password or unknown user) one source address may make."""
    registrations_per_hour: int = 5
    """Registrations one source address may make per hour (when registration is on)."""
    hashes_per_second: float = 10.0
    """scrypt checks of hashed passwords the whole server runs per second (one
    costs about 35 ms of a worker process), after a burst of as many."""
    login_hash_share: float = 0.5
    """The share of the hashing budget registrations may not take: kept for logins."""
    refusal_delay: float = 1.0
    """Seconds a LOGIN or REGISTER refused by a rate (RATE_LIMITED) waits for its
    reply. A client that tries again as soon as it is answered (a script
    stuffing credentials, a phone in a retry loop) is then paced by the server:
    answered at once, 300 such connections cost the server thousands of
    connections a second; answered after a second, 300."""

    def __post_init__(self) -> None:
        if self.max_upload_entries < wire.MAX_UPLOAD_CHUNK:
            raise ValueError(f"the upload limit must be at least {wire.MAX_UPLOAD_CHUNK}")
        if self.frames_per_call < 1 or self.entries_per_call < 1:
            raise ValueError("work budgets must be at least 1")
        if not 0 <= self.refusal_delay <= MAX_REFUSAL_DELAY:
            raise ValueError(f"the refusal delay must be 0 to {MAX_REFUSAL_DELAY:g} seconds")


class LoginGuard:
    """Consecutive-failure counts and blocks, per username.

    Kept apart from connections on purpose: the count belongs to the user, so
    reconnecting or switching address changes nothing.
    """

    def __init__(self, block_duration: float) -> None:
        self.block_duration = block_duration
        self._failures: dict[str, int] = {}
        self._blocked_until: dict[str, float] = {}

    def is_blocked(self, username: str, now: float) -> bool:
        """Whether ``username`` is blocked at ``now``; an ended block is forgotten
        here, which also resets the count (the specification's rule)."""
        until = self._blocked_until.get(username)
        if until is None:
            return False
        if now < until:
            return True
        del self._blocked_until[username]
        self._failures.pop(username, None)
        return False

    def failure(self, username: str, now: float) -> bool:
        """Count a wrong password; True when this failure starts a block."""
        count = self._failures.get(username, 0) + 1
        if count >= MAX_FAILURES:
            self._failures.pop(username, None)
            self._blocked_until[username] = now + self.block_duration
            return True
        self._failures[username] = count
        return False

    def success(self, username: str) -> None:
        self._failures.pop(username, None)

    def failures(self, username: str) -> int:
        return self._failures.get(username, 0)


class Bucket:
    """A token bucket: ``burst`` at once, refilled at ``rate`` per second."""

    __slots__ = ("tokens", "updated")

    def __init__(self, burst: float, now: float) -> None:
        self.tokens = burst
        self.updated = now

    def take(
        self, amount: float, rate: float, burst: float, now: float, *, keep: float = 0.0
    ) -> bool:
        """Take ``amount`` if at least ``keep`` tokens are left after it."""
        self.tokens = min(burst, self.tokens + (now - self.updated) * rate)
        self.updated = now
        if amount + keep > self.tokens:
            return False
        self.tokens -= amount
        return True


class AddressGuard:
    """Events per source address (failed logins, registrations) in fixed
    windows; the table is pruned so that it stays bounded."""

    MAX_ADDRESSES = 100_000

    def __init__(self, per_minute: int, window: float = 60.0) -> None:
        self.per_minute = per_minute
        """How many events one address may have per window."""
        self.window = window
        self._windows: dict[str, tuple[float, int]] = {}

    def over_limit(self, address: str, now: float) -> bool:
        start, count = self._windows.get(address, (now, 0))
        return now - start < self.window and count >= self.per_minute

    def note(self, address: str, now: float) -> None:
        """Count one event (a failed login, a registration) for ``address``."""
        start, count = self._windows.get(address, (now, 0))
        if now - start >= self.window:
            start, count = now, 0
        self._windows[address] = (start, count + 1)
        if len(self._windows) > self.MAX_ADDRESSES:
            self._windows = {
                key: value
                for key, value in self._windows.items()
                if now - value[0] < self.window
            }


class LoginLog:
    """Failed logins for the server's log: the first few of each interval
    one line each, the rest counted and summarised, so that a flood of
    probes is visible without flooding the log."""

    INTERVAL = 10.0
    LINES_PER_INTERVAL = 5

    def __init__(self) -> None:
        self.started = float("-inf")
        self.shown = 0
        self.unknown = 0
        self.wrong = 0
        self.limited = 0
        self.addresses: set[str] = set()

    def note(self, kind: str, text: str, address: str, now: float) -> list[str]:
        lines = self.summary(now) if now - self.started >= self.INTERVAL else []
        if now - self.started >= self.INTERVAL:
            self.started, self.shown = now, 0
        if self.shown < self.LINES_PER_INTERVAL:
            self.shown += 1
            return [*lines, text]
        if kind == "unknown":
            self.unknown += 1
        elif kind == "wrong":
            self.wrong += 1
        else:
            self.limited += 1
        if len(self.addresses) < 10_000:
            self.addresses.add(address)
        return lines

    def summary(self, now: float) -> list[str]:
        """The counts since the interval began, if any, and a fresh count."""
        total = self.unknown + self.wrong + self.limited
        if not total:
            return []
        line = (
            f"{total:,} more failed logins not shown: {self.unknown:,} unknown users, "
            f"{self.wrong:,} wrong passwords, {self.limited:,} refused as rate-limited, "
            f"from {len(self.addresses):,} addresses"
        )
        self.unknown = self.wrong = self.limited = 0
        self.addresses = set()
        self.started = now
        self.shown = 0
        return [line]


def random_tempid() -> str:
    return f"{secrets.randbelow(10**20):020d}"


class ServerCore:
    """The health authority's shared state and rules."""

    def __init__(
        self,
        credentials: dict[str, str],
        block_duration: float,
        clock: Clock,
        *,
        tempids: TempIDRegistry,
        tempid_store: TempIDStore,
        check_store: CheckStore,
        tempid_lifetime: int = DEFAULT_TEMPID_LIFETIME,
        limits: Limits | None = None,
        draw_tempid: Callable[[], str] = random_tempid,
        credential_store: CredentialStore | None = None,
        offload_hashing: bool = False,
    ) -> None:
        self.credentials = credentials
        self.offload_hashing = offload_hashing
        """Whether connections ask their host to hash (``NeedsWork``, answered
        by ``work_done``: the server's worker processes) instead of hashing
        in the call (the in-memory hosts, which may block)."""
        self.clock = clock
        self.guard = LoginGuard(block_duration)
        self.tempids = tempids
        self.tempid_store = tempid_store
        self.check_store = check_store
        self.tempid_lifetime = tempid_lifetime
        self.limits = limits or Limits()
        self.draw_tempid = draw_tempid
        self.addresses = AddressGuard(self.limits.failed_logins_per_minute)
        self.login_log = LoginLog()
        self.held_entries = 0
        """Entries held by every unfinished upload: bounded by max_held_entries."""
        self._tempid_buckets: dict[str, Bucket] = {}
        self._entry_buckets: dict[str, Bucket] = {}
        self._hash_bucket = Bucket(self.limits.hashes_per_second, 0.0)
        self.credential_store = credential_store
        """Where registrations go; None: registration is off."""
        self._registrations = AddressGuard(self.limits.registrations_per_hour, window=3600.0)
        self._registering: set[str] = set()
        """Numbers whose registration is being hashed: a second one is TAKEN."""
        self.registered_since_read: list[tuple[str, str]] | None = None
        """While a reload is checking the file it read: users registered
        since, which the reload keeps (their lines came after its read)."""
        self._check_line: dict[object, None] = {}
        """Connections whose upload waits to be checked, first in front (ordered)."""

    def login(self, username: str, password: str, address: str, now: float) -> Event:
        """Classify one login attempt as its row of the state table, checking
        a hashed password here and now (hosts that may block: tests, the
        simulator). The server's connections use :meth:`begin_login` and
        :meth:`end_login` with the check in a worker process in between."""
        outcome = self.begin_login(username, address, now)
        if isinstance(outcome, Event):
            return outcome
        return self.end_login(username, address, passwords.verify(outcome, password), now)

    def begin_login(self, username: str, address: str, now: float) -> Event | str:
        """Everything about a login but the password check: the row of the
        state table if it is decided without one, else the stored hash to
        check the typed password against (a token of the hashing budget has
        been taken for it). Plain passwords come back as they are too: the
        caller compares them at once (``passwords.needs_hashing``)."""
        if self.addresses.over_limit(address, now):
            return Event.LOGIN_RATE_LIMITED
        expected = self.credentials.get(username)
        if expected is None:
            self.addresses.note(address, now)
            return Event.LOGIN_UNKNOWN_USER
        if self.guard.is_blocked(username, now):
            return Event.LOGIN_BLOCKED
        if passwords.needs_hashing(expected):
            rate = self.limits.hashes_per_second
            if not self._hash_bucket.take(1, rate, rate, now):
                return Event.LOGIN_HASH_BUDGET
        return expected

    def end_login(self, username: str, address: str, matched: bool, now: float) -> Event:
        """The verdict of the check :meth:`begin_login` asked for, counted.
        A block that began while the check ran wins over a match."""
        if self.guard.is_blocked(username, now):
            return Event.LOGIN_BLOCKED
        if matched:
            self.guard.success(username)
            return Event.LOGIN_OK
        self.addresses.note(address, now)
        if self.guard.failure(username, now):
            return Event.LOGIN_BLOCKS
        return Event.LOGIN_WRONG_PASSWORD

    def register(self, username: str, password: str, address: str, now: float) -> Event:
        """Classify (and, if new, record) one registration, hashing here and
        now (see :meth:`login`). OSError if the line could not be written:
        then nobody was added."""
        refusal = self.begin_register(username, address, now)
        if refusal is not None:
            return refusal
        return self.end_register(username, passwords.hash_password(password))

    def begin_register(self, username: str, address: str, now: float) -> Event | None:
        """Every check of a registration that needs no hashing, cheapest and
        most telling first; None when the password is to be hashed (a token
        of the hashing budget has been taken, and the number is held for
        this registration until :meth:`end_register` or
        :meth:`drop_register`).

        Every REGISTER counts toward the address's hourly limit, malformed
        or taken ones too: otherwise a flood of them would be free. And a
        registration may take a hashing token only while a share of the
        budget (``login_hash_share``) is left, so that registrations cannot
        keep hashed users from logging in."""
        if self.credential_store is None:
            return Event.REGISTER_CLOSED
        if self._registrations.over_limit(address, now):
            return Event.REGISTER_LIMITED
        self._registrations.note(address, now)
        if PHONE_NUMBER.fullmatch(username) is None:
            return Event.REGISTER_INVALID
        if username in self.credentials or username in self._registering:
            return Event.REGISTER_TAKEN
        rate = self.limits.hashes_per_second
        keep = rate * self.limits.login_hash_share
        if not self._hash_bucket.take(1, rate, rate, now, keep=keep):
            return Event.REGISTER_LIMITED
        self._registering.add(username)
        return None

    def end_register(self, username: str, stored: str) -> Event:
        """Record the hashed line of a registration :meth:`begin_register`
        let through; it becomes durable with the group commit, before the
        reply. OSError if it could not be written: nobody was added."""
        self._registering.discard(username)
        if username in self.credentials:
            return Event.REGISTER_TAKEN  # a reload brought the number meanwhile
        if self.credential_store is None:
            return Event.REGISTER_CLOSED
        self.credential_store.append(username, stored)
        self.credentials[username] = stored
        if self.registered_since_read is not None:
            self.registered_since_read.append((username, stored))
        return Event.REGISTER_OK

    def drop_register(self, username: str) -> None:
        """A registration let through will not be recorded (its connection
        went, or its hashing failed): the number is free again."""
        self._registering.discard(username)

    def may_issue_tempid(self, username: str, now: float) -> bool:
        """The user's TempID rate: a burst, then tempids_per_hour."""
        limits = self.limits
        bucket = self._tempid_buckets.setdefault(username, Bucket(limits.tempid_burst, now))
        return bucket.take(1, limits.tempids_per_hour / 3600.0, limits.tempid_burst, now)

    def reserve_entries(self, username: str, count: int, now: float) -> ErrorCode | None:
        """Hold ``count`` more upload entries for ``username``; the refusal's
        code when the user's entry rate or the server's budget forbids it."""
        limits = self.limits
        if self.held_entries + count > limits.max_held_entries:
            return ErrorCode.BUSY
        bucket = self._entry_buckets.setdefault(username, Bucket(limits.entry_burst, now))
        if not bucket.take(count, limits.entries_per_hour / 3600.0, limits.entry_burst, now):
            return ErrorCode.RATE_LIMITED
        self.held_entries += count
        return None

    def release_entries(self, count: int) -> None:
        self.held_entries = max(0, self.held_entries - count)

    def issue_tempid(self, username: str) -> TempIDWindow:
        """Draw a fresh TempID and write its record (durable at the next sync).

        OSError if the record could not be written: then nothing was issued.
        """
        tempid = self.draw_tempid()
        while tempid in self.tempids:
            tempid = self.draw_tempid()
        start = self.clock.wall()
        window = TempIDWindow(tempid, start, start + timedelta(seconds=self.tempid_lifetime - 1))
        self.tempid_store.append(TempIDRecord(username, window))
        self.tempids[tempid] = username
        return window

    def start_checks(self, owner: object, count: int) -> CheckBatch | None:
        """The record of ``owner``'s upload of ``count`` entries, once it is
        ``owner``'s turn; None until then (ask again on a later loop turn).

        The check log is written one upload at a time, a slice per turn, so
        uploads take turns, first come first served. The queue holds at most
        one place per connection; ``end_checks`` gives the place up.
        """
        line = self._check_line
        line.setdefault(owner, None)
        if next(iter(line)) is not owner:
            return None
        return self.check_store.new_batch(count)

    def end_checks(self, owner: object) -> None:
        """``owner``'s upload is recorded or dropped: the next one may start."""
        self._check_line.pop(owner, None)

    def commit(self) -> OSError | None:
        """The group commit: make every record written this turn durable.
        Returns the failure, if any, for the host to report."""
        try:
            self.tempid_store.sync()
            self.check_store.sync()
            if self.credential_store is not None:
                self.credential_store.sync()
        except OSError as exc:
            return exc
        return None
