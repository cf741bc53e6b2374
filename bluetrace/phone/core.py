"""The phone's protocol, as an object with no terminal, sockets or clock.

A typed API in (``login``, ``request_tempid``, ``upload``, ``logout``,
``receive_data``, ``receive_beacon``, ``make_beacon``, ``handle_timer``),
bytes and typed events out. The terminal program turns commands into these
calls and events into the specification's texts; the simulator drives
thousands of these objects in one process on a virtual clock. The contact
log's file is an injected store.
"""

import enum
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from bluetrace.protocol import wire
from bluetrace.protocol.clock import Clock
from bluetrace.protocol.errors import LocalProtocolError, ProtocolError
from bluetrace.protocol.framing import FrameDecoder, _NeedData
from bluetrace.protocol.messages import (
    ErrorReply,
    LoginReply,
    LoginRequest,
    LogoutReply,
    LogoutRequest,
    Message,
    RegisterReply,
    RegisterRequest,
    TempIDReply,
    TempIDRequest,
    TempIDWindow,
    UploadReply,
    UploadRequest,
    decode_beacon,
    encode,
    encode_beacon,
    moment_key,
)
from bluetrace.protocol.wire import ErrorCode, LoginStatus, RegisterStatus

DEFAULT_RETENTION = 180.0
DEFAULT_REPLY_TIMEOUT = 30.0
DEFAULT_MAX_CONTACTS = 200_000
"""As many entries as one upload may hold: more could never be uploaded.

A full log keeps the newest contacts, the ones a tracer needs: each new
contact replaces the oldest entry (protocol_spec.md, section 5), the user is
told once per episode of fullness, and an upload says how many entries it
left out."""
LEFT_OUT_RUNS = 1024
"""Entries pushed out of a full log are counted in runs of arrival time, at
most this many per retention period, so the count an upload reports costs
bounded memory however long a flood lasts; it may include entries up to
1/1024 of the retention past their expiry."""
DEFAULT_REWRITE_INTERVAL = 1.0
"""Removals from the contact-log file are batched into at most one rewrite
per interval, so a flood of expiring entries costs one rewrite a second,
not one per entry."""
Address = tuple[str, int]


class ContactStore(Protocol):
    """Where a phone keeps its contact log (``<username>_contactlog.txt``)."""

    def load(self) -> tuple[list[TempIDWindow], list[str]]:
        """Entries already stored, and a note for each line that was skipped."""

    def append(self, window: TempIDWindow) -> None:
        """Add one entry as a whole line; OSError if that failed."""

    def rewrite(self, windows: Sequence[TempIDWindow]) -> None:
        """Replace the whole log atomically; OSError if that failed."""


class MemoryContactStore:
    """A contact log in memory, for tests and the simulator."""

    def __init__(self, entries: Sequence[TempIDWindow] = ()) -> None:
        self.entries = list(entries)
        self.rewrites = 0
        self.fail = False

    def load(self) -> tuple[list[TempIDWindow], list[str]]:
        return list(self.entries), []

    def append(self, window: TempIDWindow) -> None:
        if self.fail:
            raise OSError(28, "No space left on device")
        self.entries.append(window)

    def rewrite(self, windows: Sequence[TempIDWindow]) -> None:
        if self.fail:
            raise OSError(28, "No space left on device")
        self.entries = list(windows)
        self.rewrites += 1


# -- events -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LoginResult:
    """The server's verdict; only OK leads to :class:`LoggedIn`."""

    status: LoginStatus


@dataclass(frozen=True, slots=True)
class RegisterResult:
    """The server's verdict on a registration; the phone stays logged out."""

    status: RegisterStatus


@dataclass(frozen=True, slots=True)
class LoggedIn:
    username: str
    contacts_loaded: int
    problems: tuple[str, ...]
    """A note for each contact-log line that could not be read."""


@dataclass(frozen=True, slots=True)
class TempIDIssued:
    window: TempIDWindow


@dataclass(frozen=True, slots=True)
class UploadAcknowledged:
    sent: int
    received: int
    left_out: int = 0
    """Entries received within the retention that a full log pushed out to
    make room for newer ones: they are not in this upload."""


@dataclass(frozen=True, slots=True)
class UploadRefused:
    """The server kept the connection but not the upload (too large, storage)."""

    code: ErrorCode
    text: str


@dataclass(frozen=True, slots=True)
class ServerError:
    code: ErrorCode
    text: str


@dataclass(frozen=True, slots=True)
class LoggedOut:
    pass


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The connection is over without a logout; the host closes its socket."""

    reason: str


@dataclass(frozen=True, slots=True)
class BeaconAccepted:
    window: TempIDWindow
    sender: Address
    at: datetime


@dataclass(frozen=True, slots=True)
class BeaconRejected:
    """Well formed, but the receiver's time is outside its window."""

    window: TempIDWindow
    sender: Address
    at: datetime


@dataclass(frozen=True, slots=True)
class BeaconMalformed:
    sender: Address
    reason: str


@dataclass(frozen=True, slots=True)
class BeaconIgnored:
    """Not considered at all: not logged in, or our own TempID."""

    sender: Address
    reason: str


@dataclass(frozen=True, slots=True)
class ContactLogFull:
    """The log has reached its cap: from now on each new contact replaces the
    oldest entry. Told once per episode; the episode ends when expiries bring
    the log below the cap."""

    limit: int


@dataclass(frozen=True, slots=True)
class ContactsExpired:
    count: int


@dataclass(frozen=True, slots=True)
class StoreFailed:
    reason: str
    fatal: bool = False
    """The contact log cannot be used at all: the phone is logging out."""


PhoneEvent = (
    LoginResult
    | RegisterResult
    | LoggedIn
    | TempIDIssued
    | UploadAcknowledged
    | UploadRefused
    | ServerError
    | LoggedOut
    | ConnectionClosed
    | BeaconAccepted
    | BeaconRejected
    | BeaconMalformed
    | BeaconIgnored
    | ContactLogFull
    | ContactsExpired
    | StoreFailed
)


class PhoneState(enum.Enum):
    LOGGED_OUT = "not logged in"
    LOGGED_IN = "logged in"
    CLOSED = "connection over"


class Waiting(enum.Enum):
    """The request whose reply the phone waits for (one at a time)."""

    LOGIN = "LOGIN"
    REGISTER = "REGISTER"
    TEMPID = "TEMPID_REQUEST"
    UPLOAD = "UPLOAD"
    LOGOUT = "LOGOUT"


_CLOSING_CODES: Final = frozenset(
    {ErrorCode.MALFORMED, ErrorCode.TIMEOUT, ErrorCode.SHUTTING_DOWN}
)
"""ERROR codes after which the server closes the connection."""


class PhoneBusyError(LocalProtocolError):
    """A request was made while another waits for its reply."""


class Phone:
    """One phone: its C2S session, its beacons and its contact log."""

    def __init__(
        self,
        clock: Clock,
        open_store: Callable[[str], ContactStore],
        *,
        retention: float = DEFAULT_RETENTION,
        reply_timeout: float = DEFAULT_REPLY_TIMEOUT,
        max_contacts: int = DEFAULT_MAX_CONTACTS,
        rewrite_interval: float = DEFAULT_REWRITE_INTERVAL,
        refresh_before: float | None = None,
    ) -> None:
        self.clock = clock
        self.open_store = open_store
        self.retention = retention
        self.reply_timeout = reply_timeout
        self.max_contacts = max_contacts
        self.rewrite_interval = rewrite_interval
        self.refresh_before = refresh_before
        """Seconds before the TempID expires at which a new one is requested on
        its own (the specification's list of improvements); None: never."""
        self.state = PhoneState.LOGGED_OUT
        self.username: str | None = None
        self.tempid: TempIDWindow | None = None
        self.store: ContactStore | None = None
        self._contacts: deque[tuple[float, TempIDWindow]] = deque()
        """(monotonic arrival, entry), oldest first: with one retention for
        all, arrival order is also removal order."""
        self._pushed_out: deque[list[float]] = deque()
        """Runs of entries a full log pushed out, oldest first, each
        [first arrival, last arrival, count]: see LEFT_OUT_RUNS."""
        self._full = False
        """In an episode of fullness (the user has been told)."""
        self._decoder = FrameDecoder()
        self._out = bytearray()
        self._events: list[PhoneEvent] = []
        self._waiting: Waiting | None = None
        self._reply_deadline: float | None = None
        self._sent_entries = 0
        self._left_out = 0
        self._pending_username: str | None = None
        self._file_stale = False
        self._last_rewrite = float("-inf")
        self._beacon: bytes | None = None
        """The current TempID's datagram, built once: it changes only with the TempID."""
        self._refresh_at: float | None = None
        self._key_of: datetime | None = None
        self._key = ""
        """The wall clock's reading as a moment_key, kept while it is the same second."""

    # -- what the host reads --------------------------------------------------
    @property
    def is_open(self) -> bool:
        """The connection to the server is not over."""
        return self.state is not PhoneState.CLOSED

    @property
    def busy(self) -> bool:
        """A request waits for its reply."""
        return self._waiting is not None

    @property
    def waiting_for(self) -> Waiting | None:
        return self._waiting

    @property
    def contacts(self) -> list[TempIDWindow]:
        return [entry for _, entry in self._contacts]

    def data_to_send(self) -> bytes:
        data = bytes(self._out)
        self._out.clear()
        return data

    def next_events(self) -> list[PhoneEvent]:
        events, self._events = self._events, []
        return events

    def get_timer(self) -> float | None:
        """The nearest of: the reply deadline, the oldest entry's removal, the
        batched rewrite of the file, the TempID refresh (not while busy)."""
        best = self._reply_deadline
        if self._contacts:
            expiry = self._contacts[0][0] + self.retention
            if best is None or expiry < best:
                best = expiry
        if self._file_stale:
            rewrite = self._last_rewrite + self.rewrite_interval
            if best is None or rewrite < best:
                best = rewrite
        refresh = self._refresh_at
        if refresh is not None and self._waiting is None and (best is None or refresh < best):
            best = refresh
        return best

    # -- requests ---------------------------------------------------------------
    def login(self, username: str, password: str, now: float) -> None:
        """Send LOGIN. LocalProtocolError if the texts cannot be credentials."""
        self._check_can_send(logged_in=False)
        request = LoginRequest(username, password)
        self._pending_username = username
        self._request(Waiting.LOGIN, request, now)

    def register(self, username: str, password: str, now: float) -> None:
        """Send REGISTER (protocol_spec.md 3.8). LocalProtocolError if the texts
        cannot be credentials."""
        self._check_can_send(logged_in=False)
        self._request(Waiting.REGISTER, RegisterRequest(username, password), now)

    def request_tempid(self, now: float) -> None:
        self._check_can_send(logged_in=True)
        self._request(Waiting.TEMPID, TempIDRequest(), now)

    def upload(self, now: float) -> int:
        """Send the whole contact log in chunks (an empty log is one empty
        final chunk); returns how many entries went."""
        self._check_can_send(logged_in=True)
        entries = self.contacts
        size = wire.MAX_UPLOAD_CHUNK
        firsts = range(0, len(entries), size) if entries else range(1)
        for first in firsts:
            chunk = tuple(entries[first : first + size])
            self._out += encode(UploadRequest(chunk, final=first + size >= len(entries)))
        self._sent_entries = len(entries)
        self._left_out = self.left_out(now)
        self._waiting = Waiting.UPLOAD
        self._reply_deadline = now + self.reply_timeout
        return len(entries)

    def logout(self, now: float) -> None:
        self._check_can_send(logged_in=True)
        self._request(Waiting.LOGOUT, LogoutRequest(), now)

    # -- beacons ----------------------------------------------------------------
    def make_beacon(self, now: float) -> bytes:
        """The 59-byte datagram for the current TempID (expired or not: the
        caller warns). LocalProtocolError before any TempID was issued."""
        if self.tempid is None:
            raise LocalProtocolError("no TempID yet: run Download_tempID first")
        if self._beacon is None:
            self._beacon = encode_beacon(self.tempid)
        return self._beacon

    def receive_beacon(self, datagram: bytes, sender: Address, now: float) -> None:
        """A datagram arrived on the beacon port."""
        if self.store is None:  # no contact log before the first login
            self._events.append(BeaconIgnored(sender, "not logged in"))
            return
        try:
            window = decode_beacon(datagram)
        except ProtocolError as exc:
            self._events.append(BeaconMalformed(sender, str(exc)))
            return
        if self.tempid is not None and window.tempid == self.tempid.tempid:
            self._events.append(BeaconIgnored(sender, "it carries this phone's own TempID"))
            return
        at = self.clock.wall()
        if at is not self._key_of:
            self._key_of, self._key = at, moment_key(at)
        if not window.contains_key(self._key):
            self._events.append(BeaconRejected(window, sender, at))
            return
        try:
            self.store.append(window)
        except OSError as exc:
            self._events.append(BeaconAccepted(window, sender, at))
            self._events.append(
                StoreFailed(f"could not save it to the contact log: {exc.strerror or exc}")
            )
            return
        if len(self._contacts) >= self.max_contacts:
            # Full: the newest contacts are the ones a tracer needs, so the
            # oldest entry makes room; the file loses it at the next rewrite.
            self._push_out(now)
            if not self._full:
                self._full = True
                self._events.append(ContactLogFull(self.max_contacts))
        self._contacts.append((now, window))
        self._events.append(BeaconAccepted(window, sender, at))

    def _push_out(self, now: float) -> None:
        """Drop the oldest entry (or entries) so that one more fits, and count them."""
        while self._contacts and len(self._contacts) >= self.max_contacts:
            arrival, _ = self._contacts.popleft()
            self._count_left_out(arrival, 1)
        self._file_stale = True
        self._forget_left_out(now)

    def _count_left_out(self, arrival: float, count: int) -> None:
        runs = self._pushed_out
        if runs and arrival - runs[-1][0] <= self.retention / LEFT_OUT_RUNS:
            runs[-1][1] = max(runs[-1][1], arrival)
            runs[-1][2] += count
        else:
            runs.append([arrival, arrival, count])

    def _forget_left_out(self, now: float) -> None:
        """Runs whose entries would have expired by now no longer count."""
        runs = self._pushed_out
        while runs and runs[0][1] + self.retention <= now:
            runs.popleft()

    def left_out(self, now: float) -> int:
        """Entries pushed out of a full log that would still be held now."""
        self._forget_left_out(now)
        return int(sum(run[2] for run in self._pushed_out))

    # -- input from the server -------------------------------------------------
    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the server; ``b""`` when it closed the connection."""
        if self.state is PhoneState.CLOSED:
            return
        if not data:
            if self._waiting is Waiting.LOGOUT:
                self._logged_out()
            else:
                self._close("the server closed the connection")
            return
        try:
            self._decoder.feed(data)
            while self.is_open:
                message = self._decoder.next_message()
                if isinstance(message, _NeedData):
                    break
                self._reply(message, now)
        except ProtocolError as exc:
            self._close(f"the server sent something unreadable ({exc})")

    def connection_lost(self, reason: str) -> None:
        """The transport failed (reset, refused, unreachable)."""
        if self.state is not PhoneState.CLOSED:
            if self._waiting is Waiting.LOGOUT:
                self._logged_out()
            else:
                self._close(reason)

    # -- time ---------------------------------------------------------------------
    def handle_timer(self, now: float) -> None:
        if self._reply_deadline is not None and now >= self._reply_deadline:
            waited = self.reply_timeout
            self._close(f"the server did not answer within {waited:g} seconds")
        if self._refresh_at is not None and now >= self._refresh_at:
            if self.state is not PhoneState.LOGGED_IN:
                self._refresh_at = None
            elif self._waiting is None:
                self._refresh_at = None
                self.request_tempid(now)
        expired = 0
        while self._contacts and self._contacts[0][0] + self.retention <= now:
            self._contacts.popleft()
            expired += 1
        if expired:
            self._file_stale = True
            self._events.append(ContactsExpired(expired))
            if self._full and len(self._contacts) < self.max_contacts:
                self._full = False  # the episode is over; the next one is told again
        if self._file_stale and now >= self._last_rewrite + self.rewrite_interval:
            self._rewrite(now)

    def _schedule_refresh(self, window: TempIDWindow, now: float) -> None:
        """Ask for the next TempID ``refresh_before`` seconds before this one
        expires (at once if it is already that close)."""
        if self.refresh_before is None:
            return
        left = (window.expiry - self.clock.wall()).total_seconds() + 1.0
        self._refresh_at = now + max(0.0, left - self.refresh_before)

    def _next_expiry(self) -> float | None:
        return self._contacts[0][0] + self.retention if self._contacts else None

    def _next_rewrite(self) -> float | None:
        return self._last_rewrite + self.rewrite_interval if self._file_stale else None

    def _rewrite(self, now: float) -> None:
        self._file_stale = False
        self._last_rewrite = now
        if self.store is None:
            return
        try:
            self.store.rewrite(self.contacts)
        except OSError as exc:
            self._events.append(
                StoreFailed(f"could not update the contact log: {exc.strerror or exc}")
            )

    # -- internals ------------------------------------------------------------------
    def _check_can_send(self, *, logged_in: bool) -> None:
        if self.state is PhoneState.CLOSED:
            raise LocalProtocolError("the connection to the server is over")
        if self._waiting is not None:
            raise PhoneBusyError(f"still waiting for the reply to {self._waiting.value}")
        if logged_in and self.state is not PhoneState.LOGGED_IN:
            raise LocalProtocolError("log in first")
        if not logged_in and self.state is PhoneState.LOGGED_IN:
            raise LocalProtocolError("already logged in")

    def _request(self, waiting: Waiting, message: Message, now: float) -> None:
        self._out += encode(message)
        self._waiting = waiting
        self._reply_deadline = now + self.reply_timeout

    def _answered(self) -> Waiting | None:
        waiting, self._waiting = self._waiting, None
        self._reply_deadline = None
        return waiting

    def _reply(self, message: Message, now: float) -> None:
        if isinstance(message, ErrorReply):
            self._error(message)
            return
        waiting = self._waiting
        if waiting is Waiting.LOGIN and isinstance(message, LoginReply):
            self._answered()
            self._login_reply(message.status)
        elif waiting is Waiting.REGISTER and isinstance(message, RegisterReply):
            self._answered()
            self._events.append(RegisterResult(message.status))
        elif waiting is Waiting.TEMPID and isinstance(message, TempIDReply):
            self._answered()
            self.tempid = message.window
            self._beacon = None
            self._schedule_refresh(message.window, now)
            self._events.append(TempIDIssued(message.window))
        elif waiting is Waiting.UPLOAD and isinstance(message, UploadReply):
            self._answered()
            self._events.append(
                UploadAcknowledged(self._sent_entries, message.received, self._left_out)
            )
        elif waiting is Waiting.LOGOUT and isinstance(message, LogoutReply):
            self._answered()
            self._logged_out()
        else:
            self._close(f"the server sent an unexpected {message.TYPE.name}")

    def _login_reply(self, status: LoginStatus) -> None:
        self._events.append(LoginResult(status))
        if status is LoginStatus.OK:
            self._logged_in()
        elif status in (LoginStatus.BLOCKED, LoginStatus.BLOCKED_NOW):
            self._close("the account is blocked")

    def _logged_in(self) -> None:
        username = self._pending_username or ""
        self.username = username
        self.state = PhoneState.LOGGED_IN
        try:
            self.store = self.open_store(username)
        except OSError as exc:
            # No contact log, no phone: say why and leave cleanly.
            self._events.append(StoreFailed(str(exc.strerror or exc), fatal=True))
            self._request(Waiting.LOGOUT, LogoutRequest(), self.clock.monotonic())
            return
        try:
            entries, problems = self.store.load()
        except OSError as exc:
            entries, problems = [], [f"cannot read it ({exc.strerror or exc}); starting empty"]
        now = self.clock.monotonic()
        # Entries found at start are treated as received now (spec-notes, section 4).
        # Past the cap the newest are kept, as a full log keeps them.
        kept = entries[max(0, len(entries) - self.max_contacts) :]
        self._contacts.extend((now, entry) for entry in kept)
        if len(entries) > len(kept):
            over = len(entries) - len(kept)
            self._count_left_out(now, over)
            self._file_stale = True
            problems.append(
                f"it holds more than the cap of {self.max_contacts:,} entries; the "
                f"{over:,} oldest {'is' if over == 1 else 'are'} left out and will be removed"
            )
        self._events.append(LoggedIn(username, len(kept), tuple(problems)))

    def _error(self, error: ErrorReply) -> None:
        waiting = self._answered()
        if error.code in _CLOSING_CODES:
            self._close(error.text)
            return
        if waiting is Waiting.UPLOAD:
            self._events.append(UploadRefused(error.code, error.text))
            return
        self._events.append(ServerError(error.code, error.text))

    def _logged_out(self) -> None:
        self._answered()
        self.state = PhoneState.CLOSED
        self._events.append(LoggedOut())

    def _close(self, reason: str) -> None:
        self._answered()
        self.state = PhoneState.CLOSED
        self._out.clear()
        self._events.append(ConnectionClosed(reason))
