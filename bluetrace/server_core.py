"""What every connection of one server shares: users, blocks, TempIDs, stores.

No sockets, files or system clock: the stores and the clock are injected,
so the same object runs behind real sockets, behind an in-memory pair in the
tests, and behind thousands of simulated phones. Per-connection protocol
(framing, the state table, timers, closing) is in ``server_connection``.
"""

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from bluetrace import wire
from bluetrace.clock import Clock
from bluetrace.messages import TempIDWindow
from bluetrace.states import Event
from bluetrace.stores import CheckRecord, CheckStore, TempIDRecord, TempIDStore

MAX_FAILURES = 3
MAX_UPLOAD_ENTRIES = 200_000
DEFAULT_TEMPID_LIFETIME = 900
DEFAULT_LOGIN_TIMEOUT = 120.0
LINGER = 2.0
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
    entries_per_call: int = 2048
    """Upload entries checked per call once the final chunk has arrived."""
    output_high_water: int = 256 * 1024
    """Unsent reply bytes (held ones included) above which reading pauses."""

    def __post_init__(self) -> None:
        if self.max_upload_entries < wire.MAX_UPLOAD_CHUNK:
            raise ValueError(f"the upload limit must be at least {wire.MAX_UPLOAD_CHUNK}")
        if self.frames_per_call < 1 or self.entries_per_call < 1:
            raise ValueError("work budgets must be at least 1")


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
    ) -> None:
        self.credentials = credentials
        self.clock = clock
        self.guard = LoginGuard(block_duration)
        self.tempids = tempids
        self.tempid_store = tempid_store
        self.check_store = check_store
        self.tempid_lifetime = tempid_lifetime
        self.limits = limits or Limits()
        self.draw_tempid = draw_tempid

    def login(self, username: str, password: str, now: float) -> Event:
        """Classify one login attempt as its row of the state table."""
        expected = self.credentials.get(username)
        if expected is None:
            return Event.LOGIN_UNKNOWN_USER
        if self.guard.is_blocked(username, now):
            return Event.LOGIN_BLOCKED
        if hmac.compare_digest(expected.encode("utf-8"), password.encode("utf-8")):
            self.guard.success(username)
            return Event.LOGIN_OK
        if self.guard.failure(username, now):
            return Event.LOGIN_BLOCKS
        return Event.LOGIN_WRONG_PASSWORD

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

    def record_checks(self, records: list[CheckRecord]) -> None:
        """Write one upload's checks as a whole (durable at the next sync)."""
        self.check_store.append_upload(records)

    def commit(self) -> OSError | None:
        """The group commit: make every record written this turn durable.
        Returns the failure, if any, for the host to report."""
        try:
            self.tempid_store.sync()
            self.check_store.sync()
        except OSError as exc:
            return exc
        return None
