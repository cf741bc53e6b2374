"""Typed messages and the only functions that turn them into bytes and back.

Messages are small frozen dataclasses that validate in ``__post_init__`` (as
h11's events do), so an invalid message cannot be built, and any failure is
reported as a :class:`~bluetrace.protocol.errors.ProtocolError` whose text is one
sentence for people.

The fixed-size parts (beacon, window, upload entries, header) go through
:mod:`bluetrace.protocol.fastcodec`, derived from and held to the construct
definitions; anything the fast path does not accept is handed to construct,
which decides and explains.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, TypeVar, cast

from construct import ConstructError, Container

from bluetrace.protocol import fastcodec, wire
from bluetrace.protocol.errors import LocalProtocolError, RemoteProtocolError
from bluetrace.protocol.timefmt import (
    format_timestamp,
    is_timestamp_text,
    shown,
    timestamp_from_text,
)
from bluetrace.protocol.wire import ErrorCode, LoginStatus, MessageType, RegisterStatus


def _check_body(message: "Message") -> None:
    """Validate a small message by building its body: the construct
    definition stays the one statement of what is legal."""
    try:
        wire.BODIES[message.TYPE].build(_body_fields(message))
    except ConstructError as exc:
        raise LocalProtocolError(
            wire.describe_error(exc, f"the {message.TYPE.name} body")
        ) from None


def _reason(exc: ConstructError) -> str:
    """One sentence for a construct error met while reading a frame (kept
    for callers of the earlier API; :func:`wire.describe_error` is the rule)."""
    return wire.describe_error(exc, "the frame")


class TempIDWindow:
    """A TempID with the inclusive window in which it is valid.

    The same 58 bytes are a contact-log entry, the body of a TempID grant and
    the first part of a beacon. Compared by value and read-only (every public
    attribute is a property), like the frozen dataclass it replaces; the
    underscored slots are private, set only here and in :func:`_window`,
    which is what keeps building one cheap.

    ``TempIDWindow(tempid, start, expiry)`` with datetimes validates them.
    Windows read from the wire (or a file, :meth:`from_text`) keep the
    timestamp texts and make the ``start``/``expiry`` datetimes only when
    asked, since most readers only show or store the text and building two
    datetimes cost more than all the rest of reading a beacon.
    """

    __slots__ = ("_expiry", "_expiry_text", "_start", "_start_text", "_tempid")
    __match_args__ = ("tempid", "start", "expiry")

    _tempid: str
    _start_text: str
    _expiry_text: str
    _start: datetime | None
    _expiry: datetime | None

    def __init__(self, tempid: str, start: datetime, expiry: datetime) -> None:
        if not wire.is_tempid(tempid):
            raise LocalProtocolError("TempID is not 20 decimal digits")
        if not (wire.is_timestamp(start) and wire.is_timestamp(expiry)):
            raise LocalProtocolError(
                "start and expiry must be whole-second datetimes without a time zone"
            )
        self._tempid = tempid
        self._start = start
        self._expiry = expiry
        self._start_text = format_timestamp(start)
        self._expiry_text = format_timestamp(expiry)

    @classmethod
    def from_text(cls, tempid: str, start: str, expiry: str) -> "TempIDWindow":
        """A window from its texts as the wire and the files hold them;
        LocalProtocolError (with the reason) if they are not a valid one."""
        if not wire.is_tempid(tempid):
            raise LocalProtocolError("TempID is not 20 decimal digits")
        for name, text in (("start", start), ("expiry", expiry)):
            if not (isinstance(text, str) and is_timestamp_text(text)):
                shown_text = shown(text) if isinstance(text, str) else "not text"
                raise LocalProtocolError(
                    f"{name} is not a real DD/MM/YYYY HH:MM:SS time: {shown_text}"
                )
        return _window(tempid, start, expiry)

    @property
    def tempid(self) -> str:
        return self._tempid

    @property
    def start(self) -> datetime:
        """First valid second."""
        moment = self._start
        if moment is None:
            moment = self._start = timestamp_from_text(self._start_text)
        return moment

    @property
    def expiry(self) -> datetime:
        """Last valid second."""
        moment = self._expiry
        if moment is None:
            moment = self._expiry = timestamp_from_text(self._expiry_text)
        return moment

    @property
    def start_text(self) -> str:
        return self._start_text

    @property
    def expiry_text(self) -> str:
        return self._expiry_text

    def _fields(self) -> dict[str, Any]:
        return {"tempid": self._tempid, "start": self.start, "expiry": self.expiry}

    def contains(self, moment: datetime) -> bool:
        """The specification's validity test: start <= now <= expiry."""
        return self.contains_key(moment_key(moment))

    def contains_key(self, key: str) -> bool:
        """``contains`` for a moment given as its :func:`moment_key`: the
        calendar fields compared in order, as protocol_spec.md section 1 says,
        with no datetime built (the beacon path runs this per datagram)."""
        start, expiry = self._start_text, self._expiry_text
        first = start[6:10] + start[3:5] + start[:2] + start[11:]
        last = expiry[6:10] + expiry[3:5] + expiry[:2] + expiry[11:]
        return first <= key <= last

    def fields_text(self) -> tuple[str, str, str]:
        """TempID, start and expiry as they are shown and stored."""
        return self._tempid, self._start_text, self._expiry_text

    def wire_text(self) -> str:
        """The 58 characters of the window on the wire (ASCII)."""
        return self._tempid + self._start_text + self._expiry_text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TempIDWindow):
            return NotImplemented
        # The 19-character text is one-to-one with a whole-second datetime.
        return (
            self._tempid == other._tempid
            and self._start_text == other._start_text
            and self._expiry_text == other._expiry_text
        )

    def __hash__(self) -> int:
        return hash((self._tempid, self._start_text, self._expiry_text))

    def __repr__(self) -> str:
        return (
            f"TempIDWindow(tempid={self._tempid!r}, start={self.start!r}, expiry={self.expiry!r})"
        )

    def __reduce__(self) -> tuple[Any, tuple[str, str, str]]:
        return _window, (self._tempid, self._start_text, self._expiry_text)

    @classmethod
    def _from(cls, container: Any) -> "TempIDWindow":
        return cls(container.tempid, container.start, container.expiry)


_new = object.__new__


def moment_key(moment: datetime) -> str:
    """A whole-second moment as ``YYYYMMDDHH:MM:SS``: ordered as the calendar is."""
    return (
        f"{moment.year:04d}{moment.month:02d}{moment.day:02d}"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )


class MomentKeyCache:
    """The :func:`moment_key` of the latest wall-clock reading, formatted once
    per second however many beacons arrive in it.

    A reading is matched by value, not by identity: every :class:`Clock
    <bluetrace.protocol.clock.Clock>` reads whole seconds, so equal readings
    are the same second whichever clock made them, and a clock that happens
    to return one object per second (the simulator's) is only a faster hit.
    """

    __slots__ = ("_key", "_moment")

    def __init__(self) -> None:
        self._moment: datetime | None = None
        self._key = ""

    def key(self, moment: datetime) -> str:
        """``moment_key(moment)``, reused while the reading is unchanged."""
        if moment != self._moment:
            self._moment, self._key = moment, moment_key(moment)
        return self._key


def _window(tempid: str, start: str, expiry: str) -> TempIDWindow:
    """A window from texts the fast codec has just checked: no second check."""
    window: TempIDWindow = _new(TempIDWindow)
    window._tempid = tempid
    window._start_text = start
    window._expiry_text = expiry
    window._start = None
    window._expiry = None
    return window


@dataclass(frozen=True, slots=True)
class LoginRequest:
    TYPE: ClassVar[MessageType] = MessageType.LOGIN
    username: str
    password: str

    def __post_init__(self) -> None:
        _check_body(self)

    def __repr__(self) -> str:  # keeps passwords out of logs and tracebacks
        return f"LoginRequest(username={self.username!r}, password=<hidden>)"


@dataclass(frozen=True, slots=True)
class LoginReply:
    TYPE: ClassVar[MessageType] = MessageType.LOGIN_REPLY
    status: LoginStatus

    def __post_init__(self) -> None:
        _check_body(self)


@dataclass(frozen=True, slots=True)
class TempIDRequest:
    TYPE: ClassVar[MessageType] = MessageType.TEMPID_REQUEST


@dataclass(frozen=True, slots=True)
class TempIDReply:
    TYPE: ClassVar[MessageType] = MessageType.TEMPID_REPLY
    window: TempIDWindow


@dataclass(frozen=True, slots=True)
class UploadRequest:
    """One chunk of a contact-log upload; ``final`` marks the last chunk."""

    TYPE: ClassVar[MessageType] = MessageType.UPLOAD
    entries: tuple[TempIDWindow, ...]
    final: bool

    def __post_init__(self) -> None:
        if len(self.entries) > wire.MAX_UPLOAD_CHUNK:
            raise LocalProtocolError(
                f"{len(self.entries)} entries in one chunk, at most {wire.MAX_UPLOAD_CHUNK}"
            )
        if not all(isinstance(entry, TempIDWindow) for entry in self.entries):
            raise LocalProtocolError("upload entries must be TempIDWindow values")
        if not isinstance(self.final, bool):
            raise LocalProtocolError("final must be a bool")


@dataclass(frozen=True, slots=True)
class UploadReply:
    TYPE: ClassVar[MessageType] = MessageType.UPLOAD_REPLY
    received: int

    def __post_init__(self) -> None:
        _check_body(self)


@dataclass(frozen=True, slots=True)
class LogoutRequest:
    TYPE: ClassVar[MessageType] = MessageType.LOGOUT


@dataclass(frozen=True, slots=True)
class LogoutReply:
    TYPE: ClassVar[MessageType] = MessageType.LOGOUT_REPLY


@dataclass(frozen=True, slots=True)
class RegisterRequest:
    """A new user: an international phone number and a password (section 3.8)."""

    TYPE: ClassVar[MessageType] = MessageType.REGISTER
    username: str
    password: str

    def __post_init__(self) -> None:
        _check_body(self)

    def __repr__(self) -> str:  # keeps passwords out of logs and tracebacks
        return f"RegisterRequest(username={self.username!r}, password=<hidden>)"


@dataclass(frozen=True, slots=True)
class RegisterReply:
    TYPE: ClassVar[MessageType] = MessageType.REGISTER_REPLY
    status: RegisterStatus

    def __post_init__(self) -> None:
        _check_body(self)


@dataclass(frozen=True, slots=True)
class ErrorReply:
    TYPE: ClassVar[MessageType] = MessageType.ERROR
    code: ErrorCode
    text: str

    def __post_init__(self) -> None:
        _check_body(self)


Message = (
    LoginRequest
    | LoginReply
    | TempIDRequest
    | TempIDReply
    | UploadRequest
    | UploadReply
    | LogoutRequest
    | LogoutReply
    | RegisterRequest
    | RegisterReply
    | ErrorReply
)


def _body_fields(message: Message) -> dict[str, Any]:
    if isinstance(message, LoginRequest | RegisterRequest):
        return {"username": message.username, "password": message.password}
    if isinstance(message, LoginReply | RegisterReply):
        return {"status": message.status}
    if isinstance(message, TempIDReply):
        return {"window": message.window._fields()}
    if isinstance(message, UploadRequest):
        entries = [entry._fields() for entry in message.entries]
        return {"final": message.final, "count": len(entries), "entries": entries}
    if isinstance(message, UploadReply):
        return {"received": message.received}
    if isinstance(message, ErrorReply):
        return {"code": message.code, "text": message.text}
    return {}


_T = TypeVar("_T")


def _trusted(cls: type[_T], *values: Any) -> _T:
    """Build a message from values the construct parser has just validated,
    without validating them a second time in ``__post_init__``."""
    instance = object.__new__(cls)
    names: tuple[str, ...] = cast(Any, cls).__slots__
    for name, value in zip(names, values, strict=True):
        object.__setattr__(instance, name, value)
    return instance


def _message_from(kind: MessageType, body: Container) -> Message:
    if kind is MessageType.LOGIN:
        return _trusted(LoginRequest, body.username, body.password)
    if kind is MessageType.LOGIN_REPLY:
        return _trusted(LoginReply, body.status)
    if kind is MessageType.TEMPID_REQUEST:
        return TempIDRequest()
    if kind is MessageType.TEMPID_REPLY:
        return _trusted(TempIDReply, TempIDWindow._from(body.window))
    if kind is MessageType.UPLOAD:
        entries = tuple(TempIDWindow._from(entry) for entry in body.entries)
        return _trusted(UploadRequest, entries, body.final)
    if kind is MessageType.UPLOAD_REPLY:
        return _trusted(UploadReply, body.received)
    if kind is MessageType.LOGOUT:
        return LogoutRequest()
    if kind is MessageType.LOGOUT_REPLY:
        return LogoutReply()
    if kind is MessageType.REGISTER:
        return _trusted(RegisterRequest, body.username, body.password)
    if kind is MessageType.REGISTER_REPLY:
        return _trusted(RegisterReply, body.status)
    return _trusted(ErrorReply, body.code, body.text)


def encode(message: Message) -> bytes:
    """The whole frame (header and body) for ``message``."""
    kind = type(message)
    if kind in _CONSTANT_TYPES:
        return _CONSTANT_FRAMES[message]
    if kind is UploadRequest:
        upload = cast(UploadRequest, message)
        entries = upload.entries
        text = "".join([entry.wire_text() for entry in entries]).encode("ascii")
        body = fastcodec.upload_body(upload.final, len(entries), text)
        return fastcodec.header(MessageType.UPLOAD, len(body)) + body
    if kind is TempIDReply:
        window = cast(TempIDReply, message).window
        return _TEMPID_REPLY_HEADER + window.wire_text().encode("ascii")
    return _build(message)


def _build(message: Message) -> bytes:
    """The frame by construct (the reference the fast branches are held to)."""
    try:
        data: bytes = wire.Frame.build({"type": message.TYPE, "body": _body_fields(message)})
    except ConstructError as exc:
        raise LocalProtocolError(
            wire.describe_error(exc, f"the {message.TYPE.name} body")
        ) from None
    return data


def decode(frame: bytes) -> Message:
    """Parse exactly one whole frame; anything wrong is a RemoteProtocolError
    whose text says what, in one sentence."""
    constant = _CONSTANT_BY_FRAME.get(frame)
    if constant is not None:
        return constant
    if len(frame) < fastcodec.HEADER_LEN:
        raise RemoteProtocolError(
            f"a frame starts with a {fastcodec.HEADER_LEN}-byte header, not {len(frame)} bytes"
        )
    kind, length = fastcodec.read_header(frame)
    present = len(frame) - fastcodec.HEADER_LEN
    if length != present:
        if length > present:
            raise RemoteProtocolError(
                f"the {kind.name} frame ends after {present} of its {length} body bytes"
            )
        extra = present - length
        raise RemoteProtocolError(
            f"the {kind.name} frame has {extra} byte{'s' if extra > 1 else ''} "
            f"after its {length}-byte body"
        )
    return decode_body(kind, frame[fastcodec.HEADER_LEN :])


def decode_body(kind: MessageType, body: bytes) -> Message:
    """The message of type ``kind`` whose body is exactly ``body`` (for a
    receiver that has already read and checked the header)."""
    if type(kind) is not MessageType:
        try:
            kind = MessageType(kind)
        except ValueError:
            raise RemoteProtocolError(f"unknown message type {kind:#04x}") from None
    constant = _CONSTANT_BY_BODY.get((kind, body))
    if constant is not None:
        return constant
    if kind is MessageType.UPLOAD:
        parsed = fastcodec.upload_fields(body)
        if parsed is not None:
            final, found = parsed
            return _trusted(UploadRequest, tuple([_window(t, s, e) for t, s, e in found]), final)
    elif kind is MessageType.TEMPID_REPLY:
        fields = fastcodec.window_fields(body)
        if fields is not None:
            return _trusted(TempIDReply, _window(*fields))
    elif kind is MessageType.LOGIN:
        login = _login_fields(body)
        if login is not None:
            return _trusted(LoginRequest, *login)
    try:
        parsed_body = wire.BODIES[kind].parse(body)
    except ConstructError as exc:
        raise RemoteProtocolError(_body_reason(kind, body, exc)) from None
    return _message_from(kind, parsed_body)


def _login_fields(body: bytes) -> tuple[str, str] | None:
    """A LOGIN body's username and password when both are Text8 credentials
    and nothing follows; None for anything else, which construct then
    decides (and words the reason for). ``wire.is_credential`` is held equal
    to the Credential field by the tests, and this whole path to
    ``wire.LoginBody`` by ``tests/test_wire.py``."""
    if len(body) < 4:
        return None
    first = body[0]
    end = 1 + first
    if end >= len(body) or end + 1 + body[end] != len(body):
        return None
    try:
        username = body[1:end].decode("utf-8")
        password = body[end + 1 :].decode("utf-8")
    except UnicodeDecodeError:
        return None
    if wire.is_credential(username) and wire.is_credential(password):
        return username, password
    return None


def _body_reason(kind: MessageType, body: bytes, exc: ConstructError) -> str:
    """The sentence for a body construct refused; for an upload entry, which
    entry (numbered from 1) and why."""
    what = f"the {kind.name} body"
    path = str(getattr(exc, "path", "") or "")
    if kind is MessageType.UPLOAD and "entries" in path:
        size = fastcodec.WINDOW_LEN
        count = int.from_bytes(body[1:3], "big")
        if len(body) < 3 + count * size:
            whole = (len(body) - 3) // size
            return f"the UPLOAD body ends after {whole} of its {count} entries"
        for index in range((len(body) - 3) // size):
            try:
                wire.Window.parse(body[3 + index * size : 3 + (index + 1) * size])
            except ConstructError as entry_exc:
                return f"entry {index + 1}: {wire.describe_error(entry_exc, 'the entry')}"
    return wire.describe_error(exc, what)


_CONSTANT_TYPES = (LoginReply, TempIDRequest, LogoutRequest, LogoutReply, RegisterReply)
_CONSTANT_MESSAGES: list[Message] = [
    *(LoginReply(status) for status in LoginStatus),
    *(RegisterReply(status) for status in RegisterStatus),
    TempIDRequest(),
    LogoutRequest(),
    LogoutReply(),
]
_CONSTANT_FRAMES: dict[Message, bytes] = {
    message: _build(message) for message in _CONSTANT_MESSAGES
}
_CONSTANT_BY_FRAME: dict[bytes, Message] = {
    frame: message for message, frame in _CONSTANT_FRAMES.items()
}
_CONSTANT_BY_BODY: dict[tuple[MessageType, bytes], Message] = {
    (message.TYPE, frame[wire.FRAME_HEADER_LEN :]): message
    for message, frame in _CONSTANT_FRAMES.items()
}
"""Messages with no free field, built once by construct: encoding one is then
a lookup, and so is decoding its exact bytes (round-trip tests hold both
directions to the construct definitions)."""
_TEMPID_REPLY_HEADER = fastcodec.header(MessageType.TEMPID_REPLY, fastcodec.WINDOW_LEN)


def encode_beacon(window: TempIDWindow) -> bytes:
    """The 59-byte datagram a peripheral device sends (version byte 0x01)."""
    if not isinstance(window, TempIDWindow):
        raise LocalProtocolError("a beacon carries a TempIDWindow")
    return fastcodec.beacon_bytes(*window.fields_text())


def decode_beacon(datagram: bytes) -> TempIDWindow:
    """Parse a received datagram; anything but a well-formed beacon raises
    RemoteProtocolError with one sentence saying why."""
    fields = fastcodec.beacon_fields(datagram)
    if fields is not None:
        return _window(*fields)
    if len(datagram) != wire.BEACON_LEN:
        raise RemoteProtocolError(f"a beacon is {wire.BEACON_LEN} bytes, not {len(datagram)}")
    try:
        parsed = wire.Beacon.parse(datagram)
    except ConstructError as exc:
        raise RemoteProtocolError(wire.describe_error(exc, "the beacon")) from None
    return TempIDWindow._from(parsed)  # pragma: no cover (the fast path accepts all of these)
