"""Real processes and sockets for the end-to-end tests.

The helpers themselves live in ``bluetrace.bench.processes`` so that the
benchmark and the tests start, wait on and end programs the same way; this
module adds what only the tests need (the sample data, a server per test,
the real phone program in a pseudo-terminal).
"""

import os
import re
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pexpect

from bluetrace.bench.processes import (
    WAIT,
    FrameClient,
    OutputFile,
    ServerProcess,
    free_udp_port,
    wait_until,
)

__all__ = [
    "SAMPLES",
    "USERS",
    "WAIT",
    "FrameClient",
    "OutputFile",
    "Phone",
    "ServerProcess",
    "free_udp_port",
    "plain",
    "running_server",
    "wait_until",
]

SAMPLES = Path(__file__).resolve().parent.parent / "bluetrace" / "samples"


@contextmanager
def running_server(tmp_path: Path, *args: str, block: str = "60") -> Iterator[ServerProcess]:
    """A server on an OS-chosen port with the sample credentials, stopped on exit."""
    data_dir = tmp_path / "server"
    data_dir.mkdir(exist_ok=True)
    if not (data_dir / "credentials.txt").exists():
        shutil.copy(SAMPLES / "credentials.txt", data_dir / "credentials.txt")
    server = ServerProcess(data_dir, block, *args)
    try:
        yield server
    finally:
        server.stop()


USERS = {"+61410888888": "comp3331", "+61410999999": "bada4568", "+61410777777": "datha457"}
"""The sample credentials' users and passwords."""


_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def plain(screen: str) -> str:
    """A pseudo-terminal's text without the line editor's escape sequences."""
    return _CONTROL.sub("", screen).replace("\r\r\n", "\r\n")


class Phone:
    """The real phone program in a pseudo-terminal, in its own folder."""

    def __init__(self, server: ServerProcess, folder: Path, *extra: str) -> None:
        self.udp = free_udp_port()
        folder.mkdir(exist_ok=True)
        self.folder = folder
        self.proc = pexpect.spawn(
            sys.executable,
            ["-m", "bluetrace.phone.main", "127.0.0.1", str(server.port), str(self.udp), *extra],
            cwd=str(folder),
            encoding="utf-8",
            timeout=WAIT,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        )

    def login(self, user: str) -> None:
        self.proc.expect_exact("Username: ")
        self.proc.sendline(user)
        self.proc.expect_exact("Password: ")
        self.proc.sendline(USERS[user])
        self.proc.expect_exact("Welcome to the BlueTrace Simulator!")
        self.proc.expect_exact("> ")

    def command(self, text: str) -> str:
        """What the phone showed for ``text``, as plain lines: the line
        editor's cursor moves and its CR before the tty's CRLF removed."""
        self.proc.sendline(text)
        self.proc.expect_exact("> ")
        return plain(str(self.proc.before))

    def finish(self) -> int:
        self.proc.expect(pexpect.EOF)
        self.proc.close()
        return int(self.proc.exitstatus if self.proc.exitstatus is not None else -1)

    def end(self) -> None:
        if self.proc.isalive():
            self.proc.terminate(force=True)
        self.proc.close()
