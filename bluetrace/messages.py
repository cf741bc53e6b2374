"""Typed messages and the only functions that turn them into bytes and back.

Messages are small frozen dataclasses that validate in ``__post_init__`` (as
h11's events do), so an invalid message cannot be built, and any construct
failure is reported as a :class:`~bluetrace.errors.ProtocolError` with the
reason in one line.
"""

import struct
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, TypeVar, cast

from construct import ConstructError, Container

from bluetrace import wire
from bluetrace.errors import LocalProtocolError, RemoteProtocolError
from bluetrace.timefmt import format_timestamp
from bluetrace.wire import ErrorCode, LoginStatus, MessageType


def _check_body(message: "Message") -> None:
    """Validate a small message by building its body: the construct
    definition stays the one statement of what is legal."""
    try:
        wire.BODIES[message.TYPE].build(_body_fields(message))
    except ConstructError as exc:
        raise LocalProtocolError(_reason(exc)) from None


def _reason(exc: ConstructError | struct.error) -> str:
    """One line from construct's two (``Error in path (parsing) -> field``,
    then the message): the message first, the field after it."""
    lines = str(exc).strip().splitlines()
    head = lines[0] if lines else ""
    message = " ".join(line.strip() for line in lines[1:]) or type(exc).__name__
    _, _, field = head.partition(" -> ")
    return f"{message} (field {field})" if field else message


@dataclass(frozen=True, slots=True)
class TempIDWindow:
    """A TempID with the inclusive window in which it is valid.

    The same 58 bytes are a contact-log entry, the body of a TempID grant and
    the first part of a beacon.
    """

    tempid: str
    start: datetime
    expiry: datetime

    def __post_init__(self) -> None:
        # Checked directly rather than by building: upload decoding makes
        # thousands of these and must not pay for construct twice.
        if not wire.is_tempid(self.tempid):
            raise LocalProtocolError(f"TempID is not 20 decimal digits: {self.tempid!r}")
        if not (wire.is_timestamp(self.start) and wire.is_timestamp(self.expiry)):
            raise LocalProtocolError("start and expiry must be whole-second naive datetimes")

    def _fields(self) -> dict[str, Any]:
        return {"tempid": self.tempid, "start": self.start, "expiry": self.expiry}

    def contains(self, moment: datetime) -> bool:
        """The specification's validity test: start <= now <= expiry."""
        return self.start <= moment <= self.expiry

    def fields_text(self) -> tuple[str, str, str]:
        """TempID, start and expiry as they are shown and stored."""
        return self.tempid, format_timestamp(self.start), format_timestamp(self.expiry)

    @classmethod
    def _from(cls, container: Any) -> "TempIDWindow":
        return _trusted(cls, container.tempid, container.start, container.expiry)


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
    | ErrorReply
)


def _body_fields(message: Message) -> dict[str, Any]:
    if isinstance(message, LoginRequest):
        return {"username": message.username, "password": message.password}
    if isinstance(message, LoginReply):
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
    return _trusted(ErrorReply, body.code, body.text)


def encode(message: Message) -> bytes:
    """The whole frame (header and body) for ``message``."""
    if type(message) in _CONSTANT_TYPES:
        return _CONSTANT_FRAMES[message]
    return _build(message)


def _build(message: Message) -> bytes:
    try:
        data: bytes = wire.Frame.build({"type": message.TYPE, "body": _body_fields(message)})
    except ConstructError as exc:
        raise LocalProtocolError(_reason(exc)) from None
    return data


def decode(frame: bytes) -> Message:
    """Parse exactly one whole frame; anything wrong is a RemoteProtocolError."""
    constant = _CONSTANT_BY_FRAME.get(frame)
    if constant is not None:
        return constant
    if _is_exact_upload(frame):
        try:
            body = wire.UploadBodyCompiled.parse(frame[wire.FRAME_HEADER_LEN :])
        except (ConstructError, struct.error) as exc:
            raise RemoteProtocolError(_reason(exc)) from None
        return _message_from(MessageType.UPLOAD, body)
    try:
        parsed = wire.Frame.parse(frame)
    except ConstructError as exc:
        raise RemoteProtocolError(_reason(exc)) from None
    return _message_from(parsed.type, parsed.body)


_CONSTANT_TYPES = (LoginReply, TempIDRequest, LogoutRequest, LogoutReply)
_CONSTANT_MESSAGES: list[Message] = [
    *(LoginReply(status) for status in LoginStatus),
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
"""Messages with no free field, built once by construct: encoding one is then
a lookup, and so is decoding its exact bytes (round-trip tests hold both
directions to the construct definitions)."""


def _is_exact_upload(frame: bytes) -> bool:
    """An UPLOAD frame whose sizes all agree (header length, entry count and
    bytes present): the only input the compiled parser is trusted with."""
    if len(frame) < wire.FRAME_HEADER_LEN + 3 or frame[0] != wire.FRAME_VERSION:
        return False
    if frame[1] != MessageType.UPLOAD:
        return False
    body_len = len(frame) - wire.FRAME_HEADER_LEN
    count = int.from_bytes(frame[7:9], "big")
    return (
        int.from_bytes(frame[2:6], "big") == body_len
        and count <= wire.MAX_UPLOAD_CHUNK
        and body_len == 3 + count * wire.WINDOW_LEN
    )


def encode_beacon(window: TempIDWindow) -> bytes:
    """The 59-byte datagram a peripheral device sends."""
    data: bytes = wire.Beacon.build({**window._fields(), "version": wire.BEACON_VERSION})
    return data


def decode_beacon(datagram: bytes) -> TempIDWindow:
    """Parse a received datagram; anything but a valid beacon raises."""
    if len(datagram) != wire.BEACON_LEN:
        raise RemoteProtocolError(f"a beacon is {wire.BEACON_LEN} bytes, not {len(datagram)}")
    try:
        parsed = wire.BeaconCompiled.parse(datagram)
    except (ConstructError, struct.error) as exc:
        raise RemoteProtocolError(_reason(exc)) from None
    return TempIDWindow._from(parsed)
