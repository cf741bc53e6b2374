"""Load generator: many concurrent sessions from one process, on one loop.

``python -m bluetrace.bench.load sessions PORT CLIENTS SECONDS USER PASSWORD``
runs CLIENTS virtual phones, each repeating login -> Download_tempID ->
logout until SECONDS pass, and prints one JSON line: completed sessions,
errors, and (monotonic start, latency) per session.

``python -m bluetrace.bench.load hold PORT COUNT USER PASSWORD`` logs COUNT
connections in, prints ``ready``, and holds them until stdin closes.

Replies are checked by type byte and size, not parsed with construct, so the
generator costs little next to the server it measures.
"""

import json
import selectors
import socket
import sys
import time

from bluetrace import wire
from bluetrace.bench import frames
from bluetrace.cli import raise_descriptor_limit

_HEADER = wire.FRAME_HEADER_LEN
_STEPS = (
    (wire.MessageType.LOGIN_REPLY, frames.LOGIN_OK),
    (wire.MessageType.TEMPID_REPLY, frames.TEMPID_REPLY),
    (wire.MessageType.LOGOUT_REPLY, frames.LOGOUT_REPLY),
)


class Phone:
    def __init__(self, port: int, login: bytes, hold: bool) -> None:
        self.port = port
        self.login = login
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
            if self.hold:
                return "done"
            if self.step == len(_STEPS):
                return "done"
            self.sock.sendall(frames.TEMPID_REQUEST if self.step == 1 else frames.LOGOUT_REQUEST)
        return ""

    def close(self, selector: selectors.BaseSelector) -> None:
        if self.sock is not None:
            selector.unregister(self.sock)
            self.sock.close()
            self.sock = None


def sessions(port: int, clients: int, seconds: float, login: bytes) -> dict[str, object]:
    selector = selectors.DefaultSelector()
    phones = [Phone(port, login, hold=False) for _ in range(clients)]
    for phone in phones:
        phone.connect(selector)
    records: list[tuple[float, float]] = []
    errors = 0
    end = time.monotonic() + seconds
    active = clients
    while active:
        for key, events in selector.select(1.0):
            phone = key.data
            result = phone.on_event(selector, events)
            if not result:
                continue
            now = time.monotonic()
            phone.close(selector)
            if result == "done":
                records.append((phone.started, now - phone.started))
            else:
                errors += 1
            if now < end and errors < 1000:
                phone.connect(selector)
            else:
                active -= 1
        if time.monotonic() > end + 30:
            break  # a stuck server must not hang the benchmark
    return {"sessions": len(records), "errors": errors, "records": records}


def hold(port: int, count: int, login: bytes) -> None:
    raise_descriptor_limit()
    selector = selectors.DefaultSelector()
    phones = [Phone(port, login, hold=True) for _ in range(count)]
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


def main(argv: list[str]) -> None:
    mode, port, amount = argv[0], int(argv[1]), int(argv[2])
    if mode == "sessions":
        seconds, user, password = float(argv[3]), argv[4], argv[5]
        print(json.dumps(sessions(port, amount, seconds, frames.login(user, password))), flush=True)
    else:
        hold(port, amount, frames.login(argv[3], argv[4]))


if __name__ == "__main__":
    main(sys.argv[1:])
