"""A fast reading of the fixed-size wire parts, derived from ``wire.py``.

The construct definitions in :mod:`bluetrace.protocol.wire` stay the one statement of
the format; this module only reads them faster. At import it walks the
construct structs (``Beacon``, ``Window``, ``UploadBody``, ``FrameHeader``)
and *generates* from them:

- the field order, offsets and sizes, used for slicing;
- a ``struct`` format for the frame header and the upload prefix, from their
  ``FormatField`` subcons, and the constants (frame version, known types,
  accepted beacon version bytes, the chunk cap) from the fields themselves;
- a regular expression per fixed-size struct, one fragment per field kind.

Field *kinds* (TempID, Timestamp, beacon version) are Python adapters whose
rules construct cannot state declaratively, so the regular expression for
each kind is written here (the timestamp one in :mod:`bluetrace.protocol.timefmt`);
a field of a kind this module does not know stops the import. Then a handful
of probes (valid, each field broken, both version bytes, leap days) are read
by both paths at import, and any disagreement stops the import too, so a
change to ``wire.py`` cannot leave a stale fast path running. The full
equivalence over arbitrary messages and bytes is shown by hypothesis in
``tests/test_fastcodec.py``.

Why generate and probe rather than call construct: construct (even compiled)
builds a Container and two datetimes per beacon, 50,000-120,000 beacons a
second on the project's 2-core machine; a regular expression over the latin-1
text plus three slices reads 650,000-1,300,000 there
(``python -m bluetrace.bench.codec``).

Every reader here returns None for input it does not accept, and never says
why: the caller then asks construct, which gives the verdict and the reason.
So this module can only make a valid input faster, never change a message.
"""

import re
import struct
from collections.abc import Callable
from typing import Any, Final

from construct import Const, Construct, ConstructError, FormatField, Struct, Terminated

from bluetrace.protocol import wire
from bluetrace.protocol.errors import RemoteProtocolError
from bluetrace.protocol.timefmt import TIMESTAMP_LEN, TIMESTAMP_REGEX, format_timestamp

Fields = tuple[str, str, str]
"""A window as its three wire texts: TempID, start and expiry."""


def _tempid_fragment(field: Construct) -> str:
    return f"[0-9]{{{field.sizeof()}}}"


def _timestamp_fragment(field: Construct) -> str:
    if field.sizeof() != TIMESTAMP_LEN:
        raise ImportError("wire.Timestamp no longer has the length of timefmt's timestamp")
    return TIMESTAMP_REGEX


def _version_fragment(field: Construct) -> str:
    if field.sizeof() != 1:
        raise ImportError("the beacon version is no longer one byte")
    accepted = "".join(f"\\x{byte:02x}" for byte in sorted(wire.BEACON_VERSION_ALIASES))
    return f"[{accepted}]"


_FRAGMENTS: dict[type, Callable[[Construct], str]] = {
    wire.TempIDAdapter: _tempid_fragment,
    wire.TimestampAdapter: _timestamp_fragment,
    wire.BeaconVersionAdapter: _version_fragment,
}


def _layout(definition: Struct, *, groups: bool) -> tuple[str, dict[str, tuple[int, int]]]:
    """A regular expression (over the latin-1 text of the bytes) for a
    fixed-size struct, and each named field's (start, end) offsets."""
    pattern: list[str] = []
    offsets: dict[str, tuple[int, int]] = {}
    at = 0
    for sub in definition.subcons:
        if sub is Terminated:
            continue  # fullmatch and exact lengths enforce the end
        field = sub.subcon
        make = _FRAGMENTS.get(type(field))
        if make is None:
            raise ImportError(f"fastcodec does not know the field {sub.name} of {definition}")
        size = int(field.sizeof())
        fragment = make(field)
        pattern.append(f"({fragment})" if groups else f"(?:{fragment})")
        offsets[sub.name] = (at, at + size)
        at += size
    return "".join(pattern), offsets


def _struct_format(definition: Struct) -> str:
    """A ``struct`` format from a struct of FormatFields (bare, in Const or in
    an adapter), all big-endian."""
    codes = []
    for sub in definition.subcons:
        field = sub.subcon
        while not isinstance(field, FormatField):
            field = field.subcon
        if field.fmtstr[0] != ">":
            raise ImportError(f"{sub.name} is not big-endian")
        codes.append(field.fmtstr[1:])
    return ">" + "".join(codes)


_BEACON_PATTERN, _BEACON_AT = _layout(wire.Beacon, groups=False)
_BEACON: Final = re.compile(_BEACON_PATTERN)
_WINDOW_PATTERN, _WINDOW_AT = _layout(wire.Window, groups=True)
_WINDOW: Final = re.compile(_WINDOW_PATTERN)
WINDOW_LEN: Final = _WINDOW_AT["expiry"][1]
BEACON_LEN: Final = _BEACON_AT["version"][1]
_T0, _T1 = _BEACON_AT["tempid"]
_S0, _S1 = _BEACON_AT["start"]
_E0, _E1 = _BEACON_AT["expiry"]
if [_BEACON_AT[name] for name in _WINDOW_AT] != list(_WINDOW_AT.values()):
    raise ImportError("the beacon no longer starts with a window")

_HEADER: Final = struct.Struct(_struct_format(wire.FrameHeader))
HEADER_LEN: Final = _HEADER.size
_VERSION_FIELD = wire.FrameHeader.subcons[0].subcon
if not isinstance(_VERSION_FIELD, Const):
    raise ImportError("the frame version is no longer a constant")  # noqa: TRY004
FRAME_VERSION: Final[int] = _VERSION_FIELD.value
_TYPES: Final = {int(kind): kind for kind in wire.FrameHeader.subcons[1].subcon.enum_type}

_UPLOAD_PREFIX: Final = struct.Struct(_struct_format(Struct(*wire.UploadBody.subcons[:2])))
_FINAL_OK: Final = frozenset({0, 1})
"""The flags bytes FlagsAdapter reads (the import probe tries all 256)."""
_MAX_CHUNK: Final = wire.MAX_UPLOAD_CHUNK
_BEACON_SUFFIX: Final = bytes([wire.BEACON_VERSION])


def read_header(data: bytes | bytearray | memoryview) -> tuple[wire.MessageType, int]:
    """The type and body length of the 6-byte header at the start of
    ``data``; RemoteProtocolError with a sentence if it is not one."""
    version, kind, length = _HEADER.unpack_from(data)
    if version != FRAME_VERSION:
        raise RemoteProtocolError(
            f"frame version byte is {version:#04x}, expected {FRAME_VERSION:#04x}"
        )
    known = _TYPES.get(kind)
    if known is None:
        raise RemoteProtocolError(f"unknown message type {kind:#04x}")
    return known, length


def header(kind: int, length: int) -> bytes:
    """The 6-byte header of a frame."""
    return _HEADER.pack(FRAME_VERSION, kind, length)


def beacon_fields(datagram: bytes) -> Fields | None:
    """The texts of a well-formed beacon, or None (then ask construct)."""
    if len(datagram) != BEACON_LEN:
        return None
    text = datagram.decode("latin-1")
    if _BEACON.fullmatch(text) is None:
        return None
    return text[_T0:_T1], text[_S0:_S1], text[_E0:_E1]


def beacon_bytes(tempid: str, start: str, expiry: str) -> bytes:
    """The beacon for texts already known to be a valid window."""
    return (tempid + start + expiry).encode("ascii") + _BEACON_SUFFIX


def window_fields(body: bytes) -> Fields | None:
    """The texts of exactly one window (a TEMPID_REPLY body), or None."""
    if len(body) != WINDOW_LEN:
        return None
    match = _WINDOW.fullmatch(body.decode("latin-1"))
    if match is None:
        return None
    tempid, start, expiry = match.groups()
    return tempid, start, expiry


def upload_fields(body: bytes) -> tuple[bool, list[Fields]] | None:
    """``final`` and the entries' texts of a well-formed UPLOAD body, or None.

    One ``findall`` checks and cuts every entry: the matches are fixed-length
    and cannot overlap, so ``count`` of them in ``count`` windows' worth of
    text can only be the whole text, tiled.
    """
    if len(body) < _UPLOAD_PREFIX.size:
        return None
    flags, count = _UPLOAD_PREFIX.unpack_from(body)
    if (
        flags not in _FINAL_OK
        or count > _MAX_CHUNK
        or len(body) != _UPLOAD_PREFIX.size + count * WINDOW_LEN
    ):
        return None
    found: list[Fields] = _WINDOW.findall(body.decode("latin-1"), _UPLOAD_PREFIX.size)
    if len(found) != count:
        return None
    return flags == 1, found


def upload_body(final: bool, count: int, entries: bytes) -> bytes:
    """An UPLOAD body from its entries' bytes (already valid windows)."""
    return _UPLOAD_PREFIX.pack(int(final), count) + entries


def _container_texts(parsed: Any) -> Fields:
    return parsed.tempid, format_timestamp(parsed.start), format_timestamp(parsed.expiry)


def _agrees(data: bytes) -> bool:
    """Whether the fast beacon reader and construct agree on ``data``."""
    fast = beacon_fields(data)
    try:
        slow = wire.Beacon.parse(data)
    except ConstructError:
        return fast is None
    return fast == _container_texts(slow)


def _probe() -> None:
    """Read a handful of inputs both ways; stop the import on a difference."""
    good = b"1234567890123456789314/05/2020 17:54:0614/05/2020 18:09:05\x01"
    probes = [
        good,
        good[:-1] + b"1",
        good[:-1] + b"\x02",
        good[:-1],
        good + b"\x00",
        b"1234567890123456789a" + good[20:],
        good.replace(b"14/05/2020 17", b"31/02/2020 17"),
        good.replace(b"14/05/2020 17", b"29/02/2000 17"),
        good.replace(b"14/05/2020 17", b"29/02/1900 17"),
        good.replace(b"17:54:06", b"24:00:00"),
        good.replace(b"14/05/2020 18", b"14/05/0000 18"),
    ]
    for data in probes:
        if not _agrees(data):
            raise ImportError(f"fastcodec disagrees with wire.Beacon on {data!r}")
        window, body = data[:WINDOW_LEN], b"\x01\x00\x01" + data[:WINDOW_LEN]
        try:
            parsed = wire.UploadBody.parse(body)
            slow: object = (True, [_container_texts(parsed.entries[0])])
            wire.TempIDReplyBody.parse(window)
        except ConstructError:
            slow = None
        fast = upload_fields(body)
        if slow != fast or (fast is None) != (window_fields(window) is None):
            raise ImportError(f"fastcodec disagrees with wire.UploadBody on {body!r}")
    for flags in range(256):
        body = bytes([flags]) + b"\x00\x00"
        try:
            wire.UploadBody.parse(body)
            accepted = True
        except ConstructError:
            accepted = False
        if accepted != (upload_fields(body) is not None):
            raise ImportError(f"fastcodec disagrees with wire.UploadBody on flags {flags}")
    for data in (
        b"\x01\x02\x00\x00\x00\x00",
        b"\x02\x02\x00\x00\x00\x00",
        b"\x01\x85\x00\x00\x00\x01",
    ):
        try:
            header_fields = wire.FrameHeader.parse(data)
            slow_header: object = (header_fields.type, header_fields.length)
        except ConstructError:
            slow_header = None
        try:
            fast_header: object = read_header(data)
        except RemoteProtocolError:
            fast_header = None
        if slow_header != fast_header:
            raise ImportError(f"fastcodec disagrees with wire.FrameHeader on {data!r}")


_probe()
