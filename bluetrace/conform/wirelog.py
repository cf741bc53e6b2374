"""The hex log of both directions, with times, shown with every non-pass.

A report without the bytes exchanged cannot be argued with; this one keeps
what the kit sent and received (and what a phone printed), each with its
time since the case began. A target may flood, so what one case keeps is
bounded: the first 256 bytes of each event (all a report shows), notes cut
at 2,000 characters, and the first and last 200 events; whatever was cut is
counted and said in the rendered log, never dropped silently.
"""

import time
from collections import deque
from dataclasses import dataclass, field

_ROW = 16
_MAX_SHOWN = 256
"""Bytes shown (and kept) per event; a full upload chunk would bury the report."""
MAX_NOTE = 2_000
"""Characters kept of one note (a terminal read can be 64 KiB)."""
HEAD_EVENTS = 200
TAIL_EVENTS = 200
"""A case keeps its first HEAD_EVENTS and last TAIL_EVENTS events: how it
started and how it ended. The middle of a flood is counted, not kept."""


@dataclass(frozen=True)
class WireEvent:
    at: float
    direction: str
    """``kit>`` for bytes the kit sent, ``<kit`` for bytes it received,
    ``note`` for events without bytes (a close, a reset, terminal text)."""
    channel: str
    data: bytes
    size: int = -1
    """How many bytes the event had (``data`` keeps at most 256 of them, a
    note at most MAX_NOTE characters); -1 when ``data`` is whole."""

    @property
    def length(self) -> int:
        return len(self.data) if self.size < 0 else self.size


@dataclass
class WireLog:
    started: float = field(default_factory=time.monotonic)
    events: list[WireEvent] = field(default_factory=list)
    """The first HEAD_EVENTS events."""
    tail: deque[WireEvent] = field(default_factory=lambda: deque(maxlen=TAIL_EVENTS))
    """The latest events after the first HEAD_EVENTS."""
    cut_events: int = 0
    cut_bytes: int = 0
    """Events (and their bytes) between the head and the tail, not kept."""

    def sent(self, channel: str, data: bytes) -> None:
        self._bytes("kit>", channel, data)

    def received(self, channel: str, data: bytes) -> None:
        self._bytes("<kit", channel, data)

    def note(self, channel: str, text: str) -> None:
        size = -1
        if len(text) > MAX_NOTE:
            size = len(text.encode("utf-8"))
            text = f"{text[:MAX_NOTE]} ... ({len(text) - MAX_NOTE:,} more characters not kept)"
        self._keep(WireEvent(self._now(), "note", channel, text.encode("utf-8"), size))

    def _bytes(self, direction: str, channel: str, data: bytes) -> None:
        """Bytes keep their first 256 (all a report shows) and their size."""
        size = -1 if len(data) <= _MAX_SHOWN else len(data)
        self._keep(WireEvent(self._now(), direction, channel, data[:_MAX_SHOWN], size))

    def _now(self) -> float:
        return time.monotonic() - self.started

    def _keep(self, event: WireEvent) -> None:
        if len(self.events) < HEAD_EVENTS:
            self.events.append(event)
            return
        if len(self.tail) == self.tail.maxlen:
            self.cut_events += 1
            self.cut_bytes += self.tail[0].length
        self.tail.append(event)

    def render(self) -> str:
        lines: list[str] = []
        for event in self.events:
            lines += _render(event)
        if self.cut_events:
            lines.append(
                f"{'':22}... {self.cut_events:,} events ({self.cut_bytes:,} bytes) not kept: "
                f"a case keeps its first {HEAD_EVENTS} and last {TAIL_EVENTS} events"
            )
        for event in self.tail:
            lines += _render(event)
        return "\n".join(lines)


def _render(event: WireEvent) -> list[str]:
    head = f"{event.at:8.3f}s {event.direction} {event.channel:<10}"
    if event.direction == "note":
        return [f"{head} {event.data.decode('utf-8', 'replace')}"]
    lines = [f"{head} {event.length} bytes"]
    shown = event.data[:_MAX_SHOWN]
    for offset in range(0, len(shown), _ROW):
        row = shown[offset : offset + _ROW]
        hexed = " ".join(f"{byte:02x}" for byte in row)
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in row)
        lines.append(f"{'':22}{offset:04x}  {hexed:<47}  {text}")
    if event.length > _MAX_SHOWN:
        lines.append(f"{'':22}... {event.length - _MAX_SHOWN} more bytes")
    return lines
