"""Hashing: plain users' sessions while 300 connections log in as one hashed user.

A hashed password costs an scrypt check (about 35 ms at the default cost).
Run in the loop, each check stops every connection for that long, so the
server's hashing budget bounds throughput but not stalls. The attacker holds
ATTACKERS connections from SOURCE, each sending a correct LOGIN for the hashed user
and, once answered (OK or RATE_LIMITED), closing and doing it again, for the
whole window: 300 LOGINs in flight at every moment. Healthy sessions of
plain users start at a steady rate, each timed from when it was due, and
the figure is their p99 during the attack. The ceiling is the same sessions
on the same server just before, with no attack. The server runs with its
default limits.

Run as a program, this module is the attacker:
``python -m bluetrace.bench.hashing PORT COUNT AT SECONDS USERNAME PASSWORD SOURCE``
prints JSON: when it began, and how many replies of each type it got.
"""

import json
import selectors
import socket
import sys
import time

from bluetrace.bench.context import Context
from bluetrace.bench.frames import login
from bluetrace.bench.load import (
    STARTUP_SLACK,
    percentile,
    read_result,
    sessions_result,
    start_paced,
)
from bluetrace.bench.processes import raise_descriptor_limit
from bluetrace.bench.report import Figure
from bluetrace.protocol.wire import FRAME_HEADER_LEN, MessageType
from bluetrace.server import passwords

CEILING = "the same sessions on the same server just before, with no hashed logins"
RATE = 100
"""Healthy sessions started per second, each on a new connection."""
LEAD = 0.5
"""Seconds the healthy sessions run before the attack starts."""
HASHED_USER, HASHED_PASSWORD = "+61410555555", "hashed123"
FULL_ATTACKERS, QUICK_ATTACKERS = 300, 20
FULL_SECONDS, QUICK_SECONDS = 10.0, 0.5
SOURCE = "127.0.0.2"
"""The attacker's address: the plain users' sessions come from 127.0.0.1, as
attackers and the phones they would starve come from different addresses."""
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
"""Linux's option (its number there) to choose a bound socket's port at connect."""


def run(ctx: Context) -> None:
    ctx.ceiling(CEILING)
    attackers = FULL_ATTACKERS if ctx.full else QUICK_ATTACKERS
    window = FULL_SECONDS if ctx.full else QUICK_SECONDS
    folder = ctx.data_dir("hashing")
    with (folder / "credentials.txt").open("a") as handle:
        handle.write(f"{HASHED_USER} {passwords.hash_password(HASHED_PASSWORD)}\n")
    server = ctx.server(folder)
    ctx.progress(f"step 1/2: {RATE} plain sessions/s for {window:g} s, no hashed logins")
    start = time.monotonic() + STARTUP_SLACK
    baseline = sessions_result(start_paced(ctx.children, server.port, RATE, start, start + window))
    ctx.progress(
        f"step 2/2: the same sessions while {attackers} connections keep a LOGIN for a "
        f"hashed user in flight for {window:g} s (the server may stall: waits up to 120 s)"
    )
    start = time.monotonic() + STARTUP_SLACK
    at = start + LEAD
    healthy = start_paced(ctx.children, server.port, RATE, start, at + window, grace=120)
    attack = read_result(
        ctx.helper(
            "bluetrace.bench.hashing",
            str(server.port),
            str(attackers),
            repr(at),
            str(window),
            HASHED_USER,
            HASHED_PASSWORD,
            SOURCE,
        ),
        timeout=STARTUP_SLACK + LEAD + window + 150,
    )
    began = float(str(attack["began"]))
    sessions = sessions_result(healthy, timeout=STARTUP_SLACK + LEAD + window + 180)
    during = sessions.latencies(began, began + window)
    ctx.progress(
        f"the attack got {int(str(attack['ok'])):,} LOGIN OK and "
        f"{int(str(attack['refused'])):,} refused, {int(str(attack['errors'])):,} connections "
        f"closed unanswered; {len(during)} plain sessions overlapped "
        f"it, {len(sessions.unfinished)} never finished"
    )
    if sessions.errors:
        raise RuntimeError(f"{sessions.errors} plain sessions failed during the attack")
    p99 = percentile(during, 0.99) * 1000
    ceiling = percentile(baseline.latencies(), 0.99) * 1000
    ctx.add(
        Figure(
            "hashing",
            f"p99 of plain sessions while {attackers} hashed LOGINs are in flight",
            p99,
            "ms",
            ceiling,
            *ctx.judge("< 10x ceiling", p99 < 10 * ceiling),
        )
    )


def _bound(source: str) -> socket.socket:
    """A non-blocking socket bound to ``source``, its port chosen at connect by
    the whole address pair, as for an unbound socket: tens of thousands of short
    connections from one bound address would otherwise run out of ports held
    in TIME_WAIT."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    sock.bind((source, 0))
    return sock


def attack(
    port: int, count: int, at: float, seconds: float, request: bytes, *, source: str
) -> dict[str, object]:
    """``count`` connections from ``source``, each sending ``request`` and,
    once answered, closing and sending it again on a new connection, until
    ``seconds`` pass."""
    raise_descriptor_limit()
    while time.monotonic() < at:
        time.sleep(min(0.01, max(0.0, at - time.monotonic())))
    selector = selectors.DefaultSelector()
    began = time.monotonic()
    end = began + seconds
    counts = {"ok": 0, "refused": 0, "errors": 0}
    buffers: dict[socket.socket, bytes] = {}

    def open_one() -> None:
        sock = _bound(source)
        sock.connect_ex(("127.0.0.1", port))
        buffers[sock] = b""
        selector.register(sock, selectors.EVENT_WRITE)

    def close(sock: socket.socket) -> None:
        selector.unregister(sock)
        sock.close()
        del buffers[sock]
        if time.monotonic() < end:
            open_one()

    for _ in range(count):
        open_one()
    while buffers and time.monotonic() < end + 60:
        for key, events in selector.select(0.2):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if events & selectors.EVENT_WRITE:
                try:
                    sock.sendall(request)
                except OSError:
                    counts["errors"] += 1
                    close(sock)
                    continue
                selector.modify(sock, selectors.EVENT_READ)
                continue
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                counts["errors"] += 1
                close(sock)
                continue
            buffers[sock] += data
            frame = buffers[sock]
            if len(frame) >= FRAME_HEADER_LEN:
                kind = "ok" if frame[1] == MessageType.LOGIN_REPLY else "refused"
                counts[kind] += 1
                close(sock)
    for sock in list(buffers):
        selector.unregister(sock)
        sock.close()
    return {"began": began, **counts}


def main(argv: list[str]) -> None:
    port, count, at, seconds = int(argv[0]), int(argv[1]), float(argv[2]), float(argv[3])
    result = attack(port, count, at, seconds, login(argv[4], argv[5]), source=argv[6])
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
