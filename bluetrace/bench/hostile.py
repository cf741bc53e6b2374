"""Hostile load: floods of connections, run as programs by the bench's parts.

Every mode prints one JSON line on stdout at its end (``progress`` lines
before it, where named), and keeps to loopback addresses:

``python -m bluetrace.bench.hostile spread PORT CONNECTIONS BYTES AT SECONDS SOURCE``
    At monotonic time AT, opens CONNECTIONS connections from address SOURCE,
    none of which logs in, and writes BYTES of 6-byte TEMPID_REQUEST frames
    on each, never reading a reply, for at most SECONDS (the connections stay
    open that long). Prints when it began, the bytes that got in, and how
    many connections the server closed.
``python -m bluetrace.bench.hostile idle PORT COUNT SOURCE``
    Opens COUNT connections from SOURCE that never send a byte, a few hundred
    at a time, prints ``ready`` with how many are open, then holds them until
    stdin closes; prints how many the server closed meanwhile.
``python -m bluetrace.bench.hostile hello PORT RATE AT SECONDS SOURCE``
    From AT, for SECONDS, opens RATE connections a second from SOURCE, each
    sending the same recorded TLS ClientHello and then nothing more (the
    replay of one captured handshake start), kept open until the server
    closes them or the flood ends.
``python -m bluetrace.bench.hostile tls PORT RATE START END GRACE USERS``
    Healthy TLS sessions (login -> Download_tempID -> logout, each on a new
    connection) due every 1/RATE s from START to END, one after another,
    each timed from when it was due; prints records like ``load paced``.
"""

import contextlib
import json
import selectors
import socket
import ssl
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from itertools import cycle
from typing import cast

from bluetrace.bench import frames
from bluetrace.bench.load import Sessions, Timing
from bluetrace.bench.processes import raise_descriptor_limit
from bluetrace.protocol import wire

WAVE = 200
"""Connections opened at once: the server's accept queue is finite."""


def _open(port: int, source: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.bind((source, 0))
    sock.connect_ex(("127.0.0.1", port))
    return sock


def _connected(selector: selectors.BaseSelector, socks: list[socket.socket]) -> list[socket.socket]:
    """Wait (bounded) until each of ``socks`` is connected or failed; the connected."""
    for sock in socks:
        selector.register(sock, selectors.EVENT_WRITE)
    up: list[socket.socket] = []
    pending = set(socks)
    deadline = time.monotonic() + 30
    while pending and time.monotonic() < deadline:
        for key, _ in selector.select(0.5):
            sock = cast(socket.socket, key.fileobj)
            selector.unregister(sock)
            pending.discard(sock)
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                sock.close()
            else:
                up.append(sock)
    for sock in pending:
        selector.unregister(sock)
        sock.close()
    return up


def _sleep_until(when: float) -> None:
    while time.monotonic() < when:
        time.sleep(min(0.01, max(0.0, when - time.monotonic())))


def spread(
    port: int, count: int, total: int, *, at: float, seconds: float, source: str
) -> dict[str, object]:
    raise_descriptor_limit()
    payload = frames.TEMPID_REQUEST * (total // len(frames.TEMPID_REQUEST))
    _sleep_until(at)
    began = time.monotonic()
    end = began + seconds
    selector = selectors.DefaultSelector()
    socks: list[socket.socket] = []
    for start in range(0, count, WAVE):
        wave = [_open(port, source) for _ in range(min(WAVE, count - start))]
        socks += _connected(selector, wave)
    sent = dict.fromkeys(socks, 0)
    for sock in socks:
        selector.register(sock, selectors.EVENT_WRITE)
    closed = 0
    while sent and time.monotonic() < end:
        for key, _ in selector.select(max(0.0, min(0.2, end - time.monotonic()))):
            sock = cast(socket.socket, key.fileobj)
            done = sent[sock]
            try:
                done += sock.send(payload[done : done + 65536])
            except BlockingIOError:
                continue
            except OSError:
                closed += 1  # the server closed it: that is an answer too
                selector.unregister(sock)
                del sent[sock]
                continue
            sent[sock] = done
            if done >= len(payload):
                selector.unregister(sock)  # all in; held open, never read
    got_in = sum(sent.values())
    time.sleep(max(0.0, end - time.monotonic()))  # held open to the end, by definition
    for sock in socks:
        sock.close()
    return {"began": began, "connections": len(socks), "sent": got_in, "closed": closed}


def idle(port: int, count: int, source: str) -> None:
    raise_descriptor_limit()
    selector = selectors.DefaultSelector()
    socks: list[socket.socket] = []
    for start in range(0, count, WAVE):
        wave = [_open(port, source) for _ in range(min(WAVE, count - start))]
        socks += _connected(selector, wave)
    print(f"ready {len(socks)}", flush=True)
    sys.stdin.read()
    closed = 0
    for sock in socks:
        try:
            closed += sock.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b""
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        sock.close()
    print(json.dumps({"opened": len(socks), "closed_by_server": closed}), flush=True)


def client_hello() -> bytes:
    """A TLS ClientHello as a client would first send it, recorded once."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    session = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with contextlib.suppress(ssl.SSLWantReadError):
        session.do_handshake()
    return outgoing.read()


def hello(port: int, rate: float, at: float, seconds: float, source: str) -> dict[str, object]:
    raise_descriptor_limit()
    record = client_hello()
    selector = selectors.DefaultSelector()
    _sleep_until(at)
    began = time.monotonic()
    due = opened = failed = answered = closed = 0
    total = int(rate * seconds)
    connecting: set[socket.socket] = set()
    while time.monotonic() < began + seconds:
        now = time.monotonic()
        while due < total and began + due / rate <= now:
            due += 1
            sock = _open(port, source)
            connecting.add(sock)
            selector.register(sock, selectors.EVENT_WRITE)
        for key, _ in selector.select(0.001):
            sock = cast(socket.socket, key.fileobj)
            if sock in connecting:
                connecting.discard(sock)
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    failed += 1
                    selector.unregister(sock)
                    sock.close()
                    continue
                opened += 1
                try:
                    sock.send(record)
                except OSError:
                    failed += 1
                    selector.unregister(sock)
                    sock.close()
                    continue
                selector.modify(sock, selectors.EVENT_READ)
                continue
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                answered += 1  # the server's flight: read and ignored
                continue
            closed += 1
            selector.unregister(sock)
            sock.close()
    for key in list(selector.get_map().values()):
        sock = cast(socket.socket, key.fileobj)
        sock.close()
    return {"began": began, "opened": opened, "failed": failed, "closed_by_server": closed}


def _read_frame(sock: ssl.SSLSocket) -> bytes:
    data = b""
    while len(data) < wire.FRAME_HEADER_LEN:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    size = wire.FRAME_HEADER_LEN + int.from_bytes(data[2:6], "big")
    while len(data) < size:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def tls_session(port: int, context: ssl.SSLContext, login: bytes) -> bool:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as sock,
    ):
        for request, (kind, _) in zip(
            (login, frames.TEMPID_REQUEST, frames.LOGOUT_REQUEST),
            (
                (wire.MessageType.LOGIN_REPLY, frames.LOGIN_OK),
                (wire.MessageType.TEMPID_REPLY, frames.TEMPID_REPLY),
                (wire.MessageType.LOGOUT_REPLY, frames.LOGOUT_REPLY),
            ),
            strict=True,
        ):
            sock.sendall(request)
            if _read_frame(sock)[1] != kind:
                return False
    return True


def tls_paced(
    port: int, rate: float, start: float, end: float, *, grace: float, logins: Iterator[bytes]
) -> Sessions:
    """TLS sessions due from monotonic ``start`` to ``end``, one at a time,
    read by the bench as :func:`load.sessions_result` reads paced ones."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    records: list[Timing] = []
    errors = 0
    began = max(start, time.monotonic())  # started late: the window shrinks, no burst
    _sleep_until(began)
    total = int(rate * max(0.0, end - began))
    for index in range(total):
        due = began + index / rate
        if time.monotonic() > end + grace:
            break  # a stuck server must not hang the bench
        _sleep_until(due)
        try:
            ok = tls_session(port, context, next(logins))
        except OSError:
            ok = False
        if ok:
            records.append(Timing(due, time.monotonic() - due))
        else:
            errors += 1
    return Sessions(len(records), errors, records, [])


def main(argv: list[str]) -> None:
    mode, port = argv[0], int(argv[1])
    if mode == "spread":
        count, total, at, seconds = int(argv[2]), int(argv[3]), float(argv[4]), float(argv[5])
        result = spread(port, count, total, at=at, seconds=seconds, source=argv[6])
    elif mode == "idle":
        idle(port, int(argv[2]), argv[3])
        return
    elif mode == "hello":
        rate, at, seconds = float(argv[2]), float(argv[3]), float(argv[4])
        result = hello(port, rate, at, seconds, argv[5])
    else:
        rate, start, end, grace = (float(arg) for arg in argv[2:6])
        logins = cycle(frames.logins(int(argv[6])))
        sessions = tls_paced(port, rate, start, end, grace=grace, logins=logins)
        print(json.dumps(asdict(sessions)), flush=True)
        return
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
