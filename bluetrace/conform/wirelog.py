"""The hex log of both directions, with times, shown with every non-pass.

A report without the bytes exchanged cannot be argued with; this one keeps
every byte the kit sent and received (and what a phone printed), each with
its time since the case began.
"""

import time
from dataclasses import dataclass, field

_ROW = 16
_MAX_SHOWN = 256
"""Bytes shown per event; a full upload chunk would bury the report."""


@dataclass(frozen=True)
class WireEvent:
    at: float
    direction: str
    """``kit>`` for bytes the kit sent, ``<kit`` for bytes it received,
    ``note`` for events without bytes (a close, a reset, terminal text)."""
    channel: str
    data: bytes


@dataclass
class WireLog:
    started: float = field(default_factory=time.monotonic)
    events: list[WireEvent] = field(default_factory=list)

    def sent(self, channel: str, data: bytes) -> None:
        self.events.append(WireEvent(time.monotonic() - self.started, "kit>", channel, data))

    def received(self, channel: str, data: bytes) -> None:
        self.events.append(WireEvent(time.monotonic() - self.started, "<kit", channel, data))

    def note(self, channel: str, text: str) -> None:
        self.events.append(
            WireEvent(time.monotonic() - self.started, "note", channel, text.encode("utf-8"))
        )

    def render(self) -> str:
        lines: list[str] = []
        for event in self.events:
            head = f"{event.at:8.3f}s {event.direction} {event.channel:<10}"
            if event.direction == "note":
                text = event.data.decode("utf-8", "replace")
                lines.append(f"{head} {text}")
                continue
            lines.append(f"{head} {len(event.data)} bytes")
            shown = event.data[:_MAX_SHOWN]
            for offset in range(0, len(shown), _ROW):
                row = shown[offset : offset + _ROW]
                hexed = " ".join(f"{byte:02x}" for byte in row)
                text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in row)
                lines.append(f"{'':22}{offset:04x}  {hexed:<47}  {text}")
            if len(event.data) > _MAX_SHOWN:
                lines.append(f"{'':22}... {len(event.data) - _MAX_SHOWN} more bytes")
        return "\n".join(lines)
