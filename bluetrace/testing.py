"""In-memory hosts for the sans-I/O objects: real bytes, one manual clock.

Like h11's ``tests/helpers.py``: a :class:`ServerLink` plays the socket for a
:class:`ServerConnection` (the test writes frames, reads the replies), and a
:class:`ConnectionPair` joins a real :class:`Phone` to a real server
connection through bytes, cut wherever the test (or hypothesis) says.
:func:`settle` is the host's duty toward one server connection (events out,
group commit, the work its budget left for later) without a loop: the tests
and the simulator's exact engine both drive connections with it. Every pump
is bounded, so a bug shows as a failure, never a hang.
"""

from collections.abc import Callable, Iterable
from datetime import datetime

from bluetrace.phone.contacts import MemoryContactStore
from bluetrace.phone.core import Phone, PhoneEvent
from bluetrace.protocol.clock import ManualClock
from bluetrace.protocol.framing import FrameDecoder
from bluetrace.protocol.messages import Message, encode
from bluetrace.server.connection import (
    CloseConnection,
    Log,
    NeedsCommit,
    Output,
    ServerConnection,
    ServerEvent,
)
from bluetrace.server.core import Limits, ServerCore
from bluetrace.server.stores import MemoryCheckStore, MemoryTempIDStore

USERS = {"+61410888888": "comp3331", "+61410999999": "bada4568", "+61410666666": "kara1234"}
START = datetime(2020, 5, 14, 17, 54, 6)
MAX_ROUNDS = 10_000

Cut = Callable[[bytes], Iterable[bytes]]


class UnsettledError(RuntimeError):
    """A connection (or a pair) still had work after MAX_ROUNDS rounds: a bug."""


def settle(
    connection: ServerConnection,
    core: ServerCore,
    now: float,
    on_event: Callable[[ServerEvent], None] | None = None,
    *,
    commit: bool = True,
    continue_work: bool = True,
) -> bool:
    """Play the host for ``connection`` until it has nothing left to do now:
    each event goes to ``on_event``; a NeedsCommit is answered with the
    core's group commit (unless ``commit`` is False: then the return value
    says a commit is wanted); work its per-call budget left for later is
    continued. Bounded by MAX_ROUNDS."""
    wanted = False
    for _ in range(MAX_ROUNDS):
        for event in connection.next_events():
            if on_event is not None:
                on_event(event)
            if isinstance(event, NeedsCommit):
                wanted = True
        if wanted and commit:
            connection.commit_done(core.commit() is None)
            wanted = False
            continue
        if continue_work and connection.has_pending_work():
            connection.continue_work(now)
            continue
        return wanted
    raise UnsettledError("the connection did not settle")


def whole(data: bytes) -> Iterable[bytes]:
    if data:
        yield data


class ServerSide:
    """One server's shared state with memory stores, and its connections."""

    def __init__(
        self,
        users: dict[str, str] | None = None,
        *,
        block: float = 60.0,
        limits: Limits | None = None,
        clock: ManualClock | None = None,
    ) -> None:
        self.clock = clock or ManualClock(START)
        self.tempid_store = MemoryTempIDStore()
        self.check_store = MemoryCheckStore()
        self.registry: dict[str, str] = {}
        self.core = ServerCore(
            dict(users if users is not None else USERS),
            block,
            self.clock,
            tempids=self.registry,
            tempid_store=self.tempid_store,
            check_store=self.check_store,
            limits=limits,
        )
        self.auto_commit = True

    def connect(self, peer: str = "127.0.0.1:50000") -> "ServerLink":
        return ServerLink(self, peer)


class ServerLink:
    """The host side of one server connection, as the test sees it."""

    def __init__(self, side: ServerSide, peer: str) -> None:
        self.side = side
        self.clock = side.clock
        self.connection = ServerConnection(side.core, peer, self.clock.monotonic())
        self.decoder = FrameDecoder()
        self.output: list[str] = []
        self.logs: list[str] = []
        self.close_asked = False
        self.commits_asked = 0
        self.sent = bytearray()
        """Every byte the server sent, in order."""

    # -- input ------------------------------------------------------------------
    def send(self, *messages: Message) -> list[Message]:
        return self.feed(b"".join(encode(message) for message in messages))

    def feed(self, data: bytes) -> list[Message]:
        """Bytes from the client; the replies they produced (after a commit
        if one is needed and auto_commit is on)."""
        self.connection.receive_data(data, self.clock.monotonic())
        return self.pump()

    def close_from_client(self) -> list[Message]:
        self.connection.receive_data(b"", self.clock.monotonic())
        return self.pump()

    def advance(self, seconds: float) -> list[Message]:
        self.clock.advance(seconds)
        deadline = self.connection.get_timer()
        if deadline is not None and deadline <= self.clock.monotonic():
            self.connection.handle_timer(self.clock.monotonic())
        return self.pump()

    def commit(self, durable: bool = True) -> list[Message]:
        self.connection.commit_done(durable)
        return self.pump()

    # -- output -----------------------------------------------------------------
    def pump(self, *, continue_work: bool = True) -> list[Message]:
        auto = self.side.auto_commit
        if self.pending_commit and auto:
            self.connection.commit_done(self.side.core.commit() is None)
            self.pending_commit = False
        wanted = settle(
            self.connection,
            self.side.core,
            self.clock.monotonic(),
            self._take_event,
            commit=auto,
            continue_work=continue_work,
        )
        self.pending_commit = self.pending_commit or wanted
        return self._replies()

    pending_commit = False

    def _take_event(self, event: ServerEvent) -> None:
        if isinstance(event, Output):
            self.output += event.text.split("\n")
        elif isinstance(event, Log):
            self.logs.append(event.text)
        elif isinstance(event, NeedsCommit):
            self.commits_asked += 1
        elif isinstance(event, CloseConnection):
            self.close_asked = True

    def _replies(self) -> list[Message]:
        data = self.connection.data_to_send()
        self.sent += data
        return self.decoder.messages(data)


class ConnectionPair:
    """A real phone and a real server connection, joined by bytes."""

    def __init__(
        self,
        side: ServerSide | None = None,
        *,
        store: MemoryContactStore | None = None,
        retention: float = 180.0,
        cut: Cut = whole,
    ) -> None:
        self.side = side or ServerSide()
        self.clock = self.side.clock
        self.store = store or MemoryContactStore()
        self.phone = Phone(self.clock, lambda username: self.store, retention=retention)
        self.link = self.side.connect()
        self.cut = cut
        self.events: list[PhoneEvent] = []

    def run(self) -> list[PhoneEvent]:
        """Move bytes both ways until neither side has anything to say."""
        new: list[PhoneEvent] = []
        for _ in range(MAX_ROUNDS):
            up = self.phone.data_to_send()
            for piece in self.cut(up) if up else ():
                self.link.connection.receive_data(piece, self.clock.monotonic())
                self.link.pump()
            down = bytes(self.link.sent)
            self.link.sent.clear()
            for piece in self.cut(down) if down else ():
                self.phone.receive_data(piece, self.clock.monotonic())
            if self.link.close_asked and self.phone.is_open:
                self.phone.receive_data(b"", self.clock.monotonic())
            new += self.phone.next_events()
            if not up and not down:
                break
        else:
            raise UnsettledError("the pair did not settle")
        self.events += new
        return new

    def advance(self, seconds: float) -> list[PhoneEvent]:
        """Move time for both sides and fire whatever fell due."""
        self.clock.advance(seconds)
        now = self.clock.monotonic()
        deadline = self.phone.get_timer()
        if deadline is not None and deadline <= now:
            self.phone.handle_timer(now)
        self.link.advance(0)
        return self.run()
