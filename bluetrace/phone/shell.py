"""The phone's command interpreter: typed lines in, the specification's texts out.

It sits between the terminal and :class:`~bluetrace.phone.core.Phone`: a line
becomes an API call, and each phone event becomes the text the
specification shows. Like the phone it does no I/O: it returns effects
(text to show, a prompt, "connect now", a beacon to send, an exit) for the
program to carry out, so every conversation is testable without a terminal.
"""

import enum
import ipaddress
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from bluetrace.phone.commands import HELP_TEXT
from bluetrace.phone.core import (
    Address,
    BeaconAccepted,
    BeaconIgnored,
    BeaconMalformed,
    BeaconRejected,
    ConnectionClosed,
    ContactLogFull,
    ContactsExpired,
    LoggedIn,
    LoggedOut,
    LoginResult,
    Phone,
    PhoneEvent,
    RegisterResult,
    ServerError,
    StoreFailed,
    TempIDIssued,
    UploadAcknowledged,
    UploadRefused,
)
from bluetrace.protocol import wire
from bluetrace.protocol.clock import Clock
from bluetrace.protocol.errors import LocalProtocolError
from bluetrace.protocol.timefmt import format_timestamp
from bluetrace.protocol.wire import LoginStatus, RegisterStatus

PROMPT = "> "
USERNAME_PROMPT = "Username: "
PASSWORD_PROMPT = "Password: "  # noqa: S105 (a prompt)
WELCOME = "Welcome to the BlueTrace Simulator!"
INVALID_USERNAME = "Invalid Username. Please try again"
INVALID_PASSWORD = "Invalid Password. Please try again"  # noqa: S105 (a message)
BLOCKED_NOW = "Invalid Password. Your account has been blocked. Please try again later"
BLOCKED = "Your account is blocked due to multiple login failures. Please try again later"
INVALID_COMMAND = "Error. Invalid command"
BEACON_USAGE = "Usage: Beacon <dest IP> <dest port>  (an IPv4 address, port 1-65535)"
BEACON_REPORTS_PER_SECOND = 5
"""Beacon reports shown in full each second; the rest are summarised, so a
flood cannot scroll the user's own commands away."""
MAX_TYPED_AHEAD = 100
"""Lines kept, to run in order, while a reply from the server is awaited.
A pipe is then not read until they have run (the rest waits in the pipe);
a line typed past the bound anyway is refused with a line that names it."""
WAITING_TEXT = "Waiting for the server: {command} not run ({count} commands already wait)."
NOT_RUN_TEXT = "The commands typed while the server was awaited were not run."


# -- effects ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Show:
    text: str


@dataclass(frozen=True, slots=True)
class Prompt:
    text: str
    secret: bool = False


@dataclass(frozen=True, slots=True)
class CheckServer:
    """Ask now whether a bluetrace server answers at the address
    (:mod:`bluetrace.phone.probe`); then call ``server_ready`` or
    ``server_unusable``. The password is asked only once it has answered."""


@dataclass(frozen=True, slots=True)
class Connect:
    """Open the TCP connection now; then call ``connected`` or ``connect_failed``."""


@dataclass(frozen=True, slots=True)
class Transmit:
    """The phone has bytes for the server: take ``phone.data_to_send()``."""


@dataclass(frozen=True, slots=True)
class SendBeacon:
    """Send ``data`` to ``address``; show ``shown`` only if it went out."""

    data: bytes
    address: Address
    shown: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Disconnect:
    """The session is over: close the TCP connection (the client closes first)."""


@dataclass(frozen=True, slots=True)
class Exit:
    status: int


Effect = Show | Prompt | CheckServer | Connect | Transmit | SendBeacon | Disconnect | Exit


class Stage(enum.Enum):
    USERNAME = "typing the username"
    CHECKING = "waiting for the server to answer the check"
    NEW_NUMBER = "typing the number to register"
    NEW_PASSWORD = "typing the new password"  # noqa: S105 (a stage name)
    NEW_AGAIN = "typing the new password again"
    REGISTERING = "waiting for the registration verdict"
    PASSWORD = "typing the password"  # noqa: S105 (a stage name)
    CONNECTING = "connecting to the server"
    LOGGING_IN = "waiting for the login verdict"
    READY = "at the command prompt"
    WAITING = "waiting for the server's reply"
    LOGGING_OUT = "waiting for the logout reply"
    DONE = "finished"


_BUSY = (
    Stage.CHECKING,
    Stage.CONNECTING,
    Stage.LOGGING_IN,
    Stage.REGISTERING,
    Stage.WAITING,
    Stage.LOGGING_OUT,
)
_TYPING = (
    Stage.USERNAME,
    Stage.PASSWORD,
    Stage.NEW_NUMBER,
    Stage.NEW_PASSWORD,
    Stage.NEW_AGAIN,
)
REGISTER_WORD = "register"
NEW_NUMBER_PROMPT = "Phone number to register (e.g. +61410123456): "
REGISTER_TEXTS = {
    RegisterStatus.REGISTERED: "Registered {number}: log in with it now.",
    RegisterStatus.TAKEN: "{number} is already registered.",
    RegisterStatus.NOT_A_PHONE_NUMBER: "Not an international phone number: + and 7-15 digits.",
    RegisterStatus.CLOSED: "This server does not take registrations.",
}


class Shell:
    def __init__(self, phone: Phone, clock: Clock) -> None:
        self.phone = phone
        self.clock = clock
        self.stage = Stage.USERNAME
        self.connected_once = False
        self._username = ""
        self._password = ""
        self._server_checked = False
        self._after_check = Stage.PASSWORD
        """Where typing goes on once the server has answered the check."""
        self._typed_ahead: deque[str | None] = deque()
        """Lines that arrived while a reply was awaited, in order; None marks
        the end of input, which takes effect in its place among them."""
        self._exit_status = 0
        self._registering = False
        self._report_window = -1.0
        self._reports_left = BEACON_REPORTS_PER_SECOND
        self._summary: dict[str, int] = {}
        self._summary_senders: set[Address] = set()

    # -- inputs ---------------------------------------------------------------
    def start(self) -> list[Effect]:
        """The username is asked at once while the server is checked."""
        return [CheckServer(), Prompt(USERNAME_PROMPT)]

    def server_ready(self) -> list[Effect]:
        """A bluetrace server answered: the password may be asked."""
        self._server_checked = True
        if self.stage is not Stage.CHECKING:
            return []
        self.stage = self._after_check
        effects: list[Effect] = [Prompt(PASSWORD_PROMPT, secret=True)]
        if self.stage is Stage.NEW_NUMBER:
            effects = [Prompt(NEW_NUMBER_PROMPT)]
        return effects + self._drain_typed_ahead()

    def server_unusable(self, reason: str) -> list[Effect]:
        """No bluetrace server to log in to: say why, before any password."""
        if self.stage is Stage.DONE:
            return []
        self._typed_ahead.clear()
        return [Show(f"Cannot use the server: {reason}."), *self._finish(1)]

    def line(self, text: str) -> list[Effect]:
        """One line typed (or read from a pipe)."""
        if self.stage in _BUSY or (self.stage is Stage.READY and self.phone.busy):
            # A pipe may run ahead of the replies (or the phone is refreshing
            # its TempID on its own): keep the order.
            if len(self._typed_ahead) < MAX_TYPED_AHEAD:
                self._typed_ahead.append(text)
                return []
            shown = " ".join(text.split())[:60] or "an empty line"
            if self.stage not in (Stage.READY, Stage.WAITING, Stage.LOGGING_OUT):
                shown = "a line typed during login"  # perhaps a password: not shown
            return [Show(WAITING_TEXT.format(command=shown, count=len(self._typed_ahead)))]
        if self.stage is Stage.USERNAME:
            return self._username_typed(text.strip())
        if self.stage is Stage.PASSWORD:
            return self._password_typed(text)
        if self.stage in (Stage.NEW_NUMBER, Stage.NEW_PASSWORD, Stage.NEW_AGAIN):
            return self._registration_typed(text)
        if self.stage is Stage.READY:
            return self._command(text.strip())
        return []

    @property
    def typed_ahead_full(self) -> bool:
        """As many lines wait as are kept: take no more for now."""
        return len(self._typed_ahead) >= MAX_TYPED_AHEAD

    def end_of_input(self, *, interrupted: bool = False) -> list[Effect]:
        """No more typing. At a login prompt, or on Ctrl-C during login, the
        phone ends at once and sends nothing more; logged in, it logs out
        cleanly. End of a pipe takes effect after the lines before it."""
        if interrupted:
            self._exit_status = 130
            self._typed_ahead.clear()
            if self.stage in (
                Stage.CHECKING, Stage.CONNECTING, Stage.LOGGING_IN, Stage.REGISTERING
            ):
                return [Disconnect(), *self._finish(130)]
        elif self.stage in _BUSY:
            self._typed_ahead.append(None)
            return []
        if self.stage in _TYPING:
            return self._finish(self._exit_status)
        if self.stage is Stage.READY:
            return self._command("logout")
        if self.stage is Stage.WAITING:
            self._typed_ahead.append("logout")
        return []

    def connected(self, now: float) -> list[Effect]:
        """The TCP connection is up: send the login typed meanwhile."""
        self.connected_once = True
        if self._registering:
            return self._send_registration(now)
        return self._send_login(now)

    def connect_failed(self, reason: str) -> list[Effect]:
        if self.stage is Stage.DONE:
            return []
        self._typed_ahead.clear()
        self.stage = Stage.DONE
        return [Show(f"Cannot reach the server: {reason}"), Exit(1)]

    def events(self, events: Sequence[PhoneEvent]) -> list[Effect]:
        """Turn what the phone reported into text and next steps."""
        effects: list[Effect] = []
        for event in events:
            effects += self._event(event)
        if self.stage in (*_TYPING, Stage.READY) and not self.phone.busy:
            effects += self._drain_typed_ahead()
        return effects

    def notice(self, text: str) -> list[Effect]:
        """A line the program has to show on its own (not from the phone),
        with the prompt the user was at shown again."""
        return self._async([Show(text)])

    # -- time ---------------------------------------------------------------------
    def get_timer(self) -> float | None:
        if self._summary:
            return self._report_window + 1.0
        return None

    def handle_timer(self, now: float) -> list[Effect]:
        if self._summary and now >= self._report_window + 1.0:
            return self._async([Show(self._take_summary())])
        return []

    # -- login -----------------------------------------------------------------
    def _username_typed(self, name: str) -> list[Effect]:
        if not name:
            return [Prompt(USERNAME_PROMPT)]
        if name == REGISTER_WORD:
            return self._next_field(Stage.NEW_NUMBER)
        self._username = name
        return self._next_field(Stage.PASSWORD)

    def _next_field(self, stage: Stage) -> list[Effect]:
        """Go on to ``stage``, or wait there until the server has answered
        the check: nobody types a password for a server that is not there."""
        if not self._server_checked:
            self._after_check = stage
            self.stage = Stage.CHECKING
            return []
        self.stage = stage
        if stage is Stage.NEW_NUMBER:
            return [Prompt(NEW_NUMBER_PROMPT)]
        return [Prompt(PASSWORD_PROMPT, secret=True)]

    def _password_typed(self, password: str) -> list[Effect]:
        if not wire.is_credential(self._username):
            # White space or an over-long text can match no credentials.txt line.
            self.stage = Stage.USERNAME
            return [Show(INVALID_USERNAME), Prompt(USERNAME_PROMPT)]
        if not wire.is_credential(password):
            return [Show(INVALID_PASSWORD), Prompt(PASSWORD_PROMPT, secret=True)]
        self._password = password
        if not self.connected_once:
            self.stage = Stage.CONNECTING
            return [Connect()]
        return self._send_login(self.clock.monotonic())

    def _registration_typed(self, text: str) -> list[Effect]:
        if self.stage is Stage.NEW_NUMBER:
            self._username = text.strip()
            if not wire.is_phone_number(self._username):
                # The server would answer NOT_A_PHONE_NUMBER: say so before
                # the password is typed twice.
                return [
                    Show(REGISTER_TEXTS[RegisterStatus.NOT_A_PHONE_NUMBER]),
                    Prompt(NEW_NUMBER_PROMPT),
                ]
            self.stage = Stage.NEW_PASSWORD
            return [Prompt(PASSWORD_PROMPT, secret=True)]
        if self.stage is Stage.NEW_PASSWORD:
            self._password = text
            self.stage = Stage.NEW_AGAIN
            return [Prompt("Password again: ", secret=True)]
        if text != self._password:
            self._password = ""
            self.stage = Stage.USERNAME
            return [Show("The passwords differ; nothing was registered."), Prompt(USERNAME_PROMPT)]
        if not (wire.is_credential(self._username) and wire.is_credential(text)):
            self._password = ""
            self.stage = Stage.USERNAME
            return [
                Show("A number and a password are printable text with no spaces."),
                Prompt(USERNAME_PROMPT),
            ]
        self._registering = True
        if not self.connected_once:
            self.stage = Stage.CONNECTING
            return [Connect()]
        return self._send_registration(self.clock.monotonic())

    def _send_registration(self, now: float) -> list[Effect]:
        password, self._password = self._password, ""
        self._registering = False
        try:
            self.phone.register(self._username, password, now)
        except LocalProtocolError as exc:
            self.stage = Stage.DONE
            return [Show(f"Cannot register: {exc}"), Exit(1)]
        self.stage = Stage.REGISTERING
        return [Transmit()]

    def _send_login(self, now: float) -> list[Effect]:
        password, self._password = self._password, ""
        try:
            self.phone.login(self._username, password, now)
        except LocalProtocolError as exc:
            self.stage = Stage.DONE
            return [Show(f"Cannot log in: {exc}"), Exit(1)]
        self.stage = Stage.LOGGING_IN
        return [Transmit()]

    # -- commands ---------------------------------------------------------------
    def _command(self, text: str) -> list[Effect]:
        if not text:
            return [Prompt(PROMPT)]
        words = text.split()
        now = self.clock.monotonic()
        if text == "Download_tempID":
            self.phone.request_tempid(now)
            self.stage = Stage.WAITING
            return [Transmit()]
        if text == "Upload_contact_log":
            effects: list[Effect] = []
            for entry in self.phone.contacts:
                tempid, start, expiry = entry.fields_text()
                effects += [Show(f"{tempid},"), Show(f"{start},"), Show(f"{expiry};")]
            self.phone.upload(now)
            self.stage = Stage.WAITING
            return [*effects, Transmit()]
        if text == "logout":
            self.phone.logout(now)
            self.stage = Stage.LOGGING_OUT
            return [Transmit()]
        if text in ("help", "?"):
            return [Show(HELP_TEXT), Prompt(PROMPT)]
        if words[0] == "Beacon":
            return [*self._beacon(words[1:]), Prompt(PROMPT)]
        return [Show(INVALID_COMMAND), Prompt(PROMPT)]

    def _beacon(self, args: list[str]) -> list[Effect]:
        address = _address(args)
        if address is None:
            return [Show(BEACON_USAGE)]
        tempid = self.phone.tempid
        if tempid is None:
            return [Show("No TempID yet: run Download_tempID first.")]
        effects: list[Effect] = []
        if self.clock.wall() > tempid.expiry:
            effects.append(
                Show(
                    f"Warning: your TempID expired at {format_timestamp(tempid.expiry)}; "
                    "sending it anyway. Run Download_tempID for a new one."
                )
            )
        text_id, start, expiry = tempid.fields_text()
        data = self.phone.make_beacon(self.clock.monotonic())
        effects.append(SendBeacon(data, address, (f"{text_id},", f"{start},", f"{expiry}.")))
        return effects

    # -- events -------------------------------------------------------------------
    def _event(self, event: PhoneEvent) -> list[Effect]:
        if isinstance(event, BeaconAccepted | BeaconRejected | BeaconMalformed):
            return self._beacon_report(event)
        if isinstance(event, BeaconIgnored | ContactsExpired):
            return []
        if isinstance(event, LoginResult):
            return self._login_result(event.status)
        if isinstance(event, RegisterResult):
            self.stage = Stage.USERNAME
            text = REGISTER_TEXTS[event.status].format(number=self._username)
            return [Show(text), Prompt(USERNAME_PROMPT)]
        if isinstance(event, LoggedIn):
            self.stage = Stage.READY
            notes = [Show(f"Contact log: {problem}") for problem in event.problems]
            return [Show(WELCOME), *notes, Prompt(PROMPT)]
        if isinstance(event, TempIDIssued):
            self.stage = Stage.READY
            return [Show(f"TempID: {event.window.tempid}"), Prompt(PROMPT)]
        if isinstance(event, UploadAcknowledged):
            self.stage = Stage.READY
            shown = [Show(f"Contact log uploaded: the server received {_entries(event.received)}.")]
            if event.left_out:
                shown.append(Show(left_out_text(event.left_out, self.phone.max_contacts)))
            return [*shown, Prompt(PROMPT)]
        if isinstance(event, ContactLogFull):
            return self._async([Show(full_text(event.limit))])
        if isinstance(event, UploadRefused):
            self.stage = Stage.READY
            return [Show(f"Upload refused by the server: {event.text}"), Prompt(PROMPT)]
        if isinstance(event, ServerError):
            return self._server_error(event)
        if isinstance(event, LoggedOut):
            return [Disconnect(), *self._finish(self._exit_status)]
        if isinstance(event, ConnectionClosed):
            return self._closed(event.reason)
        if isinstance(event, StoreFailed):
            text = event.reason[:1].upper() + event.reason[1:] + "."
            if event.fatal:
                self.stage = Stage.LOGGING_OUT
                self._exit_status = 1
                return [Show(text), Transmit()]
            return self._async([Show(text)])
        return []

    def _login_result(self, status: LoginStatus) -> list[Effect]:
        if status is LoginStatus.OK:
            return []  # LoggedIn follows
        if status is LoginStatus.UNKNOWN_USER:
            self.stage = Stage.USERNAME
            return [Show(INVALID_USERNAME), Prompt(USERNAME_PROMPT)]
        if status is LoginStatus.WRONG_PASSWORD:
            self.stage = Stage.PASSWORD
            return [Show(INVALID_PASSWORD), Prompt(PASSWORD_PROMPT, secret=True)]
        text = BLOCKED_NOW if status is LoginStatus.BLOCKED_NOW else BLOCKED
        return [Show(text), Disconnect(), *self._finish(1)]

    def _server_error(self, event: ServerError) -> list[Effect]:
        effects: list[Effect] = [Show(f"Server error: {event.text}")]
        if self.stage is Stage.WAITING:
            self.stage = Stage.READY
            effects.append(Prompt(PROMPT))
        elif self.stage is Stage.LOGGING_IN:
            self.stage = Stage.PASSWORD
            effects.append(Prompt(PASSWORD_PROMPT, secret=True))
        elif self.stage is Stage.REGISTERING:
            self.stage = Stage.USERNAME
            effects.append(Prompt(USERNAME_PROMPT))
        return effects

    def _closed(self, reason: str) -> list[Effect]:
        if self.stage is Stage.DONE:
            return []
        effects: list[Effect] = [Disconnect()]
        if reason:
            effects.append(Show(f"Connection to the server was lost: {reason}."))
        if any(text is not None for text in self._typed_ahead):
            effects.append(Show(NOT_RUN_TEXT))
        self._typed_ahead.clear()
        return effects + self._finish(1 if self._exit_status == 0 else self._exit_status)

    # -- beacon reports, rate-limited ---------------------------------------------
    def _beacon_report(
        self, event: BeaconAccepted | BeaconRejected | BeaconMalformed
    ) -> list[Effect]:
        now = self.clock.monotonic()
        effects: list[Effect] = []
        if now >= self._report_window + 1.0:
            if self._summary:
                effects.append(Show(self._take_summary()))
            self._report_window = now
            self._reports_left = BEACON_REPORTS_PER_SECOND
        if self._reports_left <= 0:
            kind = (
                "valid"
                if isinstance(event, BeaconAccepted)
                else "invalid"
                if isinstance(event, BeaconRejected)
                else "malformed"
            )
            self._summary[kind] = self._summary.get(kind, 0) + 1
            self._summary_senders.add(event.sender)
            return self._async(effects) if effects else []
        self._reports_left -= 1
        return self._async(effects + _report_lines(event))

    def _take_summary(self) -> str:
        counts, self._summary = self._summary, {}
        senders, self._summary_senders = self._summary_senders, set()
        total = sum(counts.values())
        kinds = [kind for kind in ("valid", "invalid", "malformed") if kind in counts]
        parts = ", ".join(f"{counts[kind]:,} {kind}" for kind in kinds)
        who = f"{len(senders):,} sender{'s' if len(senders) != 1 else ''}"
        noun = "beacon" if total == 1 else "beacons"
        return f"... and {total:,} more {noun} not shown ({parts}), from {who}."

    # -- helpers -------------------------------------------------------------------
    def _finish(self, status: int) -> list[Effect]:
        self.stage = Stage.DONE
        return [Exit(status)]

    def _async(self, effects: Sequence[Effect]) -> list[Effect]:
        """Output that arrives on its own re-shows the prompt the user was at."""
        if self.stage is Stage.READY:
            return [*effects, Prompt(PROMPT)]
        return list(effects)

    def _drain_typed_ahead(self) -> list[Effect]:
        effects: list[Effect] = []
        while (
            self._typed_ahead
            and self.stage in (*_TYPING, Stage.READY)
            and not self.phone.busy
        ):
            text = self._typed_ahead.popleft()
            effects += self.end_of_input() if text is None else self.line(text)
        return effects


def _report_lines(event: BeaconAccepted | BeaconRejected | BeaconMalformed) -> list[Effect]:
    if isinstance(event, BeaconMalformed):
        host, port = event.sender
        return [Show(f"Rejected a malformed beacon from {host}:{port}: {event.reason}")]
    tempid, start, expiry = event.window.fields_text()
    verdict = "valid" if isinstance(event, BeaconAccepted) else "invalid"
    return [
        Show("received beacon:"),
        Show(f"{tempid},"),
        Show(f"{start},"),
        Show(f"{expiry}."),
        Show("Current time is:"),
        Show(f"{format_timestamp(event.at)}."),
        Show(f"The beacon is {verdict}."),
    ]


def full_text(limit: int) -> str:
    """Shown once when the log reaches its cap (protocol_spec.md, section 5)."""
    return (
        f"The contact log is full ({limit:,} entries): from now on each new contact "
        "replaces the oldest one."
    )


def left_out_text(count: int, limit: int) -> str:
    """After an upload that lacks contacts a full log pushed out."""
    return (
        f"{_entries(count).capitalize()} received within the retention period "
        f"{'was' if count == 1 else 'were'} left out: the contact log holds at most "
        f"{limit:,} and made room for newer ones."
    )


def _entries(count: int) -> str:
    return f"{count:,} {'entry' if count == 1 else 'entries'}"


def _address(args: list[str]) -> Address | None:
    """``<dest IP> <dest port>``: an IPv4 address (no name lookup happens in
    the loop) and a port 1-65535."""
    if len(args) != 2:
        return None
    host, port = args
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if ip.version != 4 or not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        return None
    return str(ip), int(port)
