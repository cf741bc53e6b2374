"""Raw bytes for the kit to send, legal or deliberately not.

Legal frames come from ``bluetrace.protocol.messages.encode``; broken ones are built by
hand here, because the message classes refuse to carry what the protocol
forbids, which is exactly what the kit must send.
"""

import secrets
from datetime import datetime, timedelta

from bluetrace.protocol import wire
from bluetrace.protocol.messages import TempIDWindow, encode_beacon
from bluetrace.protocol.timefmt import format_timestamp, wall_now

OLD_START = "13/05/2020 17:45:06"
OLD_EXPIRY = "13/05/2020 18:00:05"


def frame(kind: int, body: bytes = b"", *, version: int = 1, length: int | None = None) -> bytes:
    size = len(body) if length is None else length
    return bytes([version, kind]) + size.to_bytes(4, "big") + body


def header(kind: int, length: int, *, version: int = 1) -> bytes:
    return frame(kind, b"", version=version, length=length)


def text8(raw: bytes) -> bytes:
    return bytes([len(raw)]) + raw


def login(username: str | bytes, password: str | bytes) -> bytes:
    user = username.encode("utf-8") if isinstance(username, str) else username
    word = password.encode("utf-8") if isinstance(password, str) else password
    return frame(0x01, text8(user) + text8(word))


def register(username: str, password: str) -> bytes:
    """REGISTER (section 3.8): laid out as LOGIN, type 0x05."""
    return frame(0x05, text8(username.encode("utf-8")) + text8(password.encode("utf-8")))


TEMPID_REQUEST = frame(0x02)
LOGOUT = frame(0x04)


def random_tempid() -> str:
    return f"{secrets.randbelow(10**20):020d}"


def entry(tempid: str, start: str = OLD_START, expiry: str = OLD_EXPIRY) -> bytes:
    """58 bytes, with no check: the kit also sends impossible dates."""
    return tempid.encode("ascii") + start.encode("ascii") + expiry.encode("ascii")


def upload(entries: list[bytes], final: bool, *, count: int | None = None) -> bytes:
    number = len(entries) if count is None else count
    body = bytes([1 if final else 0]) + number.to_bytes(2, "big") + b"".join(entries)
    return frame(0x03, body)


def beacon(
    tempid: str, start: datetime | str, expiry: datetime | str, version: int = 0x01
) -> bytes:
    first = start if isinstance(start, str) else format_timestamp(start)
    last = expiry if isinstance(expiry, str) else format_timestamp(expiry)
    return entry(tempid, first, last) + bytes([version])


def valid_beacon(tempid: str | None = None) -> tuple[str, bytes]:
    """A beacon valid for minutes around now, and its TempID."""
    now = wall_now()
    ident = tempid or random_tempid()
    window = TempIDWindow(ident, now - timedelta(minutes=1), now + timedelta(minutes=14))
    return ident, encode_beacon(window)


REPLY_FRAMES = {
    0x81: frame(0x81, b"\x00"),
    0x82: frame(0x82, entry("12345678901234567893")),
    0x83: frame(0x83, (2).to_bytes(4, "big")),
    0x84: frame(0x84),
    0x85: frame(0x85, b"\x03"),
    0xFF: frame(0xFF, b"\x01" + (4).to_bytes(2, "big") + b"oops"),
}
"""One well-formed frame of each reply type, for a client to send wrongly."""

UNKNOWN_TYPES = (0x00, 0x06, 0x7F, 0x80, 0x86, 0xFE)
MAX_BODY = wire.MAX_FRAME_BODY
PRE_LOGIN_MAX = 2 * (1 + wire.MAX_TEXT_LEN)
