"""Untrusted programs on pseudo-terminals: started boxed in, watched, ended.

A submission is code nobody has reviewed, so every program the grader starts
runs with resource limits (CPU seconds, address space, file size, no core
files), in a session of its own (its process group is ended as a whole), with
a marker in its environment so that a last sweep over ``/proc`` ends anything
it left behind, even a child that started a session of its own. Python
programs get a start-up shim (``sitecustomize``) that keeps every socket on
loopback; for any program the sockets it listens on are read from ``/proc``
and the grader refuses to go on if one is not on 127.0.0.0/8.

This module has its own process-ending helpers (``end_group``, ``sweep``);
they stop only processes the grader started, by process group or by the
run's marker, never by name.
"""

import codecs
import contextlib
import errno
import os
import re
import resource
import select
import signal
import socket
import subprocess
import termios
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bluetrace.runtime.processes import stop_process

MARKER = "BLUETRACE_GRADER_RUN"
"""Environment variable every started program carries: the run's token."""

SOURCE_VARIABLE = "BLUETRACE_GRADER_SOURCE"
"""Tells the shim which local address outgoing TCP connections come from."""

SHIM = '''\
"""Keeps a graded program on loopback (written by bluetrace-conform)."""
import os as _os
import socket as _socket

_source = _os.environ.get("BLUETRACE_GRADER_SOURCE", "127.0.0.1")
_bind = _socket.socket.bind
_connect = _socket.socket.connect
_connect_ex = _socket.socket.connect_ex
_sendto = _socket.socket.sendto


def _loopback(address, family):
    if family == _socket.AF_INET and isinstance(address, tuple) and len(address) == 2:
        host = address[0]
        if not (isinstance(host, str) and host.startswith("127.")
                and host.count(".") == 3):
            return ("127.0.0.1", address[1])
    if family == _socket.AF_INET6 and isinstance(address, tuple) and len(address) >= 2:
        if address[0] not in ("::1",):
            return ("::1",) + tuple(address[1:])
    return address


def bind(self, address):
    return _bind(self, _loopback(address, self.family))


def _unbound(self):
    if self.family != _socket.AF_INET:
        return False
    try:
        return self.getsockname() == ("0.0.0.0", 0)
    except OSError:
        return False


def connect(self, address):
    if _unbound(self):
        _bind(self, (_source if self.type == _socket.SOCK_STREAM else "127.0.0.1", 0))
    return _connect(self, address)


def connect_ex(self, address):
    if _unbound(self):
        _bind(self, (_source if self.type == _socket.SOCK_STREAM else "127.0.0.1", 0))
    return _connect_ex(self, address)


def sendto(self, *args):
    if _unbound(self):
        _bind(self, ("127.0.0.1", 0))
    return _sendto(self, *args)


_socket.socket.bind = bind
_socket.socket.connect = connect
_socket.socket.connect_ex = connect_ex
_socket.socket.sendto = sendto
'''


def write_shim(folder: Path) -> Path:
    """The shim's folder, to put first on PYTHONPATH."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SHIM, encoding="utf-8")
    return folder


@dataclass(frozen=True)
class Limits:
    """What one program may use. Defaults fit a student's Python program
    with pandas; each is an option of ``bluetrace-conform assignment``."""

    cpu_seconds: int = 600
    memory_bytes: int = 2 << 30
    file_bytes: int = 64 << 20
    output_bytes: int = 1 << 20
    """Terminal output kept per program; more is read and dropped."""


def _boxed(limits: Limits) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>]")


def plain(text: str) -> str:
    """Terminal text as a person reads it: escapes and carriage returns gone."""
    return _ANSI.sub("", text).replace("\r", "")


class Terminal:
    """One program on its own pseudo-terminal (echo off, so the text read is
    what the program printed, not what was typed)."""

    def __init__(self, argv: Sequence[str], cwd: Path, env: dict[str, str], limits: Limits,
                 name: str) -> None:
        self.name = name
        self.argv = list(argv)
        self.limits = limits
        master, slave = os.openpty()
        attrs = termios.tcgetattr(slave)
        attrs[3] &= ~(termios.ECHO | termios.ECHONL)
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        try:
            self.process = subprocess.Popen(  # noqa: S603 - the submission is what is graded
                self.argv, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave,
                start_new_session=True, close_fds=True,
                preexec_fn=_boxed(limits),  # noqa: PLW1509 - the grader starts programs from one thread
            )
        except OSError:
            os.close(master)
            raise
        finally:
            os.close(slave)
        self.fd = master
        self._fd_open = True
        self.text = ""
        self.dropped = 0
        self.typed_at = 0
        """Where the text stood when a line was last typed: a prompt shown
        after it is waiting for the next line."""
        self.closed = False
        self.started = time.monotonic()
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    @property
    def pid(self) -> int:
        return self.process.pid

    def pump(self, timeout: float = 0.0) -> bool:
        """Read what the program printed within ``timeout``; False if nothing."""
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
        if not data:
            self.closed = True
            return False
        room = self.limits.output_bytes - len(self.text)
        text = plain(self._decoder.decode(data))
        if room <= 0:
            self.dropped += len(text)
        else:
            self.text += text[:room]
            self.dropped += max(0, len(text) - room)
        return True

    def mark(self) -> int:
        self.pump()
        return len(self.text)

    def since(self, mark: int) -> str:
        return self.text[mark:]

    def type(self, line: str) -> None:
        self.typed_at = self.mark()
        with contextlib.suppress(OSError):
            os.write(self.fd, line.encode("utf-8") + b"\n")

    def interrupt(self) -> None:
        """Ctrl-C as typed at the terminal."""
        with contextlib.suppress(OSError):
            os.write(self.fd, b"\x03")

    def alive(self) -> bool:
        return self.process.poll() is None

    def end(self, grace: float = 1.0) -> None:
        end_group(self.process, grace)
        if self._fd_open:
            self._fd_open = False
            with contextlib.suppress(OSError):
                os.close(self.fd)
        self.closed = True


def descendants(root: int) -> list[int]:
    """``root`` and every process below it, from ``/proc/*/stat``."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def end_group(process: "subprocess.Popen[bytes]", grace: float = 1.0) -> None:
    """SIGTERM to the program's process group and every descendant (those that
    left the group too), then SIGKILL to what is left after ``grace`` seconds."""
    stop_process(process, grace=grace, also=descendants(process.pid))


def sweep(token: str) -> list[int]:
    """SIGKILL every process whose environment carries this run's marker:
    whatever a program left behind. Returns the PIDs ended."""
    needle = f"{MARKER}={token}".encode()
    ended = []
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            environ = Path(entry.path, "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            with contextlib.suppress(OSError):
                os.kill(int(entry.name), signal.SIGKILL)
                ended.append(int(entry.name))
    return ended


@dataclass(frozen=True)
class Endpoint:
    protocol: str
    address: str
    port: int
    listening: bool

    def __str__(self) -> str:
        return f"{self.protocol} {self.address}:{self.port}"

    @property
    def loopback(self) -> bool:
        return (self.address.startswith("127.") or self.address == "::1"
                or self.address.startswith("::ffff:127."))


def _address(hex_address: str) -> tuple[str, int]:
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1]), int(port, 16)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words), int(port, 16)


def _socket_table() -> dict[int, Endpoint]:
    table: dict[int, Endpoint] = {}
    for protocol in ("tcp", "tcp6", "udp", "udp6"):
        try:
            lines = Path(f"/proc/net/{protocol}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, port = _address(fields[1])
            state = fields[3]
            listening = state == "0A" if protocol.startswith("tcp") else True
            if protocol.startswith("tcp") and not listening:
                continue
            table[int(fields[9])] = Endpoint(protocol.rstrip("6"), address, port, listening)
    return table


def udp_port_bound(port: int) -> bool:
    """Whether any socket on this machine is bound to UDP ``port``: a beacon
    sent to a port nobody holds is lost, and that is a set-up error."""
    return any(e.protocol == "udp" and e.port == port for e in _socket_table().values())


def bound_sockets(root: int) -> list[Endpoint]:
    """The TCP listening sockets and UDP sockets held by ``root``'s process
    tree: what another machine could reach if they were not on loopback."""
    table = _socket_table()
    found: list[Endpoint] = []
    for pid in descendants(root):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                endpoint = table.get(int(link[8:-1]))
                if endpoint is not None and endpoint.port and endpoint not in found:
                    found.append(endpoint)
    return found


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port the OS says is free on loopback now."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def second_address() -> str | None:
    """127.0.0.2 when this machine lets a socket use it (Linux does)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.2", 0))
    except OSError:
        return None
    return "127.0.0.2"


def tcp_sources(root: int, server_port: int) -> list[str]:
    """Local addresses of the process tree's connections to ``server_port``."""
    inodes: set[int] = set()
    for pid in descendants(root):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(int(link[8:-1]))
    sources = []
    for protocol in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/net/{protocol}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[9]) in inodes and _address(fields[2])[1] == server_port:
                sources.append(_address(fields[1])[0])
    return sources
