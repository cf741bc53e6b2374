"""Bare-socket ceilings: what one Python process can do with no protocol work.

``python -m bluetrace.bench.ceiling tcp`` answers each frame with pre-built
bytes of the real reply's size (no construct, no files, no state) and, like
the real server, lets the client close first after the logout reply.

``python -m bluetrace.bench.ceiling udp PATH`` receives datagrams and appends
each to PATH as a line, as a client's contact log would be.

``python -m bluetrace.bench.ceiling startup tempids|credentials PATH`` reads
PATH into a dict keyed as the server keys it (TempID; username), then listens.

All print ``port N`` once listening, and stop on SIGTERM.
"""

import os
import selectors
import signal
import socket
import sys

from bluetrace.bench import frames
from bluetrace.bench.processes import raise_descriptor_limit
from bluetrace.protocol import wire

_REPLIES = {
    wire.MessageType.LOGIN: frames.LOGIN_OK,
    wire.MessageType.TEMPID_REQUEST: frames.TEMPID_REPLY,
    wire.MessageType.LOGOUT: frames.LOGOUT_REPLY,
}


def tcp() -> None:
    raise_descriptor_limit()
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, None)
    buffers: dict[socket.socket, bytes] = {}
    print(f"port {listener.getsockname()[1]}", flush=True)
    while True:
        for key, _ in selector.select():
            if key.data is None:
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(False)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                buffers[conn] = b""
                selector.register(conn, selectors.EVENT_READ, conn)
                continue
            conn = key.data
            try:
                data = conn.recv(65536)
            except OSError:
                data = b""
            if not data:
                selector.unregister(conn)
                conn.close()
                del buffers[conn]
                continue
            buffer = buffers[conn] + data
            while len(buffer) >= 6:
                size = 6 + int.from_bytes(buffer[2:6], "big")
                if len(buffer) < size:
                    break
                kind, buffer = buffer[1], buffer[size:]
                conn.send(_REPLIES[wire.MessageType(kind)])
            buffers[conn] = buffer  # after the logout reply the client closes first


def udp(path: str) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.bind(("127.0.0.1", 0))
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    print(f"port {sock.getsockname()[1]}", flush=True)
    while True:
        data, _ = sock.recvfrom(65535)
        os.write(fd, data[:58] + b"\n")


def startup(kind: str, path: str) -> None:
    """A lean but plain start: TempIDs as integers mapped to their line's
    offset in the file (users as bytes to password), no validation."""
    with open(path, "rb") as handle:
        data = handle.read()
    if kind == "tempids":
        tempids: dict[int, int] = {}
        offset = 0
        for line in data.split(b"\n"):
            if line:
                tempids[int(line.split(b" ", 2)[1])] = offset
            offset += len(line) + 1
        held = len(tempids)
    else:
        users = dict(line.split(b" ", 1) for line in data.split(b"\n") if line)
        held = len(users)
    del data
    listener = socket.create_server(("127.0.0.1", 0))
    print(f"port {listener.getsockname()[1]} ({held} held)", flush=True)
    signal.pause()


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    if argv[0] == "tcp":
        tcp()
    elif argv[0] == "startup":
        startup(argv[1], argv[2])
    else:
        udp(argv[1])


if __name__ == "__main__":
    main(sys.argv[1:])
