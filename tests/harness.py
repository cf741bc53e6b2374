"""Real processes and sockets for the end-to-end tests.

Everything here is bounded: every wait has a deadline, every process is
ended on exit, and only loopback addresses with OS-chosen ports are used.
"""

import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bluetrace.framing import FrameDecoder
from bluetrace.messages import Message, encode

SAMPLES = Path(__file__).resolve().parent.parent / "bluetrace" / "samples"
WAIT = 10.0


class ServerProcess:
    def __init__(self, data_dir: Path, *args: str) -> None:
        self.data_dir = data_dir
        # Files, not pipes: a pipe nobody drains would block the server as
        # soon as its log filled the pipe's buffer.
        out_path, err_path = data_dir / "server.stdout", data_dir / "server.stderr"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bluetrace.server",
                    "0",
                    *args,
                    "--data-dir",
                    str(data_dir),
                    "--host",
                    "127.0.0.1",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        self.stdout = _Reader(out_path)
        self.stderr = _Reader(err_path)
        try:
            match = self.stderr.wait_for(r"listening on [\d.]+:(\d+)")
        except AssertionError:
            self.proc.kill()
            self.proc.wait(WAIT)
            raise
        self.port = int(match.group(1))
        self.clients: list[FrameClient] = []

    def connect(self, source: str = "127.0.0.1") -> "FrameClient":
        client = FrameClient(self.port, source)
        self.clients.append(client)
        return client

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(WAIT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(WAIT)
            self.stdout.drain()
            self.stderr.drain()


class _Reader:
    """A process's output file, read as it grows, waited on with a deadline."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.text = ""

    def drain(self) -> str:
        self.text = self.path.read_bytes().decode("utf-8", errors="replace")
        return self.text

    def wait_for(self, pattern: str, timeout: float = WAIT, start: int = 0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            match = regex.search(self.drain(), start)
            if match:
                return match
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} did not appear; got:\n{self.text[-3000:]}")
            time.sleep(0.01)


@contextmanager
def running_server(tmp_path: Path, *args: str, block: str = "60") -> Iterator[ServerProcess]:
    data_dir = tmp_path / "server"
    data_dir.mkdir(exist_ok=True)
    if not (data_dir / "credentials.txt").exists():
        shutil.copy(SAMPLES / "credentials.txt", data_dir / "credentials.txt")
    server = ServerProcess(data_dir, block, *args)
    try:
        yield server
    finally:
        server.stop()
        for client in server.clients:
            client.close()


class FrameClient:
    """A bare protocol client: frames out, frames in, with deadlines."""

    def __init__(self, port: int, source: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout=WAIT, source_address=(source, 0)
        )
        self.decoder = FrameDecoder()
        self.pending: list[Message] = []

    def send(self, message: Message) -> None:
        self.sock.sendall(encode(message))

    def receive(self) -> Message:
        deadline = time.monotonic() + WAIT
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
        self.sock.settimeout(WAIT)
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


def free_udp_port() -> int:
    """A UDP port the OS just handed out on loopback (the client needs a number)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: "Callable[[], bool]", timeout: float = WAIT, step: float = 0.05) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()
