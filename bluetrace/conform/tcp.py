"""One TCP connection as the kit sees it: frames in, frames out, and how it ends.

Every read is bounded by the case's deadline. Frames from the target are cut
by their header and decoded with ``bluetrace.protocol.messages``; anything that does
not decode is itself a finding, reported with its bytes.

Closing is reported as it happened: ``FIN`` (an orderly close, read returns
nothing) or ``RST`` (a reset). Where the specification says "closed", a case
accepts either, and says which one it saw.
"""

import contextlib
import errno
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bluetrace.conform.model import CaseContext, CaseFailed
from bluetrace.conform.wirelog import WireLog
from bluetrace.protocol import wire
from bluetrace.protocol.errors import ProtocolError
from bluetrace.protocol.messages import (
    ErrorReply,
    LoginReply,
    Message,
    TempIDReply,
    UploadReply,
    decode,
)
from bluetrace.protocol.timefmt import format_timestamp

HEADER = wire.FRAME_HEADER_LEN


@dataclass(frozen=True)
class Closed:
    how: str
    """``FIN`` or ``RST``."""
    after: float
    """Seconds from the moment the kit began waiting."""

    def __str__(self) -> str:
        kind = "closed (FIN)" if self.how == "FIN" else "reset (RST)"
        return f"connection {kind}"


def describe(message: Message) -> str:
    """A message as a report shows it."""
    if isinstance(message, ErrorReply):
        return f"ERROR {message.code.name} {message.text!r}"
    if isinstance(message, LoginReply):
        return f"LOGIN_REPLY {message.status.name}"
    if isinstance(message, TempIDReply):
        window = message.window
        return (
            f"TEMPID_REPLY {window.tempid} {format_timestamp(window.start)} .. "
            f"{format_timestamp(window.expiry)}"
        )
    if isinstance(message, UploadReply):
        return f"UPLOAD_REPLY {message.received}"
    return message.TYPE.name


class Conn:
    def __init__(self, sock: socket.socket, log: WireLog, channel: str) -> None:
        self.sock = sock
        self.log = log
        self.channel = channel
        self.buffer = bytearray()
        self.closed: Closed | None = None
        self.user = ""
        """The account this connection logged in as, if any."""
        self.side: tuple[int, Callable[[], bool]] | None = None
        """Another descriptor to serve while waiting (a phone's terminal, which
        would block the phone if nobody read it); its callback returns False
        once that descriptor is finished."""
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    @classmethod
    def open(
        cls,
        host: str,
        port: int,
        ctx: CaseContext,
        channel: str = "tcp",
        source: str | None = None,
    ) -> "Conn":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if source is not None:
                sock.bind((source, 0))
            sock.settimeout(ctx.remaining(5.0))
            sock.connect((host, port))
        except OSError as exc:
            sock.close()
            raise CaseFailed(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
        local = sock.getsockname()
        ctx.log.note(channel, f"connected from {local[0]}:{local[1]}")
        return cls(sock, ctx.log, channel)

    def send(self, data: bytes) -> None:
        self.log.sent(self.channel, data)
        try:
            self.sock.sendall(data)
        except OSError as exc:
            self.log.note(self.channel, f"send failed: {exc.strerror or exc}")

    def _fill(self, timeout: float) -> bool:
        """Read what arrives within ``timeout``; False if nothing did."""
        if self.closed is not None:
            return False
        watched: list[Any] = [self.sock]
        if self.side is not None:
            watched.append(self.side[0])
        ready, _, _ = select.select(watched, [], [], max(0.0, timeout))
        if not ready:
            return False
        if self.side is not None and self.side[0] in ready:
            if not self.side[1]():
                self.side = None
            if self.sock not in ready:
                return True
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            self._mark("RST")
            return False
        except OSError as exc:
            if exc.errno in (errno.ECONNRESET, errno.EPIPE):
                self._mark("RST")
                return False
            raise
        if not data:
            self._mark("FIN")
            return False
        self.log.received(self.channel, data)
        self.buffer += data
        return True

    def _mark(self, how: str) -> None:
        self.closed = Closed(how, 0.0)
        self.log.note(self.channel, f"peer {'closed (FIN)' if how == 'FIN' else 'reset (RST)'}")

    def next_frame(self, ctx: CaseContext, wait: float | None = None) -> Message | Closed | None:
        """The next whole frame, the close that came instead, or None if
        nothing came within ``wait`` (default: the per-case timeout)."""
        started = time.monotonic()
        limit = ctx.timeout if wait is None else wait
        while True:
            frame = self._cut()
            if frame is not None:
                return frame
            if self.closed is not None:
                return Closed(self.closed.how, time.monotonic() - started)
            left = limit - (time.monotonic() - started)
            if left <= 0:
                return None
            self._fill(ctx.remaining(left))

    def _cut(self) -> Message | None:
        if len(self.buffer) < HEADER:
            return None
        length = int.from_bytes(self.buffer[2:HEADER], "big")
        if length > wire.MAX_FRAME_BODY or self.buffer[0] != wire.FRAME_VERSION:
            raise CaseFailed(f"the target sent a frame header that breaks section 3: "
                             f"{bytes(self.buffer[:HEADER]).hex(' ')}")
        if len(self.buffer) < HEADER + length:
            return None
        raw = bytes(self.buffer[: HEADER + length])
        del self.buffer[: HEADER + length]
        try:
            return decode(raw)
        except ProtocolError as exc:
            raise CaseFailed(f"the target sent a malformed frame ({exc}): {raw.hex(' ')}") from None

    def expect(self, ctx: CaseContext, wanted: str, wait: float | None = None) -> Message:
        """The next frame, which must exist; ``wanted`` names it for the report."""
        got = self.next_frame(ctx, wait)
        if got is None:
            limit = ctx.timeout if wait is None else wait
            raise CaseFailed(f"expected {wanted}; nothing arrived within {limit:g} s")
        if isinstance(got, Closed):
            raise CaseFailed(f"expected {wanted}; {got} after {got.after:.2f} s instead")
        return got

    def wait_closed(self, ctx: CaseContext, wait: float) -> Closed | Message | None:
        """How the connection ends within ``wait``: a Closed, a frame that came
        first, or None if it stayed open."""
        return self.next_frame(ctx, wait)

    def silence(self, ctx: CaseContext, wait: float) -> Message | Closed | None:
        """Whatever arrives within ``wait``; None is the expected silence."""
        return self.next_frame(ctx, wait)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> "Conn":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
