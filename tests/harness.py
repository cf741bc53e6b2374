"""Real processes and sockets for the end-to-end tests.

The helpers themselves live in ``bluetrace.bench.processes`` so that the
benchmark and the tests start, wait on and end programs the same way; this
module adds what only the tests need (the sample data, a server per test).
"""

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
    "WAIT",
    "FrameClient",
    "OutputFile",
    "ServerProcess",
    "free_udp_port",
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
