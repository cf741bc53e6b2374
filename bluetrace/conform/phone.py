"""A phone program under test, started afresh for one case on a pseudo-terminal.

The kit listens where the phone's command line says the server is, so the
phone's TCP connection comes to the kit; what the phone shows on its terminal
is read through the pty, and what the kit types goes in the same way. Every
byte of both, and of UDP, lands in the case's wire log.
"""

import re
import shlex
import shutil
import socket
import tempfile
from pathlib import Path

from bluetrace.conform.model import CaseContext, CaseFailed, CaseSetupError, CaseUnsupported
from bluetrace.conform.tcp import Conn
from bluetrace.conform.terminal import PtyProgram, TerminalClosed, TerminalTimeout

UNSUPPORTED_STATUS = 127
"""A phone program that exits with this status says it does not offer what
the case needs (as in the QUIC interop runner): the case is UNSUPPORTED."""
STARTUP = 5.0
"""Seconds a phone program may take to show its first prompt."""
SHOWN_KEPT = 4096
"""Characters of the phone's latest output kept for failure reports."""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PhoneSession:
    def __init__(self, command: str, ctx: CaseContext, files: dict[str, bytes] | None = None
                 ) -> None:
        self.ctx = ctx
        self.folder = Path(tempfile.mkdtemp(prefix="bluetrace-conform-phone-"))
        for name, data in (files or {}).items():
            (self.folder / name).write_bytes(data)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.kit_udp_port: int = self.udp.getsockname()[1]
        self.phone_udp_port = free_udp_port()
        self.conn: Conn | None = None
        self.shown = ""
        """The latest SHOWN_KEPT characters the phone printed, for reports."""
        self.program: PtyProgram | None = None
        try:
            argv = shlex.split(command.format(host="127.0.0.1", port=self.port,
                                              udp=self.phone_udp_port))
        except (KeyError, IndexError, ValueError) as exc:
            self.close()
            raise CaseSetupError(f"--exec: cannot fill in {command!r} ({exc}); the only "
                                 "placeholders are {host}, {port} and {udp}") from None
        if not argv:
            self.close()
            raise CaseSetupError("--exec is empty")
        ctx.log.note("kit", f"started {shlex.join(argv)} in {self.folder}")
        try:
            self.program = PtyProgram(argv, self.folder, self._shown)
        except OSError as exc:
            self.close()
            raise CaseSetupError(f"cannot start the phone ({argv[0]}): "
                                 f"{exc.strerror or exc}") from None

    def _shown(self, text: str) -> None:
        self.shown = (self.shown + text)[-SHOWN_KEPT:]
        self.ctx.log.note("terminal", f"phone printed {text!r}")

    def _program(self) -> PtyProgram:
        if self.program is None:
            raise CaseSetupError("the phone is not running")
        return self.program

    # -- the terminal -------------------------------------------------------------
    def expect(self, pattern: str, what: str, wait: float | None = None,
               literal: bool = True) -> str:
        regex = re.escape(pattern) if literal else pattern
        limit = self.ctx.remaining(self.ctx.timeout if wait is None else wait)
        program = self._program()
        try:
            return program.expect(regex, limit)
        except TerminalTimeout:
            raise CaseFailed(f"expected the phone to show {what}; it did not within "
                             f"{limit:.1f} s (it showed {self.recent()!r})") from None
        except TerminalClosed:
            if program.wait(1.0) == UNSUPPORTED_STATUS:
                raise CaseUnsupported("the phone exited with status 127: unsupported") from None
            raise CaseFailed(f"expected the phone to show {what}; it exited instead "
                             f"(it showed {self.recent()!r})") from None

    def recent(self, chars: int = 300) -> str:
        return self.shown[-chars:]

    def type(self, line: str) -> None:
        self.ctx.log.note("terminal", f"kit typed {line!r}")
        self._program().sendline(line)

    def exit_status(self, wait: float) -> int | None:
        """The phone's exit status, or None if it still runs after ``wait``."""
        return self._program().wait(self.ctx.remaining(wait))

    # -- the connection -----------------------------------------------------------
    def accept(self) -> Conn:
        if self.conn is not None:
            return self.conn
        self.listener.settimeout(self.ctx.remaining(self.ctx.timeout))
        try:
            sock, _ = self.listener.accept()
        except TimeoutError:
            raise CaseFailed("the phone never connected to the server address it was "
                             "given") from None
        sock.settimeout(None)
        self.conn = Conn(sock, self.ctx.log, "tcp")
        self.conn.side = (self._program().fd, self._drain)
        return self.conn

    def _drain(self) -> bool:
        """Read what the phone printed while the kit waits on TCP, so that a
        phone printing much never blocks on its terminal."""
        program = self._program()
        program.read_available(0.0)
        return not program.closed

    def datagram(self, wait: float) -> bytes | None:
        self.udp.settimeout(self.ctx.remaining(wait))
        try:
            data, _ = self.udp.recvfrom(65536)
        except TimeoutError:
            return None
        self.ctx.log.received("udp", data)
        return data

    def close(self) -> None:
        # The connection first: a phone that sees its server gone ends by itself.
        if self.conn is not None:
            self.conn.close()
        if self.program is not None:
            self.program.close()
        self.listener.close()
        self.udp.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "PhoneSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
