"""Terminal and log output that can never stop the loop.

A server's stdout or stderr may be a pipe nobody reads, a closed pipe, or a
full disk. Written directly, any of these blocks or kills the server for
every phone. Here lines go into a bounded buffer and out through the loop,
non-blocking: when the buffer is full, lines are dropped and counted, and
the count is reported once the stream drains (a single text larger than the
whole buffer is refused at once, and said to be so); a stream that fails
for good (EPIPE, ENOSPC, EIO) is disabled with one message on the other
stream. The data files stay the record, so only terminal text can be lost.

Usernames come from data files and peers, so every character that could
drive a terminal (ESC and the other control characters, the marks that
reorder text) is written as its escape.
"""

import contextlib
import errno
import fcntl
import os
import re
from collections import deque
from collections.abc import Callable

from bluetrace.runtime.reactor import Reactor

DEFAULT_MAX_BUFFER = 4 * 1024 * 1024
#: At most this much is written per loop turn: a large report (a 200,000-entry
#: contact check prints megabytes) goes out over several turns, so writing it
#: to a file or a fast pipe never holds up the phones for long.
MAX_WRITE_PER_TURN = 1024 * 1024
_UNPRINTABLE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""Control characters other than the line feed, and the invisible marks that
reorder text: what would let a data file or a peer drive the terminal."""


def printable(text: str) -> str:
    """``text`` safe for a terminal: each character of _UNPRINTABLE written
    as its escape (ESC as ``\\x1b``). Usernames come from data files and
    peers, and must not move the cursor, retitle the window or hide a line."""
    if _UNPRINTABLE.search(text) is None:
        return text
    return _UNPRINTABLE.sub(lambda found: _escape(found.group()), text)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


_FATAL = (errno.EPIPE, errno.ENOSPC, errno.EIO, errno.EBADF, errno.EDQUOT, errno.EFBIG)


class LineOutput:
    """One output stream (stdout or stderr) of a program that must not block."""

    def __init__(
        self,
        reactor: Reactor,
        fd: int,
        name: str,
        *,
        max_buffer: int = DEFAULT_MAX_BUFFER,
        on_disabled: Callable[[str], None] | None = None,
    ) -> None:
        self.reactor = reactor
        self.fd = fd
        self.name = name
        self.max_buffer = max_buffer
        self.on_disabled = on_disabled
        self.dropped = 0
        self.disabled = False
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._offset = 0  # bytes of the first chunk already written
        self._writing = False
        self._flush_scheduled = False
        self._saved_flags: int | None = None
        self._pollable = True
        try:
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
            if not flags & os.O_NONBLOCK:
                fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
                self._saved_flags = flags
        except OSError:
            self.disabled = True

    def write_line(self, text: str) -> None:
        """Queue ``text`` plus a newline; dropped (and counted) when full."""
        self.write(text + "\n")

    def write(self, text: str) -> None:
        """Queue ``text`` made printable (see :func:`printable`)."""
        if self.disabled:
            return
        data = printable(text).encode("utf-8", errors="replace")
        if len(data) > self.max_buffer:
            # No reader could make room for it: say so now, not later as if
            # the stream had not been read.
            lines = text.count("\n") or 1
            self.write(
                f"[{lines:,} lines dropped: one report of {len(data):,} bytes is larger "
                f"than the {self.max_buffer:,}-byte {self.name} buffer]\n"
            )
            return
        if self._size + len(data) > self.max_buffer:
            self.dropped += text.count("\n") or 1
            return
        if self.dropped and not self._chunks:
            note = f"[{self.dropped:,} lines dropped: {self.name} was not being read]\n"
            self.dropped = 0
            self._chunks.append(note.encode())
            self._size += len(note)
        self._chunks.append(data)
        self._size += len(data)
        if not self._flush_scheduled and not self._writing:
            # Lines written in one loop turn go out in one write, next turn.
            self._flush_scheduled = True
            self.reactor.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self._flush()

    @property
    def pending(self) -> int:
        return self._size

    def _flush(self) -> None:
        if len(self._chunks) > 1:
            joined = b"".join([bytes(memoryview(self._chunks[0])[self._offset :]),
                               *list(self._chunks)[1:]])
            self._chunks.clear()
            self._chunks.append(joined)
            self._offset = 0
        allowance = MAX_WRITE_PER_TURN
        while self._chunks and not self.disabled and allowance > 0:
            head = self._chunks[0]
            piece = memoryview(head)[self._offset : self._offset + allowance]
            try:
                written = os.write(self.fd, piece)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self._disable(exc)
                return
            self._size -= written
            allowance -= written
            self._offset += written
            if self._offset < len(head):
                if written < len(piece):
                    break  # the stream took less than offered: it is full for now
                continue
            self._chunks.popleft()
            self._offset = 0
        self._watch(bool(self._chunks) and not self.disabled)

    def _watch(self, wanted: bool) -> None:
        if wanted == self._writing:
            return
        if not wanted:
            self._writing = False
            self.reactor.remove_writer(self.fd)
            return
        if self._pollable:
            try:
                self.reactor.add_writer(self.fd, self._flush)
            except OSError:
                self._pollable = False  # a regular file: epoll refuses it
            else:
                self._writing = True
                return
        # Not pollable (a regular file): it never blocks, so whatever is left
        # was held back by the per-turn allowance; go on next turn.
        self.reactor.call_soon(self._flush)

    def _disable(self, exc: OSError) -> None:
        self.disabled = True
        self._chunks.clear()
        self._size = 0
        self._offset = 0
        self._watch(False)
        if self.on_disabled is not None and exc.errno in _FATAL:
            reason = exc.strerror or str(exc)
            self.on_disabled(f"{self.name} is unusable ({reason}); no more output there")

    def flush_blocking(self, deadline: float = 1.0) -> None:
        """At exit: try to get the rest out, but never wait past ``deadline``."""
        end = self.reactor.clock() + deadline
        while self._chunks and not self.disabled and self.reactor.clock() < end:
            before = self._size
            self._flush()
            if self._size == before:
                break

    def close(self) -> None:
        self.flush_blocking()
        self._watch(False)
        if self._saved_flags is not None:
            with contextlib.suppress(OSError):
                fcntl.fcntl(self.fd, fcntl.F_SETFL, self._saved_flags)
            self._saved_flags = None
