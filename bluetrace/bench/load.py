"""Load generator: many connections from one process, on one selectors loop.

Run as a program (the bench starts it; every mode prints JSON on stdout):

``python -m bluetrace.bench.load sessions PORT CLIENTS SECONDS GRACE USERS``
    CLIENTS virtual phones, each repeating login -> Download_tempID -> logout
    until SECONDS pass; sessions still open GRACE seconds later are given up.
    Prints completed sessions, errors, and (monotonic start, latency) each.
``python -m bluetrace.bench.load paced PORT RATE START END GRACE USERS``
    Starts a new session (a new connection) every 1/RATE seconds from
    monotonic time START until END (the same clock in every process),
    whether or not earlier ones have finished, and times each from when it
    was due: a server that stalls shows every session the stall delayed, not
    only the few a closed loop of clients happened to have in flight.
``python -m bluetrace.bench.load hold PORT COUNT USERS``
    Logs COUNT connections in, prints ``ready``, holds them until stdin closes.
``python -m bluetrace.bench.load churn PORT CYCLES``
    Opens and closes CYCLES connections that never send a byte, a few at a
    time; prints ``progress N`` lines, then the count, errors and seconds.
``python -m bluetrace.bench.load pipeline PORT BYTES AT SECONDS``
    At monotonic time AT, connects without logging in and writes BYTES of
    6-byte TEMPID_REQUEST frames it never reads, for at most SECONDS, keeping
    the connection open that long; prints when it began and how much got in.

Each new connection logs in as the next of USERS generated accounts
(``frames.account``). Replies are checked by type byte and size, not parsed
with construct, so the generator costs little next to the server it
measures. The functions at the end start these modes as processes and read
their results.
"""

import json
import os
import select
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from itertools import cycle
from typing import Any, NamedTuple

from bluetrace.bench import frames
from bluetrace.bench.context import LOAD_USERS
from bluetrace.bench.processes import Children, raise_descriptor_limit
from bluetrace.protocol import wire

_HEADER = wire.FRAME_HEADER_LEN
_STEPS = (
    (wire.MessageType.LOGIN_REPLY, frames.LOGIN_OK),
    (wire.MessageType.TEMPID_REPLY, frames.TEMPID_REPLY),
    (wire.MessageType.LOGOUT_REPLY, frames.LOGOUT_REPLY),
)
_CHURN_IN_FLIGHT = 8
"""Connections opening at once in churn: enough to keep the server busy,
few enough that its accept queue never overflows."""


class Timing(NamedTuple):
    """One session: when it began (or was due) on the monotonic clock every
    process shares, and how long it took (or had waited when given up)."""

    start: float
    latency: float


@dataclass
class Sessions:
    """What a ``sessions`` or ``paced`` run saw."""

    count: int
    errors: int
    records: list[Timing]
    """Completed sessions."""
    unfinished: list[Timing]
    """Sessions still open when the run gave up on them."""

    def latencies(self, since: float = float("-inf"), until: float = float("inf")) -> list[float]:
        """Latencies of sessions overlapping [since, until], unfinished ones
        counted with the time they had waited when given up (a lower bound)."""
        return [
            latency
            for start, latency in self.records + self.unfinished
            if start <= until and start + latency >= since
        ]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Sessions":
        return cls(
            int(data["count"]),
            int(data["errors"]),
            [Timing(float(a), float(b)) for a, b in data["records"]],
            [Timing(float(a), float(b)) for a, b in data["unfinished"]],
        )


@dataclass(frozen=True)
class Churn:
    """What a ``churn`` run saw: connections opened and closed, failures, time taken."""

    cycles: int
    errors: int
    seconds: float

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Churn":
        return cls(int(data["cycles"]), int(data["errors"]), float(data["seconds"]))


@dataclass(frozen=True)
class Pipeline:
    """What a ``pipeline`` run did: when it began writing (monotonic), the
    bytes the server took, and after how long all were in (None: never)."""

    began: float
    sent: int
    all_sent_after: float | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Pipeline":
        after = data["all_sent_after"]
        return cls(float(data["began"]), int(data["sent"]), None if after is None else float(after))


class Phone:
    def __init__(self, port: int, logins: Iterator[bytes], hold: bool) -> None:
        self.port = port
        self.logins = logins
        self.login = b""
        self.hold = hold
        self.sock: socket.socket | None = None
        self.buffer = b""
        self.step = 0
        self.started = 0.0

    def connect(self, selector: selectors.BaseSelector) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.started = time.monotonic()
        self.step = 0
        self.buffer = b""
        self.login = next(self.logins)
        self.sock.connect_ex(("127.0.0.1", self.port))
        selector.register(self.sock, selectors.EVENT_WRITE, self)

    def on_event(self, selector: selectors.BaseSelector, events: int) -> str:
        """'' while in progress, 'done' after a session (or a login when
        holding), 'error' on anything unexpected."""
        assert self.sock is not None
        if events & selectors.EVENT_WRITE:
            if self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                return "error"
            selector.modify(self.sock, selectors.EVENT_READ, self)
            self.sock.sendall(self.login)
            return ""
        try:
            data = self.sock.recv(65536)
        except OSError:
            return "error"
        if not data:
            return "error"
        self.buffer += data
        while len(self.buffer) >= _HEADER:
            size = _HEADER + int.from_bytes(self.buffer[2:6], "big")
            if len(self.buffer) < size:
                break
            frame, self.buffer = self.buffer[:size], self.buffer[size:]
            kind, expected = _STEPS[self.step]
            if (
                frame[1] != kind
                or len(frame) != len(expected)
                or (self.step == 0 and frame != expected)
            ):
                return "error"
            self.step += 1
            if self.hold or self.step == len(_STEPS):
                return "done"
            self.sock.sendall(frames.TEMPID_REQUEST if self.step == 1 else frames.LOGOUT_REQUEST)
        return ""

    def close(self, selector: selectors.BaseSelector) -> None:
        if self.sock is not None:
            selector.unregister(self.sock)
            self.sock.close()
            self.sock = None


def sessions(
    port: int, clients: int, seconds: float, grace: float, logins: Iterator[bytes]
) -> Sessions:
    selector = selectors.DefaultSelector()
    phones = [Phone(port, logins, hold=False) for _ in range(clients)]
    for phone in phones:
        phone.connect(selector)
    records: list[Timing] = []
    errors = 0
    end = time.monotonic() + seconds
    active = set(phones)
    while active:
        for key, events in selector.select(0.2):
            phone = key.data
            result = phone.on_event(selector, events)
            if not result:
                continue
            now = time.monotonic()
            phone.close(selector)
            if result == "done":
                records.append(Timing(phone.started, now - phone.started))
            else:
                errors += 1
            if now < end and errors < 1000:
                phone.connect(selector)
            else:
                active.discard(phone)
        if time.monotonic() > end + grace:
            break  # a stuck server must not hang the benchmark
    now = time.monotonic()
    unfinished = [Timing(phone.started, now - phone.started) for phone in active]
    for phone in active:
        phone.close(selector)
    return Sessions(len(records), errors, records, unfinished)


def paced(
    port: int, rate: float, start: float, end: float, *, grace: float, logins: Iterator[bytes]
) -> Sessions:
    raise_descriptor_limit()
    selector = selectors.DefaultSelector()
    records: list[Timing] = []
    errors = 0
    active: set[Phone] = set()
    began = max(start, time.monotonic())  # started late: the window shrinks, no burst
    seconds = max(0.0, end - began)
    total = int(rate * seconds)
    while time.monotonic() < began:
        time.sleep(min(0.01, max(0.0, began - time.monotonic())))
    due = 0
    while due < total or active:
        now = time.monotonic()
        if now > began + seconds + grace:
            break  # a stuck server must not hang the benchmark
        while due < total and began + due / rate <= now:
            phone = Phone(port, logins, hold=False)
            phone.connect(selector)
            phone.started = began + due / rate  # timed from when it was due
            active.add(phone)
            due += 1
        wait = 0.2 if due >= total else max(0.0, min(0.2, began + due / rate - now))
        for key, events in selector.select(wait):
            phone = key.data
            result = phone.on_event(selector, events)
            if not result:
                continue
            phone.close(selector)
            active.discard(phone)
            if result == "done":
                records.append(Timing(phone.started, time.monotonic() - phone.started))
            else:
                errors += 1
    now = time.monotonic()
    unfinished = [Timing(phone.started, now - phone.started) for phone in active]
    for phone in active:
        phone.close(selector)
    return Sessions(len(records), errors, records, unfinished)


def hold(port: int, count: int, logins: Iterator[bytes]) -> None:
    raise_descriptor_limit()
    selector = selectors.DefaultSelector()
    phones = [Phone(port, logins, hold=True) for _ in range(count)]
    pending = set()
    for start in range(0, count, 200):  # connect in waves: the backlog is finite
        for phone in phones[start : start + 200]:
            phone.connect(selector)
            pending.add(phone)
        deadline = time.monotonic() + 30
        while pending and time.monotonic() < deadline:
            for key, events in selector.select(1.0):
                result = key.data.on_event(selector, events)
                if result == "done":
                    selector.unregister(key.fileobj)
                    pending.discard(key.data)
                elif result == "error":
                    raise SystemExit(f"hold: a connection failed after {count - len(pending)}")
        if pending:
            raise SystemExit("hold: logins did not complete in time")
    print("ready", flush=True)
    sys.stdin.read()


def churn(port: int, cycles: int) -> Churn:
    """Connect, then close as soon as the connection is up; never send."""
    selector = selectors.DefaultSelector()
    started = done = errors = 0
    began = time.monotonic()
    deadline = began + 600
    report_every = max(1, cycles // 10)

    def open_one() -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        selector.register(sock, selectors.EVENT_WRITE)

    while started < min(cycles, _CHURN_IN_FLIGHT):
        open_one()
        started += 1
    while done + errors < cycles and time.monotonic() < deadline:
        for key, _ in selector.select(1.0):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            failed = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            selector.unregister(sock)
            sock.close()
            if failed:
                errors += 1
            else:
                done += 1
                if done % report_every == 0:
                    print(f"progress {done}", flush=True)
            if started < cycles:
                open_one()
                started += 1
    return Churn(done, errors, time.monotonic() - began)


def pipeline(port: int, total: int, at: float, seconds: float) -> Pipeline:
    """Never logs in, never reads: only writes TEMPID_REQUEST frames."""
    frame = frames.TEMPID_REQUEST
    payload = frame * (total // len(frame))
    while time.monotonic() < at:
        time.sleep(min(0.01, max(0.0, at - time.monotonic())))
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setblocking(False)
    began = time.monotonic()
    sent = 0
    all_in = None
    end = began + seconds
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_WRITE)
    while time.monotonic() < end:
        if sent < len(payload):
            if selector.select(max(0.0, end - time.monotonic())):
                try:
                    sent += sock.send(payload[sent : sent + 65536])
                except BlockingIOError:
                    pass
                except OSError:
                    break  # the server closed it: that is an answer too
            if sent == len(payload) and all_in is None:
                all_in = time.monotonic() - began
        else:
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))
    sock.close()
    return Pipeline(began, sent, all_in)


def main(argv: list[str]) -> None:
    mode, port = argv[0], int(argv[1])
    result: Sessions | Churn | Pipeline
    if mode == "sessions":
        clients, seconds, grace = int(argv[2]), float(argv[3]), float(argv[4])
        result = sessions(port, clients, seconds, grace, cycle(frames.logins(int(argv[5]))))
    elif mode == "paced":
        rate, start, end, grace = (float(arg) for arg in argv[2:6])
        logins = cycle(frames.logins(int(argv[6])))
        result = paced(port, rate, start, end, grace=grace, logins=logins)
    elif mode == "hold":
        hold(port, int(argv[2]), cycle(frames.logins(int(argv[3]))))
        return
    elif mode == "churn":
        result = churn(port, int(argv[2]))
    else:
        result = pipeline(port, int(argv[2]), float(argv[3]), float(argv[4]))
    print(json.dumps(asdict(result)), flush=True)


# -- the bench's side: run a mode as a process, read its result ------------------


def percentile(values: list[float], share: float) -> float:
    """The value below which ``share`` of ``values`` fall (nan if none)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def start_sessions(
    children: Children,
    port: int,
    clients: int,
    seconds: float,
    *,
    grace: float = 30.0,
    users: int = LOAD_USERS,
) -> "subprocess.Popen[bytes]":
    args = [str(port), str(clients), str(seconds), str(grace), str(users)]
    return children.start(["-m", "bluetrace.bench.load", "sessions", *args])


STARTUP_SLACK = 1.0
"""Seconds allowed for a helper process to start before its window opens."""


def start_paced(
    children: Children,
    port: int,
    rate: float,
    start: float,
    end: float,
    *,
    grace: float = 30.0,
    users: int = LOAD_USERS,
) -> "subprocess.Popen[bytes]":
    """Paced sessions due from monotonic ``start`` to ``end`` (see ``paced``)."""
    args = [str(port), str(rate), repr(start), repr(end), str(grace), str(users)]
    return children.start(["-m", "bluetrace.bench.load", "paced", *args])


def sessions_result(child: "subprocess.Popen[bytes]", timeout: float = 120.0) -> Sessions:
    out, _ = child.communicate(timeout=timeout)
    if child.returncode:
        raise RuntimeError(f"the load generator failed (exit status {child.returncode})")
    return Sessions.from_json(json.loads(out))


def read_result(
    child: "subprocess.Popen[bytes]",
    on_progress: Callable[[int], None] | None = None,
    timeout: float = 120.0,
) -> dict[str, object]:
    """The JSON line a mode ends with; ``progress N`` lines before it go to
    ``on_progress``. Bounded by ``timeout`` overall."""
    pipe = child.stdout
    assert pipe is not None
    deadline = time.monotonic() + timeout
    buffer = b""
    while True:
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([pipe], [], [], remaining)[0]:
                raise RuntimeError(f"no result from the load generator in {timeout:g} s")
            chunk = os.read(pipe.fileno(), 65536)
            if not chunk:
                raise RuntimeError(f"the load generator ended early: {buffer[-300:]!r}")
            buffer += chunk
        line, buffer = buffer.split(b"\n", 1)
        if line.startswith(b"progress "):
            if on_progress is not None:
                on_progress(int(line.split()[1]))
            continue
        result: dict[str, object] = json.loads(line)
        return result


if __name__ == "__main__":
    main(sys.argv[1:])
