"""Hostile conditions on real server processes: its own output, descriptors.

Each test starts a server whose stdout or stderr is hostile (closed, full,
never read) or whose descriptor limit is tiny, and shows that the service
goes on, that SIGTERM still stops it, and that the data files stay the
record. Every wait is bounded; every process is ended.
"""

import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bluetrace.bench.processes import FrameClient, OutputFile
from bluetrace.protocol.messages import LoginRequest, TempIDReply, TempIDRequest
from tests.harness import SAMPLES, WAIT, wait_until

USER, PASSWORD = "+61410888888", "comp3331"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def hostile_server(
    tmp_path: Path,
    *,
    stdout: object,
    stderr: object,
    preexec: object = None,
    args: tuple[str, ...] = (),
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    data = tmp_path / "server"
    data.mkdir(exist_ok=True)
    shutil.copy(SAMPLES / "credentials.txt", data)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bluetrace.server.main", str(port), "60", "--host", "127.0.0.1",
         "--data-dir", str(data), "--tempids-per-hour", "1000000", *args],
        stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, cwd=data,  # type: ignore[arg-type]
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        preexec_fn=preexec,  # type: ignore[arg-type]  # noqa: PLW1509
    )
    try:
        client = _connect(port)
        client.close()
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(WAIT)


def _connect(port: int) -> FrameClient:
    """The first connection, once the server listens (a bounded wait)."""
    clients: list[FrameClient] = []

    def listening() -> bool:
        try:
            clients.append(FrameClient(port))
        except OSError:
            return False
        return True

    assert wait_until(listening, timeout=WAIT), "the server never listened"
    return clients[0]


def _tempids(port: int, count: int) -> list[str]:
    client = FrameClient(port)
    try:
        client.call(LoginRequest(USER, PASSWORD))
        told = []
        for _ in range(count):
            reply = client.call(TempIDRequest())
            assert isinstance(reply, TempIDReply)
            told.append(reply.window.tempid)
        return told
    finally:
        client.close()


def test_a_stdout_nobody_reads_never_freezes_the_server(tmp_path: Path) -> None:
    """Before: the server froze for everyone after about 1,360 TempIDs and
    ignored SIGTERM. Now its terminal text is dropped and counted."""
    with hostile_server(
        tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    ) as (proc, port):
        told = _tempids(port, 3000)  # 6,000 lines: far beyond a 64 KiB pipe
        assert len(set(told)) == 3000
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT) == 0
        assert proc.stdout is not None
        proc.stdout.close()
    lines = (tmp_path / "server" / "tempIDs.txt").read_text().splitlines()
    assert {line.split()[1] for line in lines} == set(told)  # the file is the record


def test_a_closed_stderr_and_malformed_frames_do_not_kill_the_server(tmp_path: Path) -> None:
    """Before: one malformed frame with stderr closed killed the server."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # as `2>&1 | head` after head has gone
    out = tmp_path / "out.txt"
    with out.open("wb") as stdout, hostile_server(
        tmp_path, stdout=stdout, stderr=write_end
    ) as (proc, port):
        os.close(write_end)
        for _ in range(20):
            with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as bad:
                bad.sendall(b"\x07\x07\x07\x07\x07\x07")
                bad.recv(100)
        assert len(_tempids(port, 3)) == 3
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT) == 0
    text = out.read_text()
    assert "stderr is unusable" in text
    assert "Traceback" not in text


def test_a_full_disk_under_stdout_loses_only_terminal_text(tmp_path: Path) -> None:
    """Before: the first Download_tempID killed the server, after the TempID was written."""
    err_path = tmp_path / "err.txt"
    with (
        open("/dev/full", "wb") as full,
        err_path.open("wb") as err,
        hostile_server(tmp_path, stdout=full, stderr=err) as (proc, port),
    ):
        told = _tempids(port, 5)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT) == 0
    assert "stdout is unusable (No space left on device)" in err_path.read_text()
    records = (tmp_path / "server" / "tempIDs.txt").read_text()
    assert all(tempid in records for tempid in told)


def test_out_of_descriptors_the_server_backs_off_and_recovers(tmp_path: Path) -> None:
    """Before: at the descriptor limit the server spun at 100 % CPU writing
    3.2 MB/s of "accept failed"; now it pauses accepting and logs once per pause."""
    limit = 64

    def small_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    err_path = tmp_path / "err.txt"
    # --max-connections above the descriptor limit (by default the cap keeps
    # below it, see test_loop_floods), so that the descriptors do run out.
    with err_path.open("wb") as err, hostile_server(
        tmp_path, stdout=subprocess.DEVNULL, stderr=err, preexec=small_limit,
        args=("--max-connections", "1000", "--max-unauthenticated-per-address", "1000"),
    ) as (proc, port):
        held = []
        for _ in range(limit + 20):
            held.append(socket.create_connection(("127.0.0.1", port), timeout=WAIT))
        log = OutputFile(err_path)
        log.wait_for("pausing new connections")
        # Wait two seconds at the limit, measured by the server's own timer:
        # twenty pauses of 0.1 s would each log one line; a spin, thousands.
        log.wait_for("(?s)(pausing new connections.*){5}", timeout=WAIT)
        pauses = log.drain().count("pausing new connections")
        assert pauses < 200
        for sock in held:
            sock.close()
        assert len(_tempids(port, 1)) == 1  # served again once descriptors are free
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT) == 0
