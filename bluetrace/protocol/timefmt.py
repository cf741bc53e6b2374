"""The specification's timestamp, ``DD/MM/YYYY HH:MM:SS`` in local time.

Formatting is done by hand because ``strftime("%Y")`` drops the leading
zeros of years below 1000 on glibc, which would break the fixed 19-byte width.

Two readings of the same rule live here: :func:`parse_timestamp` (through
``datetime``, the reference) and :data:`TIMESTAMP_REGEX`, a regular
expression that accepts exactly the texts ``parse_timestamp`` accepts, so the
fast codec can check a timestamp without building a datetime.
``tests/test_fastcodec.py`` holds the two equal.
"""

import re
from datetime import datetime

TIMESTAMP_LEN = 19

_PATTERN = re.compile(r"([0-9]{2})/([0-9]{2})/([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2})")

_YEAR = r"(?!0000)[0-9]{4}"
_LEAP_YEAR = r"(?!0000)(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)"
_DATE = (
    r"(?:"
    r"(?:(?:0[1-9]|1[0-9]|2[0-8])/(?:0[1-9]|1[0-2])"  # days 1-28 of any month
    r"|(?:29|30)/(?:0[13-9]|1[0-2])"  # 29 and 30 of every month but February
    r"|31/(?:0[13578]|1[02])"  # 31 of the long months
    rf")/{_YEAR}"
    rf"|29/02/{_LEAP_YEAR}"  # 29 February of a leap year
    r")"
)
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
TIMESTAMP_REGEX = rf"(?:{_DATE} {_TIME})"
"""A real ``DD/MM/YYYY HH:MM:SS`` moment (years 0001-9999), as a regular
expression fragment with no capturing group."""

_REAL = re.compile(TIMESTAMP_REGEX)


def format_timestamp(moment: datetime) -> str:
    """Render ``moment`` in the fixed-width form the files and the wire use."""
    return (
        f"{moment.day:02d}/{moment.month:02d}/{moment.year:04d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )


def shown(text: str) -> str:
    """``text`` safe to put in a one-line message: characters that are not
    printable appear as escapes (``\\x07``, ``\\u200b``), without quotes."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text)


def shown_bytes(data: bytes) -> str:
    """Raw bytes for a message: printable ASCII as is, the rest as ``\\xNN``."""
    return "".join(chr(byte) if 0x20 <= byte < 0x7F else f"\\x{byte:02x}" for byte in data)


def parse_timestamp(text: str) -> datetime:
    """Parse a timestamp; ``ValueError`` for wrong shape or an impossible date."""
    match = _PATTERN.fullmatch(text)
    if match is None:
        raise ValueError(f"not a real DD/MM/YYYY HH:MM:SS time: {shown(text)}")
    day, month, year, hour, minute, second = (int(part) for part in match.groups())
    # datetime() itself rejects 31/02, hour 24, year 0 and the like.
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError:
        raise ValueError(f"not a real DD/MM/YYYY HH:MM:SS time: {text}") from None


def is_timestamp_text(text: str) -> bool:
    """Whether ``text`` is a timestamp :func:`parse_timestamp` accepts,
    checked without building a datetime."""
    return _REAL.fullmatch(text) is not None


def timestamp_from_text(text: str) -> datetime:
    """The datetime of a timestamp already known to be real (checked by
    :data:`TIMESTAMP_REGEX`): slicing, without a second check of its shape."""
    return datetime(
        int(text[6:10]), int(text[3:5]), int(text[0:2]), int(text[11:13]),
        int(text[14:16]), int(text[17:19]),
    )  # fmt: skip


def wall_now() -> datetime:
    """Local wall-clock time at the one-second resolution the format carries."""
    return datetime.now().replace(microsecond=0)

