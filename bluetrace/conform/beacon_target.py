"""The phone under test in beacon mode: its UDP port and its contact log, and
whether it still stores beacons (a phone that stops is said to be dead, once,
and every later case is N/A)."""

import socket
from dataclasses import dataclass
from pathlib import Path

from bluetrace.conform import frames
from bluetrace.conform.model import (
    CaseContext,
    CaseFailed,
    CaseNotApplicable,
    bounded_wait,
)
from bluetrace.protocol.timefmt import format_timestamp, wall_now


@dataclass
class BeaconTarget:
    host: str
    port: int
    log_path: Path
    retention: float | None = None
    max_wait: float = 10.0
    speaks: bool | None = None
    """Whether the phone stores a valid raw 59-byte beacon (None: not yet known)."""
    dead: str | None = None
    """When and in which case the phone stopped storing valid beacons."""

    def probe_format(self, ctx: CaseContext) -> bool:
        """Send one valid 59-byte beacon, once per run: is it stored?"""
        if self.speaks is None:
            tempid, data = frames.valid_beacon()
            self.send(ctx, data)
            self.speaks = bounded_wait(lambda: self.has(tempid), ctx.remaining(ctx.timeout))
        return self.speaks

    def gate(self, ctx: CaseContext) -> None:
        """N/A unless the phone speaks the format and is still receiving."""
        if self.dead is not None:
            raise CaseNotApplicable(f"the phone stopped storing beacons {self.dead}")
        if not self.probe_format(ctx):
            raise CaseNotApplicable("the phone does not store the raw 59-byte beacon "
                                    "(see beacon/2/format)")

    def send(self, ctx: CaseContext, data: bytes, sock: socket.socket | None = None) -> None:
        ctx.log.sent("udp", data)
        if sock is not None:
            sock.sendto(data, (self.host, self.port))
            return
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as fresh:
            fresh.sendto(data, (self.host, self.port))

    def lines(self) -> list[str]:
        try:
            raw = self.log_path.read_bytes()
        except FileNotFoundError:
            return []
        return [line.rstrip("\r") for line in raw.decode("utf-8", "replace").split("\n")]

    def has(self, tempid: str) -> bool:
        return any(tempid in line for line in self.lines())

    def wait_stored(self, ctx: CaseContext, tempid: str, what: str) -> str:
        if not bounded_wait(lambda: self.has(tempid), ctx.remaining(ctx.timeout)):
            raise CaseFailed(f"{what} ({tempid}) never reached {self.log_path.name} within "
                             f"{ctx.timeout:g} s")
        return next(line for line in self.lines() if tempid in line)

    def rejected(self, ctx: CaseContext, probes: list[tuple[str, bytes, str]]) -> None:
        """Send each probe (name, datagram, text to look for), then a sentinel;
        none of the probes may be in the log once the sentinel is."""
        for _, data, _ in probes:
            self.send(ctx, data)
        tempid, data = frames.valid_beacon()
        self.send(ctx, data)
        if not bounded_wait(lambda: self.has(tempid), ctx.remaining(ctx.timeout)):
            self.dead = (f"at {format_timestamp(wall_now())}, after "
                         f"{', '.join(name for name, _, _ in probes)}")
            raise CaseFailed(f"THE PHONE STOPPED RECEIVING: a valid beacon sent after "
                             f"{', '.join(name for name, _, _ in probes)} was never stored "
                             f"({self.dead}); restart it before testing it by hand")
        stored = [name for name, _, needle in probes if needle and self.has(needle)]
        if stored:
            raise CaseFailed(f"stored although it must be rejected: {', '.join(stored)}")
