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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from bluetrace.phone.contacts import (
    DEFAULT_MAX_CONTACTS,
    DEFAULT_RETENTION,
    DEFAULT_REWRITE_INTERVAL,
    ContactLog,
    ContactStore,
)
from bluetrace.protocol import wire
from bluetrace.protocol.clock import Clock
from bluetrace.protocol.errors import DataAfterEndError, LocalProtocolError, ProtocolError
from bluetrace.protocol.framing import FrameDecoder, _NeedData
from bluetrace.protocol.messages import (
    ErrorReply,
    LoginReply,
    LoginRequest,
    LogoutReply,
    LogoutRequest,
    Message,
    MomentKeyCache,
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
)
from bluetrace.protocol.wire import ErrorCode, LoginStatus, RegisterStatus

DEFAULT_REPLY_TIMEOUT = 30.0
Address = tuple[str, int]


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
        self.reply_timeout = reply_timeout
        self.contact_log = ContactLog(
            retention=retention, max_contacts=max_contacts, rewrite_interval=rewrite_interval
        )
        self.refresh_before = refresh_before
        """Seconds before the TempID expires at which a new one is requested on
        its own (the specification's list of improvements); None: never."""
        self.state = PhoneState.LOGGED_OUT
        self.username: str | None = None
        self.tempid: TempIDWindow | None = None
        self._decoder = FrameDecoder()
        self._out = bytearray()
        self._events: list[PhoneEvent] = []
        self._waiting: Waiting | None = None
        self._reply_deadline: float | None = None
        self._sent_entries = 0
        self._left_out = 0
        self._pending_username: str | None = None
        self._stream_ended = False
        """receive_data(b"") was called: the server's stream is over."""
        self._beacon: bytes | None = None
        """The current TempID's datagram, built once: it changes only with the TempID."""
        self._refresh_at: float | None = None
        self._moment_keys = MomentKeyCache()
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
        return self.contact_log.entries

    @property
    def store(self) -> ContactStore | None:
        """The contact log's file; None before the first login."""
        return self.contact_log.store

    # The contact log's settings, read and set on the phone as before the log
    # was an object of its own.
    @property
    def retention(self) -> float:
        return self.contact_log.retention

    @retention.setter
    def retention(self, seconds: float) -> None:
        self.contact_log.retention = seconds

    @property
    def max_contacts(self) -> int:
        return self.contact_log.max_contacts

    @max_contacts.setter
    def max_contacts(self, limit: int) -> None:
        self.contact_log.max_contacts = limit

    @property
    def rewrite_interval(self) -> float:
        return self.contact_log.rewrite_interval

    @rewrite_interval.setter
    def rewrite_interval(self, seconds: float) -> None:
        self.contact_log.rewrite_interval = seconds

    @property
    def _pushed_out(self) -> deque[list[float]]:
        return self.contact_log.pushed_out

    def left_out(self, now: float) -> int:
        """Entries pushed out of a full log that would still be held now."""
        return self.contact_log.left_out(now)

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
        log = self.contact_log
        expiry = log.next_expiry()
        if expiry is not None and (best is None or expiry < best):
            best = expiry
        rewrite = log.next_rewrite()
        if rewrite is not None and (best is None or rewrite < best):
            best = rewrite
        refresh = self._refresh_at
        if refresh is not None and self._waiting is None and (best is None or refresh < best):
            best = refresh
        return best

    # -- requests ---------------------------------------------------------------
    def login(self, username: str, password: str, now: float) -> None:
        """Send LOGIN; the reply comes as :class:`LoginResult` (and, when it is
        OK, :class:`LoggedIn` once the contact log is open).

        Returns:
            Nothing: the request waits in :meth:`data_to_send`, and the reply
            is due within ``reply_timeout`` (:meth:`get_timer`).

        Raises:
            PhoneBusyError: another request still waits for its reply (one
                at a time, so replies need no identifiers).
            LocalProtocolError: the connection is over, the phone is already logged in, or
                the texts cannot be credentials (nothing is sent).
        """
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
        """Send TEMPID_REQUEST; the reply comes as :class:`TempIDIssued`, and
        the new TempID is what :meth:`make_beacon` sends from then on.

        Returns:
            Nothing: the request waits in :meth:`data_to_send`.

        Raises:
            PhoneBusyError: another request still waits for its reply (one
                at a time, so replies need no identifiers).
            LocalProtocolError: the connection is over or the phone is not logged in.
        """
        self._check_can_send(logged_in=True)
        self._request(Waiting.TEMPID, TempIDRequest(), now)

    def upload(self, now: float) -> int:
        """Send the whole contact log in chunks (an empty log is one empty
        final chunk); the reply comes as :class:`UploadAcknowledged` or
        :class:`UploadRefused`.

        Returns:
            How many entries went (the log as it is now; entries a full log
            pushed out are counted in the acknowledgement, not sent).

        Raises:
            PhoneBusyError: another request still waits for its reply (one
                at a time, so replies need no identifiers).
            LocalProtocolError: the connection is over or the phone is not logged in.
        """
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
        """Send LOGOUT; the reply comes as :class:`LoggedOut` (the server's
        close in its place counts too), and the connection is over.

        Returns:
            Nothing: the request waits in :meth:`data_to_send`.

        Raises:
            PhoneBusyError: another request still waits for its reply (one
                at a time, so replies need no identifiers).
            LocalProtocolError: the connection is over or the phone is not logged in.
        """
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
        log = self.contact_log
        if log.store is None:  # no contact log before the first login
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
        if not window.contains_key(self._moment_keys.key(at)):
            self._events.append(BeaconRejected(window, sender, at))
            return
        try:
            began_full = log.add(window, now)
        except OSError as exc:
            self._events.append(BeaconAccepted(window, sender, at))
            self._events.append(
                StoreFailed(f"could not save it to the contact log: {exc.strerror or exc}")
            )
            return
        if began_full:
            self._events.append(ContactLogFull(log.max_contacts))
        self._events.append(BeaconAccepted(window, sender, at))

    # -- input from the server -------------------------------------------------
    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the server; ``b""`` when it closed the connection.

        Returns:
            Nothing: replies come as events (:meth:`next_events`). Bytes the
            phone cannot read, or a reply to nothing it asked, are not raised:
            they end the connection with :class:`ConnectionClosed`, as does
            ``b""`` (or :class:`LoggedOut`, when it answers a LOGOUT). Once the
            connection is over, bytes are dropped.

        Raises:
            DataAfterEndError: bytes after ``b""`` had ended the stream (a
                further ``b""`` is harmless).
        """
        if data and self._stream_ended:
            raise DataAfterEndError("receive_data was given bytes after the end of the stream")
        if self.state is PhoneState.CLOSED:
            return
        if not data:
            self._stream_ended = True
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
        """Act on what :meth:`get_timer` named as due (early calls do nothing):
        give up on a reply that is late, ask for the next TempID before this
        one expires, remove expired contacts, rewrite the contact-log file.

        Returns:
            Nothing: what happened comes as events (:class:`ConnectionClosed`,
            :class:`ContactsExpired`, :class:`StoreFailed`, ...).

        Raises:
            Nothing: a failed rewrite is :class:`StoreFailed`, and the removed
            entries stay in the file until a later removal makes a rewrite due.
        """
        if self._reply_deadline is not None and now >= self._reply_deadline:
            waited = self.reply_timeout
            self._close(f"the server did not answer within {waited:g} seconds")
        if self._refresh_at is not None and now >= self._refresh_at:
            if self.state is not PhoneState.LOGGED_IN:
                self._refresh_at = None
            elif self._waiting is None:
                self._refresh_at = None
                self.request_tempid(now)
        expired = self.contact_log.expire(now)
        if expired:
            self._events.append(ContactsExpired(expired))
        try:
            self.contact_log.rewrite_if_due(now)
        except OSError as exc:
            self._events.append(
                StoreFailed(f"could not update the contact log: {exc.strerror or exc}")
            )

    def _schedule_refresh(self, window: TempIDWindow, now: float) -> None:
        """Ask for the next TempID ``refresh_before`` seconds before this one
        expires (at once if it is already that close)."""
        if self.refresh_before is None:
            return
        left = (window.expiry - self.clock.wall()).total_seconds() + 1.0
        self._refresh_at = now + max(0.0, left - self.refresh_before)

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
            store = self.open_store(username)
        except OSError as exc:
            # No contact log, no phone: say why and leave cleanly.
            self._events.append(StoreFailed(str(exc.strerror or exc), fatal=True))
            self._request(Waiting.LOGOUT, LogoutRequest(), self.clock.monotonic())
            return
        kept, problems = self.contact_log.open(store, self.clock.monotonic())
        self._events.append(LoggedIn(username, kept, tuple(problems)))

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
