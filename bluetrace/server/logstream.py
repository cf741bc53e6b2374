"""The server's log stream (stderr): every line starts with the local time in
ISO 8601, to the millisecond, with its UTC offset, then the program's name::

    2026-12-05T17:20:01.123+00:00 bluetrace-server: login user=+61410888888 peer=127.0.0.1:50312

A log read hours later, or merged with a phone's or another server's, must
say when each thing happened, and an offset keeps the order right across
time zones and daylight-saving changes. Events about a user have one shape,
so that one pattern finds them all: ``<event> user=<name> peer=<addr> ...``
(:func:`user_event`). Standard output is not touched: it carries the
specification's texts exactly.

Stamping costs one reading of the wall clock per line (``time.time``, read
through the vDSO on Linux, not a system call) and a short format: the
date, the time to the second and the offset are formatted once a second,
and a line in the same millisecond as the one before reuses its stamp.
"""

import time
from collections.abc import Callable
from datetime import datetime

PROGRAM = "bluetrace-server"


class LogStamp:
    """``YYYY-MM-DDTHH:MM:SS.mmm+HH:MM`` for now, in local time."""

    __slots__ = ("_milli", "_second", "_stamp", "_wall", "_whole", "_zone")

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self._second = self._milli = -1
        self._whole = self._zone = self._stamp = ""

    def __call__(self) -> str:
        milli = round(self._wall() * 1_000_000) // 1000  # as datetime rounds, then cut
        if milli == self._milli:
            return self._stamp
        second, part = divmod(milli, 1000)
        if second != self._second:
            # isoformat: 4-digit years and the offset as +HH:MM (with
            # seconds on the rare zone whose offset has them).
            text = datetime.fromtimestamp(second).astimezone().isoformat(timespec="seconds")
            self._whole, self._zone, self._second = text[:19], text[19:], second
        self._milli = milli
        self._stamp = f"{self._whole}.{part:03d}{self._zone}"
        return self._stamp


STAMP = LogStamp()
"""The server's one stamp: the cache serves every line of the process."""


def log_line(text: str, stamp: Callable[[], str] = STAMP) -> str:
    """``text`` as a line of the server's log."""
    return f"{stamp()} {PROGRAM}: {text}"


def user_event(event: str, user: str, peer: str, *details: str) -> str:
    """A log line's text about one user's session: ``<event> user=<name>
    peer=<addr>`` and any ``key=value`` details. Names hold no spaces (the
    Credential field refuses them), so the fields split on spaces."""
    return " ".join((event, f"user={user}", f"peer={peer}", *details))
