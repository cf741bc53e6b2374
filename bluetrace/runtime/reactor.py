"""The one selectors loop that both the server and the phone run on.

Shaped like asyncio's selector loop, cut down to what bluetrace needs:
reader and writer callbacks set and cleared separately per file object; a
heap of monotonic timers whose nearest deadline is the select timeout, where
a cancelled timer drops its callback at once and the heap is compacted when
cancelled entries pile up; callbacks scheduled with ``call_soon`` run on the
next turn, never inside the caller; and signals delivered through a wake-up
socket, so that handlers run inside the loop, never between two bytecodes of
a file write. The transports (stream, datagram, terminal input) are in
``transports``.
"""

import contextlib
import heapq
import itertools
import selectors
import signal
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any

FileObject = int | Any
"""An int file descriptor or an object with ``fileno()``."""
Callback = Callable[[], None]


def _nothing() -> None:
    """What a cancelled handle holds instead of its callback."""


_NO_CALLBACKS: tuple[None, None] = (None, None)


class Handle:
    """A callback scheduled on the loop; ``cancel`` drops it for good."""

    __slots__ = ("_reactor", "callback", "cancelled", "when")

    def __init__(self, reactor: "Reactor", when: float, callback: Callback) -> None:
        self._reactor = reactor
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self.callback = _nothing  # let go of whatever the callback kept alive
            self._reactor._cancelled()

    def __lt__(self, other: "Handle") -> bool:
        return self.when < other.when


Timer = Handle


class Reactor:
    COMPACT_MIN = 100
    """Cancelled timers tolerated in the heap before it may be compacted."""
    MAX_WAIT = 3600.0
    """The longest single select: a timer days away must not overflow it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._selector = selectors.DefaultSelector()
        self._callbacks: dict[int, tuple[Callback | None, Callback | None]] = {}
        self._timers: list[tuple[float, int, Handle]] = []
        self._cancelled_count = 0
        self._ready: deque[Handle] = deque()
        self._sequence = itertools.count()
        self._running = False
        self._signal_callbacks: dict[int, Callback] = {}
        self._pending_signals: deque[int] = deque()
        self._wakeup: tuple[socket.socket, socket.socket] | None = None

    # -- file objects -------------------------------------------------------
    def add_reader(self, fileobj: FileObject, callback: Callback) -> None:
        self._set(fileobj, selectors.EVENT_READ, callback)

    def remove_reader(self, fileobj: FileObject) -> None:
        self._set(fileobj, selectors.EVENT_READ, None)

    def add_writer(self, fileobj: FileObject, callback: Callback) -> None:
        self._set(fileobj, selectors.EVENT_WRITE, callback)

    def remove_writer(self, fileobj: FileObject) -> None:
        self._set(fileobj, selectors.EVENT_WRITE, None)

    def forget(self, fileobj: FileObject) -> None:
        """Drop both callbacks; call before closing the file object."""
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        if self._callbacks.pop(fd, None) is not None:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(fd)

    def _set(self, fileobj: FileObject, event: int, callback: Callback | None) -> None:
        # Our own table, by descriptor: asking the selector about a file it
        # does not hold costs an exception whose message formats the socket.
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        current = self._callbacks.get(fd)
        if current is None:
            if callback is None:
                return
            pair = (callback, None) if event == selectors.EVENT_READ else (None, callback)
            self._selector.register(fd, event, pair)
            self._callbacks[fd] = pair
            return
        reader, writer = current
        if event == selectors.EVENT_READ:
            reader = callback
        else:
            writer = callback
        mask = (selectors.EVENT_READ if reader else 0) | (selectors.EVENT_WRITE if writer else 0)
        if mask:
            self._selector.modify(fd, mask, (reader, writer))
            self._callbacks[fd] = (reader, writer)
        else:
            self._selector.unregister(fd)
            del self._callbacks[fd]

    # -- timers -----------------------------------------------------------------
    def time(self) -> float:
        return self.clock()

    def call_at(self, when: float, callback: Callback) -> Handle:
        handle = Handle(self, when, callback)
        heapq.heappush(self._timers, (when, next(self._sequence), handle))
        return handle

    def call_later(self, delay: float, callback: Callback) -> Handle:
        return self.call_at(self.clock() + delay, callback)

    def call_soon(self, callback: Callback) -> Handle:
        """Run ``callback`` on the next loop turn, never inside the caller."""
        handle = Handle(self, 0.0, callback)
        self._ready.append(handle)
        return handle

    @property
    def timers_pending(self) -> int:
        """Timers in the heap, cancelled ones included (for tests and the bench)."""
        return len(self._timers)

    def _cancelled(self) -> None:
        self._cancelled_count += 1
        if (
            self._cancelled_count > self.COMPACT_MIN
            and self._cancelled_count * 2 > len(self._timers)
        ):
            self._timers = [entry for entry in self._timers if not entry[2].cancelled]
            heapq.heapify(self._timers)
            self._cancelled_count = 0

    # -- signals ----------------------------------------------------------------
    def add_signal_handler(self, signum: int, callback: Callback) -> None:
        """Run ``callback`` inside the loop when ``signum`` arrives."""
        if self._wakeup is None:
            reader, writer = socket.socketpair()
            reader.setblocking(False)
            writer.setblocking(False)
            self._wakeup = (reader, writer)
            self.add_reader(reader, self._drain_wakeup)
            signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        self._signal_callbacks[signum] = callback
        signal.signal(signum, lambda number, _frame: self._pending_signals.append(number))

    def _drain_wakeup(self) -> None:
        if self._wakeup is None:
            return
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while self._wakeup[0].recv(4096):
                pass

    def _dispatch_signals(self) -> None:
        while self._pending_signals:
            callback = self._signal_callbacks.get(self._pending_signals.popleft())
            if callback is not None:
                callback()

    # -- running ----------------------------------------------------------------
    def stop(self) -> None:
        self._running = False

    @property
    def running(self) -> bool:
        return self._running

    def run(self) -> None:
        self._running = True
        while self._running:
            self.run_once()

    def run_once(self, max_wait: float | None = None) -> None:
        """One select and everything it made ready, then every due timer and
        every callback scheduled before this turn began."""
        timeout = self._timeout(max_wait)
        for key, events in self._selector.select(timeout):
            if events & selectors.EVENT_READ:
                reader = self._callbacks.get(key.fd, _NO_CALLBACKS)[0]
                if reader is not None:
                    reader()
            if events & selectors.EVENT_WRITE:
                # Looked up again: the reader may have closed the file or
                # dropped the writer.
                writer = self._callbacks.get(key.fd, _NO_CALLBACKS)[1]
                if writer is not None:
                    writer()
        self._dispatch_signals()
        self._run_due()

    def _timeout(self, max_wait: float | None) -> float | None:
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
            self._cancelled_count = max(0, self._cancelled_count - 1)
        if self._pending_signals or self._ready:
            return 0
        limit = self.MAX_WAIT if max_wait is None else min(max_wait, self.MAX_WAIT)
        if not self._timers:
            return limit
        return min(max(0.0, self._timers[0][0] - self.clock()), limit)

    def _run_due(self) -> None:
        now = self.clock()
        # Only what is due now: a callback scheduled by one of these runs on
        # the next turn, so a chain of call_soon cannot starve the sockets.
        due: list[Handle] = []
        while self._timers and self._timers[0][0] <= now:
            handle = heapq.heappop(self._timers)[2]
            if handle.cancelled:
                self._cancelled_count = max(0, self._cancelled_count - 1)
            else:
                due.append(handle)
        for _ in range(len(self._ready)):
            due.append(self._ready.popleft())
        for handle in due:
            if not handle.cancelled:
                handle.cancelled = True
                callback, handle.callback = handle.callback, _nothing
                callback()

    def close(self) -> None:
        if self._wakeup is not None:
            signal.set_wakeup_fd(-1)
            for sock in self._wakeup:
                self.forget(sock)
                sock.close()
            self._wakeup = None
        self._selector.close()
