"""The one selectors loop that both the server and the client run on.

Patterned on asyncio's selector loop, cut down to what bluetrace needs:
file objects with read/write handlers, a heap of monotonic timers whose
nearest deadline is the select timeout, write buffering that sends at once
and queues only the unsent tail, and signals delivered through a wake-up
socket so that handlers run inside the loop, never between two bytecodes of
a file write.
"""

import contextlib
import errno
import heapq
import itertools
import os
import selectors
import signal
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

RECV_SIZE = 256 * 1024
HIGH_WATER = 1024 * 1024
"""Queued output above which a stream stops reading from its peer: a peer that
sends requests but never reads replies cannot make us buffer without bound."""
DATAGRAMS_PER_WAKEUP = 256


class Handler(Protocol):
    def on_readable(self) -> None: ...

    def on_writable(self) -> None: ...


class Timer:
    """A cancellable callback at a monotonic deadline."""

    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Reactor:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._selector = selectors.DefaultSelector()
        self._timers: list[tuple[float, int, Timer]] = []
        self._sequence = itertools.count()
        self._running = False
        self._signal_callbacks: dict[int, Callable[[], None]] = {}
        self._pending_signals: deque[int] = deque()
        self._wakeup: tuple[socket.socket, socket.socket] | None = None

    # -- file objects -------------------------------------------------------
    def register(self, fileobj: int | socket.socket, handler: Handler, events: int) -> None:
        self._selector.register(fileobj, events, handler)

    def modify(self, fileobj: int | socket.socket, handler: Handler, events: int) -> None:
        if events:
            try:
                self._selector.modify(fileobj, events, handler)
            except KeyError:
                self._selector.register(fileobj, events, handler)
        else:
            self.unregister(fileobj)

    def unregister(self, fileobj: int | socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(fileobj)

    # -- timers -----------------------------------------------------------------
    def time(self) -> float:
        return self.clock()

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(when, callback)
        heapq.heappush(self._timers, (when, next(self._sequence), timer))
        return timer

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return self.call_at(self.clock() + delay, callback)

    def call_soon(self, callback: Callable[[], None]) -> Timer:
        return self.call_at(self.clock(), callback)

    # -- signals ----------------------------------------------------------------
    def add_signal_handler(self, signum: int, callback: Callable[[], None]) -> None:
        """Run ``callback`` inside the loop when ``signum`` arrives."""
        if self._wakeup is None:
            reader, writer = socket.socketpair()
            reader.setblocking(False)
            writer.setblocking(False)
            self._wakeup = (reader, writer)
            self.register(reader, _WakeupReader(self, reader), selectors.EVENT_READ)
            signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        self._signal_callbacks[signum] = callback
        signal.signal(signum, lambda number, _frame: self._pending_signals.append(number))

    def _dispatch_signals(self) -> None:
        while self._pending_signals:
            callback = self._signal_callbacks.get(self._pending_signals.popleft())
            if callback is not None:
                callback()

    # -- running ----------------------------------------------------------------
    def stop(self) -> None:
        self._running = False

    def run(self) -> None:
        self._running = True
        while self._running:
            self.run_once()

    def run_once(self, max_wait: float | None = None) -> None:
        """One select and everything it made ready, then every due timer."""
        timeout = self._timeout(max_wait)
        for key, events in self._selector.select(timeout):
            handler: Handler = key.data
            if events & selectors.EVENT_READ:
                handler.on_readable()
            if events & selectors.EVENT_WRITE and key.fd in self._selector.get_map():
                handler.on_writable()
        self._dispatch_signals()
        self._run_due_timers()

    def _timeout(self, max_wait: float | None) -> float | None:
        self._drop_cancelled()
        if self._pending_signals:
            return 0
        if not self._timers:
            return max_wait
        delay = max(0.0, self._timers[0][0] - self.clock())
        return delay if max_wait is None else min(delay, max_wait)

    def _drop_cancelled(self) -> None:
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)

    def _run_due_timers(self) -> None:
        now = self.clock()
        # Only timers due now: one scheduled by a callback for "now" waits
        # for the next turn, so a chain of call_soon cannot starve the sockets.
        due: list[Timer] = []
        while self._timers and self._timers[0][0] <= now:
            due.append(heapq.heappop(self._timers)[2])
        for timer in due:
            if not timer.cancelled:
                timer.cancelled = True
                timer.callback()

    def close(self) -> None:
        if self._wakeup is not None:
            signal.set_wakeup_fd(-1)
            for sock in self._wakeup:
                self.unregister(sock)
                sock.close()
            self._wakeup = None
        self._selector.close()


class _WakeupReader:
    def __init__(self, reactor: Reactor, sock: socket.socket) -> None:
        self.reactor = reactor
        self.sock = sock

    def on_readable(self) -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while self.sock.recv(4096):
                pass

    def on_writable(self) -> None:
        pass


class Stream:
    """A non-blocking TCP connection with an output queue.

    ``write`` sends at once and queues only what the kernel did not take;
    EVENT_WRITE is asked for only while something is queued, so the loop
    never spins on an idle writable socket.
    """

    def __init__(
        self,
        reactor: Reactor,
        sock: socket.socket,
        on_data: Callable[[bytes], None],
        on_close: Callable[[OSError | None], None],
    ) -> None:
        self.reactor = reactor
        self.sock = sock
        self.on_data = on_data
        self.on_close = on_close
        self.closed = False
        self._queue: deque[memoryview] = deque()
        self._queued = 0
        self._close_when_flushed = False
        self._finishing: Timer | None = None
        self._paused = False
        self._reading = True
        sock.setblocking(False)
        reactor.register(sock, self, selectors.EVENT_READ)

    @property
    def queued(self) -> int:
        return self._queued

    def write(self, data: bytes) -> None:
        if self.closed or self._close_when_flushed or self._finishing or not data:
            return
        view = memoryview(data)
        if not self._queue:
            try:
                view = view[self.sock.send(view) :]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                self.close(exc)
                return
        if view:
            self._queue.append(view)
            self._queued += len(view)
            self._update_interest()

    def close_when_flushed(self) -> None:
        """Stop reading, send what is queued, then close."""
        if self.closed:
            return
        self._close_when_flushed = True
        if not self._queue:
            self.close()
        else:
            self._update_interest()

    def pause_reading(self) -> None:
        """Stop taking bytes from the peer (its owner has enough to chew on)."""
        if not self._paused:
            self._paused = True
            self._update_interest()

    def resume_reading(self) -> None:
        if self._paused:
            self._paused = False
            self._update_interest()

    def finish(self, linger: float) -> None:
        """Say nothing more and let the peer close first.

        The side that closes first keeps the connection in TIME_WAIT; on a
        busy server that is thousands of entries, and on loopback a new
        connection from a reused port can stall against one. So after its
        last reply the server sends what is queued, discards anything more it
        receives, and closes on the peer's EOF, or after ``linger`` seconds.
        """
        if self.closed or self._finishing:
            return
        self._finishing = self.reactor.call_later(linger, self.close)

    def close(self, error: OSError | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        if self._finishing is not None:
            self._finishing.cancel()
        self.reactor.unregister(self.sock)
        self.sock.close()
        self._queue.clear()
        self._queued = 0
        self.on_close(error)

    def _update_interest(self) -> None:
        if self.closed:
            return
        self._reading = (
            not self._close_when_flushed and not self._paused and self._queued < HIGH_WATER
        )
        events = (selectors.EVENT_READ if self._reading else 0) | (
            selectors.EVENT_WRITE if self._queue else 0
        )
        self.reactor.modify(self.sock, self, events)

    def on_readable(self) -> None:
        if self.closed or not self._reading:
            return
        try:
            data = self.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.close(exc)
            return
        if not data:
            self.close()
            return
        if self._finishing is None:
            self.on_data(data)

    def on_writable(self) -> None:
        while self._queue and not self.closed:
            head = self._queue[0]
            try:
                sent = self.sock.send(head)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self.close(exc)
                return
            self._queued -= sent
            if sent < len(head):
                self._queue[0] = head[sent:]
                break
            self._queue.popleft()
        if self.closed:
            return
        if not self._queue and self._close_when_flushed:
            self.close()
        else:
            self._update_interest()


class DatagramEndpoint:
    """A UDP socket whose datagrams go to ``on_datagram``.

    An ICMP "port unreachable" from an earlier send shows up as an error on a
    later receive; it is reported to ``on_error`` and the socket lives on.
    """

    def __init__(
        self,
        reactor: Reactor,
        sock: socket.socket,
        on_datagram: Callable[[bytes, tuple[str, int]], None],
        on_error: Callable[[OSError], None],
    ) -> None:
        self.reactor = reactor
        self.sock = sock
        self.on_datagram = on_datagram
        self.on_error = on_error
        sock.setblocking(False)
        reactor.register(sock, self, selectors.EVENT_READ)

    def on_readable(self) -> None:
        for _ in range(DATAGRAMS_PER_WAKEUP):
            try:
                data, address = self.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.on_error(exc)
                return
            self.on_datagram(data, (str(address[0]), int(address[1])))

    def on_writable(self) -> None:
        pass

    def send(self, data: bytes, address: tuple[str, int]) -> None:
        """Send one datagram; OSError (unreachable, no route) is the caller's."""
        self.sock.sendto(data, address)

    def close(self) -> None:
        self.reactor.unregister(self.sock)
        self.sock.close()


class LineReader:
    """Lines from a file descriptor (stdin), read with ``os.read``.

    Buffered ``readline`` would hide data from select. Where the selector
    refuses the descriptor (epoll and a regular file or /dev/null), the
    reader falls back to reading on a timer, which a file always satisfies
    at once, so a client with such a stdin still runs its loop.
    """

    def __init__(
        self,
        reactor: Reactor,
        fd: int,
        on_line: Callable[[str], None],
        on_eof: Callable[[], None],
    ) -> None:
        self.reactor = reactor
        self.fd = fd
        self.on_line = on_line
        self.on_eof = on_eof
        self._buffer = b""
        self._done = False
        self._polled = False
        try:
            reactor.register(fd, self, selectors.EVENT_READ)
        except (PermissionError, OSError) as exc:
            if isinstance(exc, PermissionError) or exc.errno == errno.EPERM:
                self._polled = True
                reactor.call_soon(self._poll)
            else:
                raise

    def _poll(self) -> None:
        self.on_readable()
        if not self._done:
            self.reactor.call_soon(self._poll)

    def on_readable(self) -> None:
        if self._done:
            return
        try:
            data = os.read(self.fd, 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._finish()
            return
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            if self._done:
                return
            self.on_line(line.rstrip(b"\r").decode("utf-8", errors="replace"))

    def _finish(self) -> None:
        if self._buffer and not self._done:
            line, self._buffer = self._buffer, b""
            self.on_line(line.rstrip(b"\r").decode("utf-8", errors="replace"))
        if not self._done:
            self.close()
            self.on_eof()

    def on_writable(self) -> None:
        pass

    def close(self) -> None:
        self._done = True
        if not self._polled:
            self.reactor.unregister(self.fd)
