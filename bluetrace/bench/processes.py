"""Real processes and sockets, shared by the benchmark and the end-to-end tests.

The server and the phone are measured and tested as black boxes: started as
programs, spoken to through loopback sockets, read through their output
files. Everything here is bounded: every wait has a deadline, every process
is ended on the way out, and only 127.0.0.1 with OS-chosen ports is used.
"""

import os
import re
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

import bluetrace
from bluetrace.protocol.framing import FrameDecoder
from bluetrace.protocol.messages import Message, encode

# re-exported: the benchmarks import raise_descriptor_limit from here
from bluetrace.runtime.cli import raise_descriptor_limit as raise_descriptor_limit  # noqa: PLC0414
from bluetrace.runtime.processes import stop_process

WAIT = 10.0
"""Default deadline, in seconds, for one wait on a process or a socket."""

_LISTENING = r"listening on [\d.]+:(\d+)"


def child_env(source: Path | None = None) -> dict[str, str]:
    """The environment for a bluetrace program: it imports bluetrace from the
    checkout at ``source``, or else from wherever this process imports it, so
    that the programs measured or tested are the code beside this one."""
    root = source.resolve() if source is not None else Path(bluetrace.__file__).parent.parent
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH")])])
    return env


class OutputFile:
    """A process's output file, read as it grows, waited on with a deadline.

    Files, not pipes: a pipe nobody drains would stop the program as soon as
    its output filled the pipe's buffer.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.text = ""

    def drain(self) -> str:
        """Everything written so far (also kept in ``text``)."""
        try:
            self.text = self.path.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            self.text = ""
        return self.text

    def wait_for(
        self, pattern: str, timeout: float = WAIT, start: int = 0, step: float = 0.01
    ) -> re.Match[str]:
        """The first match of ``pattern`` from ``start``; AssertionError with the
        output's tail if it does not appear within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            match = regex.search(self.drain(), start)
            if match:
                return match
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} did not appear; got:\n{self.text[-3000:]}")
            time.sleep(step)


class ServerProcess:
    """``python -m bluetrace.server.main 0 ARGS --data-dir DIR --host 127.0.0.1``.

    Waits until the server names its port; ``ready_seconds`` is how long that
    took from the process's start (start-up time, loading included).
    """

    def __init__(
        self,
        data_dir: Path,
        *args: str,
        timeout: float = WAIT,
        source: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        out_path, err_path = data_dir / "server.stdout", data_dir / "server.stderr"
        began = time.monotonic()
        with out_path.open("wb") as out, err_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bluetrace.server.main",
                    "0",
                    *args,
                    "--data-dir",
                    str(data_dir.resolve()),
                    "--host",
                    "127.0.0.1",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=child_env(source),
                # Not the caller's folder: with -m, the current folder comes
                # first on sys.path and would shadow PYTHONPATH.
                cwd=data_dir,
            )
        self.stdout = OutputFile(out_path)
        self.stderr = OutputFile(err_path)
        try:
            match = self.stderr.wait_for(_LISTENING, timeout=timeout, step=0.002)
        except AssertionError:
            stop_process(self.proc, group=False, grace=WAIT)
            raise
        self.ready_seconds = time.monotonic() - began
        self.port = int(match.group(1))
        self.clients: list[FrameClient] = []

    @property
    def pid(self) -> int:
        return self.proc.pid

    def connect(self, source: str = "127.0.0.1") -> "FrameClient":
        client = FrameClient(self.port, source)
        self.clients.append(client)
        return client

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if it does not end in time; its exit status."""
        try:
            status = stop_process(self.proc, group=False, grace=WAIT)
        finally:
            self.stdout.drain()
            self.stderr.drain()
            for client in self.clients:
                client.close()
        if status is None:
            raise subprocess.TimeoutExpired(self.proc.args, 2 * WAIT)
        return status


class FrameClient:
    """A bare protocol client: frames out, frames in, with deadlines."""

    def __init__(self, port: int, source: str = "127.0.0.1", timeout: float = WAIT) -> None:
        self.timeout = timeout
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout=timeout, source_address=(source, 0)
        )
        self.decoder = FrameDecoder()
        self.pending: list[Message] = []

    def send(self, message: Message) -> None:
        self.sock.sendall(encode(message))

    def receive(self) -> Message:
        deadline = time.monotonic() + self.timeout
        while not self.pending:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("server closed the connection")
            self.pending += self.decoder.messages(data)
        return self.pending.pop(0)

    def call(self, message: Message) -> Message:
        self.send(message)
        return self.receive()

    def closed_by_peer(self) -> bool:
        """True once the server has closed (EOF), within the deadline."""
        self.sock.settimeout(self.timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.pending += self.decoder.messages(data)
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()


class Children:
    """Every helper process a run starts, ended on the way out whatever happens."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.servers: list[ServerProcess] = []

    def start(
        self,
        args: list[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stdin: int | None = subprocess.DEVNULL,
        stdout: int | IO[bytes] | None = subprocess.PIPE,
        stderr: int | IO[bytes] | None = None,
    ) -> "subprocess.Popen[bytes]":
        """``python ARGS`` with the running interpreter."""
        child = subprocess.Popen(
            [sys.executable, *args], env=env, cwd=cwd, stdin=stdin, stdout=stdout, stderr=stderr
        )
        self.procs.append(child)
        return child

    def end_all(self) -> None:
        for server in self.servers:
            server.stop()
        for child in self.procs:
            stop_process(child, group=False, grace=WAIT)
            for pipe in (child.stdin, child.stdout, child.stderr):
                if pipe is not None:
                    pipe.close()
        self.procs.clear()
        self.servers.clear()


def stop(child: "subprocess.Popen[bytes]") -> None:
    """SIGTERM one helper, SIGKILL if it lingers."""
    stop_process(child, group=False, grace=WAIT)


def read_until(child: "subprocess.Popen[bytes]", marker: bytes, timeout: float = WAIT) -> bytes:
    """Bytes from the child's stdout pipe up to and including ``marker``."""
    pipe = child.stdout
    assert pipe is not None
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([pipe], [], [], remaining)[0]:
            raise RuntimeError(f"{marker!r} not seen in time; got {seen[-500:]!r}")
        chunk = os.read(pipe.fileno(), 65536)
        if not chunk:
            raise RuntimeError(f"process ended before {marker!r}; got {seen[-500:]!r}")
        seen += chunk
    return seen


def free_udp_port() -> int:
    """A UDP port the OS just handed out on loopback (the client needs a number)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout: float = WAIT, step: float = 0.05) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def wait_for(
    condition: Callable[[], bool], what: str, timeout: float = WAIT, step: float = 0.02
) -> None:
    """Like ``wait_until``, but a missed deadline is an error naming ``what``."""
    if not wait_until(condition, timeout, step):
        raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")


def rss_mib(pid: int) -> float:
    """Resident memory of a live process, MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_fds(pid: int) -> int:
    """How many descriptors a live process holds (Linux /proc)."""
    return len(os.listdir(f"/proc/{pid}/fd"))
