"""Worker processes for work that must not stall the loop.

The design card allows one thread per program: the selectors loop. Work
that costs milliseconds of CPU per item (an scrypt check costs 35-300 ms)
would stop every connection for that long, so it runs in child processes
instead, and the loop multiplexes their sockets like any other.

A job is ``(kind, bytes) -> bytes``. ``kind`` names one entry of
:data:`KINDS` (the only code a worker will run: nothing a client sends
chooses it), the bytes are its input and the reply is its output. The
same table runs in-process through :func:`run_job` for hosts that may
block (the in-memory test pairs, the exact simulator).

:class:`WorkerPool` keeps up to ``workers`` children, started when first
needed. Each child serves one job at a time over a socketpair, with
length-prefixed frames both ways::

    request: u32 length | u32 job id | u8 kind length | kind | payload
    reply:   u32 length | u32 job id | u8 status (0 done, 1 failed) | payload

Jobs wait in a FIFO queue of at most ``queue_limit``; ``submit`` says no when
it is full, and the caller answers its client at once (RATE_LIMITED, BUSY).
Every job accepted is answered exactly once, on a later loop turn, never
inside ``submit``: with its reply, or with None when it could not be done
(the job failed, its worker died or took longer than ``job_timeout`` and was
killed, or the pool was closed). A worker that dies or sticks is replaced;
one that keeps dying within a second of starting is replaced only after a
pause, so a broken interpreter cannot make the loop fork without end.
"""

import contextlib
import importlib
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Final

from bluetrace.runtime.processes import spawn_module
from bluetrace.runtime.reactor import Handle, Reactor

KINDS: Final[dict[str, str]] = {
    "scrypt_verify": "bluetrace.server.passwords:verify_job",
    "scrypt_hash": "bluetrace.server.passwords:hash_job",
}
"""Every job a worker may run, as ``module:function`` taking and returning bytes."""

DEFAULT_WORKERS: Final = 2
DEFAULT_QUEUE: Final = 64
DEFAULT_JOB_TIMEOUT: Final = 10.0
"""Seconds one job may take before its worker is taken for stuck and killed;
the dearest scrypt check a credentials file may name takes about 0.3 s."""
MAX_FRAME: Final = 16 * 1024 * 1024
"""The largest request or reply, in bytes; a worker that announces more is broken."""
RESPAWN_PAUSE: Final = 1.0
"""Seconds before replacing a worker that died within its first second."""
_READ_SIZE: Final = 65536

Done = Callable[[bytes | None], None]


def run_job(kind: str, payload: bytes) -> bytes:
    """Run one job in this process (what a worker does for each request).
    KeyError for a kind not in :data:`KINDS`."""
    module_name, _, function_name = KINDS[kind].partition(":")
    function: Callable[[bytes], bytes] = getattr(
        importlib.import_module(module_name), function_name
    )
    return function(payload)


def _request(job_id: int, kind: str, payload: bytes) -> bytes:
    name = kind.encode("ascii")
    body = struct.pack("!IB", job_id, len(name)) + name + payload
    return struct.pack("!I", len(body)) + body


class _Job:
    __slots__ = ("done", "job_id", "kind", "payload")

    def __init__(self, job_id: int, kind: str, payload: bytes, done: Done) -> None:
        self.job_id = job_id
        self.kind = kind
        self.payload = payload
        self.done = done


def _answer(job: _Job, reply: bytes | None) -> Callable[[], None]:
    """A callback that answers ``job`` (for ``call_soon``: never inside the caller)."""
    return lambda: job.done(reply)


def _bound(method: "Callable[[_Worker], None]", worker: "_Worker") -> Callable[[], None]:
    return lambda: method(worker)


class _Worker:
    """One child process and the loop's end of its socket."""

    def __init__(self, proc: "subprocess.Popen[bytes]", sock: socket.socket) -> None:
        self.proc = proc
        self.sock = sock
        self.started = time.monotonic()
        self.job: _Job | None = None
        self.timer: Handle | None = None
        self.out = bytearray()
        self.into = bytearray()


class WorkerPool:
    """Child processes running :data:`KINDS` jobs, driven by the loop."""

    def __init__(
        self,
        reactor: Reactor,
        *,
        workers: int = DEFAULT_WORKERS,
        queue_limit: int = DEFAULT_QUEUE,
        job_timeout: float = DEFAULT_JOB_TIMEOUT,
        log: Callable[[str], None] = lambda text: None,
    ) -> None:
        if workers < 1 or queue_limit < 1:
            raise ValueError("a pool needs at least one worker and one queue place")
        self.reactor = reactor
        self.size = workers
        self.queue_limit = queue_limit
        self.job_timeout = job_timeout
        self.log = log
        self._queue: deque[_Job] = deque()
        self._workers: list[_Worker] = []
        self._next_id = 0
        self._closed = False
        self._respawn: Handle | None = None
        self._reaping: list[subprocess.Popen[bytes]] = []
        self.started = 0
        """Children started so far (replacements included): for tests and the log."""

    # -- what the host uses ---------------------------------------------------
    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def busy(self) -> int:
        return sum(1 for worker in self._workers if worker.job is not None)

    def submit(self, kind: str, payload: bytes, done: Done) -> bool:
        """Queue a job; False (and ``done`` never called) if the queue is full
        or the pool is closed. ``done`` is called once, on a later turn."""
        if kind not in KINDS:
            raise KeyError(f"no such job kind: {kind}")
        if self._closed or len(self._queue) >= self.queue_limit:
            return False
        self._next_id = (self._next_id + 1) & 0xFFFFFFFF
        self._queue.append(_Job(self._next_id, kind, payload, done))
        self._dispatch()
        return True

    def close(self) -> None:
        """End every worker (EOF first, then SIGKILL if one lingers) and answer
        every job still queued or running with None."""
        if self._closed:
            return
        self._closed = True
        if self._respawn is not None:
            self._respawn.cancel()
        jobs = list(self._queue)
        self._queue.clear()
        for worker in self._workers:
            if worker.job is not None:
                jobs.append(worker.job)
                worker.job = None
            self._drop(worker, kill=False)
        self._workers.clear()
        deadline = time.monotonic() + 1.0
        for proc in self._reaping:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.0, deadline - time.monotonic()))
            if proc.poll() is None:
                proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(1.0)
        self._reaping.clear()
        for job in jobs:
            job.done(None)

    # -- dispatching ------------------------------------------------------------
    def _dispatch(self) -> None:
        while self._queue:
            worker = next((w for w in self._workers if w.job is None), None)
            if worker is None:
                if len(self._workers) >= self.size or self._respawn is not None:
                    return
                worker = self._spawn()
                if worker is None:
                    return
            job = self._queue.popleft()
            worker.job = job
            worker.out += _request(job.job_id, job.kind, job.payload)
            worker.timer = self.reactor.call_later(self.job_timeout, _bound(self._stuck, worker))
            self._flush(worker)

    def _spawn(self) -> _Worker | None:
        try:
            proc, parent = spawn_module("bluetrace.runtime.workers", socket.SOCK_STREAM)
        except OSError as exc:
            self.log(f"cannot start a worker process: {exc.strerror or exc}")
            self._pause_respawn()
            return None
        worker = _Worker(proc, parent)
        self._workers.append(worker)
        self.started += 1
        self.reactor.add_reader(parent, lambda: self._readable(worker))
        return worker

    def _pause_respawn(self) -> None:
        """Replace no worker for a moment; with none alive, fail what waits."""
        if self._respawn is None:
            self._respawn = self.reactor.call_later(RESPAWN_PAUSE, self._resume)
        if not self._workers:
            jobs = list(self._queue)
            self._queue.clear()
            for job in jobs:
                self.reactor.call_soon(_answer(job, None))

    def _resume(self) -> None:
        self._respawn = None
        self._dispatch()

    # -- the sockets ------------------------------------------------------------
    def _flush(self, worker: _Worker) -> None:
        try:
            sent = worker.sock.send(worker.out)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._failed(worker, "its socket failed")
            return
        del worker.out[:sent]
        if worker.out:
            self.reactor.add_writer(worker.sock, lambda: self._flush(worker))
        else:
            self.reactor.remove_writer(worker.sock)

    def _readable(self, worker: _Worker) -> None:
        try:
            data = worker.sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._failed(worker, "it ended")
            return
        worker.into += data
        while len(worker.into) >= 4:
            (length,) = struct.unpack_from("!I", worker.into)
            if length < 5 or length > MAX_FRAME:
                self._failed(worker, "it sent a broken reply")
                return
            if len(worker.into) < 4 + length:
                return
            frame = bytes(worker.into[4 : 4 + length])
            del worker.into[: 4 + length]
            job_id, status = struct.unpack_from("!IB", frame)
            job = worker.job
            if job is None or job.job_id != job_id:
                self._failed(worker, "it answered a job it was not given")
                return
            worker.job = None
            if worker.timer is not None:
                worker.timer.cancel()
                worker.timer = None
            reply = frame[5:] if status == 0 else None
            if reply is None:
                self.log(
                    f"a {job.kind} job failed in its worker: "
                    f"{frame[5:].decode('utf-8', 'replace')[:200]}"
                )
            self.reactor.call_soon(_answer(job, reply))
        self._dispatch()

    def _stuck(self, worker: _Worker) -> None:
        worker.timer = None
        kind = worker.job.kind if worker.job is not None else "job"
        self._failed(worker, f"a {kind} job took over {self.job_timeout:g} s")

    def _failed(self, worker: _Worker, why: str) -> None:
        """Replace a worker that died or stuck; its job is answered None."""
        job, worker.job = worker.job, None
        if worker.timer is not None:
            worker.timer.cancel()
            worker.timer = None
        young = time.monotonic() - worker.started < RESPAWN_PAUSE
        self._drop(worker, kill=True)
        self._workers.remove(worker)
        self.log(f"worker process {worker.proc.pid} replaced: {why}")
        if job is not None:
            self.reactor.call_soon(_answer(job, None))
        if young:
            self._pause_respawn()
        self._dispatch()

    def _drop(self, worker: _Worker, *, kill: bool) -> None:
        self.reactor.forget(worker.sock)
        worker.sock.close()
        if kill and worker.proc.poll() is None:
            with contextlib.suppress(OSError):
                worker.proc.kill()
        self._reaping.append(worker.proc)
        self._reap()

    def _reap(self) -> None:
        """Collect ended children without waiting (a killed one ends soon)."""
        self._reaping = [proc for proc in self._reaping if proc.poll() is None]
        if self._reaping and not self._closed:
            self.reactor.call_later(0.2, self._reap)


# -- the child's side ---------------------------------------------------------------


def _read_exactly(sock: socket.socket, count: int) -> bytes | None:
    data = bytearray()
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def serve(sock: socket.socket) -> None:
    """A worker's life: answer requests one at a time until the socket ends."""
    while True:
        head = _read_exactly(sock, 4)
        if head is None:
            return
        (length,) = struct.unpack("!I", head)
        if not 5 <= length <= MAX_FRAME:
            return
        body = _read_exactly(sock, length)
        if body is None:
            return
        job_id, name_length = struct.unpack_from("!IB", body)
        kind = body[5 : 5 + name_length].decode("ascii", "replace")
        payload = body[5 + name_length :]
        try:
            reply, status = run_job(kind, payload), 0
        except Exception as exc:  # any failure is one job's, reported back
            reply, status = f"{type(exc).__name__}: {exc}".encode()[:1000], 1
        sock.sendall(struct.pack("!IIB", 5 + len(reply), job_id, status) + reply)


def main(argv: list[str] | None = None) -> int:
    """``python -m bluetrace.runtime.workers FD``: started by :class:`WorkerPool` only."""
    args = sys.argv[1:] if argv is None else argv
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(5)  # the loop's turns come before a worker's hashing
    if len(args) != 1 or not args[0].isdigit():
        print("bluetrace.runtime.workers: started by the server only", file=sys.stderr)
        return 2
    sock = socket.socket(fileno=int(args[0]))
    sock.setblocking(True)
    try:
        serve(sock)
    except OSError:
        pass  # the server went away: nothing is left to answer
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
