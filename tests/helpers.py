"""Helpers that several test modules share, none of them a test: a terminal
model, a reader of contact_checks.txt, and a shell over an in-memory phone
and server. (Real processes and sockets are in ``tests/harness.py``.)"""

import re
import unicodedata
import zlib

from bluetrace.phone.shell import (
    WELCOME,
    CheckServer,
    Connect,
    Disconnect,
    Effect,
    Exit,
    Prompt,
    SendBeacon,
    Shell,
    Show,
    Transmit,
)
from bluetrace.testing import USERS, ConnectionPair, ServerSide

ALICE = "+61410888888"
SENDER = ("127.0.0.1", 8001)


# -- a terminal model ---------------------------------------------------------------
def cells(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


class Screen:
    """An endless screen ``width`` columns wide, fed the editor's output."""

    SEQUENCE = re.compile(r"\x1b\[(\d*)([ABCDHJK])")

    def __init__(self, width: int, *, deferred_wrap: bool = True) -> None:
        self.width = width
        self.deferred_wrap = deferred_wrap
        self.rows: list[list[str]] = [[]]
        self.row = self.col = 0
        self.pending = False
        self.bells = 0

    def _cell_row(self) -> list[str]:
        while len(self.rows) <= self.row:
            self.rows.append([])
        line = self.rows[self.row]
        while len(line) < self.width:
            line.append(" ")
        return line

    def feed(self, data: bytes) -> None:
        text = data.decode("utf-8")
        i = 0
        while i < len(text):
            ch = text[i]
            if ch == "\x1b":
                match = self.SEQUENCE.match(text, i)
                assert match, f"unexpected escape sequence {text[i : i + 8]!r}"
                self._sequence(int(match[1] or "1"), match[2], match[1])
                i = match.end()
                continue
            if ch == "\r":
                self.col, self.pending = 0, False
            elif ch == "\n":
                self.row, self.pending = self.row + 1, False
            elif ch == "\x07":
                self.bells += 1
            elif ch == "\t":
                self.col = min(self.width - 1, (self.col // 8 + 1) * 8)
            else:
                code = ord(ch)
                assert code >= 0x20, f"control character {ch!r}"
                assert not 0x7F <= code <= 0x9F, f"control character {ch!r}"
                self._print(ch)
            i += 1

    def _print(self, ch: str) -> None:
        width = cells(ch)
        if width == 0:
            return
        if self.pending:
            self.row, self.col, self.pending = self.row + 1, 0, False
        if self.col + width > self.width:
            self.row, self.col = self.row + 1, 0
        line = self._cell_row()
        line[self.col] = ch
        if width == 2:
            line[self.col + 1] = ""
        self.col += width
        if self.col >= self.width:
            if self.deferred_wrap:
                self.col, self.pending = self.width - 1, True
            else:
                self.row, self.col = self.row + 1, 0

    def _sequence(self, n: int, final: str, raw: str) -> None:
        self.pending = False
        if final == "A":
            self.row = max(0, self.row - n)
        elif final == "B":
            self.row += n
        elif final == "C":
            self.col = min(self.width - 1, self.col + n)
        elif final == "D":
            self.col = max(0, self.col - n)
        elif final == "H":
            self.row = self.col = 0
        elif final == "K":
            line = self._cell_row()
            line[self.col :] = [" "] * (self.width - self.col)
        elif final == "J":
            if raw == "2":
                self.rows = [[]]
            else:
                line = self._cell_row()
                line[self.col :] = [" "] * (self.width - self.col)
                del self.rows[self.row + 1 :]

    def lines(self) -> list[str]:
        shown = ["".join(row).rstrip() for row in self.rows]
        while shown and not shown[-1]:
            shown.pop()
        return shown

    @property
    def cursor(self) -> tuple[int, int]:
        return self.row, self.col


# -- contact_checks.txt ----------------------------------------------------------------
def committed_blocks(data: bytes) -> list[list[str]]:
    """The uploads in a contact_checks.txt, checking that it holds only
    legacy lines and then whole, committed blocks (with right CRCs)."""
    lines = data.split(b"\n")
    assert lines[-1] == b"", "the file ends in the middle of a line"
    lines.pop()
    lines = [line.removesuffix(b"\r") for line in lines]
    at = 0
    while at < len(lines) and not lines[at].startswith(b"begin "):
        at += 1
    uploads: list[list[str]] = []
    while at < len(lines):
        head = lines[at]
        assert head.startswith(b"begin "), head
        count = int(head[6:])
        records = lines[at + 1 : at + 1 + count]
        assert len(records) == count
        eol = b"\r\n" if b"\r\n" in data else b"\n"
        crc = zlib.crc32(b"".join(record + eol for record in records))
        assert lines[at + 1 + count] == f"commit {count} {crc:08x}".encode()
        uploads.append([record.decode() for record in records])
        at += count + 2
    return uploads


# -- the phone's shell, in memory ----------------------------------------------------
class Rig:
    """A shell over a phone over a server connection: what a user would see."""

    def __init__(self, side: ServerSide | None = None, **pair_options: object) -> None:
        self.pair = ConnectionPair(side, **pair_options)  # type: ignore[arg-type]
        self.clock = self.pair.clock
        self.shell = Shell(self.pair.phone, self.clock)
        self.shown: list[str] = []
        self.prompts: list[Prompt] = []
        self.beacons: list[SendBeacon] = []
        self.exit: int | None = None
        self.disconnected = False
        self.apply(self.shell.start())

    def apply(self, effects: list[Effect]) -> None:
        queue = list(effects)
        while queue:
            effect = queue.pop(0)
            if isinstance(effect, Show):
                self.shown += effect.text.split("\n")
            elif isinstance(effect, Prompt):
                self.prompts.append(effect)
            elif isinstance(effect, CheckServer):
                queue = self.shell.server_ready() + queue  # a bluetrace server answered
            elif isinstance(effect, Connect):
                queue = self.shell.connected(self.clock.monotonic()) + queue
            elif isinstance(effect, Transmit):
                queue = self.shell.events(self.pair.run()) + queue
            elif isinstance(effect, SendBeacon):
                self.beacons.append(effect)
                self.shown += effect.shown
            elif isinstance(effect, Disconnect):
                self.disconnected = True
            elif isinstance(effect, Exit):
                self.exit = effect.status

    def type(self, *lines: str) -> list[str]:
        before = len(self.shown)
        for line in lines:
            self.apply(self.shell.line(line))
        return self.shown[before:]

    def beacon_arrives(self, datagram: bytes) -> list[str]:
        before = len(self.shown)
        self.pair.phone.receive_beacon(datagram, SENDER, self.clock.monotonic())
        self.apply(self.shell.events(self.pair.phone.next_events()))
        return self.shown[before:]

    def login(self, user: str = ALICE) -> None:
        assert self.type(user, USERS[user]) == [WELCOME]
