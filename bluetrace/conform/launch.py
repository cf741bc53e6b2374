"""Starting the programs under test, and ending them with all they started.

A server is started on port 0 and found by the ``listening on HOST:PORT``
line it writes to stderr; a headless phone is fed its typing through a pipe,
with its terminal output going to a file, so nothing it prints can block it
while the kit is busy elsewhere.

Every program the kit starts runs in a session of its own and carries a
marker in its environment that its children inherit. Ending it (at the end
of a case, at the end of the run, on Ctrl-C, at exit) ends its whole family:
its process group, every process seen descending from it, every process
that carries its marker (a child that left for a session of its own and
whose parent has exited), and the groups and sessions those made. The family
is frozen (SIGSTOP) before it is killed, so that it cannot fork faster than
it is ended.
"""

import atexit
import contextlib
import functools
import itertools
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from bluetrace.conform.model import CaseSetupError, bounded_wait
from bluetrace.runtime.processes import stop_process

MARKER = "BLUETRACE_CONFORM_RUN"
"""The environment variable that marks a program's family."""
_RUN = f"{os.getpid()}-{secrets.token_hex(6)}"
_TAGS = itertools.count(1)
MAX_CAPTURE = 1024 * 1024
"""Bytes of a started program's output file the kit reads (from the start:
the lines it waits for come first); a program may print far more."""
ROUNDS = 5
"""Scans for a family's leftovers: each freezes and kills what it finds."""


def _stat(pid: int) -> tuple[int, int, int, int] | None:
    """(parent, group, session, start time) of a running process, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            raw = stat.read()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()
    if len(fields) < 20 or fields[0] == b"Z":
        return None  # gone, or a zombie its parent will reap
    return int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19])


def _all_gone(pids: list[int]) -> bool:
    return all(_stat(pid) is None for pid in pids)


def _marker(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            raw = environ.read()
    except OSError:
        return None
    prefix = MARKER.encode() + b"="
    for item in raw.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix) :].decode("ascii", "replace")
    return None


class Family:
    """A started program and everything it started, tracked by PID."""

    def __init__(self) -> None:
        self.tag = f"{_RUN}:{next(_TAGS)}"
        self.root = 0
        self.seen: dict[int, int] = {}
        """PID -> start time of each member seen (a start time guards against
        a PID the system has since given to another process)."""

    def environment(self) -> dict[str, str]:
        return {**os.environ, MARKER: self.tag}

    def started(self, pid: int) -> None:
        self.root = pid
        _LIVE[self.tag] = self.end

    def scan(self) -> dict[int, int]:
        """The members alive now: descendants of the root or of a member seen
        before, carriers of the marker, and members of the groups and
        sessions they lead; all are remembered."""
        table: dict[int, tuple[int, int, int, int]] = {}
        with contextlib.suppress(OSError):
            for name in os.listdir("/proc"):
                if name.isdigit():
                    found = _stat(int(name))
                    if found is not None:
                        table[int(name)] = found
        known = {pid for pid, start in self.seen.items()
                 if pid in table and table[pid][3] == start}
        if self.root in table:
            known.add(self.root)
        for pid in table:
            if pid not in known and _marker(pid) == self.tag:
                known.add(pid)
        grew = True
        while grew:
            grew = False
            for pid, (parent, group, session, _) in table.items():
                if pid not in known and (parent in known or group in known or session in known):
                    known.add(pid)
                    grew = True
        known -= {os.getpid(), 1}
        for pid in known:
            self.seen[pid] = table[pid][3]
        return {pid: table[pid][3] for pid in known}

    def end(self) -> None:
        """Freeze and kill every member, a bounded number of rounds."""
        _LIVE.pop(self.tag, None)
        for _ in range(ROUNDS):
            members = self.scan()
            if not members:
                return
            for sig in (signal.SIGSTOP, signal.SIGKILL):
                for pid, start in members.items():
                    found = _stat(pid)
                    if found is not None and found[3] == start:
                        with contextlib.suppress(OSError):
                            os.kill(pid, sig)
            bounded_wait(functools.partial(_all_gone, list(members)), 1.0, 0.01)


_LIVE: dict[str, Callable[[], None]] = {}


def end_all() -> None:
    """End every family still alive (the run is over, or was interrupted)."""
    for end in list(_LIVE.values()):
        with contextlib.suppress(Exception):
            end()


atexit.register(end_all)


def end_gracefully(process: "subprocess.Popen[bytes]", family: Family, grace: float) -> None:
    """SIGTERM to the program's group, SIGKILL after ``grace`` seconds
    (stop_process); then whatever is left of its family, even outside the group."""
    family.scan()  # learn the descendants while the root still links them
    stop_process(process, grace=grace)
    family.end()


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
        self.family = Family()
        try:
            self.process = subprocess.Popen(  # noqa: S603 - the caller's own command
                list(argv), cwd=cwd, stdin=stdin, stdout=self._out, stderr=self._err,
                start_new_session=True, env=self.family.environment(),
            )
        except OSError as exc:
            self._close_files()
            raise CaseSetupError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
        self.family.started(self.process.pid)

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        """What it printed, up to MAX_CAPTURE bytes from the start."""
        return _head(self.out_path)

    def errors(self) -> str:
        return _head(self.err_path)

    def stop(self, grace: float = 3.0) -> int | None:
        """End it (SIGTERM, SIGKILL after ``grace``) and all it started."""
        end_gracefully(self.process, self.family, grace)
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        self._close_files()
        return self.process.returncode

    def _close_files(self) -> None:
        self._out.close()
        self._err.close()


def _head(path: Path) -> str:
    with path.open("rb") as stream:
        data = stream.read(MAX_CAPTURE + 1)
    text = data[:MAX_CAPTURE].decode("utf-8", "replace")
    if len(data) > MAX_CAPTURE:
        text += f"\n[output past {MAX_CAPTURE:,} bytes not read]"
    return text


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
