"""A small, independent BlueTrace phone for showing that the kit can fail.

Built on ``bluetrace.protocol.messages`` (encode and decode) and nothing else of
bluetrace. With no ``--break`` it should pass every client and beacon case of
``bluetrace-conform``; ``--break RULE`` breaks exactly one rule (see BREAKS).
Same command line as bluetrace-client. One selectors loop over the terminal,
the server connection and the UDP port.
"""

import argparse
import os
import selectors
import socket
import sys
import time
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from bluetrace.protocol.errors import ProtocolError
from bluetrace.protocol.messages import (
    ErrorReply,
    LoginReply,
    LoginRequest,
    LogoutReply,
    LogoutRequest,
    Message,
    TempIDReply,
    TempIDRequest,
    TempIDWindow,
    UploadReply,
    UploadRequest,
    decode,
    decode_beacon,
    encode,
    encode_beacon,
)
from bluetrace.protocol.wire import LoginStatus

BREAKS = {
    "expired-stored": "stores every well-formed beacon, valid or not",
    "never-removed": "never removes contact-log entries",
    "version-31-refused": "refuses beacons whose version byte is the digit 1 (0x31)",
    "exclusive-bounds": "treats a beacon at its first or last second as invalid",
    "empty-upload-nothing": "sends nothing for an empty contact log",
    "unknown-status-ignored": "takes an unknown LOGIN_REPLY status for a wrong password",
    "no-close-on-logout": "keeps the connection open after LOGOUT_REPLY",
}
KNOWN_TYPES = {0x01, 0x02, 0x03, 0x04, 0x81, 0x82, 0x83, 0x84, 0xFF}
MAX_BODY = 59395
CHUNK = 1024


def stamp(moment: datetime) -> str:
    return (f"{moment.day:02d}/{moment.month:02d}/{moment.year:04d} "
            f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}")


def line_of(window: TempIDWindow) -> str:
    return f"{window.tempid} {stamp(window.start)} {stamp(window.expiry)}"


class Phone:
    def __init__(self, args: argparse.Namespace) -> None:
        self.rule: str | None = args.break_rule
        self.retention: float = args.log_retention
        self.server = socket.create_connection((args.server_ip, args.server_port), timeout=5)
        self.server.setblocking(False)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", args.client_udp_port))
        self.udp.setblocking(False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.server, selectors.EVENT_READ, "tcp")
        self.selector.register(self.udp, selectors.EVENT_READ, "udp")
        self.selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
        self.state = "username"
        self.username = ""
        self.typed: deque[str] = deque()
        self.typing = b""
        self.incoming = bytearray()
        self.tempid: TempIDWindow | None = None
        self.contacts: deque[tuple[float, TempIDWindow]] = deque()
        self.log_path: Path | None = None
        self.status: int | None = None

    # -- output -----------------------------------------------------------------------
    def show(self, *lines: str) -> None:
        sys.stdout.write("".join(line + "\n" for line in lines))
        sys.stdout.flush()

    def prompt(self, text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    def send(self, message: Message) -> None:
        self.server.setblocking(True)
        self.server.sendall(encode(message))
        self.server.setblocking(False)

    # -- the loop -----------------------------------------------------------------------
    def run(self) -> int:
        self.prompt("Username: ")
        while self.status is None:
            for key, _ in self.selector.select(0.05):
                if key.data == "tcp":
                    self.from_server()
                elif key.data == "udp":
                    self.datagram()
                else:
                    self.from_terminal()
                if self.status is not None:
                    break
            self.expire()
        return self.status

    def from_terminal(self) -> None:
        data = os.read(sys.stdin.fileno(), 4096)
        if not data:
            self.selector.unregister(sys.stdin.fileno())
            return
        self.typing += data
        while b"\n" in self.typing:
            raw, self.typing = self.typing.split(b"\n", 1)
            self.typed.append(raw.decode("utf-8", "replace").rstrip("\r"))
        self.drain()

    def drain(self) -> None:
        while self.typed and self.state in ("username", "password", "ready"):
            self.line(self.typed.popleft())

    def line(self, text: str) -> None:
        if self.state == "username":
            self.username, self.state = text.strip(), "password"
            self.prompt("Password: ")
        elif self.state == "password":
            self.state = "login"
            self.send(LoginRequest(self.username, text))
        else:
            self.command(text.strip())

    def command(self, text: str) -> None:
        words = text.split()
        if text == "Download_tempID":
            self.state = "waiting"
            self.send(TempIDRequest())
        elif text == "Upload_contact_log":
            self.upload()
        elif text == "logout":
            self.state = "logout"
            self.send(LogoutRequest())
        elif words and words[0] == "Beacon" and len(words) == 3 and self.tempid is not None:
            self.udp.sendto(encode_beacon(self.tempid), (words[1], int(words[2])))
            start, expiry = self.window_text(self.tempid)
            self.show(f"{self.tempid.tempid},", f"{start},", f"{expiry}.")
        else:
            self.show("Error. Invalid command")

    def upload(self) -> None:
        entries = [window for _, window in self.contacts]
        if not entries and self.rule == "empty-upload-nothing":
            self.show("Nothing to upload.")
            return
        for window in entries:
            start, expiry = self.window_text(window)
            self.show(f"{window.tempid},", f"{start},", f"{expiry};")
        self.state = "waiting"
        if not entries:
            self.send(UploadRequest((), final=True))
        for first in range(0, len(entries), CHUNK):
            part = tuple(entries[first : first + CHUNK])
            self.send(UploadRequest(part, final=first + CHUNK >= len(entries)))

    @staticmethod
    def window_text(window: TempIDWindow) -> tuple[str, str]:
        return stamp(window.start), stamp(window.expiry)

    # -- the server -----------------------------------------------------------------------
    def from_server(self) -> None:
        try:
            data = self.server.recv(65536)
        except OSError:
            data = b""
        if not data:
            if self.state != "closed":
                self.show("Connection to the server was lost.")
                self.status = 1
            self.selector.unregister(self.server)
            return
        self.incoming += data
        while len(self.incoming) >= 6 and self.status is None:
            length = int.from_bytes(self.incoming[2:6], "big")
            if self.incoming[0] != 1 or self.incoming[1] not in KNOWN_TYPES or length > MAX_BODY:
                self.malformed()
                return
            if len(self.incoming) < 6 + length:
                return
            raw = bytes(self.incoming[: 6 + length])
            del self.incoming[: 6 + length]
            if self.rule == "unknown-status-ignored" and raw[1] == 0x81 and raw[6:] > b"\x04":
                self.reply(LoginReply(LoginStatus.WRONG_PASSWORD))
                continue
            try:
                message = decode(raw)
            except ProtocolError:
                self.malformed()
                return
            self.reply(message)
        self.drain()

    def malformed(self) -> None:
        self.show("The server sent a frame this phone cannot read; disconnecting.")
        self.server.close()
        self.status = 1

    def reply(self, message: Message) -> None:
        if isinstance(message, LoginReply):
            self.login_reply(message.status)
        elif isinstance(message, TempIDReply):
            self.tempid, self.state = message.window, "ready"
            self.show(f"TempID: {message.window.tempid}")
        elif isinstance(message, UploadReply):
            self.state = "ready"
            self.show(f"Uploaded: the server received {message.received} entries.")
        elif isinstance(message, ErrorReply):
            self.show(f"Server error: {message.text}")
            if self.state == "waiting":
                self.state = "ready"
        elif isinstance(message, LogoutReply):
            self.state = "closed"
            if self.rule != "no-close-on-logout":
                self.server.close()
                self.status = 0

    def login_reply(self, status: LoginStatus) -> None:
        if status is LoginStatus.OK:
            self.state = "ready"
            self.show("Welcome to the BlueTrace Simulator!")
            self.log_path = Path.cwd() / f"{self.username}_contactlog.txt"
            self.load_log()
        elif status is LoginStatus.UNKNOWN_USER:
            self.state = "username"
            self.show("Invalid Username. Please try again")
            self.prompt("Username: ")
        elif status is LoginStatus.WRONG_PASSWORD:
            self.state = "password"
            self.show("Invalid Password. Please try again")
            self.prompt("Password: ")
        else:
            self.show("Invalid Password. Your account has been blocked. Please try again later"
                      if status is LoginStatus.BLOCKED_NOW else
                      "Your account is blocked due to multiple login failures. "
                      "Please try again later")
            self.server.close()
            self.status = 1

    # -- beacons and the contact log -------------------------------------------------------
    def load_log(self) -> None:
        assert self.log_path is not None  # set at login
        try:
            text = self.log_path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            return
        now = time.monotonic()
        for raw in text.split("\n"):
            line = raw.rstrip("\r")
            if line.strip():
                parts = line.split(" ")
                start = datetime.strptime(f"{parts[1]} {parts[2]}", "%d/%m/%Y %H:%M:%S")
                expiry = datetime.strptime(f"{parts[3]} {parts[4]}", "%d/%m/%Y %H:%M:%S")
                self.contacts.append((now, TempIDWindow(parts[0], start, expiry)))

    def datagram(self) -> None:
        data, sender = self.udp.recvfrom(65536)
        if self.log_path is None:
            return
        if self.rule == "version-31-refused" and len(data) == 59 and data[58] == 0x31:
            self.show("Rejected a beacon: version byte 0x31 is not 0x01.")
            return
        if len(data) == 59 and data[58] not in (0x01, 0x31):
            self.show(f"Rejected a beacon from {sender[0]}: its version byte is "
                      f"{data[58]:#04x}, not 0x01.")
            return
        try:
            window = decode_beacon(data)
        except ProtocolError:
            self.show(f"Rejected a malformed beacon from {sender[0]}.")
            return
        now = datetime.now().replace(microsecond=0)
        if self.rule == "exclusive-bounds":
            valid = window.start < now < window.expiry
        else:
            valid = window.start <= now <= window.expiry or self.rule == "expired-stored"
        start, expiry = self.window_text(window)
        self.show("received beacon:", f"{window.tempid},", f"{start},", f"{expiry}.",
                  "Current time is:", f"{stamp(now)}.",
                  f"The beacon is {'valid' if valid else 'invalid'}.")
        if valid:
            self.contacts.append((time.monotonic(), window))
            with self.log_path.open("ab+") as handle:
                handle.seek(0, os.SEEK_END)
                ends_open = handle.tell() > 0 and not self._ends_with_newline(handle)
                handle.write((("\n" if ends_open else "") + line_of(window) + "\n").encode())

    @staticmethod
    def _ends_with_newline(handle: BinaryIO) -> bool:
        handle.seek(-1, os.SEEK_END)
        last = handle.read(1)
        handle.seek(0, os.SEEK_END)
        return last == b"\n"

    def expire(self) -> None:
        if self.rule == "never-removed" or self.log_path is None:
            return
        now, gone = time.monotonic(), 0
        while self.contacts and self.contacts[0][0] + self.retention <= now:
            self.contacts.popleft()
            gone += 1
        if gone:
            text = "".join(line_of(window) + "\n" for _, window in self.contacts)
            temporary = self.log_path.with_suffix(".tmp")
            temporary.write_text(text, encoding="ascii")
            temporary.replace(self.log_path)


def main() -> int:
    parser = argparse.ArgumentParser(prog="broken-phone")
    parser.add_argument("server_ip")
    parser.add_argument("server_port", type=int)
    parser.add_argument("client_udp_port", type=int)
    parser.add_argument("--log-retention", type=float, default=180.0)
    parser.add_argument("--break", dest="break_rule", choices=sorted(BREAKS))
    return Phone(parser.parse_args()).run()


if __name__ == "__main__":
    sys.exit(main())
