"""A program on a pseudo-terminal, with the standard library only.

The kit must install with the package and nothing more, so it does not lean
on pexpect: ``os.openpty`` gives the phone a real terminal (it may switch
echo off for passwords, as a phone should), and this class reads what the
phone shows, waits for a pattern with a deadline, and types lines.

A program may print without end: the text kept for matching is the latest
MAX_PENDING characters (what was cut is counted in ``discarded``). It runs
in a session of its own; closing it ends its whole family (see launch.py).
"""

import codecs
import contextlib
import errno
import os
import re
import select
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bluetrace.conform.launch import Family, end_gracefully

MAX_PENDING = 1024 * 1024
"""Characters of unmatched terminal text kept; a pattern is found only
within them (a prompt or a line is a few hundred at most)."""

class TerminalTimeout(Exception):  # noqa: N818 - named like pexpect's TIMEOUT
    """The pattern did not appear in time."""


class TerminalClosed(Exception):  # noqa: N818 - named like pexpect's EOF
    """The program closed its terminal (it exited) before the pattern appeared."""


class PtyProgram:
    def __init__(self, argv: Sequence[str], cwd: Path,
                 on_output: Callable[[str], None] | None = None) -> None:
        master, slave = os.openpty()
        self.family = Family()
        try:
            self.process = subprocess.Popen(  # noqa: S603 - the user's own phone program
                list(argv), cwd=cwd, stdin=slave, stdout=slave, stderr=slave,
                start_new_session=True, close_fds=True, env=self.family.environment(),
            )
        except OSError:
            os.close(master)
            raise
        finally:
            os.close(slave)
        self.family.started(self.process.pid)
        self.fd = master
        self._fd_open = True
        self.pending = ""
        """Text shown and not yet consumed by an ``expect`` (the latest
        MAX_PENDING characters of it)."""
        self.discarded = 0
        """Characters cut from the front of ``pending`` to keep it bounded."""
        self.closed = False
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._on_output = on_output

    def read_available(self, timeout: float) -> bool:
        """Read what the program printed within ``timeout``; False if nothing
        came (or the terminal is closed)."""
        if self.closed:
            return False
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            data = b""
        if not data:  # EIO on Linux, or an empty read: the program is gone
            self.closed = True
            return False
        text = self._decoder.decode(data)
        self.pending += text
        if len(self.pending) > MAX_PENDING:
            self.discarded += len(self.pending) - MAX_PENDING
            self.pending = self.pending[-MAX_PENDING:]
        if self._on_output is not None:
            self._on_output(text)
        return True

    def expect(self, pattern: str, timeout: float) -> str:
        """Consume the shown text up to the first match of ``pattern``."""
        regex = re.compile(pattern)
        end = time.monotonic() + timeout
        while True:
            match = regex.search(self.pending)
            if match is not None:
                self.pending = self.pending[match.end():]
                return match.group(0)
            if self.closed:
                raise TerminalClosed(pattern)
            left = end - time.monotonic()
            if left <= 0:
                raise TerminalTimeout(pattern)
            self.read_available(left)

    def sendline(self, line: str) -> None:
        os.write(self.fd, line.encode("utf-8") + b"\n")

    def wait(self, timeout: float) -> int | None:
        """The exit status once the program has ended, or None if it still
        runs after ``timeout``; what it prints meanwhile is read."""
        end = time.monotonic() + timeout
        while self.process.poll() is None:
            left = end - time.monotonic()
            if left <= 0:
                return None
            if not self.read_available(min(left, 0.05)) and self.closed:
                try:
                    self.process.wait(max(0.0, end - time.monotonic()))
                except subprocess.TimeoutExpired:
                    return None
        return self.process.returncode

    def close(self, grace: float = 0.5) -> None:
        """End the program and all it started: SIGTERM, then SIGKILL if it has
        not gone within ``grace`` seconds (a case is over; its phone need not
        linger), then the rest of its family."""
        end_gracefully(self.process, self.family, grace)
        if self._fd_open:
            self._fd_open = False
            with contextlib.suppress(OSError):
                os.close(self.fd)
        self.closed = True
