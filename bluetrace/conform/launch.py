"""Starting the programs under test for a whole run (self mode, the tests).

A server is started on port 0 and found by the ``listening on HOST:PORT``
line it writes to stderr; a headless phone is fed its typing through a pipe,
with its terminal output going to a file, so nothing it prints can block it
while the kit is busy elsewhere.
"""

import contextlib
import re
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from bluetrace.conform.model import CaseSetupError, bounded_wait

_LISTENING = re.compile(r"listening on ([0-9.]+|[^\s:]*):(\d+)")


class Program:
    """One started program; ``stop`` ends it (SIGTERM, then SIGKILL)."""

    def __init__(self, argv: Sequence[str], cwd: Path, name: str,
                 stdin: int | None = subprocess.DEVNULL) -> None:
        self.name = name
        self.out_path = cwd / f"{name}.out"
        self.err_path = cwd / f"{name}.err"
        self._out = self.out_path.open("wb")
        self._err = self.err_path.open("wb")
        try:
            self.process = subprocess.Popen(  # noqa: S603 - the caller's own command
                list(argv), cwd=cwd, stdin=stdin, stdout=self._out, stderr=self._err
            )
        except OSError as exc:
            self._close_files()
            raise CaseSetupError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.out_path.read_text("utf-8", "replace")

    def errors(self) -> str:
        return self.err_path.read_text("utf-8", "replace")

    def stop(self, grace: float = 3.0) -> int | None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(grace)
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        self._close_files()
        return self.process.returncode

    def _close_files(self) -> None:
        self._out.close()
        self._err.close()


def start_server(argv: Sequence[str], folder: Path, wait: float = 10.0) -> tuple[Program, int]:
    """Start a server whose argv asks for port 0; return it and its port."""
    server = Program(argv, folder, "server")
    found: list[int] = []

    def listening() -> bool:
        match = _LISTENING.search(server.errors())
        if match:
            found.append(int(match.group(2)))
        return bool(match) or server.process.poll() is not None

    bounded_wait(listening, wait, 0.02)
    if not found:
        text = server.errors().strip().splitlines()
        server.stop()
        raise CaseSetupError(f"the server did not start: {text[-1] if text else 'no output'}")
    return server, found[0]


class HeadlessPhone(Program):
    """A phone typed at through a pipe, logged in at start."""

    def __init__(self, argv: Sequence[str], folder: Path, user: str, password: str,
                 wait: float = 10.0) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        super().__init__(argv, folder, "phone", stdin=subprocess.PIPE)
        self.type(user)
        self.type(password)
        if not bounded_wait(lambda: "Welcome" in self.output()
                            or self.process.poll() is not None, wait):
            self.stop()
            raise CaseSetupError("the phone did not log in")
        if self.process.poll() is not None:
            raise CaseSetupError(f"the phone exited: {self.output()[-200:]!r}")

    def type(self, line: str) -> None:
        stdin: IO[bytes] | None = self.process.stdin
        if stdin is not None:
            stdin.write(line.encode("utf-8") + b"\n")
            stdin.flush()

    def log_out(self, wait: float = 5.0) -> int | None:
        with contextlib.suppress(OSError):
            self.type("logout")
        end = time.monotonic() + wait
        bounded_wait(lambda: self.process.poll() is not None, max(0.0, end - time.monotonic()))
        return self.stop()
