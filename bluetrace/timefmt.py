"""The specification's timestamp, ``DD/MM/YYYY HH:MM:SS`` in local time.

Formatting is done by hand because ``strftime("%Y")`` drops the leading
zeros of years below 1000 on glibc, which would break the fixed 19-byte width.
"""

import re
from datetime import datetime, timedelta

TIMESTAMP_LEN = 19

_PATTERN = re.compile(r"([0-9]{2})/([0-9]{2})/([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2})")


def format_timestamp(moment: datetime) -> str:
    """Render ``moment`` in the fixed-width form the files and the wire use."""
    return (
        f"{moment.day:02d}/{moment.month:02d}/{moment.year:04d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )


def parse_timestamp(text: str) -> datetime:
    """Parse a timestamp; ``ValueError`` for wrong shape or an impossible date."""
    match = _PATTERN.fullmatch(text)
    if match is None:
        raise ValueError(f"not a DD/MM/YYYY HH:MM:SS timestamp: {text!r}")
    day, month, year, hour, minute, second = (int(part) for part in match.groups())
    # datetime() itself rejects 31/02, hour 24, year 0 and the like.
    return datetime(year, month, day, hour, minute, second)


def wall_now() -> datetime:
    """Local wall-clock time at the one-second resolution the format carries."""
    return datetime.now().replace(microsecond=0)


ONE_SECOND = timedelta(seconds=1)
