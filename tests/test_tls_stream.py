"""TlsStream: a Stream with TLS inside, over a loopback socket pair in one loop."""

import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bluetrace.runtime.reactor import Reactor
from bluetrace.runtime.tls import (
    TlsError,
    TlsSession,
    TlsStream,
    client_context,
    server_context,
)
from bluetrace.runtime.transports import HIGH_WATER, Stream
from tests.harness import WAIT
from tests.test_loop_floods import loop_server

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")

Certificate = tuple[Path, Path, str]
"""A certificate file, its key file and its pin (the tls_certificate fixture)."""
MAX_TURNS = 200
"""Loop turns any exchange here may take (each waits at most TURN_WAIT)."""
TURN_WAIT = 0.05


class End:
    """One end's callbacks, recorded."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.closes: list[OSError | TlsError | None] = []
        self.handshake_steps: list[bool] = []

    def on_data(self, data: bytes) -> None:
        self.data += data

    def on_close(self, error: OSError | TlsError | None) -> None:
        self.closes.append(error)


@pytest.fixture
def loop() -> Iterator[Reactor]:
    reactor = Reactor()
    yield reactor
    reactor.close()


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    left, right = socket.socketpair()
    yield left, right
    left.close()
    right.close()


def _until(reactor: Reactor, done: Callable[[], bool]) -> None:
    for _ in range(MAX_TURNS):
        if done():
            return
        reactor.run_once(max_wait=TURN_WAIT)
    raise AssertionError("the condition did not hold within the bounded turns")


def _server(
    reactor: Reactor,
    sock: socket.socket,
    cert: Path,
    key: Path,
    end: End,
    *,
    on_readable: Callable[[], None] | None = None,
) -> TlsStream:
    plain = Stream(reactor, sock, end.on_data, end.on_close, on_readable=on_readable)
    return TlsStream(
        plain, TlsSession(server_context(cert, key), server_side=True), end.on_data,
        end.on_close, on_handshake=end.handshake_steps.append,
    )  # fmt: skip


def _client(reactor: Reactor, sock: socket.socket, pin: str, end: End) -> TlsStream:
    plain = Stream(reactor, sock, end.on_data, end.on_close)
    session = TlsSession(client_context(None), server_side=False, pin=pin)
    return TlsStream(plain, session, end.on_data, end.on_close)


def test_plaintext_in_plaintext_out_and_ciphertext_between(
    loop: Reactor, pair: tuple[socket.socket, socket.socket], tls_certificate: Certificate
) -> None:
    cert, key, pin = tls_certificate
    server_end, client_end = End(), End()
    server = _server(loop, pair[0], cert, key, server_end)
    client = _client(loop, pair[1], pin, client_end)
    request = b"LOGIN +61410888888 " + b"x" * 200_000  # several records, and queued output
    client.write(request)  # before the handshake: held, then sent
    _until(loop, lambda: len(server_end.data) >= len(request))
    assert bytes(server_end.data) == request
    assert server.handshake_done
    assert client.handshake_done
    # Each step of the handshake is reported; the last one says it is done.
    assert server_end.handshake_steps[-1] is True
    assert not any(server_end.handshake_steps[:-1])
    server.write(b"reply")
    _until(loop, lambda: bytes(client_end.data) == b"reply")
    client.close_when_flushed()
    _until(loop, lambda: bool(server_end.closes and client_end.closes))
    assert server_end.closes == [None]
    assert client_end.closes == [None]


def test_the_bytes_on_the_socket_are_not_the_plaintext(
    loop: Reactor, pair: tuple[socket.socket, socket.socket], tls_certificate: Certificate
) -> None:
    cert, key, pin = tls_certificate
    server_end, client_end = End(), End()
    _server(loop, pair[0], cert, key, server_end)
    # The client's TLS bytes pass through a tap on their way to the server.
    tap_a, tap_b = socket.socketpair()
    seen = bytearray()

    def relay(data: bytes) -> None:
        seen.extend(data)
        to_server.write(data)

    def relay_back(data: bytes) -> None:
        client_side.write(data)

    to_server = Stream(loop, pair[1], relay_back, lambda _: None)
    client_side = Stream(loop, tap_a, relay, lambda _: None)
    client = _client(loop, tap_b, pin, client_end)
    try:
        client.write(b"secret frame")
        _until(loop, lambda: bytes(server_end.data) == b"secret frame")
        assert seen
        assert b"secret frame" not in seen
    finally:
        for stream in (client, client_side, to_server):
            stream.close()
        loop.run_once(max_wait=0)


@pytest.mark.parametrize(
    "case",
    [
        (b"\x00\x00\x00\x10 not a TLS record at all", "the phone does not speak TLS", False),
        (b"\x16\x03\x01\x00\x05hello", "TLS failed: unexpected message", True),
    ],
)
def test_a_broken_handshake_is_one_tls_error_after_the_alert(
    loop: Reactor,
    pair: tuple[socket.socket, socket.socket],
    tls_certificate: Certificate,
    case: tuple[bytes, str, bool],
) -> None:
    sent, reason, alert = case
    cert, key, _ = tls_certificate
    server_end = End()
    server = _server(loop, pair[0], cert, key, server_end)
    pair[1].sendall(sent)
    _until(loop, lambda: bool(server_end.closes))
    loop.run_once(max_wait=0)  # no second report follows
    assert len(server_end.closes) == 1
    error = server_end.closes[0]
    assert isinstance(error, TlsError)
    assert error.during_handshake
    assert str(error).startswith(reason)
    assert server.closed
    assert server_end.handshake_steps == [False]
    assert server_end.data == b""
    # What OpenSSL had to say (an alert record, type 0x15) went out before the close.
    pair[1].settimeout(5)
    received = b""
    for _ in range(10):
        chunk = pair[1].recv(4096)
        if not chunk:
            break
        received += chunk
    assert received[:1] == (b"\x15" if alert else b"")


def test_a_wrong_pin_closes_the_client_with_one_tls_error(
    loop: Reactor, pair: tuple[socket.socket, socket.socket], tls_certificate: Certificate
) -> None:
    cert, key, _ = tls_certificate
    server_end, client_end = End(), End()
    _server(loop, pair[0], cert, key, server_end)
    client = _client(loop, pair[1], "ab" * 32, client_end)
    client.write(b"never sent")
    _until(loop, lambda: bool(client_end.closes))
    loop.run_once(max_wait=0)
    assert len(client_end.closes) == 1
    error = client_end.closes[0]
    assert isinstance(error, TlsError)
    assert "does not match --tls-pin" in str(error)
    assert client.closed
    client.write(b"after the failure")  # dropped, no error
    _until(loop, lambda: bool(server_end.closes))
    assert server_end.data == b""


def test_reading_waits_for_pull_when_the_owner_schedules_it(
    loop: Reactor, pair: tuple[socket.socket, socket.socket], tls_certificate: Certificate
) -> None:
    cert, key, pin = tls_certificate
    server_end, client_end = End(), End()
    readable: list[int] = []
    server = _server(loop, pair[0], cert, key, server_end, on_readable=lambda: readable.append(1))
    _client(loop, pair[1], pin, client_end)
    for _ in range(MAX_TURNS):  # the owner's turns: pull once a turn while parked
        if server.handshake_done:
            break
        loop.run_once(max_wait=TURN_WAIT)
        if server.parked:
            assert server.pull() > 0
    assert server.handshake_done
    assert readable
    assert server_end.handshake_steps[-1] is True


def test_a_failed_stream_is_closed_to_its_owner_while_its_alert_waits(
    loop: Reactor, pair: tuple[socket.socket, socket.socket], tls_certificate: Certificate
) -> None:
    """A peer that reads nothing: the alert queues behind what the kernel would
    not take, the owner sees the stream closed at once (it must not read or
    work for it meanwhile) and hears of the failure once, when it is sent."""
    cert, key, _ = tls_certificate
    server_end = End()
    server = _server(loop, pair[0], cert, key, server_end)
    # More than the socket buffers hold, less than stops the reading.
    server.transport.write(b"\x00" * (HIGH_WATER // 2))
    assert 0 < server.queued < HIGH_WATER
    pair[1].sendall(b"\x16\x03\x01\x00\x05hello")
    _until(loop, lambda: bool(server_end.handshake_steps))
    assert server.closed
    assert not server.transport.closed
    server.write(b"dropped")
    for _ in range(3):
        loop.run_once(max_wait=0)
    assert server_end.closes == []
    pair[1].setblocking(False)

    def drained() -> bool:
        try:
            while pair[1].recv(1024 * 1024):
                pass
        except BlockingIOError:
            pass
        return bool(server_end.closes)

    _until(loop, drained)
    assert len(server_end.closes) == 1
    assert isinstance(server_end.closes[0], TlsError)


def test_a_finished_handshake_ends_the_servers_handshake_deadline(
    tmp_path: Path, tls_certificate: Certificate
) -> None:
    """The server's link over a TlsStream: the handshake's last step cancels
    --handshake-timeout, so a connection that finished it is not closed then."""
    cert, key, pin = tls_certificate
    with loop_server(tmp_path, server_context(cert, key)) as server:
        server.handshake_timeout = 0.2
        reactor = server.reactor
        sock = socket.create_connection(server.listener.getsockname()[:2], timeout=WAIT)
        client_end = End()
        client = _client(reactor, sock, pin, client_end)
        try:
            _until(reactor, lambda: client.handshake_done and bool(server.links))
            (link,) = server.links.values()
            _until(reactor, lambda: link.stream.closed or link.handshake_timer is None)
            assert isinstance(link.stream, TlsStream)
            assert link.stream.handshake_done
            deadline = time.monotonic() + 3 * server.handshake_timeout
            for _ in range(MAX_TURNS):  # past the deadline it would have had
                if time.monotonic() > deadline:
                    break
                reactor.run_once(max_wait=TURN_WAIT)
            assert not link.stream.closed
            assert client_end.closes == []
            assert "no TLS handshake" not in (tmp_path / "err").read_text()
        finally:
            client.close()
