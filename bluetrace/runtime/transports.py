"""Sockets and the terminal as the loop sees them: bytes in, bytes out.

A :class:`Stream` is a non-blocking TCP connection with an output queue, a
:class:`DatagramEndpoint` a UDP socket, a :class:`LineReader` the phone's
piped standard input, and :func:`connect` opens a TCP connection without
blocking the loop. Protocol rules live in the sans-I/O objects; these only
move bytes, and report a close on the next loop turn so that a close never
re-enters the code that caused it.
"""

import contextlib
import errno
import os
import socket
import struct
from collections import deque
from collections.abc import Callable

from bluetrace.runtime.reactor import Handle, Reactor

RECV_SIZE = 64 * 1024
HIGH_WATER = 1024 * 1024
"""Queued output above which a stream stops reading from its peer: a peer that
sends requests but never reads replies cannot make us buffer without bound."""
DATAGRAMS_PER_WAKEUP = 256
MAX_DATAGRAM = 65535
IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
"""Linux's option that queues ICMP errors on an unconnected UDP socket too
(the name is in the socket module only from Python 3.12)."""
ERROR_ANCILLARY = 512
"""Room for one ``sock_extended_err`` and the address it names."""


class Stream:
    """A non-blocking TCP connection.

    ``write`` sends at once and queues only what the kernel did not take;
    the writer callback is set only while something is queued, so the loop
    never spins on an idle writable socket.

    With ``on_readable``, the stream does not read when its socket becomes
    readable: it stops watching the socket and tells its owner, who calls
    :meth:`pull` when the socket's turn comes. That is how a server shares
    each loop turn fairly among thousands of sockets that are all readable
    at once, instead of reading (and working on) every one of them.
    """

    def __init__(
        self,
        reactor: Reactor,
        sock: socket.socket,
        on_data: Callable[[bytes], None],
        on_close: Callable[[OSError | None], None],
        on_readable: Callable[[], None] | None = None,
    ) -> None:
        self.reactor = reactor
        self.sock = sock
        self.on_data = on_data
        self.on_close = on_close
        self.on_readable = on_readable
        self.closed = False
        self._queue: deque[memoryview] = deque()
        self._queued = 0
        self._close_when_flushed = False
        self._want_read = True
        self._reading = False
        self._parked = False
        """Readable, reported to the owner, waiting for :meth:`pull`."""
        sock.setblocking(False)
        self._update()

    @property
    def queued(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        return self._queued

    def write(self, data: bytes) -> None:
        if self.closed or self._close_when_flushed or not data:
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
            self._update()

    def set_reading(self, wanted: bool) -> None:
        """Take bytes from the peer or not (its owner decides: budget, backlog)."""
        if wanted != self._want_read:
            self._want_read = wanted
            self._update()

    def close_when_flushed(self) -> None:
        """Stop reading, send what is queued, then close."""
        if self.closed:
            return
        self._close_when_flushed = True
        if not self._queue:
            self.close()
        else:
            self._update()

    def close(self, error: OSError | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        self.reactor.forget(self.sock)
        self.sock.close()
        self._queue.clear()
        self._queued = 0
        self.reactor.call_soon(lambda: self.on_close(error))

    @property
    def parked(self) -> bool:
        """The socket was readable and the owner has not pulled yet."""
        return self._parked and not self.closed

    def pull(self) -> int:
        """Read once (the owner's turn for this socket, see ``on_readable``);
        the bytes taken, 0 at the peer's end or an error (then closed)."""
        self._parked = False
        return self._read()

    def unpark(self) -> None:
        """Give the turn back without reading: reading follows ``set_reading``."""
        self._parked = False

    def _update(self) -> None:
        if self.closed:
            return
        reading = self._want_read and not self._close_when_flushed and self._queued < HIGH_WATER
        if reading != self._reading:
            self._reading = reading
            if reading:
                self.reactor.add_reader(self.sock, self._on_readable)
            else:
                self.reactor.remove_reader(self.sock)
        if self._queue:
            self.reactor.add_writer(self.sock, self._on_writable)
        else:
            self.reactor.remove_writer(self.sock)

    def _on_readable(self) -> None:
        if self.closed:
            return
        if self.on_readable is not None:
            # The socket stays registered while parked (a readable one is
            # reported again at each select until the owner pulls): most
            # are pulled in the same loop turn, and taking a socket out of
            # the selector and putting it back costs two epoll_ctl calls
            # and their bookkeeping at every read.
            if not self._parked:
                self._parked = True
                self.on_readable()
            return
        self._read()

    def _read(self) -> int:
        if self.closed:
            return 0
        try:
            data = self.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:
            self.close(exc)
            return 0
        if not data:
            self.close()
            return 0
        self.on_data(data)
        return len(data)

    def _on_writable(self) -> None:
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
            self._update()


def connect(
    reactor: Reactor,
    address: tuple[str, int],
    on_connected: Callable[[socket.socket], None],
    on_failed: Callable[[str], None],
    *,
    timeout: float,
) -> Callable[[], None]:
    """Open a TCP connection to an IPv4 ``address`` without blocking the loop.
    Returns a function that abandons the attempt."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    done = False
    timer: Handle | None = None

    def finish() -> None:
        nonlocal done
        done = True
        reactor.forget(sock)
        if timer is not None:
            timer.cancel()

    def fail(reason: str) -> None:
        if done:
            return
        finish()
        sock.close()
        on_failed(reason)

    def writable() -> None:
        if done:
            return
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            fail(os.strerror(error))
            return
        finish()
        on_connected(sock)

    try:
        code = sock.connect_ex(address)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        reactor.call_soon(lambda: fail(reason))
        return lambda: fail("abandoned")
    if code not in (0, errno.EINPROGRESS):
        reason = os.strerror(code)
        reactor.call_soon(lambda: fail(reason))
        return lambda: fail("abandoned")
    reactor.add_writer(sock, writable)
    timer = reactor.call_later(timeout, lambda: fail(f"no answer within {timeout:g} seconds"))
    return lambda: fail("abandoned")


class DatagramEndpoint:
    """A UDP socket whose datagrams go to ``on_datagram``.

    An unconnected UDP socket on Linux is told of no ICMP error ("port
    unreachable": nobody listens there) unless it asks with IP_RECVERR; then
    each error is queued with the address the failed datagram was sent to,
    and reported to ``on_error`` with that address, while the socket lives
    on. One socket both sends and receives, so a datagram's source port stays
    the receiving port. Where the option is missing, an error shows up on a
    later receive or send with no address (``on_error`` gets None).

    At most DATAGRAMS_PER_WAKEUP datagrams, and as many queued errors, are
    taken per turn, so a flood cannot starve the terminal or the server
    connection; the kernel bounds the error queue by the receive buffer.
    """

    def __init__(
        self,
        reactor: Reactor,
        sock: socket.socket,
        on_datagram: Callable[[bytes, tuple[str, int]], None],
        on_error: Callable[[OSError, tuple[str, int] | None], None],
    ) -> None:
        self.reactor = reactor
        self.sock = sock
        self.on_datagram = on_datagram
        self.on_error = on_error
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
            self._error_queue = True
        except OSError:
            self._error_queue = False
        reactor.add_reader(sock, self._on_readable)

    def _on_readable(self) -> None:
        if self._take_errors() >= DATAGRAMS_PER_WAKEUP:
            return  # more errors wait: the next turn takes them first
        for _ in range(DATAGRAMS_PER_WAKEUP):
            try:
                data, address = self.sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if not self._error_queue:
                    self.on_error(exc, None)
                # Else an error that came in meanwhile: it is still queued,
                # and reported with its address next turn.
                return
            self.on_datagram(data, (str(address[0]), int(address[1])))

    def _take_errors(self) -> int:
        """Report the queued errors of earlier sends (at most a turn's worth);
        how many there were. Taking one also clears the error the next send
        or receive would otherwise fail with."""
        if not self._error_queue:
            return 0
        taken = 0
        for _ in range(DATAGRAMS_PER_WAKEUP):
            try:
                _, ancillary, _, address = self.sock.recvmsg(
                    0, ERROR_ANCILLARY, socket.MSG_ERRQUEUE
                )
            except OSError:  # EAGAIN: the queue is empty
                return taken
            taken += 1
            code = errno.EIO
            for level, kind, payload in ancillary:
                if level == socket.IPPROTO_IP and kind == IP_RECVERR and len(payload) >= 4:
                    code = struct.unpack_from("=I", payload)[0]
            where = (str(address[0]), int(address[1])) if address else None
            self.on_error(OSError(code, os.strerror(code)), where)
        return taken

    def send(self, data: bytes, address: tuple[str, int]) -> None:
        """Send one datagram; OSError (no route, too large) is the caller's.

        Errors of earlier datagrams are reported first, in their order. One
        that arrives between that and this send makes the send fail in its
        stead (the kernel sends nothing then): it is reported, and the send
        tried once more."""
        self._take_errors()
        try:
            self.sock.sendto(data, address)
        except OSError:
            if not self._take_errors():
                raise
            self.sock.sendto(data, address)

    def close(self) -> None:
        self.reactor.forget(self.sock)
        self.sock.close()


class LineReader:
    """Lines from a file descriptor (piped stdin), read with ``os.read``.

    Buffered ``readline`` would hide data from select. Where the selector
    refuses the descriptor (epoll and a regular file or /dev/null), the
    reader falls back to reading on the next turn, which a file always
    satisfies at once, so a phone with such a stdin still runs its loop.
    A line longer than MAX_LINE is cut, so a stream with no newline cannot
    grow the buffer without bound. While :meth:`pause` holds it, nothing is
    read and the lines of the last read wait here (one read's worth at most),
    so a pipe that runs ahead of its consumer waits in the pipe, not in memory.
    """

    MAX_LINE = 64 * 1024

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
        self._lines: deque[bytes] = deque()
        """Whole lines read and not yet delivered (while paused)."""
        self._at_end = False
        self._done = False
        self._paused = False
        self._polled = False
        try:
            reactor.add_reader(fd, self._on_readable)
        except PermissionError:
            self._polled = True
            reactor.call_soon(self._poll)
        except OSError as exc:
            if exc.errno != errno.EPERM:
                raise
            self._polled = True
            reactor.call_soon(self._poll)

    def pause(self) -> None:
        """Deliver no line and read nothing until :meth:`resume`."""
        if self._paused or self._done:
            return
        self._paused = True
        if not self._polled:
            self.reactor.remove_reader(self.fd)

    def resume(self) -> None:
        """Deliver the lines kept meanwhile (on the next turn), then read on."""
        if not self._paused or self._done:
            return
        self._paused = False
        if self._polled:
            self.reactor.call_soon(self._poll)
        else:
            self.reactor.add_reader(self.fd, self._on_readable)
        self.reactor.call_soon(self._deliver)

    def _poll(self) -> None:
        self._on_readable()
        if not self._done and not self._paused:
            self.reactor.call_soon(self._poll)

    def _on_readable(self) -> None:
        if self._done or self._paused:
            return
        if self._lines or self._at_end:
            # Lines held while paused go first, and no more is read until
            # they are gone: at most one read's worth is ever held.
            self._deliver()
            return
        try:
            data = os.read(self.fd, 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._at_end = True
            if self._buffer:
                self._lines.append(self._buffer)
                self._buffer = b""
        else:
            self._buffer += data
            *lines, self._buffer = self._buffer.split(b"\n")
            if len(self._buffer) > self.MAX_LINE:
                lines.append(self._buffer[: self.MAX_LINE])
                self._buffer = b""
            self._lines.extend(lines)
        self._deliver()

    def _deliver(self) -> None:
        while self._lines and not self._done and not self._paused:
            line = self._lines.popleft()
            self.on_line(line.rstrip(b"\r").decode("utf-8", errors="replace"))
        if self._at_end and not self._lines and not self._done and not self._paused:
            self.close()
            self.on_eof()

    def close(self) -> None:
        if self._done:
            return
        self._done = True
        if not self._polled:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.reactor.forget(self.fd)
