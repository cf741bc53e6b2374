"""``bluetrace-server``: the sans-I/O connections wired to sockets, files and output.

Everything here is glue: accept connections, move bytes between sockets and
:class:`~bluetrace.server.connection.ServerConnection` objects, keep one
timer per connection at its deadline, run the group commit
(``server.commit``), and write what the connections report. The specification's texts go
to stdout; diagnostics go to stderr, starting with the line
``listening on HOST:PORT`` that names the port actually bound (so that port
0, chosen by the OS, is usable).
"""

import argparse
import errno
import hashlib
import os
import signal
import socket
import ssl
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path

from bluetrace import __version__
from bluetrace.protocol.clock import Clock, SystemClock
from bluetrace.runtime.cli import (
    DAY,
    fail,
    port,
    positive_seconds,
    raise_descriptor_limit,
    seconds,
    whole,
    whole_seconds,
)
from bluetrace.runtime.output import LineOutput
from bluetrace.runtime.reactor import Handle, Reactor
from bluetrace.runtime.storage import read_regular, recover_checks
from bluetrace.runtime.syncer import DEFAULT_SYNC_TIMEOUT, Syncer
from bluetrace.runtime.tls import TlsError, TlsSession, TlsStream, server_context
from bluetrace.runtime.transports import Stream
from bluetrace.runtime.workers import DEFAULT_QUEUE, DEFAULT_WORKERS, WorkerPool
from bluetrace.server.admission import (
    HANDSHAKE_BURST_SECONDS,
    AddressRate,
    Admission,
    Caps,
    Decision,
    LineSummary,
)
from bluetrace.server.commit import GroupCommit, SyncedFile
from bluetrace.server.connection import (
    CloseConnection,
    Log,
    NeedsCommit,
    NeedsWork,
    Output,
    Rejected,
    ServerConnection,
)
from bluetrace.server.core import (
    DEFAULT_LOGIN_TIMEOUT,
    DEFAULT_TEMPID_LIFETIME,
    MAX_REFUSAL_DELAY,
    Limits,
    ServerCore,
)
from bluetrace.server.files import CheckFile, CredentialFile, TempIDFile
from bluetrace.server.logstream import log_line
from bluetrace.server.records import CredentialParser, RecordError, load_tempids
from bluetrace.server.registry import TempIDRegistry

PROGRAM = "bluetrace-server"
ACCEPTS_PER_WAKEUP = 64
"""Connections admitted per accept wakeup: each costs a connection object."""
REFUSALS_PER_WAKEUP = 1024
"""Connections refused (closed at once) per wakeup: cheap, so many more."""
ACCEPT_BACKOFF = 0.1
"""Seconds the server stops accepting when it has run out of descriptors."""
CHECKS_FILE = "contact_checks.txt"
TURN_BUDGET = 256
"""Work units the server does per loop turn, shared by every connection with
work waiting, before it selects again (a unit is a frame; about 3 ms in all).
However many connections flood it, one turn stays this short, so a healthy
request waits at most a few turns."""
LINK_SHARE_MIN = 4
"""The fewest work units a link is given when it is served: below this the
fixed cost of a visit (a select, a read, a send) outweighs the frames done."""
LINK_SHARE_MAX = 32
"""The most work units a link is given per turn: one call's frames."""
READ_UNITS = 4
"""What one read from a socket costs, before the frames it holds (a recv on
loopback takes about as long as answering four frames)."""
ACCEPT_UNITS = 8
"""What accepting a connection and, later, closing it cost, charged to its
first turn: so a peer that reconnects after every answer pays for its churn
out of its address's share, not out of everyone's."""
COALESCE_BYTES = 16 * 1024
"""Replies a pipelining connection's turns may gather before they are sent."""
HANDSHAKE_UNITS = 96
"""What one step of a TLS handshake costs: the server's key exchange and
signature (about 0.45 ms with a 2048-bit RSA key) take as long as about a
hundred frames answered before login (3.6 us each)."""
DEFAULT_HANDSHAKE_TIMEOUT = 10.0
HELD_REFUSALS = 256
"""Refused connections kept open, unread and unanswered, for --refusal-delay
before they are closed. A client that reconnects as soon as it is dropped
would otherwise turn each refusal into another accept at once: in the
hashing bench, 13,600 refusals a second. Past this many (or an eighth of
the descriptors, if fewer), a refusal closes at once."""
RESERVED_DESCRIPTORS = 64
"""Descriptors kept out of the connection cap: data files, pipes, the
listener (held refusals are kept out as well)."""


class Link:
    """One accepted socket and its connection object.

    Reading is the server's to schedule: a readable socket only puts its link
    in the server's round-robin queue (``Stream(on_readable=...)``), and the
    link reads and works when its turn comes, within its share of the turn.
    """

    __slots__ = (
        "address",
        "connection",
        "handshake_timer",
        "logged_in",
        "queued",
        "server",
        "share",
        "spent",
        "stream",
        "timer",
        "units",
        "unsent",
    )

    def __init__(self, server: "Server", sock: socket.socket, address: tuple[str, int]) -> None:
        self.server = server
        self.address = address[0]
        peer = f"{address[0]}:{address[1]}"
        self.connection = ServerConnection(server.core, peer, server.reactor.time())
        self.timer: Handle | None = None
        self.handshake_timer: Handle | None = None
        self.queued = False
        self.logged_in = False
        self.share = TURN_BUDGET
        """Work units the current turn allows this link (set by ``serve``)."""
        self.spent = ACCEPT_UNITS
        """Work units spent outside the connection (accept, reads, TLS) since the last turn."""
        self.unsent = bytearray()
        """Replies held back while the connection has frames left for later turns."""
        self.units = 0
        """Work units this link has been charged in all its turns (for tests)."""
        self.stream: Stream | TlsStream = Stream(
            server.reactor, sock, self._on_data, self._on_close, on_readable=self._readable
        )
        """With --tls-cert, a TlsStream: plaintext in and out like a Stream. A
        handshake must finish within --handshake-timeout; one that fails is one
        (summarised) log line and a close."""
        if server.tls is not None:
            self.stream = TlsStream(
                self.stream, TlsSession(server.tls, server_side=True), self._on_data,
                self._on_close, on_handshake=self._handshake_step,
            )  # fmt: skip
            self.handshake_timer = server.reactor.call_later(
                server.handshake_timeout, self._handshake_expired
            )
        self._settle()

    def _readable(self) -> None:
        self.server.schedule(self)

    def serve(self, share: int) -> int:
        """This link's turn: up to ``share`` work units (frames); the units spent."""
        self.queued = False
        connection, stream = self.connection, self.stream
        if stream.closed or connection.closed:
            return 0
        if connection.has_pending_work():
            connection.continue_work(self.server.reactor.time(), share)
            self._settle()
        elif stream.parked:
            if connection.wants_input():
                self.spent += READ_UNITS
                self.share = share
                stream.pull()
            else:
                stream.unpark()  # reading resumes when the connection wants input
        spent = self.spent + connection.take_work()
        self.spent = 0
        self.units += spent
        if not (stream.closed or connection.closed) and (
            connection.has_pending_work() or stream.parked
        ):
            self.server.schedule(self)
        return spent

    def _on_data(self, data: bytes) -> None:
        self.connection.receive_data(data, self.server.reactor.time(), self.share)
        self._settle()

    def _handshake_step(self, done: bool) -> None:
        self.spent += HANDSHAKE_UNITS
        if done and self.handshake_timer is not None:
            self.handshake_timer.cancel()
            self.handshake_timer = None

    def _handshake_expired(self) -> None:
        self.handshake_timer = None
        if self.stream.closed:
            return
        timeout = self.server.handshake_timeout
        self.connection.connection_lost(
            f"no TLS handshake within {timeout:g} s", rejected="unfinished TLS handshakes"
        )
        self._settle()
        self.stream.close()

    def push_out(self, reason: str) -> None:
        """Closed at once to make room for a newer connection (see Admission)."""
        self.connection.connection_lost(f"closed for {reason}", rejected="pushed out")
        self._settle()
        self.stream.close()

    def _on_close(self, error: OSError | TlsError | None) -> None:
        if isinstance(error, TlsError):
            # One log line, summarised with the other refused connections.
            kind = "failed TLS handshakes" if error.during_handshake else "TLS errors"
            self.connection.connection_lost(str(error), rejected=kind)
        elif error is not None:
            self.connection.connection_lost(error.strerror or str(error))
        else:
            self.connection.receive_data(b"", self.server.reactor.time())
            self.connection.connection_lost("closed")
        self._settle()
        for timer in (self.timer, self.handshake_timer):
            if timer is not None:
                timer.cancel()
        self.timer = self.handshake_timer = None
        self.server.forget(self)

    def _on_timer(self) -> None:
        self.timer = None
        self.connection.handle_timer(self.server.reactor.time())
        self._settle()

    def work_done(self, reply: bytes | None) -> None:
        """The reply to this connection's job from a worker process."""
        self.connection.work_done(reply, self.server.reactor.time())
        if not self.stream.closed:
            self._settle()

    def committed(self, durable: bool) -> None:
        self.connection.commit_done(durable)
        self._settle()

    def _settle(self) -> None:
        """After every call into the connection: send, act on events, re-arm."""
        connection, stream, server = self.connection, self.stream, self.server
        server.group.noticed(self)
        data = connection.data_to_send()
        if connection.has_pending_work() and len(self.unsent) + len(data) < COALESCE_BYTES:
            # Frames are left for a later turn (a pipelining peer): keep the
            # replies and send them with the next ones, one send, not one a turn.
            self.unsent += data
            data = b""
        elif self.unsent:
            data, self.unsent = bytes(self.unsent + data), bytearray()
        if data:
            stream.write(data)
        for event in connection.next_events():
            if isinstance(event, Output):
                server.out.write_line(event.text)
            elif isinstance(event, Rejected):
                server.rejected(event.kind, event.text, self.address)
            elif isinstance(event, Log):
                server.log(event.text)
            elif isinstance(event, NeedsCommit):
                server.hold(self)
            elif isinstance(event, NeedsWork):
                server.run_work(self, event)
            elif isinstance(event, CloseConnection):
                stream.close_when_flushed()
        if not self.logged_in and connection.username is not None:
            self.logged_in = True
            server.admission.logged_in(stream.sock)
        if stream.closed or connection.closed:
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            return
        stream.set_reading(connection.wants_input())
        if connection.has_pending_work():
            server.schedule(self)
        deadline = connection.get_timer()
        # A deadline that moved later (the idle deadline, at every frame) keeps
        # the armed timer: it fires early, finds nothing due, and re-arms.
        # Only an earlier deadline, or none, replaces it.
        timer = self.timer
        if timer is not None and (deadline is None or deadline < timer.when):
            timer.cancel()
            self.timer = timer = None
        if deadline is not None and timer is None:
            self.timer = server.reactor.call_at(deadline, self._on_timer)


class CredentialReloader:
    """SIGHUP: read credentials.txt again, so that users added while the
    server runs can log in; a file that does not load keeps the old users.

    - Signals are coalesced: one that arrives during a reload asks for one
      more reload after it, however many arrive.
    - The file is checked ``LINES_PER_TURN`` lines per loop turn, so a
      million-line file does not stop every connection for a second.
    - A last line without a line end is refused, unless the file is exactly
      the one last loaded: the specification's sample has no final line end
      and loads at start-up, but after that, a missing final line end is
      what a file caught half-written looks like (its last password cut
      short would be a password that works). Writers should write a new
      file and rename it over credentials.txt (``bluetrace-passwd`` does).
    - A reload that removes users says so in a warning line of its own.
    - Registrations made while a reload is in progress are kept (they were
      appended after the file was read).
    """

    LINES_PER_TURN = 20_000
    """About 20 ms of checking per loop turn."""

    def __init__(
        self, reactor: Reactor, core: ServerCore, path: Path, log: Callable[[str], None]
    ) -> None:
        self.reactor = reactor
        self.core = core
        self.path = path
        self.log = log
        self.loaded_digest: bytes | None = None
        """Digest of the bytes last loaded whole (start-up or reload)."""
        self.reloads = 0
        """Reloads started (for tests)."""
        self._parser: CredentialParser | None = None
        self._digest = b""
        self._again = False

    @staticmethod
    def digest(data: bytes) -> bytes:
        return hashlib.blake2b(data, digest_size=16).digest()

    @property
    def busy(self) -> bool:
        return self._parser is not None

    def request(self) -> None:
        """A SIGHUP: reload now, or once more after the reload in progress."""
        if self._parser is not None:
            self._again = True
            return
        self._start()

    def _start(self) -> None:
        self._again = False
        self.reloads += 1
        old = self.core.credentials
        keeping = f"keeping {len(old):,} users"
        try:
            data = read_regular(self.path)
        except OSError as exc:
            self.log(f"credentials not reloaded, {keeping}: {self.path}: {exc.strerror or exc}")
            return
        digest = self.digest(data)
        if digest == self.loaded_digest:
            self.log(f"credentials unchanged: {len(old):,} users")
            return
        try:
            parser = CredentialParser(self.path, data, previous=old)
        except RecordError as exc:
            self.log(f"credentials not reloaded, {keeping}: {exc}")
            return
        if parser.unterminated:
            self.log(
                f"credentials not reloaded, {keeping}: {self.path}:{len(parser.lines)}: the last "
                "line has no line end, so it may be half written; end it with a line end "
                "(better: write a new file and rename it over credentials.txt), then send "
                "SIGHUP again"
            )
            return
        self._parser, self._digest = parser, digest
        self.core.registered_since_read = []
        self.reactor.call_soon(self._step)

    def _step(self) -> None:
        parser = self._parser
        if parser is None:
            return
        try:
            done = parser.step(self.LINES_PER_TURN)
            credentials = parser.result() if done else None
        except RecordError as exc:
            self._finish()
            keeping = f"keeping {len(self.core.credentials):,} users"
            self.log(f"credentials not reloaded, {keeping}: {exc}")
            return
        if credentials is None:
            self.reactor.call_soon(self._step)
            return
        old = self.core.credentials
        for username, stored in self.core.registered_since_read or ():
            credentials.setdefault(username, stored)
        removed = len(old) - parser.kept
        added = len(credentials) - parser.kept
        self.core.credentials = credentials
        self.loaded_digest = self._digest
        self._finish()
        self.log(
            f"credentials reloaded: {len(credentials):,} users "
            f"({added:,} added, {removed:,} removed)"
        )
        if removed:
            self.log(
                f"warning: this reload removed {removed:,} of {len(old):,} users, who can no "
                "longer log in; if credentials.txt was being rewritten in place, write it to a "
                "new file and rename that over credentials.txt, then send SIGHUP again"
            )

    def _finish(self) -> None:
        self._parser = None
        self.core.registered_since_read = None
        if self._again:
            self.reactor.call_soon(self._start)


class Server:
    def __init__(
        self,
        reactor: Reactor,
        core: ServerCore,
        listener: socket.socket,
        *,
        out: LineOutput,
        err: LineOutput,
        tls: ssl.SSLContext | None = None,
        workers: WorkerPool | None = None,
        caps: Caps | None = None,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
        group: GroupCommit[Link] | None = None,
        held_refusals: int = HELD_REFUSALS,
    ) -> None:
        self.reactor = reactor
        self.held_refusals = held_refusals
        """Refused connections held open at most (see HELD_REFUSALS)."""
        self.group: GroupCommit[Link] = group or GroupCommit(reactor, core.commit, log=self.log)
        """The group commit: replies wait for their records' sync (``server.commit``)."""
        self.workers = workers or WorkerPool(reactor, log=self.log)
        """Processes for password checks and hashing: the loop never runs scrypt."""
        self.tls = tls
        self.core = core
        self.listener = listener
        self.out = out
        self.err = err
        self.handshake_timeout = handshake_timeout
        self.links: dict[socket.socket, Link] = {}
        self.admission: Admission[socket.socket] = Admission(caps or Caps(), self._busy)
        rate = self.admission.caps.handshakes_per_second
        self.handshakes = AddressRate(rate, max(1.0, rate * HANDSHAKE_BURST_SECONDS))
        """TLS handshakes begun per source address (used with TLS only)."""
        self.refusals = LineSummary("refused connections")
        self.problems = LineSummary("malformed connections")
        self._runnable: dict[str, deque[Link]] = {}
        """Links with work waiting (a readable socket, frames left over), by source
        address, in turn order (a dict keeps insertion order)."""
        self._turn_scheduled = False
        self._accept_failures = 0
        self._held_refusals: deque[tuple[float, socket.socket]] = deque()
        """Refused connections and when each is to be closed, in that order."""
        self._release_timer: Handle | None = None
        listener.setblocking(False)
        reactor.add_reader(listener, self._accept)
        reactor.call_later(core.login_log.INTERVAL, self._login_summary)

    def _busy(self, sock: socket.socket) -> bool:
        link = self.links.get(sock)
        return link is not None and link.connection.busy

    def schedule(self, link: Link) -> None:
        """Give ``link`` a share of a coming turn (once, however often asked)."""
        if link.queued:
            return
        link.queued = True
        queue = self._runnable.get(link.address)
        if queue is None:
            queue = self._runnable[link.address] = deque()
        queue.append(link)
        if not self._turn_scheduled:
            self._turn_scheduled = True
            self.reactor.call_soon(self._turn)

    def _turn(self) -> None:
        """One loop turn's work, shared round robin by source address first,
        then by connection within each address: each address with work waiting
        gets an equal share of TURN_BUDGET, and each of its waiting links an
        equal part of that (at least LINK_SHARE_MIN units, at most a call's
        32), in queue order, until the address's share is spent. So a
        thousand flooding connections from one address weigh what one phone
        from another address weighs, not a thousand times more. A link with
        more to do goes to the back of its address's queue, an address with
        links left to the back of the turn order, and links or addresses the
        budget did not reach come first next turn; the loop selects again
        (new sockets, timers, replies) after about TURN_BUDGET units whatever
        the number of busy connections and addresses."""
        self._turn_scheduled = False
        queues = self._runnable
        budget = TURN_BUDGET
        address_share = max(1, TURN_BUDGET // max(1, len(queues)))
        for _ in range(len(queues)):
            if budget <= 0:
                break
            address = next(iter(queues))
            queue = queues[address]
            waiting = len(queue)
            link_share = min(LINK_SHARE_MAX, max(LINK_SHARE_MIN, address_share // waiting))
            spent = 0
            while waiting and spent < address_share:
                waiting -= 1
                spent += queue.popleft().serve(link_share)
            budget -= spent
            del queues[address]  # to the back of the turn order, if anything is left
            if queue:
                queues[address] = queue
        if queues and not self._turn_scheduled:
            self._turn_scheduled = True
            self.reactor.call_soon(self._turn)

    def rejected(self, kind: str, text: str, address: str) -> None:
        """A connection refused for what its peer did: logged, summarised."""
        for line in self.problems.note(kind, text, address, self.reactor.time()):
            self.log(line)

    def _login_summary(self) -> None:
        """Failed logins, refused and malformed connections the log did not
        show one by one, counted every interval."""
        now = self.reactor.time()
        lines = self.core.login_log.summary(now) + self.refusals.summary(now)
        for line in lines + self.problems.summary(now):
            self.log(line)
        self.reactor.call_later(self.core.login_log.INTERVAL, self._login_summary)

    def _accept(self) -> None:
        admitted = refused = 0
        while admitted < ACCEPTS_PER_WAKEUP and refused < REFUSALS_PER_WAKEUP:
            try:
                sock, address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._accept_failed(exc)
                return
            if self.tls is not None and not self.handshakes.allow(
                address[0], self.reactor.time()
            ):
                decision = Decision(False, reason="the address's TLS handshake rate")
            else:
                decision = self.admission.admit(sock, address[0])
            if not decision.admitted:
                refused += 1
                self._refuse(sock)
                text = f"{address[0]}:{address[1]}: connection refused: over {decision.reason}"
                for line in self.refusals.note(
                    f"over {decision.reason}", text, address[0], self.reactor.time()
                ):
                    self.log(line)
                continue
            admitted += 1
            for old in decision.evict:
                link = self.links.get(old) if isinstance(old, socket.socket) else None
                if link is not None:
                    link.push_out(decision.reason)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.links[sock] = Link(self, sock, (str(address[0]), int(address[1])))

    def _refuse(self, sock: socket.socket) -> None:
        """Nothing read, nothing written, closed after --refusal-delay (at once
        when HELD_REFUSALS are already held): the peer waits as if for an
        answer, instead of reconnecting at once."""
        delay = self.core.limits.refusal_delay
        if delay <= 0 or len(self._held_refusals) >= self.held_refusals:
            sock.close()
            return
        self._held_refusals.append((self.reactor.time() + delay, sock))
        if self._release_timer is None:
            self._release_timer = self.reactor.call_at(
                self._held_refusals[0][0], self._release_refusals
            )

    def close_refused(self) -> None:
        """Close every refused connection held now (at shut-down)."""
        while self._held_refusals:
            self._held_refusals.popleft()[1].close()
        if self._release_timer is not None:
            self._release_timer.cancel()
            self._release_timer = None

    def _release_refusals(self) -> None:
        self._release_timer = None
        held, now = self._held_refusals, self.reactor.time()
        while held and held[0][0] <= now:
            held.popleft()[1].close()
        if held:
            self._release_timer = self.reactor.call_at(held[0][0], self._release_refusals)

    def forget(self, link: Link) -> None:
        """``link`` has closed: it no longer counts against any cap."""
        sock = link.stream.sock
        self.admission.gone(sock)
        if self.links.get(sock) is link:
            del self.links[sock]

    def _accept_failed(self, exc: OSError) -> None:
        """Out of descriptors (EMFILE, ENFILE) or memory: stop accepting for a
        moment instead of spinning on a listener that stays readable."""
        self._accept_failures += 1
        if exc.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
            self.log(f"accept failed: {exc.strerror or exc}")
            return
        self.reactor.remove_reader(self.listener)
        self.log(
            f"accept failed: {exc.strerror or exc} ({len(self.links):,} connections open); "
            f"pausing new connections for {ACCEPT_BACKOFF:g} s"
        )
        self.reactor.call_later(ACCEPT_BACKOFF, self._resume_accepting)

    def _resume_accepting(self) -> None:
        if self.listener.fileno() >= 0:
            self.reactor.add_reader(self.listener, self._accept)

    def hold(self, link: Link) -> None:
        """Group commit: every record written in this loop turn is made
        durable by one sync (in the syncer process, while the loop works
        on), then answered; see ``server.commit``."""
        self.group.hold(link)

    def run_work(self, link: Link, work: NeedsWork) -> None:
        """Hand a connection's job to the worker processes; a full queue is
        answered at once (on the next turn), as not done."""
        if not self.workers.submit(work.kind, work.payload, link.work_done):
            self.reactor.call_soon(lambda: link.work_done(None))

    def log(self, text: str) -> None:
        """One line of the log stream, stamped (``server.logstream``)."""
        self.err.write_line(log_line(text))

    def shut_down(self) -> None:
        self.reactor.forget(self.listener)
        self.listener.close()
        self.close_refused()
        self.group.flush()
        now = self.reactor.time()
        for link in list(self.links.values()):
            link.connection.shut_down(now)
            link._settle()
        self.reactor.stop()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="BlueTrace health-authority server: authenticates phones, issues "
        "TempIDs and checks uploaded contact logs.",
        epilog="Signals: SIGINT or SIGTERM stop the server (exit 0). SIGUSR1 reloads "
        "credentials.txt; so does SIGHUP by default, which is why closing the terminal the "
        "server runs in does not stop it (run it under nohup, tmux or a service manager "
        "anyway). With --reload-signal USR1, SIGHUP stops the server like SIGTERM (the "
        "terminal closed) and only SIGUSR1 reloads. Exit status: 0 after a stop, 1 when the "
        "data files or the port cannot be used, 2 for a usage error.",
    )
    parser.add_argument("server_port", type=port, help="TCP port to listen on (0: any free port)")
    parser.add_argument(
        "block_duration",
        type=positive_seconds,
        help="seconds a user stays blocked after 3 consecutive failed logins (up to a year)",
    )
    parser.add_argument(
        "--host",
        default="0.0.0.0",  # noqa: S104 (the specification's server serves other machines)
        help="address to listen on (default: %(default)s, every interface; "
        "127.0.0.1 keeps it to this machine)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path.cwd(),
        help="folder holding credentials.txt, tempIDs.txt and contact_checks.txt "
        "(default: the working directory)",
    )
    parser.add_argument(
        "--tempid-lifetime",
        type=whole_seconds,
        default=DEFAULT_TEMPID_LIFETIME,
        help="seconds a TempID is valid (1 to a year; default: %(default)s)",
    )
    parser.add_argument(
        "--login-timeout",
        type=seconds(0, DAY),
        default=DEFAULT_LOGIN_TIMEOUT,
        help="seconds a connection may take to log in (up to a day; default: %(default)s)",
    )
    defaults = Limits()
    limits = parser.add_argument_group(
        "limits", "bounds that keep one client from holding the server (protocol_spec.md, 4)"
    )
    limits.add_argument(
        "--idle-timeout",
        type=seconds(0, DAY),
        default=defaults.idle_timeout,
        help="seconds a logged-in connection may send no request (up to a day; "
        "default: %(default)s)",
    )
    limits.add_argument(
        "--stall-timeout",
        type=seconds(0, DAY),
        default=defaults.stall_timeout,
        help="the same while an upload or part of a frame is held for it (default: %(default)s)",
    )
    limits.add_argument(
        "--failed-logins-per-minute",
        type=whole(1, 1_000_000),
        default=defaults.failed_logins_per_minute,
        help="failed logins one source address may make per minute (default: %(default)s)",
    )
    limits.add_argument(
        "--tempids-per-hour",
        type=whole(1, 1_000_000),
        default=int(defaults.tempids_per_hour),
        help="TempIDs one user may download per hour, after a burst of a minute's worth "
        f"(at least {defaults.tempid_burst}) (default: %(default)s)",
    )
    limits.add_argument(
        "--entries-per-hour",
        type=whole(1_024, 1_000_000_000),
        default=int(defaults.entries_per_hour),
        help="upload entries one user may send per hour, after a burst of "
        f"{defaults.entry_burst:,} (default: %(default)s)",
    )
    limits.add_argument(
        "--registrations-per-hour",
        type=whole(1, 1_000_000),
        default=defaults.registrations_per_hour,
        help="registrations one source address may make per hour (default: %(default)s)",
    )
    limits.add_argument(
        "--hashes-per-second",
        type=whole(1, 10_000),
        default=int(defaults.hashes_per_second),
        help="scrypt checks of hashed passwords per second, server-wide (one costs about "
        "35 ms of a worker); registrations may use only half (default: %(default)s)",
    )
    limits.add_argument(
        "--refusal-delay",
        type=seconds(0, MAX_REFUSAL_DELAY, or_zero=True),
        default=defaults.refusal_delay,
        metavar="SECONDS",
        help="a LOGIN or REGISTER refused by a rate limit (RATE_LIMITED) is answered "
        "this late, so a client that tries again at once is paced by the server; 0 "
        "answers at once (default: %(default)s)",
    )
    limits.add_argument(
        "--workers",
        type=whole(1, 64),
        default=DEFAULT_WORKERS,
        help="worker processes that check and hash passwords, started when first "
        "needed, so that scrypt never stalls the loop (default: %(default)s)",
    )
    limits.add_argument(
        "--work-queue",
        type=whole(1, 100_000),
        default=DEFAULT_QUEUE,
        help="password checks waiting for a worker; a LOGIN or REGISTER beyond them is "
        "answered RATE_LIMITED (default: %(default)s)",
    )
    limits.add_argument(
        "--max-held-entries",
        type=whole(200_000, 100_000_000),
        default=defaults.max_held_entries,
        help="upload entries held in all unfinished uploads together (default: %(default)s)",
    )
    caps = Caps()
    limits.add_argument(
        "--max-connections",
        type=whole(16, 1_000_000),
        help="connections open at once; past it new ones are closed at once; at most "
        f"{caps.unauthenticated_share * 100:.0f}%% of them may be connections not yet logged in, "
        "the oldest of which give way to new ones (default: "
        f"{caps.max_connections}, or what the descriptor limit allows less "
        f"{RESERVED_DESCRIPTORS + HELD_REFUSALS} if that is fewer)",
    )
    limits.add_argument(
        "--max-connections-per-address",
        type=whole(1, 1_000_000),
        default=caps.per_address,
        help="connections open at once from one source address; past it new ones are "
        "closed at once (default: %(default)s)",
    )
    limits.add_argument(
        "--max-unauthenticated-per-address",
        type=whole(1, 1_000_000),
        default=caps.unauthenticated_per_address,
        help="connections from one source address not yet logged in (TLS handshakes "
        "included); past it that address's oldest one is closed (default: %(default)s)",
    )
    limits.add_argument(
        "--tls-handshakes-per-second",
        type=whole(1, 1_000_000),
        default=int(caps.handshakes_per_second),
        help="with TLS: handshakes one source address may begin per second, after a "
        f"burst of {HANDSHAKE_BURST_SECONDS:g} seconds' worth; past it its new connections "
        "are closed at once, before any TLS work (default: %(default)s)",
    )
    limits.add_argument(
        "--handshake-timeout",
        type=seconds(0, 3600),
        default=DEFAULT_HANDSHAKE_TIMEOUT,
        help="with TLS: seconds a connection may take to finish its handshake "
        "(up to an hour; default: %(default)s)",
    )
    limits.add_argument(
        "--sync-timeout",
        type=positive_seconds,
        default=DEFAULT_SYNC_TIMEOUT,
        help="seconds the disk may take to confirm a sync (run in a syncer process, "
        "so the server keeps working meanwhile); past it the replies waiting for it "
        "are answered ERROR STORAGE and the syncer is replaced (default: %(default)s)",
    )
    parser.add_argument(
        "--reload-signal",
        choices=("HUP", "USR1"),
        default="HUP",
        help="the signal that reloads credentials.txt besides SIGUSR1: HUP (the default) or "
        "USR1, which makes SIGHUP (the terminal closed) stop the server",
    )
    parser.add_argument(
        "--allow-registration",
        action="store_true",
        help="let phones register new users (international phone numbers; the password "
        "is stored hashed in credentials.txt; protocol_spec.md, 3.8)",
    )
    security = parser.add_argument_group("TLS (opt-in; protocol_spec.md, 3.7)")
    security.add_argument(
        "--tls-cert", type=Path, metavar="FILE", help="PEM certificate: serve TLS only"
    )
    security.add_argument("--tls-key", type=Path, metavar="FILE", help="its PEM private key")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _tls_context(args: argparse.Namespace) -> ssl.SSLContext | str | None:
    """The server's TLS context (None: plain TCP), or why it cannot be made."""
    if (args.tls_cert is None) != (args.tls_key is None):
        return "--tls-cert and --tls-key go together"
    if args.tls_cert is None:
        return None
    try:
        return server_context(args.tls_cert, args.tls_key)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        return f"cannot use {args.tls_cert} and {args.tls_key}: {reason}"


def _load(data_dir: Path) -> tuple[dict[str, str], bytes, TempIDRegistry, int] | str:
    """credentials.txt (with the digest of its bytes) and tempIDs.txt loaded,
    contact_checks.txt recovered; or why the server cannot start. Skipped
    lines are reported on stderr. At start-up a last line without a line end
    is accepted: the specification's sample has none."""
    credentials_path = data_dir / "credentials.txt"
    try:
        data = read_regular(credentials_path)
    except OSError as exc:
        return f"{credentials_path}: cannot read: {exc.strerror or exc}"
    try:
        parser = CredentialParser(credentials_path, data)
        parser.step(len(parser.lines))
        credentials = parser.result()
    except RecordError as exc:
        return str(exc)
    tempids = TempIDRegistry()
    tempids_path = data_dir / "tempIDs.txt"
    try:
        report = load_tempids(tempids_path, tempids)
    except OSError as exc:
        return f"{tempids_path}: cannot read: {exc.strerror or exc}"
    for problem in report.problems[:20]:
        print(log_line(f"skipped {problem}"), file=sys.stderr)
    if len(report.problems) > 20:
        print(log_line(f"... and {len(report.problems) - 20} more bad lines"), file=sys.stderr)
    for conflict in report.conflicts:
        print(log_line(f"warning: {conflict}"), file=sys.stderr)
    checks_path = data_dir / CHECKS_FILE
    try:
        cut = recover_checks(checks_path)
    except OSError as exc:
        return f"{checks_path}: cannot check it: {exc.strerror or exc}"
    if cut is not None:
        print(log_line(cut), file=sys.stderr)
    return credentials, CredentialReloader.digest(data), tempids, report.loaded


def _handle_signals(
    reactor: Reactor, server: Server, reloader: CredentialReloader, reload_signal: str
) -> None:
    """SIGINT and SIGTERM stop the server, SIGUSR1 reloads credentials.txt;
    SIGHUP does either, as --reload-signal says (closing the terminal sends it)."""
    stops = [signal.SIGINT, signal.SIGTERM]
    reloads = [signal.SIGUSR1]
    (reloads if reload_signal == "HUP" else stops).append(signal.SIGHUP)
    for signum in stops:
        reactor.add_signal_handler(signum, server.shut_down)
    for signum in reloads:
        reactor.add_signal_handler(signum, reloader.request)


def _group_commit(
    reactor: Reactor,
    core: ServerCore,
    syncer: Syncer,
    stores: tuple[TempIDFile, CheckFile, CredentialFile | None],
) -> GroupCommit[Link]:
    """The group commit over the data files, synced by ``syncer`` (started now:
    the first TempID should not wait for an interpreter to start)."""
    syncer.start()
    files: list[SyncedFile] = [store for store in stores if store is not None]
    return GroupCommit(reactor, core.commit, files=files, syncer=syncer, log=syncer.log)


def _descriptor_shares(max_connections: int | None) -> tuple[int, int]:
    """The connection cap (--max-connections, or what the descriptor limit
    allows) and how many refused connections may be held open, such that
    both, with RESERVED_DESCRIPTORS, fit in the descriptor limit."""
    descriptors = raise_descriptor_limit()
    held = min(HELD_REFUSALS, max(0, (descriptors - RESERVED_DESCRIPTORS) // 8))
    if max_connections is None:
        spare = descriptors - RESERVED_DESCRIPTORS - held
        max_connections = max(16, min(Caps.max_connections, spare))
    return max_connections, held


def serve(args: argparse.Namespace, clock: Clock | None = None) -> int:
    data_dir: Path = args.data_dir
    loaded = _load(data_dir)
    if isinstance(loaded, str):
        return fail(PROGRAM, loaded)
    credentials, credentials_digest, tempids, known = loaded
    tempids_path = data_dir / "tempIDs.txt"
    checks_path = data_dir / CHECKS_FILE
    tls_context = _tls_context(args)
    if isinstance(tls_context, str):
        return fail(PROGRAM, tls_context)
    most, held_refusals = _descriptor_shares(args.max_connections)
    caps = Caps(
        max_connections=most,
        per_address=args.max_connections_per_address,
        unauthenticated_per_address=args.max_unauthenticated_per_address,
        handshakes_per_second=args.tls_handshakes_per_second,
    )
    try:
        listener = socket.create_server(
            (args.host, args.server_port), family=socket.AF_INET, backlog=1024, reuse_port=False
        )
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        return fail(PROGRAM, f"cannot listen on {args.host}:{args.server_port}: {reason}")
    tempid_store = TempIDFile(tempids_path)
    credential_store = (
        CredentialFile(data_dir / "credentials.txt") if args.allow_registration else None
    )
    check_store = CheckFile(checks_path)
    system_clock = clock or SystemClock()
    core = ServerCore(
        credentials,
        args.block_duration,
        system_clock,
        tempids=tempids,
        tempid_store=tempid_store,
        check_store=check_store,
        tempid_lifetime=args.tempid_lifetime,
        limits=Limits(
            login_timeout=args.login_timeout,
            idle_timeout=args.idle_timeout,
            stall_timeout=args.stall_timeout,
            failed_logins_per_minute=args.failed_logins_per_minute,
            tempids_per_hour=args.tempids_per_hour,
            tempid_burst=max(Limits.tempid_burst, args.tempids_per_hour // 60),
            entries_per_hour=args.entries_per_hour,
            max_held_entries=args.max_held_entries,
            hashes_per_second=args.hashes_per_second,
            registrations_per_hour=args.registrations_per_hour,
            refusal_delay=args.refusal_delay,
        ),
        credential_store=credential_store,
        offload_hashing=True,
    )
    reactor = Reactor(system_clock.monotonic)
    sys.stdout.flush()
    sys.stderr.flush()
    err = LineOutput(reactor, sys.stderr.fileno(), "stderr")
    out = LineOutput(
        reactor,
        sys.stdout.fileno(),
        "stdout",
        on_disabled=lambda text: err.write_line(log_line(text)),
    )
    err.on_disabled = lambda text: out.write_line(log_line(text))
    workers = WorkerPool(
        reactor,
        workers=args.workers,
        queue_limit=args.work_queue,
        log=lambda text: err.write_line(log_line(text)),
    )
    group = _group_commit(
        reactor, core, Syncer(reactor, timeout=args.sync_timeout, log=workers.log),
        (tempid_store, check_store, credential_store),
    )  # fmt: skip
    server = Server(
        reactor, core, listener, out=out, err=err, tls=tls_context, caps=caps,
        handshake_timeout=args.handshake_timeout, workers=workers, group=group,
        held_refusals=held_refusals,
    )  # fmt: skip
    reloader = CredentialReloader(reactor, core, data_dir / "credentials.txt", server.log)
    reloader.loaded_digest = credentials_digest
    _handle_signals(reactor, server, reloader, args.reload_signal)
    host, bound_port = listener.getsockname()[:2]
    server.log(
        f"listening on {host}:{bound_port} ({len(credentials)} users, "
        f"{known} TempIDs known{', TLS' if tls_context is not None else ''}; "
        f"at most {caps.max_connections:,} connections)"
    )
    try:
        reactor.run()
        server.log("stopped")
    finally:
        workers.close()
        group.close()
        tempid_store.close()
        check_store.close()
        if credential_store is not None:
            credential_store.close()
        out.close()
        err.close()
        reactor.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return serve(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
