"""The health authority's rules, with no sockets, files or system clock.

Messages and the injected clock go in; replies, terminal lines and a
"close this connection" flag come out. Durable writes go through two small
injected stores, so a test can make them fail. Protocol state per connection
follows the table in protocol_spec.md, section 4.
"""

import enum
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from bluetrace.clock import Clock
from bluetrace.errors import FrameTooLargeError, ProtocolError
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
)
from bluetrace.records import tempid_line
from bluetrace.timefmt import format_timestamp
from bluetrace.wire import ErrorCode, LoginStatus

MAX_FAILURES = 3
MAX_UPLOAD_ENTRIES = 200_000
DEFAULT_TEMPID_LIFETIME = 900


class LineStore(Protocol):
    def append(self, lines: list[str]) -> None:
        """Record lines durably, all or none; OSError if that failed."""


class State(enum.Enum):
    AWAITING_LOGIN = "awaiting login"
    LOGGED_IN = "logged in"
    CLOSED = "closed"


@dataclass
class UploadProgress:
    """An upload between its first and final chunk. Each chunk is checked as
    it arrives, so the final chunk costs no more than any other; only the
    results wait, to be printed and recorded together."""

    started: str
    count: int = 0
    checked: list[str] = field(default_factory=list)
    """Terminal lines of the "Contact log checking" list."""
    records: list[str] = field(default_factory=list)
    """contact_checks.txt lines, written only if the final chunk arrives."""


@dataclass
class Session:
    """One connection's protocol state."""

    peer: str
    state: State = State.AWAITING_LOGIN
    username: str | None = None
    upload: UploadProgress | None = None


@dataclass
class Outcome:
    replies: list[Message] = field(default_factory=list)
    output: list[str] = field(default_factory=list)
    """Lines for the server's terminal (the specification's texts)."""
    log: list[str] = field(default_factory=list)
    """Diagnostics for stderr."""
    close: bool = False


class LoginGuard:
    """Consecutive-failure counts and blocks, per username.

    Kept apart from sessions on purpose: the count belongs to the user, so
    reconnecting or switching address changes nothing.
    """

    def __init__(self, block_duration: float) -> None:
        self.block_duration = block_duration
        self._failures: dict[str, int] = {}
        self._blocked_until: dict[str, float] = {}

    def blocked(self, username: str, now: float) -> bool:
        until = self._blocked_until.get(username)
        if until is None:
            return False
        if now < until:
            return True
        del self._blocked_until[username]  # the block has ended: start afresh
        self._failures.pop(username, None)
        return False

    def failure(self, username: str, now: float) -> bool:
        """Count a wrong password; True when this failure starts a block."""
        count = self._failures.get(username, 0) + 1
        if count >= MAX_FAILURES:
            self._failures.pop(username, None)
            self._blocked_until[username] = now + self.block_duration
            return True
        self._failures[username] = count
        return False

    def success(self, username: str) -> None:
        self._failures.pop(username, None)

    def failures(self, username: str) -> int:
        return self._failures.get(username, 0)


def random_tempid() -> str:
    return f"{secrets.randbelow(10**20):020d}"


class ServerCore:
    def __init__(
        self,
        credentials: dict[str, str],
        block_duration: float,
        clock: Clock,
        *,
        tempids: dict[str, str],
        tempid_store: LineStore,
        check_store: LineStore,
        tempid_lifetime: int = DEFAULT_TEMPID_LIFETIME,
        draw_tempid: Callable[[], str] = random_tempid,
    ) -> None:
        self.credentials = credentials
        self.clock = clock
        self.guard = LoginGuard(block_duration)
        self.tempids = tempids
        """Every TempID ever issued (this run or loaded at start) to its phone."""
        self.tempid_store = tempid_store
        self.check_store = check_store
        self.tempid_lifetime = tempid_lifetime
        self.draw_tempid = draw_tempid

    # -- entry points ---------------------------------------------------------
    def handle(self, session: Session, message: Message) -> Outcome:
        if session.state is State.CLOSED:
            return Outcome()
        if isinstance(message, LoginRequest | TempIDRequest | UploadRequest | LogoutRequest):
            if session.upload is not None and not isinstance(message, UploadRequest):
                return self._interrupted_upload(session)
            if isinstance(message, LoginRequest):
                return self._login(session, message)
            if session.state is not State.LOGGED_IN or session.username is None:
                return _error(ErrorCode.NOT_LOGGED_IN, "log in first")
            if isinstance(message, TempIDRequest):
                return self._issue_tempid(session.username)
            if isinstance(message, UploadRequest):
                return self._upload(session, session.username, message)
            return self._logout(session, session.username)
        session.state = State.CLOSED
        outcome = _error(ErrorCode.UNEXPECTED, f"a client may not send {type(message).__name__}")
        outcome.close = True
        return outcome

    def protocol_error(self, session: Session, error: ProtocolError) -> Outcome:
        """The peer broke framing: explain once and close that connection."""
        self.disconnected(session)
        code = ErrorCode.TOO_LARGE if isinstance(error, FrameTooLargeError) else ErrorCode.MALFORMED
        outcome = _error(code, str(error)[:200])
        outcome.log.append(f"{session.peer}: {error}")
        outcome.close = True
        return outcome

    def login_timeout(self, session: Session) -> Outcome:
        if session.state is not State.AWAITING_LOGIN:
            return Outcome()
        session.state = State.CLOSED
        outcome = _error(ErrorCode.TIMEOUT, "no login within the time allowed")
        outcome.log.append(f"{session.peer}: login timed out")
        outcome.close = True
        return outcome

    def disconnected(self, session: Session) -> Outcome:
        """The connection is gone: an unfinished upload is dropped unrecorded."""
        outcome = Outcome()
        if session.upload is not None:
            outcome.log.append(
                f"upload from {session.username} abandoned after {session.upload.count} "
                "entries; nothing recorded"
            )
        session.upload = None
        session.state = State.CLOSED
        return outcome

    # -- rules ----------------------------------------------------------------
    def _login(self, session: Session, request: LoginRequest) -> Outcome:
        if session.state is State.LOGGED_IN:
            return _error(ErrorCode.ALREADY_LOGGED_IN, "already logged in")
        username = request.username
        expected = self.credentials.get(username)
        if expected is None:
            return Outcome([LoginReply(LoginStatus.UNKNOWN_USER)])
        now = self.clock.monotonic()
        if self.guard.blocked(username, now):
            session.state = State.CLOSED
            return Outcome(
                [LoginReply(LoginStatus.BLOCKED)],
                log=[f"{username}: login refused, blocked ({session.peer})"],
                close=True,
            )
        if hmac.compare_digest(expected.encode("utf-8"), request.password.encode("utf-8")):
            self.guard.success(username)
            session.state = State.LOGGED_IN
            session.username = username
            return Outcome([LoginReply(LoginStatus.OK)], log=[f"{username} login ({session.peer})"])
        if self.guard.failure(username, now):
            session.state = State.CLOSED
            return Outcome(
                [LoginReply(LoginStatus.BLOCKED_NOW)],
                log=[f"{username}: third failed login, blocked ({session.peer})"],
                close=True,
            )
        return Outcome(
            [LoginReply(LoginStatus.WRONG_PASSWORD)],
            log=[f"{username}: failed login {self.guard.failures(username)} ({session.peer})"],
        )

    def _issue_tempid(self, username: str) -> Outcome:
        tempid = self.draw_tempid()
        while tempid in self.tempids:
            tempid = self.draw_tempid()
        start = self.clock.wall()
        window = TempIDWindow(tempid, start, start + timedelta(seconds=self.tempid_lifetime - 1))
        try:
            self.tempid_store.append([tempid_line(username, window)])
        except OSError as exc:
            return Outcome(
                [ErrorReply(ErrorCode.STORAGE, "the server could not record a TempID; try later")],
                log=[f"cannot record TempID for {username}: {exc}"],
            )
        self.tempids[tempid] = username
        return Outcome([TempIDReply(window)], output=[f"user: {username}", f"TempID: {tempid}"])

    def _upload(self, session: Session, username: str, request: UploadRequest) -> Outcome:
        outcome = Outcome()
        upload = session.upload
        if upload is None:
            upload = session.upload = UploadProgress(format_timestamp(self.clock.wall()))
            outcome.output.append(f"received contact log from {username}")
        if upload.count + len(request.entries) > MAX_UPLOAD_ENTRIES:
            session.upload = None
            return _error(
                ErrorCode.TOO_LARGE, f"an upload may hold at most {MAX_UPLOAD_ENTRIES} entries"
            )
        upload.count += len(request.entries)
        lookup, output, checked = self.tempids.get, outcome.output, upload.checked
        for entry in request.entries:
            tempid, start, expiry = entry.fields_text()
            output += (f"{tempid},", f"{start},", f"{expiry};")
            contact = lookup(tempid)
            if contact is None:
                checked.append(f"{tempid}: unknown TempID")
            else:
                checked += (f"{contact},", f"{start},", f"{tempid};")
            upload.records.append(
                f"{upload.started} {username} {tempid} {start} {expiry} {contact or 'unknown'}"
            )
        if request.final:
            session.upload = None
            self._finish_upload(username, upload, outcome)
        return outcome

    def _finish_upload(self, uploader: str, upload: UploadProgress, outcome: Outcome) -> None:
        outcome.output.append("Contact log checking")
        outcome.output += upload.checked
        try:
            self.check_store.append(upload.records)
        except OSError as exc:
            outcome.log.append(f"cannot record contact checks from {uploader}: {exc}")
            outcome.replies.append(
                ErrorReply(ErrorCode.STORAGE, "the server could not record the contact check")
            )
            return
        outcome.replies.append(UploadReply(upload.count))

    def _logout(self, session: Session, username: str) -> Outcome:
        session.state = State.CLOSED
        return Outcome([LogoutReply()], output=[f"{username} logout"], close=True)

    def _interrupted_upload(self, session: Session) -> Outcome:
        dropped = session.upload.count if session.upload else 0
        session.upload = None
        return _error(
            ErrorCode.UNEXPECTED,
            f"upload interrupted by another request; {dropped} entries dropped",
        )


def _error(code: ErrorCode, text: str) -> Outcome:
    return Outcome([ErrorReply(code, text)])
