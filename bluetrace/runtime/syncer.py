"""The syncer: ``fdatasync`` in a child process, so the loop never waits for the disk.

A database's WAL writer in miniature. The loop appends records to the page
cache itself (a write costs microseconds); what costs milliseconds, and
everyone's turn while the loop waits, is making them durable. So the loop
hands the descriptors to sync to one child process over a Unix
``SOCK_SEQPACKET`` pair (``SCM_RIGHTS``: the child gets its own references
to the same open files, so ``fdatasync`` there flushes exactly what the loop
wrote, and reports a write-back error once, as it would in the loop), and
the child answers one small packet per sync, which the loop multiplexes
like any socket. Protocol work for the next turn overlaps the sync.

Both ways, one packet per sync and one sync at a time::

    request: b"s" with the descriptors as SCM_RIGHTS ancillary data
    reply:   u32 errno (0: every descriptor synced) | the failure's text

A sync is answered exactly once, on a later loop turn, never inside
:meth:`Syncer.sync`, and within ``timeout`` seconds:

- synced: ``done(None)``;
- ``fdatasync`` failed in the child: ``done(OSError)`` with its errno;
- the child could not be started, or died with the sync in flight: the
  loop syncs the descriptors itself (the old way: the disk answers, only
  the loop waits for it), then answers; a child that died within
  ``RESPAWN_PAUSE`` of starting is replaced only after that pause, and the
  loop syncs for itself meanwhile, so a broken interpreter cannot make the
  loop fork without end;
- the child took longer than ``timeout`` (a stuck disk, a stopped process):
  ``done(OSError(ETIMEDOUT))``, and the child is killed and replaced. The
  loop does not try the sync itself then: if the disk is stuck, that would
  freeze every connection instead of failing a few replies.

The descriptors must stay open until ``done`` has been called.
"""

import contextlib
import errno
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Final

from bluetrace.runtime.processes import spawn_module
from bluetrace.runtime.reactor import Handle, Reactor

DEFAULT_SYNC_TIMEOUT: Final = 10.0
"""Seconds one sync may take before the syncer is taken for stuck: the
replies it holds are failed (ERROR STORAGE) and it is replaced."""
RESPAWN_PAUSE: Final = 1.0
"""Seconds the loop syncs for itself after a syncer died within its first second."""
MAX_DESCRIPTORS: Final = 16
"""Descriptors one sync may name (the server names at most three files)."""
_REPLY: Final = struct.Struct("!I")

SyncDone = Callable[[OSError | None], None]


def sync_descriptors(fds: Sequence[int]) -> OSError | None:
    """``fdatasync`` every descriptor (all are tried); the first failure, or None."""
    failure: OSError | None = None
    for fd in fds:
        try:
            os.fdatasync(fd)
        except OSError as exc:
            failure = failure or exc
    return failure


class Syncer:
    """One child process that runs ``fdatasync`` for the loop (see the module)."""

    def __init__(
        self,
        reactor: Reactor,
        *,
        timeout: float = DEFAULT_SYNC_TIMEOUT,
        log: Callable[[str], None] = lambda text: None,
    ) -> None:
        self.reactor = reactor
        self.timeout = timeout
        self.log = log
        self.started = 0
        """Children started so far (replacements included): for tests and the log."""
        self.in_loop = 0
        """Syncs the loop ran itself because no child could (for tests)."""
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._born = 0.0
        self._fds: Sequence[int] = ()
        self._done: SyncDone | None = None
        self._timer: Handle | None = None
        self._paused_until = 0.0
        self._reaping: list[subprocess.Popen[bytes]] = []
        self._closed = False

    @property
    def pid(self) -> int | None:
        """The child's process id, if one runs (for tests and the log)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def busy(self) -> bool:
        return self._done is not None

    def start(self) -> None:
        """Start the child now (rather than at the first sync, which would wait for it)."""
        if self._proc is None and not self._closed:
            self._spawn()

    def sync(self, fds: Sequence[int], done: SyncDone) -> None:
        """Make what was written to ``fds`` durable; ``done`` is called once,
        on a later turn, within the timeout. One sync at a time."""
        if self._done is not None:
            raise RuntimeError("a sync is already in flight")
        if not fds:
            self.reactor.call_soon(lambda: done(None))
            return
        if len(fds) > MAX_DESCRIPTORS:
            raise ValueError(f"at most {MAX_DESCRIPTORS} descriptors per sync")
        if self._proc is None and not self._closed and time.monotonic() >= self._paused_until:
            self._spawn()
        sock = self._sock
        if sock is not None:
            try:
                socket.send_fds(sock, [b"s"], list(fds))
            except OSError as exc:
                self._replace(f"its socket failed: {exc.strerror or exc}")
                sock = None
        if sock is None:
            self._sync_in_loop(fds, done)
            return
        self._fds, self._done = fds, done
        self._timer = self.reactor.call_later(self.timeout, self._stuck)

    def close(self) -> None:
        """End the child (EOF, then SIGKILL if it lingers); a sync still in
        flight is run in the loop and answered now."""
        if self._closed:
            return
        self._closed = True
        if self._done is not None:
            fds, done = self._fds, self._done
            self._clear()
            done(sync_descriptors(fds))
        self._drop(kill=False)
        deadline = time.monotonic() + 1.0
        for proc in self._reaping:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.0, deadline - time.monotonic()))
            if proc.poll() is None:
                proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(1.0)
        self._reaping.clear()

    # -- inside -----------------------------------------------------------------
    def _spawn(self) -> None:
        try:
            proc, parent = spawn_module("bluetrace.runtime.syncer", socket.SOCK_SEQPACKET)
        except OSError as exc:
            self.log(f"cannot start the syncer process: {exc.strerror or exc}")
            self._paused_until = time.monotonic() + RESPAWN_PAUSE
            return
        self._proc, self._sock, self._born = proc, parent, time.monotonic()
        self.started += 1
        self.reactor.add_reader(parent, self._readable)

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            packet = sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            packet = b""
        if len(packet) < _REPLY.size or self._done is None:
            why = "it ended" if not packet else "it sent a reply it was not asked for"
            fds, done = self._fds, self._done
            self._clear()
            self._replace(why)
            if done is not None:
                self._sync_in_loop(fds, done)
            return
        (code,) = _REPLY.unpack_from(packet)
        done = self._done
        self._clear()
        failure = None
        if code:
            text = packet[_REPLY.size :].decode("utf-8", "replace") or os.strerror(code)
            failure = OSError(code, text)
        self.reactor.call_soon(lambda: done(failure))

    def _stuck(self) -> None:
        self._timer = None
        done = self._done
        self._clear()
        # No respawn pause, whatever its age: in the pause the loop would sync
        # for itself, and on a stuck disk that would freeze every connection.
        self._replace(f"a sync took over {self.timeout:g} s", pause_if_young=False)
        if done is not None:
            failure = OSError(
                errno.ETIMEDOUT, f"the disk did not confirm a sync within {self.timeout:g} s"
            )
            self.reactor.call_soon(lambda: done(failure))

    def _clear(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._fds, self._done = (), None

    def _replace(self, why: str, *, pause_if_young: bool = True) -> None:
        """Drop the child (killed); the next sync starts another, after a
        pause if this one died young."""
        pid = self.pid
        young = pause_if_young and time.monotonic() - self._born < RESPAWN_PAUSE
        self._drop(kill=True)
        self.log(f"syncer process {pid} replaced: {why}")
        if young:
            self._paused_until = time.monotonic() + RESPAWN_PAUSE

    def _sync_in_loop(self, fds: Sequence[int], done: SyncDone) -> None:
        """No child to ask: the loop waits for the disk itself, as it did
        before the syncer, and answers on the next turn."""
        self.in_loop += 1
        failure = sync_descriptors(fds)
        self.reactor.call_soon(lambda: done(failure))

    def _drop(self, *, kill: bool) -> None:
        sock, proc = self._sock, self._proc
        self._sock = self._proc = None
        if sock is not None:
            self.reactor.forget(sock)
            sock.close()
        if proc is not None:
            if kill and proc.poll() is None:
                with contextlib.suppress(OSError):
                    proc.kill()
            self._reaping.append(proc)
        self._reap()

    def _reap(self) -> None:
        """Collect ended children without waiting (a killed one ends soon)."""
        self._reaping = [proc for proc in self._reaping if proc.poll() is None]
        if self._reaping and not self._closed:
            self.reactor.call_later(0.2, self._reap)


# -- the child's side ---------------------------------------------------------------


def serve(sock: socket.socket) -> None:
    """The syncer's life: one sync per request until the socket ends."""
    while True:
        packet, fds, _flags, _address = socket.recv_fds(sock, 16, MAX_DESCRIPTORS)
        if not packet:
            for fd in fds:
                os.close(fd)
            return
        try:
            failure = sync_descriptors(fds)
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
        if failure is None:
            sock.send(_REPLY.pack(0))
        else:
            text = (failure.strerror or str(failure)).encode("utf-8", "replace")[:200]
            sock.send(_REPLY.pack(failure.errno or errno.EIO) + text)


def main(argv: list[str] | None = None) -> int:
    """``python -m bluetrace.runtime.syncer FD``: started by :class:`Syncer` only."""
    args = sys.argv[1:] if argv is None else argv
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_IGN)
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m bluetrace.runtime.syncer FD (from the server)", file=sys.stderr)
        return 2
    sock = socket.socket(fileno=int(args[0]))
    try:
        serve(sock)
    except OSError:
        return 1
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
