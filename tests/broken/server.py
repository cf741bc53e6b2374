"""A small, independent BlueTrace server for showing that the kit can fail.

Built on ``bluetrace.protocol.messages`` (encode and decode) and nothing else of
bluetrace. With no ``--break`` it should pass every server case of
``bluetrace-conform``; ``--break RULE`` breaks exactly one rule (see BREAKS).
Same command line as bluetrace-server, so the same launcher starts both.
"""

import argparse
import contextlib
import os
import secrets
import selectors
import signal
import socket
import sys
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from bluetrace.protocol.errors import ProtocolError
from bluetrace.protocol.messages import (
    ErrorReply,
    LoginReply,
    LoginRequest,
    LogoutReply,
    LogoutRequest,
    Message,
    RegisterReply,
    RegisterRequest,
    TempIDReply,
    TempIDRequest,
    TempIDWindow,
    UploadReply,
    UploadRequest,
    decode,
    encode,
)
from bluetrace.protocol.wire import ErrorCode, LoginStatus, RegisterStatus

BREAKS = {
    "block-per-connection": "counts wrong passwords per connection, not per user",
    "block-per-address": "a block holds only for the address that caused it",
    "window-short": "issues windows one second short (expiry = start + 14:58)",
    "tempid-late-record": "replies with a TempID before recording it (0.3 s later)",
    "cap-after-body": "checks the frame length cap only once the whole body is in",
    "upload-limit-recorded": "records an upload that passed the limit",
    "reply-type-malformed": "answers a reply type from a client MALFORMED, not UNEXPECTED",
    "close-at-once": "closes at once after LOGOUT_REPLY instead of letting the client first",
    "state-before-body": "checks the state table before the body (NOT_LOGGED_IN first)",
}
KNOWN_TYPES = {0x01, 0x02, 0x03, 0x04, 0x05, 0x81, 0x82, 0x83, 0x84, 0x85, 0xFF}
REPLY_TYPES = {0x81, 0x82, 0x83, 0x84, 0x85, 0xFF}
MAX_BODY = 59395
PRE_LOGIN_MAX = 512
UPLOAD_LIMIT = 200_000
LINGER = 2.0
TEMPID_BURST = 20
TEMPIDS_PER_HOUR = 120


def stamp(moment: datetime) -> str:
    return (f"{moment.day:02d}/{moment.month:02d}/{moment.year:04d} "
            f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}")


def append_lines(path: Path, lines: list[str]) -> None:
    """Whole lines, a new line first if the file lacks a final one, then fsync."""
    with path.open("ab+") as handle:
        handle.seek(0, os.SEEK_END)
        prefix = b""
        if handle.tell():
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                prefix = b"\n"
        handle.write(prefix + "".join(line + "\n" for line in lines).encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())


def read_lines(path: Path) -> list[str]:
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return []
    return [line.rstrip("\r") for line in text.split("\n") if line.strip()]


@dataclass
class Conn:
    sock: socket.socket
    address: str
    opened: float
    buffer: bytearray = field(default_factory=bytearray)
    user: str | None = None
    upload_state: str | None = None  # None, "uploading" or "discarding"
    upload_count: int = 0
    upload_records: list[str] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    closing_at: float | None = None
    last_frame: float = 0.0
    """When the connection last completed a frame (for the idle and stall timeouts)."""


class Server:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rule: str | None = args.break_rule
        self.folder: Path = args.data_dir
        credentials = read_lines(self.folder / "credentials.txt")
        self.users = dict(line.split(" ", 1) for line in credentials)
        self.owners = {parts[1]: parts[0] for parts in
                       (line.split(" ") for line in read_lines(self.folder / "tempIDs.txt"))
                       if len(parts) == 6}
        self.failures: dict[str, int] = {}
        self.tokens: dict[str, tuple[float, float]] = {}
        """Per user: TempIDs left in the burst, and when that was counted."""
        self.blocked: dict[tuple[str, str], float] = {}
        self.conns: dict[socket.socket, Conn] = {}
        self.later: list[tuple[float, list[str]]] = []
        self.selector = selectors.DefaultSelector()
        self.listener = socket.create_server((args.host, args.port))
        self.listener.setblocking(False)
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.stopping = False

    # -- the loop -----------------------------------------------------------------
    def run(self) -> None:
        host, port = self.listener.getsockname()[:2]
        print(f"broken-server: listening on {host}:{port}", file=sys.stderr, flush=True)
        while not self.stopping:
            for key, _ in self.selector.select(0.05):
                if key.fileobj is self.listener:
                    self.accept()
                else:
                    self.readable(self.conns[key.fileobj])  # type: ignore[index]
            self.timers()
        for conn in list(self.conns.values()):
            self.send(conn, ErrorReply(ErrorCode.SHUTTING_DOWN, "The server is stopping."))
            self.drop(conn)

    def accept(self) -> None:
        sock, address = self.listener.accept()
        sock.setblocking(False)
        self.conns[sock] = Conn(sock, address[0], time.monotonic())
        self.selector.register(sock, selectors.EVENT_READ)

    def timers(self) -> None:
        now = time.monotonic()
        for when, lines in list(self.later):
            if when <= now:
                append_lines(self.folder / "tempIDs.txt", lines)
                self.later.remove((when, lines))
        for conn in list(self.conns.values()):
            if conn.closing_at is not None and now >= conn.closing_at:
                self.drop(conn)
            elif conn.closing_at is None and conn.user is None \
                    and now - conn.opened >= self.args.login_timeout:
                self.send(conn, ErrorReply(ErrorCode.TIMEOUT, "No login in time."))
                conn.closing_at = now + LINGER
            elif conn.closing_at is None and conn.user is not None:
                held = conn.upload_state is not None or bool(conn.buffer)
                limit = self.args.stall_timeout if held else self.args.idle_timeout
                if now - conn.last_frame >= limit:
                    conn.upload_state, conn.upload_records = None, []
                    self.send(conn, ErrorReply(ErrorCode.TIMEOUT, "Nothing came in time."))
                    conn.closing_at = now + LINGER

    def readable(self, conn: Conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.drop(conn)
            return
        if conn.closing_at is not None:
            return  # reads nothing more
        conn.buffer += data
        self.frames(conn)

    def send(self, conn: Conn, message: Message) -> None:
        conn.sock.setblocking(True)
        with contextlib.suppress(OSError):
            conn.sock.sendall(encode(message))
        conn.sock.setblocking(False)

    def drop(self, conn: Conn) -> None:
        if conn.sock in self.conns:
            self.selector.unregister(conn.sock)
            del self.conns[conn.sock]
            conn.sock.close()

    def refuse(self, conn: Conn, code: ErrorCode, text: str) -> None:
        self.send(conn, ErrorReply(code, text))
        self.drop(conn)

    def linger(self, conn: Conn) -> None:
        if self.rule == "close-at-once":
            self.drop(conn)
            return
        conn.closing_at = time.monotonic() + LINGER

    # -- frames ---------------------------------------------------------------------
    def frames(self, conn: Conn) -> None:
        while conn.sock in self.conns and conn.closing_at is None and len(conn.buffer) >= 6:
            version, kind = conn.buffer[0], conn.buffer[1]
            length = int.from_bytes(conn.buffer[2:6], "big")
            limit = PRE_LOGIN_MAX if conn.user is None else MAX_BODY
            if self.rule != "cap-after-body" and not self.header_ok(conn, version, kind,
                                                                    length, limit):
                return
            if len(conn.buffer) < 6 + length:
                return
            if self.rule == "cap-after-body" and not self.header_ok(conn, version, kind,
                                                                    length, limit):
                return
            raw = bytes(conn.buffer[: 6 + length])
            del conn.buffer[: 6 + length]
            conn.last_frame = time.monotonic()
            if self.rule == "state-before-body" and conn.user is None and kind in (2, 3, 4):
                self.send(conn, ErrorReply(ErrorCode.NOT_LOGGED_IN, "Log in first."))
                continue
            try:
                message = decode(raw)
            except ProtocolError:
                self.refuse(conn, ErrorCode.MALFORMED, "That frame breaks the protocol.")
                return
            self.handle(conn, message)

    def header_ok(self, conn: Conn, version: int, kind: int, length: int, limit: int) -> bool:
        if version != 1 or kind not in KNOWN_TYPES:
            self.refuse(conn, ErrorCode.MALFORMED, "That frame header breaks the protocol.")
            return False
        if length > limit:
            self.refuse(conn, ErrorCode.TOO_LARGE, "That frame is too large.")
            return False
        return True

    def handle(self, conn: Conn, message: Message) -> None:
        if message.TYPE in REPLY_TYPES:
            if self.rule == "reply-type-malformed":
                self.refuse(conn, ErrorCode.MALFORMED, "That frame breaks the protocol.")
                return
            self.send(conn, ErrorReply(ErrorCode.UNEXPECTED, "A phone may not send that."))
            self.linger(conn)
            return
        if conn.upload_state is not None and not isinstance(message, UploadRequest):
            conn.upload_state, conn.upload_records = None, []
            self.send(conn, ErrorReply(ErrorCode.UNEXPECTED, "The upload was interrupted."))
            return
        if isinstance(message, RegisterRequest):
            if conn.user is not None:
                self.send(conn, ErrorReply(ErrorCode.ALREADY_LOGGED_IN, "Logged in already."))
            else:  # this small server takes no registrations
                self.send(conn, RegisterReply(RegisterStatus.CLOSED))
        elif isinstance(message, LoginRequest):
            self.login(conn, message)
        elif conn.user is None:
            self.send(conn, ErrorReply(ErrorCode.NOT_LOGGED_IN, "Log in first."))
        elif isinstance(message, TempIDRequest):
            self.tempid(conn, conn.user)
        elif isinstance(message, UploadRequest):
            self.upload(conn, conn.user, message)
        elif isinstance(message, LogoutRequest):
            self.send(conn, LogoutReply())
            self.linger(conn)

    def login(self, conn: Conn, request: LoginRequest) -> None:
        if conn.user is not None:
            self.send(conn, ErrorReply(ErrorCode.ALREADY_LOGGED_IN, "Already logged in."))
            return
        name = request.username
        if name not in self.users:
            self.send(conn, LoginReply(LoginStatus.UNKNOWN_USER))
            return
        where = conn.address if self.rule == "block-per-address" else ""
        until = self.blocked.get((name, where))
        now = time.monotonic()
        if until is not None and now < until:
            self.send(conn, LoginReply(LoginStatus.BLOCKED))
            self.linger(conn)
            return
        if until is not None:
            del self.blocked[(name, where)]
            self.failures.pop(name, None)
        counts = conn.failures if self.rule == "block-per-connection" else self.failures
        if request.password == self.users[name]:
            counts.pop(name, None)
            conn.user = name
            self.send(conn, LoginReply(LoginStatus.OK))
            return
        counts[name] = counts.get(name, 0) + 1
        if counts[name] >= 3:
            counts.pop(name)
            self.blocked[(name, where)] = now + self.args.block_duration
            self.send(conn, LoginReply(LoginStatus.BLOCKED_NOW))
            self.linger(conn)
            return
        self.send(conn, LoginReply(LoginStatus.WRONG_PASSWORD))

    def tempid(self, conn: Conn, user: str) -> None:
        now = time.monotonic()
        left, then = self.tokens.get(user, (TEMPID_BURST, now))
        left = min(TEMPID_BURST, left + (now - then) * TEMPIDS_PER_HOUR / 3600)
        if left < 1:
            self.tokens[user] = (left, now)
            self.send(conn, ErrorReply(ErrorCode.RATE_LIMITED, "Too many TempIDs; wait."))
            return
        self.tokens[user] = (left - 1, now)
        tempid = f"{secrets.randbelow(10**20):020d}"
        while tempid in self.owners:
            tempid = f"{secrets.randbelow(10**20):020d}"
        start = datetime.now().replace(microsecond=0)
        short = 2 if self.rule == "window-short" else 1
        window = TempIDWindow(tempid, start,
                              start + timedelta(seconds=self.args.tempid_lifetime - short))
        self.owners[tempid] = user
        line = f"{user} {tempid} {stamp(window.start)} {stamp(window.expiry)}"
        if self.rule == "tempid-late-record":
            self.send(conn, TempIDReply(window))
            self.later.append((time.monotonic() + 0.3, [line]))
            return
        append_lines(self.folder / "tempIDs.txt", [line])
        self.send(conn, TempIDReply(window))

    def upload(self, conn: Conn, user: str, request: UploadRequest) -> None:
        if conn.upload_state is None:
            conn.upload_state, conn.upload_count, conn.upload_records = "uploading", 0, []
        conn.upload_count += len(request.entries)
        if conn.upload_count > UPLOAD_LIMIT and conn.upload_state == "uploading":
            conn.upload_state = "discarding"
            if self.rule != "upload-limit-recorded":
                conn.upload_records = []
        if conn.upload_state == "uploading" or self.rule == "upload-limit-recorded":
            checked = stamp(datetime.now())
            for entry in request.entries:
                tempid, start, expiry = entry.fields_text()
                contact = self.owners.get(tempid, "unknown")
                conn.upload_records.append(f"{checked} {user} {tempid} {start} {expiry} {contact}")
        if not request.final:
            return
        refused = conn.upload_state == "discarding"
        records, conn.upload_state, conn.upload_records = conn.upload_records, None, []
        if records and (not refused or self.rule == "upload-limit-recorded"):
            block = "".join(line + "\n" for line in records).encode("utf-8")
            append_lines(self.folder / "contact_checks.txt",
                         [f"begin {len(records)}", *records,
                          f"commit {len(records)} {zlib.crc32(block):08x}"])
        if refused:
            self.send(conn, ErrorReply(ErrorCode.TOO_LARGE, "That upload is too large."))
        else:
            self.send(conn, UploadReply(conn.upload_count))


def main() -> int:
    parser = argparse.ArgumentParser(prog="broken-server")
    parser.add_argument("port", type=int)
    parser.add_argument("block_duration", type=float)
    parser.add_argument("--data-dir", type=Path, default=Path.cwd())
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--login-timeout", type=float, default=120.0)
    parser.add_argument("--tempid-lifetime", type=int, default=900)
    parser.add_argument("--idle-timeout", type=float, default=3600.0)
    parser.add_argument("--stall-timeout", type=float, default=60.0)
    parser.add_argument("--break", dest="break_rule", choices=sorted(BREAKS))
    server = Server(parser.parse_args())

    def stop(signum: int, frame: object) -> None:
        server.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
