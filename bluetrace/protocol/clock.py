"""Time as an input, as in aioquic: cores never read the system clock.

Two readings are needed: monotonic seconds for timers and durations (blocks,
retention), which must not jump when the wall clock is changed, and local
wall-clock time for the timestamps the specification shows and stores.
"""

from datetime import datetime, timedelta
from typing import Protocol

from bluetrace.protocol.timefmt import wall_now


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def wall(self) -> datetime: ...


class SystemClock:
    def monotonic(self) -> float:
        import time  # noqa: PLC0415

        return time.monotonic()

    def wall(self) -> datetime:
        return wall_now()


class ManualClock:
    """A clock that moves only when told to: tests step a 3-minute expiry in
    microseconds, and a simulator can drive many cores from one process."""

    def __init__(self, wall: datetime, monotonic: float = 1000.0) -> None:
        self._wall = wall.replace(microsecond=0)
        self._monotonic = monotonic
        self._offset = 0.0

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._offset += seconds

    def monotonic(self) -> float:
        return self._monotonic + self._offset

    def wall(self) -> datetime:
        return self._wall + timedelta(seconds=int(self._offset))
