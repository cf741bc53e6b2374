"""Floods of connections: the loop turn's shared budget, the connection caps,
the TLS handshake deadline, summarised log lines, and the reload signal.

The turn-budget tests drive an in-process :class:`Server` one loop turn at a
time over real loopback sockets and count what one turn did; the rest run the
server as a real process. No timing is asserted: figures are the bench's
(``spread``, ``handshakes``, ``idle``).
"""

import os
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from bluetrace.bench.frames import TEMPID_REQUEST
from bluetrace.bench.hostile import client_hello
from bluetrace.protocol.clock import SystemClock
from bluetrace.protocol.framing import FrameDecoder
from bluetrace.protocol.messages import (
    ErrorReply,
    LoginReply,
    LoginRequest,
    TempIDReply,
    TempIDRequest,
    encode,
)
from bluetrace.protocol.wire import ErrorCode, LoginStatus
from bluetrace.runtime.output import LineOutput
from bluetrace.runtime.reactor import Reactor
from bluetrace.runtime.tls import TlsStream, server_context
from bluetrace.server.admission import (
    HANDSHAKE_BURST_SECONDS,
    AddressRate,
    Admission,
    Caps,
    LineSummary,
)
from bluetrace.server.core import Limits, ServerCore
from bluetrace.server.main import HANDSHAKE_UNITS, LINK_SHARE_MAX, TURN_BUDGET, Link, Server
from bluetrace.server.stores import MemoryCheckStore, MemoryTempIDStore
from bluetrace.testing import USERS, ServerSide
from tests.harness import WAIT, FrameClient, OutputFile, running_server, wait_until

USER, PASSWORD = "+61410888888", "comp3331"
MAX_TURNS = 2_000


# -- an in-process server, one loop turn at a time --------------------------------


@contextmanager
def loop_server(
    tmp_path: Path,
    tls: ssl.SSLContext | None = None,
    caps: Caps | None = None,
    clock: Callable[[], float] | None = None,
) -> Iterator[Server]:
    reactor = Reactor() if clock is None else Reactor(clock)
    core = ServerCore(
        dict(USERS), 60.0, SystemClock(), tempids={},
        tempid_store=MemoryTempIDStore(), check_store=MemoryCheckStore(),
        limits=Limits(),
    )  # fmt: skip
    listener = socket.create_server(("127.0.0.1", 0))
    with ExitStack() as stack:
        fds = [os.open(tmp_path / name, os.O_WRONLY | os.O_CREAT) for name in ("out", "err")]
        for fd in fds:
            stack.callback(os.close, fd)
        out = LineOutput(reactor, fds[0], "stdout")
        err = LineOutput(reactor, fds[1], "stderr")
        server = Server(reactor, core, listener, out=out, err=err, tls=tls, caps=caps)
        try:
            yield server
        finally:
            for link in list(server.links.values()):
                link.stream.close()
            server.close_refused()
            listener.close()
            reactor.close()


def _turn(server: Server) -> None:
    server.reactor.run_once(max_wait=0.5)


def _accepted(server: Server, count: int) -> None:
    for _ in range(MAX_TURNS):
        if len(server.links) >= count:
            return
        _turn(server)
    raise AssertionError(f"{len(server.links)} of {count} connections accepted")


def _connect(port: int, count: int) -> list[socket.socket]:
    socks = [socket.create_connection(("127.0.0.1", port), timeout=WAIT) for _ in range(count)]
    for sock in socks:
        sock.setblocking(True)  # sendall whole; reads below are MSG_DONTWAIT
    return socks


def _available(sock: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = sock.recv(1 << 20, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


def _links(server: Server, socks: list[socket.socket]) -> list[Link]:
    """The server's links for these client sockets (by the client's port)."""
    by_peer = {link.connection.peer: link for link in server.links.values()}
    return [by_peer["{}:{}".format(*sock.getsockname()[:2])] for sock in socks]


def test_one_turn_does_the_shared_budget_however_many_connections_flood(
    tmp_path: Path,
) -> None:
    """Before: each readable connection did a whole call (32 frames) in every
    turn, so 40 pipelining connections made one turn 1,280 frames long; the
    turn is now TURN_BUDGET units shared round robin, and a healthy login
    among them is still answered within three turns (each connection's first
    turn also pays for its accept and its read: ACCEPT_UNITS, READ_UNITS)."""
    flooders_count = 40
    with loop_server(tmp_path) as server:
        port = server.listener.getsockname()[1]
        flooders = _connect(port, flooders_count)
        healthy = _connect(port, 1)[0]
        _accepted(server, flooders_count + 1)
        flooder_links = _links(server, flooders)
        for sock in flooders:
            sock.sendall(TEMPID_REQUEST * 1_000)
        healthy_login = FrameDecoder()
        healthy.sendall(encode(LoginRequest(USER, PASSWORD)))
        _turn(server)
        assert 0 < sum(link.units for link in flooder_links) <= TURN_BUDGET + LINK_SHARE_MAX
        replies = healthy_login.messages(_available(healthy))
        for _ in range(2):
            if replies:
                break
            _turn(server)
            replies = healthy_login.messages(_available(healthy))
        assert replies == [LoginReply(LoginStatus.OK)]
        # Round robin: in a few more turns every flooder has had its share.
        for _ in range(4):
            _turn(server)
        assert all(link.units > 0 for link in flooder_links)
        for sock in [*flooders, healthy]:
            sock.close()


def test_the_turn_is_shared_by_address_before_connection(tmp_path: Path) -> None:
    """Before: the turn was shared by connection, so 200 connections from one
    address pipelining requests took 200 parts of it and a phone from another
    address waited behind them for three turns; now each address with work
    waiting has an equal part, so the phone is answered in the first turn and
    the flooding address gets no more than its half."""
    flooders_count = 200
    with loop_server(tmp_path) as server:
        port = server.listener.getsockname()[1]
        socks: list[socket.socket] = []
        try:
            while len(socks) < flooders_count:  # in waves: the accept queue is short
                socks += [_idle(port, "127.0.0.2") for _ in range(50)]
                _accepted(server, len(socks))
            flooders = list(socks)
            healthy = _idle(port, "127.0.0.1")
            socks.append(healthy)
            _accepted(server, flooders_count + 1)
            for sock in socks:
                sock.setblocking(True)  # sendall whole; reads below are MSG_DONTWAIT
            flooder_links = _links(server, flooders)
            for sock in flooders:
                sock.sendall(TEMPID_REQUEST * 1_000)
            healthy.sendall(encode(LoginRequest(USER, PASSWORD)))
            _turn(server)
            assert FrameDecoder().messages(_available(healthy)) == [LoginReply(LoginStatus.OK)]
            spent = sum(link.units for link in flooder_links)
            assert 0 < spent <= TURN_BUDGET // 2 + LINK_SHARE_MAX
        finally:
            for sock in socks:
                sock.close()


def test_replies_to_a_pipelining_connection_go_out_together(tmp_path: Path) -> None:
    """Before: a connection pipelining requests had its replies sent a turn's
    worth at a time, one send each turn; now they are gathered while its
    frames last (up to COALESCE_BYTES) and all arrive, in order, once its
    frames run out."""
    frames = 200
    with loop_server(tmp_path) as server:
        port = server.listener.getsockname()[1]
        with _connect(port, 1)[0] as sock:
            _accepted(server, 1)
            sock.sendall(TEMPID_REQUEST * frames)
            _turn(server)
            assert _available(sock) == b""  # a call's worth done, its replies kept
            replies = FrameDecoder()
            got: list[object] = []
            for _ in range(MAX_TURNS):
                got += replies.messages(_available(sock))
                if len(got) >= frames:
                    break
                _turn(server)
            assert got == [ErrorReply(ErrorCode.NOT_LOGGED_IN, "log in first")] * frames


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs openssl")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "2", "-subj", "/CN=localhost"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def test_tls_handshakes_share_the_turn_budget(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    """Before: every ClientHello that arrived was answered in the same turn
    (a key exchange and a signature each); now a turn takes at most its
    budget's worth of handshakes and the rest wait their turn."""
    count = 24
    with loop_server(tmp_path, server_context(*certificate)) as server:
        port = server.listener.getsockname()[1]
        socks = _connect(port, count)
        _accepted(server, count)
        hello = client_hello()
        for sock in socks:
            sock.sendall(hello)
        _turn(server)
        answered = sum(1 for sock in socks if _available(sock))
        assert 0 < answered <= TURN_BUDGET // HANDSHAKE_UNITS + 1
        for _ in range(count):
            _turn(server)
            answered += sum(1 for sock in socks if _available(sock))
            if answered == count:
                break
        assert answered == count  # each had its turn in the end
        for sock in socks:
            sock.close()


def test_tls_handshakes_over_the_address_rate_are_refused_before_any_tls_work(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    """Before: every connection from a ClientHello flood got a TLS session and
    a key exchange in its turn; now an address may begin
    --tls-handshakes-per-second handshakes (after a burst of twice that) and
    its connections past the rate are closed at once, with no TLS work,
    while another address still gets through. The clock stands still, so
    no token comes back during the test."""
    rate, flood = 2, 10
    burst = int(rate * HANDSHAKE_BURST_SECONDS)
    caps = Caps(handshakes_per_second=rate)
    with loop_server(tmp_path, server_context(*certificate), caps, clock=lambda: 1000.0) as server:
        port = server.listener.getsockname()[1]
        socks: list[socket.socket] = []
        try:
            socks += [_idle(port, "127.0.0.2") for _ in range(flood)]
            for _ in range(MAX_TURNS):  # until each is either admitted or refused
                _turn(server)
                refused = server.refusals.shown + sum(server.refusals.counts.values())
                if len(server.links) + refused >= flood:
                    break
            healthy = _idle(port, "127.0.0.1")
            socks.append(healthy)
            _accepted(server, burst + 1)
            assert sorted(link.address for link in server.links.values()) == [
                "127.0.0.1",
                *["127.0.0.2"] * burst,
            ]
            assert all(isinstance(link.stream, TlsStream) for link in server.links.values())
        finally:
            for sock in socks:
                sock.close()
        assert "over the address's TLS handshake rate" in (tmp_path / "err").read_text()


def test_address_rate_refills_and_forgets_the_longest_unseen() -> None:
    limiter = AddressRate(rate=2.0, burst=3.0)
    assert [limiter.allow("10.0.0.1", 0.0) for _ in range(4)] == [True, True, True, False]
    assert not limiter.allow("10.0.0.1", 0.4)  # 0.8 of a token back: not yet
    assert limiter.allow("10.0.0.1", 0.5)  # one whole token back
    assert limiter.allow("10.0.0.2", 0.5)  # another address has its own bucket
    limiter.MAX_ADDRESSES = 2
    limiter.allow("10.0.0.3", 0.6)
    assert len(limiter) == 2  # 10.0.0.1, seen longest ago, was forgotten


# -- the server as a real process ------------------------------------------------


def _idle(port: int, source: str) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=WAIT, source_address=(source, 0))


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(WAIT)
    try:
        return all(sock.recv(65536) == b"" for _ in range(1))
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_an_unfinished_tls_handshake_is_closed_at_its_deadline(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    """Before: a half-finished handshake held its connection (and 48 KiB) for
    the whole login timeout; now for --handshake-timeout."""
    cert, key = certificate
    with running_server(
        tmp_path, "--tls-cert", str(cert), "--tls-key", str(key), "--handshake-timeout", "0.3"
    ) as server:
        silent = _idle(server.port, "127.0.0.1")
        started = _idle(server.port, "127.0.0.1")
        started.sendall(client_hello())
        for sock in (silent, started):
            sock.settimeout(WAIT)
            while True:  # the server's flight, then its close
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not data:
                    break
            sock.close()
        server.stderr.wait_for(r"no TLS handshake within 0\.3 s")


def test_idle_connections_from_three_addresses_do_not_lock_out_a_phone(tmp_path: Path) -> None:
    """Before: idle connections that never log in took every descriptor, the
    server stopped accepting, and a phone could not log in for the whole
    login timeout. Now connections not logged in are capped below the
    descriptor limit and the oldest give way."""
    limit = 200

    def small_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    data = tmp_path / "server"
    data.mkdir()
    shutil.copy(Path(__file__).parent.parent / "bluetrace" / "samples" / "credentials.txt", data)
    err_path = tmp_path / "err.txt"
    with err_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bluetrace.server.main", "0", "60", "--host", "127.0.0.1",
             "--data-dir", str(data)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, cwd=data,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
            preexec_fn=small_limit,  # noqa: PLW1509
        )  # fmt: skip
    held: list[socket.socket] = []
    try:
        log = OutputFile(err_path)
        port = int(log.wait_for(r"listening on [\d.]+:(\d+)").group(1))
        for source in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
            held += [_idle(port, source) for _ in range(limit // 2)]
        phone = FrameClient(port)
        assert phone.call(LoginRequest(USER, PASSWORD)) == LoginReply(LoginStatus.OK)
        assert isinstance(phone.call(TempIDRequest()), TempIDReply)
        phone.close()
        # The idle ones pushed out are counted, not logged one line each.
        assert wait_until(lambda: "pushed out" in log.drain() or "closed for" in log.drain())
        assert log.drain().count("closed for") <= LineSummary.LINES_PER_INTERVAL
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT) == 0
    finally:
        for sock in held:
            sock.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait(WAIT)


def test_the_oldest_connection_not_logged_in_gives_way_per_address(tmp_path: Path) -> None:
    with running_server(tmp_path, "--max-unauthenticated-per-address", "3") as server:
        first, *others = [_idle(server.port, "127.0.0.2") for _ in range(3)]
        elsewhere = _idle(server.port, "127.0.0.3")
        newest = FrameClient(server.port, "127.0.0.2")
        assert _closed_by_server(first)
        assert newest.call(LoginRequest(USER, PASSWORD)) == LoginReply(LoginStatus.OK)
        # Logged in, it no longer counts: a third may wait beside the other two.
        more = _idle(server.port, "127.0.0.2")
        for sock in [*others, elsewhere]:
            sock.settimeout(0.2)
            with pytest.raises(TimeoutError):
                sock.recv(1)  # still open
        for sock in [first, *others, elsewhere, more]:
            sock.close()
        newest.close()


def test_malformed_connections_are_summarised_not_logged_one_line_each(tmp_path: Path) -> None:
    """Before: one stderr line per malformed connection (0.38 GB an hour from
    one client); now the first few of an interval, then a count."""
    count = 20
    with running_server(tmp_path) as server:
        for _ in range(count):
            client = FrameClient(server.port)
            client.sock.sendall(b"\x07\x01\x00\x00\x00\x00")  # an unknown version
            reply = client.receive()
            assert isinstance(reply, ErrorReply)
            assert reply.code is ErrorCode.MALFORMED
            assert client.closed_by_peer()
            client.close()
        phone = FrameClient(server.port)  # served after them: their lines are out
        assert phone.call(LoginRequest(USER, PASSWORD)) == LoginReply(LoginStatus.OK)
        server.stderr.wait_for(re.escape(f"login user={USER} "))
        lines = [line for line in server.stderr.drain().splitlines() if "version" in line]
        assert 1 <= len(lines) <= LineSummary.LINES_PER_INTERVAL
        phone.close()


def test_reload_signal_usr1_makes_sighup_stop_the_server(tmp_path: Path) -> None:
    with running_server(tmp_path, "--reload-signal", "USR1") as server:
        server.proc.send_signal(signal.SIGUSR1)
        server.stderr.wait_for("credentials unchanged")
        server.proc.send_signal(signal.SIGHUP)  # the terminal closed
        assert server.proc.wait(WAIT) == 0
        server.stderr.wait_for("stopped")


def test_by_default_sighup_and_sigusr1_both_reload(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        server.proc.send_signal(signal.SIGHUP)
        server.stderr.wait_for("credentials unchanged")
        server.proc.send_signal(signal.SIGUSR1)
        server.stderr.wait_for("(?s)credentials unchanged.*credentials unchanged")
        assert server.proc.poll() is None


# -- the sans-I/O pieces ----------------------------------------------------------


def test_refused_frames_are_charged_as_work() -> None:
    side = ServerSide()
    link = side.connect()
    link.connection.receive_data(TEMPID_REQUEST * 10, side.clock.monotonic())
    assert link.connection.take_work() == 10  # each answered NOT_LOGGED_IN
    link.connection.receive_data(b"\x07\x01\x00\x00\x00\x00", side.clock.monotonic())
    assert link.connection.take_work() == 1  # a broken header too
    assert link.connection.take_work() == 0


def test_a_share_below_the_call_budget_leaves_the_rest_for_later() -> None:
    side = ServerSide()
    link = side.connect()
    link.connection.receive_data(TEMPID_REQUEST * 10, side.clock.monotonic(), budget=3)
    assert link.connection.take_work() == 3
    assert link.connection.has_pending_work()
    assert not link.connection.wants_input()


def test_admission_caps_and_who_gives_way() -> None:
    admission: Admission[str] = Admission(
        Caps(max_connections=6, per_address=4, unauthenticated_per_address=2)
    )
    assert admission.admit("a1", "A").admitted
    assert admission.admit("a2", "A").admitted
    decision = admission.admit("a3", "A")
    assert decision.admitted
    assert decision.evict == ("a1",)  # the address's oldest not logged in
    admission.logged_in("a2")
    admission.logged_in("a3")
    assert admission.admit("a4", "A").admitted
    assert admission.admit("a5", "A").evict == ()
    assert not admission.admit("a6", "A").admitted  # four open from A: the address cap
    assert admission.admit("b1", "B").admitted
    decision = admission.admit("b2", "B")
    # Three not logged in server-wide is half of six: the server's oldest gives way.
    assert decision.admitted
    assert decision.evict == ("a4",)
    assert admission.admit("c1", "C").evict == ("a5",)
    assert admission.admit("c2", "C").evict == ("b1",)
    for key in ("b2", "c1", "c2"):
        admission.logged_in(key)
    assert admission.admit("d1", "D").admitted
    assert not admission.admit("d2", "D").admitted  # six open: the server's cap
    for key in ("a2", "a3", "b2", "c1", "c2", "d1"):
        admission.gone(key)
    admission.gone("a2")  # twice is harmless
    assert admission.open == 0
    assert admission.waiting == 0


def test_a_connection_being_answered_does_not_give_way() -> None:
    """Before: the oldest connection not logged in gave way even while its
    password was being checked; a client that reconnects when dropped then
    turned every push into another accept (the hashing bench: 23,334
    LOGINs in 10 s, all answered RATE_LIMITED, 0 OK)."""
    busy = {"a1"}
    admission: Admission[str] = Admission(
        Caps(max_connections=100, unauthenticated_per_address=2), busy.__contains__
    )
    assert admission.admit("a1", "A").admitted
    assert admission.admit("a2", "A").admitted
    decision = admission.admit("a3", "A")
    assert decision.evict == ("a2",)  # the oldest idle one, not the busy one
    busy.add("a3")
    decision = admission.admit("a4", "A")
    assert not decision.admitted  # every one waiting is being answered: refused
    assert decision.reason == "the address's cap on connections not logged in"
    assert admission.waiting == 2


def test_a_refused_connection_waits_for_the_refusal_delay_before_it_is_closed(
    tmp_path: Path,
) -> None:
    """A rate-limited LOGIN is answered after --refusal-delay and its
    connection, being answered, does not give way; the newcomer over the cap
    is held open, unread, for the delay, then closed. Before: the busy one
    was pushed out at once, and a refusal was closed at once (136,079
    refused connections in the hashing bench's 10 s)."""
    delay = 3.0
    with running_server(
        tmp_path,
        "--max-unauthenticated-per-address", "1",
        "--failed-logins-per-minute", "1",
        "--refusal-delay", str(delay),
    ) as server:  # fmt: skip
        limited = FrameClient(server.port, "127.0.0.2")
        assert limited.call(LoginRequest("+61400000000", "x")) == LoginReply(
            LoginStatus.UNKNOWN_USER
        )
        limited.send(LoginRequest("+61400000000", "x"))
        server.stderr.wait_for("too-many-failed-logins")  # it is being answered
        newcomer = _idle(server.port, "127.0.0.2")
        newcomer.settimeout(0.5)
        with pytest.raises(TimeoutError):
            newcomer.recv(1)  # held, not closed at once
        reply = limited.receive()
        assert isinstance(reply, ErrorReply)
        assert reply.code is ErrorCode.RATE_LIMITED
        assert _closed_by_server(newcomer)
        newcomer.close()
        limited.close()


def test_line_summary_shows_a_few_then_counts() -> None:
    summary = LineSummary("malformed connections")
    shown = [summary.note("broken frames", f"line {i}", f"10.0.0.{i % 3}", 0.0) for i in range(8)]
    assert [lines for lines in shown if lines] == [[f"line {i}"] for i in range(5)]
    (line,) = summary.note("broken frames", "later", "10.0.0.9", LineSummary.INTERVAL)[:1]
    assert line == "3 more malformed connections not shown: 3 broken frames, from 3 addresses"
    assert summary.summary(LineSummary.INTERVAL * 2) == []
