"""Every byte bluetrace puts on the network, defined once in construct.

One declaration both parses and builds, so the two directions cannot
disagree. Construct branches but does not check (an unknown ``Enum`` value
parses to a bare int, trailing bytes pass silently), so each field here is an
adapter that validates as it parses, and every struct ends in ``Terminated``.
These definitions raise construct errors whose messages are sentences for
people (``messages`` turns them into :class:`~bluetrace.protocol.errors.ProtocolError`
and never shows construct's own wording). ``fastcodec`` derives a faster
reading of the fixed-size parts (beacon, window, upload entries, header) from
these definitions and is held to them by tests.
"""

import enum
import re
from datetime import datetime
from typing import Any

from construct import (
    Adapter,
    Array,
    Bytes,
    Const,
    ConstError,
    Construct,
    ConstructError,
    Error,
    ExplicitError,
    FormatFieldError,
    GreedyBytes,
    Int8ub,
    Int16ub,
    Int32ub,
    Prefixed,
    StreamError,
    Struct,
    Switch,
    Terminated,
    TerminatedError,
    ValidationError,
    this,
)

from bluetrace.protocol.timefmt import TIMESTAMP_LEN, format_timestamp, parse_timestamp, shown_bytes

TEMPID_LEN = 20
BEACON_VERSION = 1
BEACON_VERSION_ALIASES = frozenset({0x01, 0x31})
"""Version bytes a receiving phone reads as version 1: the binary 1 it sends
itself, and the ASCII digit ``1`` that other implementations of the
assignment write (``str(1)``), so that their beacons are heard."""
FRAME_VERSION = 1
FRAME_HEADER_LEN = 6
WINDOW_LEN = TEMPID_LEN + 2 * TIMESTAMP_LEN
BEACON_LEN = WINDOW_LEN + 1
MAX_UPLOAD_CHUNK = 1024
"""Entries per upload frame: keeps every frame small, so a server never
buffers or parses a large body in one go and a big upload cannot stall
other clients."""
MAX_TEXT_LEN = 255
MAX_ERROR_TEXT_LEN = 1024
MAX_FRAME_BODY = max(
    3 + MAX_UPLOAD_CHUNK * WINDOW_LEN,  # flags, count, a full upload chunk
    2 * (1 + MAX_TEXT_LEN),  # login: two length-prefixed texts
    1 + 2 + MAX_ERROR_TEXT_LEN,  # error: code, length, text
)
"""The largest legal body (a full upload chunk); the decoder refuses any
header announcing more before it buffers a byte of the body."""

_TEMPID = re.compile(rb"[0-9]{20}")


class MessageType(enum.IntEnum):
    """Frame type tags: requests below 0x80, replies with the high bit set."""

    LOGIN = 0x01
    TEMPID_REQUEST = 0x02
    UPLOAD = 0x03
    LOGOUT = 0x04
    REGISTER = 0x05
    LOGIN_REPLY = 0x81
    TEMPID_REPLY = 0x82
    UPLOAD_REPLY = 0x83
    LOGOUT_REPLY = 0x84
    REGISTER_REPLY = 0x85
    ERROR = 0xFF


class RegisterStatus(enum.IntEnum):
    """The server's verdict on one registration."""

    REGISTERED = 0
    TAKEN = 1
    NOT_A_PHONE_NUMBER = 2
    CLOSED = 3


class LoginStatus(enum.IntEnum):
    """The server's verdict on one login attempt."""

    OK = 0
    UNKNOWN_USER = 1
    WRONG_PASSWORD = 2
    BLOCKED_NOW = 3
    BLOCKED = 4


class ErrorCode(enum.IntEnum):
    """Why the server refused a frame (see protocol_spec.md, "Errors")."""

    MALFORMED = 1
    NOT_LOGGED_IN = 2
    ALREADY_LOGGED_IN = 3
    TOO_LARGE = 4
    UNEXPECTED = 5
    STORAGE = 6
    TIMEOUT = 7
    SHUTTING_DOWN = 8
    RATE_LIMITED = 9
    BUSY = 10


def is_tempid(value: object) -> bool:
    """Twenty ASCII decimal digits (leading zeros are part of the TempID)."""
    return (
        isinstance(value, str) and len(value) == TEMPID_LEN and value.isascii() and value.isdigit()
    )


def is_timestamp(value: object) -> bool:
    """A naive whole-second datetime, the only kind the 19-byte form can hold."""
    return isinstance(value, datetime) and value.microsecond == 0 and value.tzinfo is None


def field_name(path: str) -> str:
    """The innermost field of a construct path (``(parsing) -> entries ->
    start`` gives ``start``), as messages name it."""
    if "->" not in path:
        return "value"
    return path.rpartition("->")[2].strip()


ENUM_NAMES = {
    "MessageType": "message type",
    "LoginStatus": "login status",
    "ErrorCode": "error code",
}


class IntEnumAdapter(Adapter):  # type: ignore[misc]
    """An integer field that only admits the members of a Python IntEnum."""

    def __init__(self, subcon: Construct, enum_type: type[enum.IntEnum]) -> None:
        super().__init__(subcon)
        self.enum_type = enum_type

    def _decode(self, obj: int, context: Any, path: str) -> enum.IntEnum:
        try:
            return self.enum_type(obj)
        except ValueError:
            name = ENUM_NAMES.get(self.enum_type.__name__, self.enum_type.__name__)
            raise ValidationError(f"unknown {name} {obj:#04x}", path=path) from None

    def _encode(self, obj: enum.IntEnum, context: Any, path: str) -> int:
        if not isinstance(obj, self.enum_type):
            name = ENUM_NAMES.get(self.enum_type.__name__, self.enum_type.__name__)
            raise ValidationError(f"{field_name(path)} is not a {name}", path=path)
        return int(obj)


class TempIDAdapter(Adapter):  # type: ignore[misc]
    """Twenty ASCII decimal digits, leading zeros kept."""

    def _decode(self, obj: bytes, context: Any, path: str) -> str:
        if _TEMPID.fullmatch(obj) is None:
            raise ValidationError("TempID is not 20 decimal digits", path=path)
        return obj.decode("ascii")

    def _encode(self, obj: str, context: Any, path: str) -> bytes:
        if not is_tempid(obj):
            raise ValidationError("TempID is not 20 decimal digits", path=path)
        return obj.encode("ascii")


class TimestampAdapter(Adapter):  # type: ignore[misc]
    """``DD/MM/YYYY HH:MM:SS`` in ASCII, and a real calendar moment."""

    def _decode(self, obj: bytes, context: Any, path: str) -> datetime:
        try:
            return parse_timestamp(obj.decode("ascii"))
        except ValueError:  # UnicodeDecodeError is a ValueError too
            raise ValidationError(
                f"{field_name(path)} is not a real DD/MM/YYYY HH:MM:SS time: {shown_bytes(obj)}",
                path=path,
            ) from None

    def _encode(self, obj: datetime, context: Any, path: str) -> bytes:
        if not is_timestamp(obj):
            raise ValidationError(
                f"{field_name(path)} is not a whole-second datetime without a time zone",
                path=path,
            )
        return format_timestamp(obj).encode("ascii")


class TextAdapter(Adapter):  # type: ignore[misc]
    """Strict UTF-8 with no control characters, optionally no white space.

    Usernames and passwords may not hold white space because credentials.txt
    separates them with a single space.
    """

    def __init__(self, subcon: Construct, *, spaces: bool, min_len: int, max_len: int) -> None:
        super().__init__(subcon)
        self.spaces = spaces
        self.min_len = min_len
        self.max_len = max_len

    def _check(self, text: str, raw_len: int, path: str) -> None:
        name = field_name(path)
        if not self.min_len <= raw_len <= self.max_len:
            if raw_len < self.min_len:
                raise ValidationError(f"{name} is empty", path=path)
            raise ValidationError(
                f"{name} is {raw_len} bytes long, at most {self.max_len}", path=path
            )
        for char in text:
            if not char.isprintable() or (not self.spaces and char.isspace()):
                raise ValidationError(f"{name} holds {describe_char(char)}", path=path)

    def _decode(self, obj: bytes, context: Any, path: str) -> str:
        try:
            text = obj.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError(f"{field_name(path)} is not valid UTF-8", path=path) from None
        self._check(text, len(obj), path)
        return text

    def _encode(self, obj: str, context: Any, path: str) -> bytes:
        if not isinstance(obj, str):
            raise ValidationError(f"{field_name(path)} is not text", path=path)
        try:
            raw = obj.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(
                f"{field_name(path)} cannot be written as UTF-8", path=path
            ) from None
        self._check(obj, len(raw), path)
        return raw


def describe_char(char: str) -> str:
    """A forbidden character named for people: ``a space``, ``a tab``,
    ``a control character U+0007``."""
    names = {" ": "a space", "\t": "a tab", "\r": "a carriage return", "\n": "a line end"}
    if char in names:
        return names[char]
    code = f"U+{ord(char):04X}"
    if char == "\ufeff":
        return f"a byte-order mark {code}"
    if char.isspace():
        return f"a white-space character {code}"
    if ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0:
        return f"a control character {code}"
    return f"an invisible or unassigned character {code}"


class FlagsAdapter(Adapter):  # type: ignore[misc]
    """A flags byte whose only defined bit (bit 0) means "last chunk"."""

    def _decode(self, obj: int, context: Any, path: str) -> bool:
        if obj not in (0, 1):
            raise ValidationError(
                f"upload flags byte is {obj:#04x}, expected 0x00 or 0x01", path=path
            )
        return obj == 1

    def _encode(self, obj: bool, context: Any, path: str) -> int:
        if not isinstance(obj, bool):
            raise ValidationError("final must be True or False", path=path)
        return int(obj)


class BeaconVersionAdapter(Adapter):  # type: ignore[misc]
    """The beacon's version byte: read as 1 when it is 0x01 or the digit
    ``1`` (0x31); always written as the binary 0x01."""

    def _decode(self, obj: int, context: Any, path: str) -> int:
        if obj not in BEACON_VERSION_ALIASES:
            raise ValidationError(
                f"beacon version byte is {obj:#04x}, expected 0x01 (or the digit 1)",
                path=path,
            )
        return BEACON_VERSION

    def _encode(self, obj: int, context: Any, path: str) -> int:
        if obj != BEACON_VERSION:
            raise ValidationError(f"beacon version must be {BEACON_VERSION}", path=path)
        return BEACON_VERSION


class ChunkCountAdapter(Adapter):  # type: ignore[misc]
    """An entry count checked against the chunk cap before any entry is read."""

    def _decode(self, obj: int, context: Any, path: str) -> int:
        if obj > MAX_UPLOAD_CHUNK:
            raise ValidationError(
                f"{obj} entries in one chunk, at most {MAX_UPLOAD_CHUNK}", path=path
            )
        return obj

    def _encode(self, obj: int, context: Any, path: str) -> int:
        return self._decode(obj, context, path)


def _text(prefix: Construct, *, spaces: bool, min_len: int, max_len: int) -> Construct:
    return TextAdapter(
        Prefixed(prefix, GreedyBytes), spaces=spaces, min_len=min_len, max_len=max_len
    )


TempID = TempIDAdapter(Bytes(TEMPID_LEN))
Timestamp = TimestampAdapter(Bytes(TIMESTAMP_LEN))

Window = Struct(
    "tempid" / TempID,
    "start" / Timestamp,
    "expiry" / Timestamp,
)
"""A TempID and its validity window: a contact-log entry, 58 bytes."""

Beacon = Struct(
    "tempid" / TempID,
    "start" / Timestamp,
    "expiry" / Timestamp,
    "version" / BeaconVersionAdapter(Int8ub),
    Terminated,
)
"""The whole UDP datagram, 59 bytes and nothing else. Built with
``version=1``; parsing gives ``version == 1`` for either accepted byte."""

Credential = _text(Int8ub, spaces=False, min_len=1, max_len=MAX_TEXT_LEN)


_NAMED_CREDENTIALS = {name: Struct(name / Credential) for name in ("username", "password")}


def credential_problem(text: str, name: str = "username") -> str | None:
    """Why ``text`` cannot be a username or password (a sentence naming
    ``name``), or None if it can: the Credential field is the one statement
    of that rule, for credentials.txt and the client too."""
    try:
        _NAMED_CREDENTIALS[name].build({name: text})
    except ConstructError as exc:
        return describe_error(exc, name)
    return None


def is_credential(text: object) -> bool:
    """Whether ``text`` can be a username or password, as the Credential
    field decides, without building anything (credentials.txt has a line per
    user, so this runs a million times at start-up). Holds because the only
    printable white space is the space itself; ``tests/test_fastcodec.py``
    checks that over every code point and holds this equal to
    :func:`credential_problem` over arbitrary text."""
    return (
        isinstance(text, str)
        and text.isprintable()
        and " " not in text
        and 0 < len(text) <= MAX_TEXT_LEN
        and len(text.encode("utf-8")) <= MAX_TEXT_LEN
    )


PHONE_NUMBER = re.compile(r"\+[1-9][0-9]{6,14}")
"""What a registration's username must be (section 3.8): ``+``, then 7 to 15
digits, the first not 0."""


def is_phone_number(text: str) -> bool:
    """Whether ``text`` is a number the server would register; the phone and
    ``bluetrace-passwd`` check it before anything is typed or stored."""
    return PHONE_NUMBER.fullmatch(text) is not None


_CONST_MISMATCH = re.compile(r"parsing expected (\d+) but parsed (\d+)")


def describe_error(exc: ConstructError, what: str) -> str:
    """One sentence for people from a construct error raised while reading
    or writing ``what`` (for example ``the LOGIN body``): the adapters above
    already write sentences; construct's own errors are reworded here, so no
    parser wording (paths, "ConstError", byte reprs) reaches a user."""
    path = str(getattr(exc, "path", None) or "")
    text = str(exc)
    lines = text.strip().splitlines()
    if lines and lines[0].startswith("Error in path"):
        lines = lines[1:]
    message = " ".join(line.strip() for line in lines)
    field = field_name(path)
    if isinstance(exc, ValidationError):
        return message
    if isinstance(exc, StreamError):
        if field == "value":
            return f"{what} ends early"
        return f"{what} ends in the middle of {field}"
    if isinstance(exc, TerminatedError):
        return f"{what} has extra bytes after its end"
    if isinstance(exc, ConstError):
        found = _CONST_MISMATCH.search(message)
        if found:
            expected, got = int(found.group(1)), int(found.group(2))
            return f"{what} {field} byte is {got:#04x}, expected {expected:#04x}"
        return f"{what} {field} is wrong"
    if isinstance(exc, ExplicitError):
        return f"{what} has an unknown type"
    if isinstance(exc, FormatFieldError):
        return f"{field} does not fit in its field"
    return f"{what} is malformed"


LoginBody = Struct("username" / Credential, "password" / Credential, Terminated)
LoginReplyBody = Struct("status" / IntEnumAdapter(Int8ub, LoginStatus), Terminated)
RegisterBody = LoginBody
"""A registration carries what a login does: username (the phone number) and password."""
RegisterReplyBody = Struct("status" / IntEnumAdapter(Int8ub, RegisterStatus), Terminated)
EmptyBody = Struct(Terminated)
TempIDReplyBody = Struct("window" / Window, Terminated)
UploadBody = Struct(
    "final" / FlagsAdapter(Int8ub),
    "count" / ChunkCountAdapter(Int16ub),
    "entries" / Array(this.count, Window),
    Terminated,
)
UploadReplyBody = Struct("received" / Int32ub, Terminated)
ErrorBody = Struct(
    "code" / IntEnumAdapter(Int8ub, ErrorCode),
    "text" / _text(Int16ub, spaces=True, min_len=0, max_len=MAX_ERROR_TEXT_LEN),
    Terminated,
)

BODIES: dict[MessageType, Construct] = {
    MessageType.LOGIN: LoginBody,
    MessageType.TEMPID_REQUEST: EmptyBody,
    MessageType.UPLOAD: UploadBody,
    MessageType.LOGOUT: EmptyBody,
    MessageType.REGISTER: RegisterBody,
    MessageType.LOGIN_REPLY: LoginReplyBody,
    MessageType.TEMPID_REPLY: TempIDReplyBody,
    MessageType.UPLOAD_REPLY: UploadReplyBody,
    MessageType.LOGOUT_REPLY: EmptyBody,
    MessageType.REGISTER_REPLY: RegisterReplyBody,
    MessageType.ERROR: ErrorBody,
}

FrameHeader = Struct(
    "version" / Const(FRAME_VERSION, Int8ub),
    "type" / IntEnumAdapter(Int8ub, MessageType),
    "length" / Int32ub,
)
"""The fixed 6-byte header, parsed alone so the size cap is enforced before
the body is buffered."""

Frame = Struct(
    "version" / Const(FRAME_VERSION, Int8ub),
    "type" / IntEnumAdapter(Int8ub, MessageType),
    "body" / Prefixed(Int32ub, Switch(this.type, BODIES, default=Error)),
    Terminated,
)
"""A whole TCP frame: header, then a body whose layout the type selects."""
