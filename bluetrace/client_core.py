"""The phone's rules, with no terminal, sockets or system clock.

Typed lines, server messages, datagrams and the injected clock go in;
effects come out (text to show, a prompt, a frame or a beacon to send, an
exit), and the contact log changes through an injected store. A simulator
can therefore drive many phones from one process, and a test can step the
3-minute retention in microseconds.
"""

import enum
import ipaddress
import re
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from bluetrace import wire
from bluetrace.clock import Clock
from bluetrace.errors import ProtocolError
from bluetrace.messages import (
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
    decode_beacon,
    encode_beacon,
)
from bluetrace.records import contact_line
from bluetrace.timefmt import format_timestamp
from bluetrace.wire import LoginStatus

DEFAULT_RETENTION = 180.0
PROMPT = "> "
WELCOME = "Welcome to the BlueTrace Simulator!"
INVALID_USERNAME = "Invalid Username. Please try again"
INVALID_PASSWORD = "Invalid Password. Please try again"  # noqa: S105 (a message)
BLOCKED_NOW = "Invalid Password. Your account has been blocked. Please try again later"
BLOCKED = "Your account is blocked due to multiple login failures. Please try again later"
INVALID_COMMAND = "Error. Invalid command"
BEACON_USAGE = "Usage: Beacon <dest IP> <dest port>  (port 1-65535)"
_HOSTNAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)


@dataclass(frozen=True)
class Show:
    text: str


@dataclass(frozen=True)
class Prompt:
    text: str
    secret: bool = False


@dataclass(frozen=True)
class Send:
    message: Message


@dataclass(frozen=True)
class SendBeacon:
    """Send ``data`` to (host, port); show ``shown`` only if it went out."""

    data: bytes
    host: str
    port: int
    shown: tuple[str, ...]


@dataclass(frozen=True)
class Exit:
    status: int


Effect = Show | Prompt | Send | SendBeacon | Exit


class ContactLogStore(Protocol):
    def load(self) -> tuple[list[TempIDWindow], list[str]]:
        """Entries already stored, and a note for each line that was skipped."""

    def append(self, line: str) -> None: ...

    def rewrite(self, lines: list[str]) -> None: ...


class State(enum.Enum):
    USERNAME = "typing the username"
    PASSWORD = "typing the password"  # noqa: S105 (a state name)
    LOGGING_IN = "waiting for the login verdict"
    READY = "at the command prompt"
    WAITING = "waiting for the server's reply"
    LOGGING_OUT = "waiting for the logout reply"
    DONE = "finished"


class ClientCore:
    def __init__(
        self,
        clock: Clock,
        open_store: "StoreFactory",
        *,
        retention: float = DEFAULT_RETENTION,
    ) -> None:
        self.clock = clock
        self.open_store = open_store
        self.retention = retention
        self.state = State.USERNAME
        self.username = ""
        self.tempid: TempIDWindow | None = None
        self.store: ContactLogStore | None = None
        self.contacts: deque[tuple[float, TempIDWindow]] = deque()
        """(monotonic arrival, entry), oldest first: with one retention for all,
        arrival order is also removal order."""
        self._typed_ahead: deque[str] = deque()

    # -- inputs ---------------------------------------------------------------
    def start(self) -> list[Effect]:
        return [Prompt("Username: ")]

    def line(self, text: str) -> list[Effect]:
        if self.state in (State.LOGGING_IN, State.WAITING, State.LOGGING_OUT):
            self._typed_ahead.append(text)  # a pipe may run ahead of the replies
            return []
        if self.state is State.USERNAME:
            return self._username(text.strip())
        if self.state is State.PASSWORD:
            return self._password(text)
        if self.state is State.READY:
            return self._command(text.strip())
        return []

    def frame(self, message: Message) -> list[Effect]:
        effects = self._reply(message)
        return effects + self._drain_typed_ahead()

    def datagram(self, data: bytes, sender: tuple[str, int]) -> list[Effect]:
        if self.store is None or self.state is State.DONE:
            return []  # no contact log before login: nothing to keep it in
        try:
            window = decode_beacon(data)
        except ProtocolError as exc:
            return self._async(
                [Show(f"Rejected a malformed beacon from {sender[0]}:{sender[1]}: {exc}")]
            )
        now = self.clock.wall()
        valid = window.contains(now)
        tempid, start, expiry = window.fields_text()
        shown = [
            Show("received beacon:"),
            Show(f"{tempid},"),
            Show(f"{start},"),
            Show(f"{expiry}."),
            Show("Current time is:"),
            Show(f"{format_timestamp(now)}."),
            Show(f"The beacon is {'valid' if valid else 'invalid'}."),
        ]
        if valid:
            try:
                self.store.append(contact_line(window))
            except OSError as exc:
                shown.append(Show(f"Could not save it to the contact log: {exc.strerror or exc}"))
            else:
                self.contacts.append((self.clock.monotonic(), window))
        return self._async(shown)

    def timer(self) -> list[Effect]:
        """Drop the entries whose retention has run out, in one rewrite."""
        now = self.clock.monotonic()
        expired = 0
        while self.contacts and self.contacts[0][0] + self.retention <= now:
            self.contacts.popleft()
            expired += 1
        if not expired or self.store is None:
            return []
        try:
            self.store.rewrite([contact_line(entry) for _, entry in self.contacts])
        except OSError as exc:
            return self._async([Show(f"Could not update the contact log: {exc.strerror or exc}")])
        return []

    def next_deadline(self) -> float | None:
        return self.contacts[0][0] + self.retention if self.contacts else None

    def server_closed(self) -> list[Effect]:
        if self.state is State.DONE:
            return []
        if self.state is State.LOGGING_OUT:
            return self._finish(0)
        self.state = State.DONE
        return [Show("Connection to the server was lost."), Exit(1)]

    def end_of_input(self) -> list[Effect]:
        """No more typing (EOF or Ctrl-C): log out cleanly if logged in."""
        if self.state in (State.USERNAME, State.PASSWORD):
            return self._finish(0)
        if self.state is State.READY:
            return self._command("logout")
        if self.state in (State.LOGGING_IN, State.WAITING):
            self._typed_ahead.append("logout")
        return []

    # -- login ------------------------------------------------------------------
    def _username(self, name: str) -> list[Effect]:
        if not name:
            return [Prompt("Username: ")]
        self.username = name
        self.state = State.PASSWORD
        return [Prompt("Password: ", secret=True)]

    def _password(self, password: str) -> list[Effect]:
        try:
            request = LoginRequest(self.username, password)
        except ProtocolError:
            # White space or an over-long text can match no credentials.txt line.
            if not wire.is_credential(self.username):
                self.state = State.USERNAME
                return [Show(INVALID_USERNAME), Prompt("Username: ")]
            return [Show(INVALID_PASSWORD), Prompt("Password: ", secret=True)]
        self.state = State.LOGGING_IN
        return [Send(request)]

    def _login_reply(self, status: LoginStatus) -> list[Effect]:
        if status is LoginStatus.OK:
            return self._logged_in()
        if status is LoginStatus.UNKNOWN_USER:
            self.state = State.USERNAME
            return [Show(INVALID_USERNAME), Prompt("Username: ")]
        if status is LoginStatus.WRONG_PASSWORD:
            self.state = State.PASSWORD
            return [Show(INVALID_PASSWORD), Prompt("Password: ", secret=True)]
        text = BLOCKED_NOW if status is LoginStatus.BLOCKED_NOW else BLOCKED
        self.state = State.DONE
        return [Show(text), Exit(1)]

    def _logged_in(self) -> list[Effect]:
        self.state = State.READY
        effects: list[Effect] = [Show(WELCOME)]
        self.store = self.open_store(self.username)
        try:
            entries, problems = self.store.load()
        except OSError as exc:
            entries, problems = [], [f"cannot read it ({exc.strerror or exc}); starting empty"]
        now = self.clock.monotonic()
        # Entries found at start are treated as received now (spec-notes, section 4).
        self.contacts.extend((now, entry) for entry in entries)
        effects += [Show(f"Contact log: {problem}") for problem in problems]
        return [*effects, Prompt(PROMPT)]

    # -- commands ---------------------------------------------------------------
    def _command(self, text: str) -> list[Effect]:
        if not text:
            return [Prompt(PROMPT)]
        words = text.split()
        if text == "Download_tempID":
            self.state = State.WAITING
            return [Send(TempIDRequest())]
        if text == "Upload_contact_log":
            return self._upload()
        if text == "logout":
            self.state = State.LOGGING_OUT
            return [Send(LogoutRequest())]
        if words[0] == "Beacon":
            return [*self._beacon(words[1:]), Prompt(PROMPT)]
        return [Show(INVALID_COMMAND), Prompt(PROMPT)]

    def _upload(self) -> list[Effect]:
        entries = [entry for _, entry in self.contacts]
        if not entries:
            return [Show("Your contact log is empty: nothing to upload."), Prompt(PROMPT)]
        effects: list[Effect] = []
        for entry in entries:
            tempid, start, expiry = entry.fields_text()
            effects += [Show(f"{tempid},"), Show(f"{start},"), Show(f"{expiry};")]
        effects += [Send(chunk) for chunk in _chunks(entries)]
        self.state = State.WAITING
        return effects

    def _beacon(self, args: list[str]) -> list[Effect]:
        if len(args) != 2 or not _is_host(args[0]) or not _is_port(args[1]):
            return [Show(BEACON_USAGE)]
        if self.tempid is None:
            return [Show("No TempID yet: run Download_tempID first.")]
        effects: list[Effect] = []
        if self.clock.wall() > self.tempid.expiry:
            effects.append(
                Show(
                    f"Warning: your TempID expired at {format_timestamp(self.tempid.expiry)}; "
                    "sending it anyway. Run Download_tempID for a new one."
                )
            )
        tempid, start, expiry = self.tempid.fields_text()
        shown = (f"{tempid},", f"{start},", f"{expiry}.")
        effects.append(SendBeacon(encode_beacon(self.tempid), args[0], int(args[1]), shown))
        return effects

    # -- replies ----------------------------------------------------------------
    def _reply(self, message: Message) -> list[Effect]:
        if isinstance(message, ErrorReply):
            return self._error(message)
        if self.state is State.LOGGING_IN and isinstance(message, LoginReply):
            return self._login_reply(message.status)
        if self.state is State.WAITING and isinstance(message, TempIDReply):
            self.tempid = message.window
            self.state = State.READY
            return [Show(f"TempID: {message.window.tempid}"), Prompt(PROMPT)]
        if self.state is State.WAITING and isinstance(message, UploadReply):
            self.state = State.READY
            return [
                Show(f"Contact log uploaded: the server received {message.received} entries."),
                Prompt(PROMPT),
            ]
        if self.state is State.LOGGING_OUT and isinstance(message, LogoutReply):
            return self._finish(0)
        self.state = State.DONE
        return [
            Show(f"The server sent an unexpected {type(message).__name__}; disconnecting."),
            Exit(1),
        ]

    def _error(self, error: ErrorReply) -> list[Effect]:
        effects: list[Effect] = [Show(f"Server error: {error.text}")]
        if self.state is State.WAITING:
            self.state = State.READY
            effects.append(Prompt(PROMPT))
        return effects

    def _finish(self, status: int) -> list[Effect]:
        self.state = State.DONE
        return [Exit(status)]

    def _async(self, effects: Sequence[Effect]) -> list[Effect]:
        """Output that arrives on its own re-shows the prompt the user was at."""
        if self.state is State.READY:
            return [*effects, Prompt(PROMPT)]
        return list(effects)

    def _drain_typed_ahead(self) -> list[Effect]:
        effects: list[Effect] = []
        while self._typed_ahead and self.state in (State.USERNAME, State.PASSWORD, State.READY):
            effects += self.line(self._typed_ahead.popleft())
        return effects


class StoreFactory(Protocol):
    def __call__(self, username: str) -> ContactLogStore: ...


def _chunks(entries: list[TempIDWindow]) -> Iterator[UploadRequest]:
    size = wire.MAX_UPLOAD_CHUNK
    for first in range(0, len(entries), size):
        part = tuple(entries[first : first + size])
        yield UploadRequest(part, final=first + size >= len(entries))


def _is_host(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return _HOSTNAME.fullmatch(text) is not None
    return True


def _is_port(text: str) -> bool:
    return text.isascii() and text.isdigit() and 1 <= int(text) <= 65535
