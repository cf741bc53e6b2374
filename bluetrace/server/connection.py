"""One phone's connection to the server, as an object with no I/O.

Modelled on h11's ``Connection`` and aioquic's ``QuicConnection``: the host
feeds the bytes that arrived and the time (:meth:`receive_data`), takes the
bytes to send (:meth:`data_to_send`) and the events for it to act on
(:meth:`next_events`), and asks for the next deadline (:meth:`get_timer`).
Everything the protocol says about a connection lives here: frame decoding
and the cap before login, the login deadline, the state table, "a TempID or
an upload's check is told only once it is on disk", how the connection ends,
and a work budget, so that no peer can hold the loop for more than a bounded
slice of work per call.
"""

import enum
from dataclasses import dataclass
from typing import Final

from bluetrace.protocol import wire
from bluetrace.protocol.errors import DataAfterEndError, FrameTooLargeError, ProtocolError
from bluetrace.protocol.framing import FrameDecoder, _NeedData
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
    UploadReply,
    UploadRequest,
    encode,
)
from bluetrace.protocol.states import Event, Reply, State, transition
from bluetrace.protocol.wire import ErrorCode, LoginStatus, RegisterStatus
from bluetrace.server import passwords
from bluetrace.server.core import ServerCore
from bluetrace.server.logstream import user_event
from bluetrace.server.upload import CHECKS_NOT_RECORDED, DISCARD_TEXT, Checking, UploadSlot

PRE_LOGIN_MAX_BODY = 2 * (1 + wire.MAX_TEXT_LEN)
"""Before login only LOGIN is legal, so a stranger may not make us buffer more."""


@dataclass(frozen=True, slots=True)
class Output:
    """Text for the server's terminal: the specification's lines, whole."""

    text: str


@dataclass(frozen=True, slots=True)
class Log:
    """A diagnostic line for the server's log."""

    text: str


@dataclass(frozen=True, slots=True)
class Rejected(Log):
    """A diagnostic about a connection refused for what its peer did (a broken
    frame, a failed TLS handshake, no login in time). One client can cause
    any number of these, so the host summarises them by ``kind``."""

    kind: str = "broken frames"


@dataclass(frozen=True, slots=True)
class NeedsCommit:
    """Records were written: sync the stores this turn, then call
    :meth:`ServerConnection.commit_done` with the result."""


@dataclass(frozen=True, slots=True)
class NeedsWork:
    """A password to check or hash: run the job (``workers.KINDS``) off the
    loop, then call :meth:`ServerConnection.work_done` with its reply, or
    with None if it could not be run (the queue was full, the worker died).
    Until then the connection handles no further frame of its peer, so its
    replies keep their order."""

    kind: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class CloseConnection:
    """Close the transport once the bytes already taken are sent."""


ServerEvent = Output | Log | Rejected | NeedsCommit | NeedsWork | CloseConnection
NEEDS_COMMIT: Final = NeedsCommit()
CLOSE: Final = CloseConnection()


class Closing(enum.Enum):
    LINGER = "let the client close first"
    ABORT = "close at once"


_LOGIN_REPLIES = {
    Reply.LOGIN_OK: LoginReply(LoginStatus.OK),
    Reply.LOGIN_UNKNOWN_USER: LoginReply(LoginStatus.UNKNOWN_USER),
    Reply.LOGIN_WRONG_PASSWORD: LoginReply(LoginStatus.WRONG_PASSWORD),
    Reply.LOGIN_BLOCKED_NOW: LoginReply(LoginStatus.BLOCKED_NOW),
    Reply.LOGIN_BLOCKED: LoginReply(LoginStatus.BLOCKED),
}
"""Built once: a reply validates as it is made, which a session need not repeat."""
_LOGOUT_REPLY = LogoutReply()
_REGISTER_REPLIES = {
    Reply.REGISTERED: RegisterReply(RegisterStatus.REGISTERED),
    Reply.REGISTER_TAKEN: RegisterReply(RegisterStatus.TAKEN),
    Reply.REGISTER_INVALID: RegisterReply(RegisterStatus.NOT_A_PHONE_NUMBER),
    Reply.REGISTER_CLOSED: RegisterReply(RegisterStatus.CLOSED),
}
TEMPID_NOT_RECORDED = ErrorReply(
    ErrorCode.STORAGE, "the server could not record a TempID; try later"
)


_FIXED_ERRORS = {
    Reply.NOT_LOGGED_IN: (ErrorCode.NOT_LOGGED_IN, "log in first"),
    Reply.ALREADY_LOGGED_IN: (ErrorCode.ALREADY_LOGGED_IN, "already logged in"),
    Reply.RATE_LIMITED: (ErrorCode.RATE_LIMITED, "too many requests; try again later"),
}
_FIXED_ERROR_REPLIES = {reply: ErrorReply(*error) for reply, error in _FIXED_ERRORS.items()}
_FIXED_REPLIES: tuple[Message, ...] = (
    *_LOGIN_REPLIES.values(),
    *_REGISTER_REPLIES.values(),
    *_FIXED_ERROR_REPLIES.values(),
    _LOGOUT_REPLY,
)
_PREBUILT: dict[int, bytes] = {id(message): encode(message) for message in _FIXED_REPLIES}
"""The fixed replies' bytes, by the identity of the module's own (immutable)
reply objects: a peer pipelining requests before login costs one dict look-up
per reply, not a construct build."""


def _encoded(message: Message) -> bytes:
    prebuilt = _PREBUILT.get(id(message))
    return prebuilt if prebuilt is not None else encode(message)





@dataclass(frozen=True, slots=True)
class _Waiting:
    """A LOGIN or REGISTER whose password is being checked or hashed."""

    registering: bool
    username: str


@dataclass(slots=True)
class _Refusal:
    """A LOGIN or REGISTER refused by a rate, answered at ``due``."""

    event: Event
    username: str
    due: float


_DELAYED_REFUSALS = frozenset(
    {Event.LOGIN_RATE_LIMITED, Event.LOGIN_HASH_BUDGET, Event.REGISTER_LIMITED}
)
"""Refusals a client may answer by trying again at once: answered late."""


@dataclass(slots=True)
class _Held:
    """A reply waiting for the group commit, and what to show when it goes."""

    message: Message
    durable: bool
    output: str | None = None
    failed: ErrorReply | None = None


class ServerConnection:
    """The server side of one C2S connection."""

    def __init__(self, core: ServerCore, peer: str, now: float) -> None:
        self.core = core
        self.peer = peer
        self.address = peer.rsplit(":", 1)[0]
        """The source address, for the per-address failed-login limit."""
        self.limits = core.limits
        self.state = State.AWAITING_LOGIN
        self.username: str | None = None
        self._decoder = FrameDecoder(max_body=PRE_LOGIN_MAX_BODY)
        self._out = bytearray()
        self._events: list[ServerEvent] = []
        self._held: list[_Held] | None = None
        self._commit_asked = False
        self._login_deadline: float | None = now + self.limits.login_timeout
        self._closing: Closing | None = None
        self._linger_deadline: float | None = None
        self._peer_done = False
        self._stream_ended = False
        """receive_data(b"") was called: the peer's stream is over."""
        self._closed = False
        self._upload = UploadSlot(core)
        self._checking: Checking | None = None
        self._more_work = False
        self._last_frame = now
        self._waiting: _Waiting | None = None
        self._refusal: _Refusal | None = None
        """A rate-limited LOGIN or REGISTER whose reply waits (Limits.refusal_delay)."""
        self._work_done = 0

    # -- what the host reads ------------------------------------------------
    @property
    def closed(self) -> bool:
        """CloseConnection has been given: the host closes, nothing more happens."""
        return self._closed

    def data_to_send(self) -> bytes:
        data = bytes(self._out)
        self._out.clear()
        return data

    def next_events(self) -> list[ServerEvent]:
        events, self._events = self._events, []
        return events

    def get_timer(self) -> float | None:
        """The next deadline at which :meth:`handle_timer` must be called."""
        if self._closed:
            return None
        if self._closing is Closing.LINGER:
            return self._linger_deadline
        if self._closing is not None:
            return None
        if self._refusal is not None:
            return self._refusal.due
        if self.state is State.AWAITING_LOGIN:
            return self._login_deadline
        return self._idle_deadline()

    def _idle_deadline(self) -> float:
        """No complete frame for idle_timeout (stall_timeout while an upload
        or a partial frame is held) ends a logged-in connection."""
        holding = self.state is not State.LOGGED_IN or self._decoder.buffered > 0
        limit = self.limits.stall_timeout if holding else self.limits.idle_timeout
        return self._last_frame + limit

    @property
    def busy(self) -> bool:
        """A request is being answered: a password checked or hashed, a
        refusal held back, replies waiting for the commit (see Admission)."""
        return self._waiting is not None or self._refusal is not None or bool(self._held)

    def wants_input(self) -> bool:
        """Whether the host should read more from the peer now. False while
        work is left over from the last call, while replies wait for the
        commit beyond the high-water mark, or once the connection is over
        (except while lingering, when reading is how the peer's close is seen)."""
        if self._closed:
            return False
        if self._closing is not None:
            return self._closing is Closing.LINGER
        held = len(self._held) if self._held is not None else 0
        return (
            not self._more_work
            and self._checking is None
            and self._waiting is None
            and self._refusal is None
            and held * 64 + len(self._out) < self.limits.output_high_water
        )

    def take_work(self) -> int:
        """Work units done since the last call (a frame, refused or not, is
        one; an UPLOAD chunk its share of a call; a slice of checking a whole
        call): what the host charges against the loop turn's shared budget."""
        done, self._work_done = self._work_done, 0
        return done

    def has_pending_work(self) -> bool:
        """Input is buffered that the budget left for later: call
        :meth:`continue_work` on the next loop turn."""
        return not self._closed and self._closing is None and self._more_work

    # -- what the host tells --------------------------------------------------
    def receive_data(self, data: bytes, now: float, budget: int | None = None) -> None:
        """Bytes from the peer; ``b""`` when the peer has closed its side.
        ``budget``: work units this call may do (at most the per-call budget);
        what is left waits for :meth:`continue_work`.

        Returns:
            Nothing: replies wait in :meth:`data_to_send`, events in
            :meth:`next_events`. Once the connection is closed, or while it
            closes, bytes are read and dropped. A broken frame is not raised:
            the peer is told (MALFORMED or TOO_LARGE) and the connection closes.

        Raises:
            DataAfterEndError: bytes after ``b""`` had ended the stream (a
                further ``b""`` is harmless).
        """
        if data and self._stream_ended:
            raise DataAfterEndError("receive_data was given bytes after the end of the stream")
        if self._closed:
            return
        if not data:
            self._stream_ended = True
            self._peer_done = True
            if self._closing is None:
                self._abandon("the client closed the connection")
                self.state = State.CLOSED
                self._closing = Closing.ABORT
            self._maybe_close()
            return
        if self._closing is not None:
            return  # the session is over: what arrives now is read and dropped
        try:
            self._decoder.feed(data)
        except ProtocolError as exc:
            self._work_done += 1  # a refused header is work too
            self._broken(exc)
            return
        self._work(now, budget)

    def continue_work(self, now: float, budget: int | None = None) -> None:
        if self.has_pending_work():
            self._work(now, budget)

    def handle_timer(self, now: float) -> None:
        """Act on the deadline :meth:`get_timer` named (early calls do nothing):
        end the linger, or time out a missing login or an idle session.

        Returns:
            Nothing: a timeout's ERROR waits in :meth:`data_to_send`, its log
            line and the close in :meth:`next_events`.

        Raises:
            Nothing: a closed connection ignores the call.
        """
        if self._closed:
            return
        if (
            self._closing is Closing.LINGER
            and self._linger_deadline is not None
            and now >= self._linger_deadline
        ):
            self._linger_deadline = None
            self._peer_done = True  # waited long enough for the client
            self._maybe_close()
            return
        if self._closing is not None or self._checking is not None or self._waiting is not None:
            return
        refusal = self._refusal
        if refusal is not None:
            if now >= refusal.due:
                self._refusal = None
                self._decided(refusal.event, refusal.username, now)
                if self._closing is None:
                    self._more_work = True  # the frames behind it, in the host's next turn
            return
        if self.state is State.AWAITING_LOGIN:
            if self._login_deadline is not None and now >= self._login_deadline:
                self._events.append(
                    Rejected(f"{self.peer}: no login within the login timeout", "no login in time")
                )
                self._apply(Event.LOGIN_TIMEOUT, now, "no login within the time allowed")
        elif now >= self._idle_deadline():
            idle = now - self._last_frame
            self._abandon(f"idle for {idle:.0f} s")
            self._events.append(
                Log(user_event("idle-close", str(self.username), self.peer, f"idle={idle:.0f}s"))
            )
            self._apply(Event.IDLE_TIMEOUT, now, f"no request for {idle:.0f} seconds")

    def commit_done(self, durable: bool) -> None:
        """The group commit ended: send what waited for it, or in place of
        each reply whose record is not on disk, a STORAGE error."""
        held, self._held = self._held or [], None
        self._commit_asked = False
        for item in held:
            if item.durable and not durable and item.failed is not None:
                self._out += encode(item.failed)
                continue
            self._out += _encoded(item.message)
            if item.output is not None:
                self._events.append(Output(item.output))
        self._maybe_close()

    def work_done(self, reply: bytes | None, now: float) -> None:
        """The reply to the last :class:`NeedsWork` (None: it was not done,
        and the client is told RATE_LIMITED, as when the budget is spent);
        then the frames that waited behind it are handled."""
        waiting, self._waiting = self._waiting, None
        if waiting is None:
            return
        if self._closing is not None or self._closed:
            if waiting.registering:
                self.core.drop_register(waiting.username)
            return
        if waiting.registering:
            if reply is None:
                self.core.drop_register(waiting.username)
                self._login_decided(Event.REGISTER_LIMITED, waiting.username, now)
            else:
                self._register_hashed(waiting.username, reply.decode("ascii"), now)
        else:
            event = (
                Event.LOGIN_HASH_BUDGET
                if reply is None
                else self.core.end_login(waiting.username, self.address, reply == b"1", now)
            )
            self._login_decided(event, waiting.username, now)
        if self._closing is None:
            self._more_work = True  # the frames behind it, in the host's next turn

    def connection_lost(self, reason: str, rejected: str | None = None) -> None:
        """The transport failed (reset, error): drop what was in progress.
        ``rejected``: the peer broke the transport (TLS), logged as that kind."""
        if self._closed:
            return
        if self._closing is None:
            self._abandon(f"connection lost: {reason}")
            text = f"{self.peer}: connection lost: {reason}"
            self._events.append(Log(text) if rejected is None else Rejected(text, rejected))
        self.state = State.CLOSED
        self._closed = True

    def shut_down(self, now: float) -> None:
        """The server is stopping: say so and close at once."""
        if self._closed:
            return
        if self._checking is not None:
            self._abandon("the server is stopping")
        if self._closing is None:
            self._apply(Event.SHUTDOWN, now, "the server is stopping")
        self._closing = Closing.ABORT
        self._peer_done = True
        self._held = None  # the host has committed and released before this
        self._maybe_close()

    # -- the work loop --------------------------------------------------------
    def _work(self, now: float, share: int | None = None) -> None:
        budget = self.limits.frames_per_call
        if share is not None:
            budget = max(1, min(budget, share))
        self._more_work = False
        while self._closing is None and self._waiting is None and self._refusal is None:
            if budget <= 0:
                self._more_work = True
                return
            if self._checking is not None:
                # One slice of checking is a whole call's work.
                if self._checking.step(self.limits.entries_per_call):
                    self._finish_checking()
                self._work_done += self.limits.frames_per_call
                budget = 0
                continue
            try:
                message = self._decoder.next_message()
            except ProtocolError as exc:
                self._work_done += 1  # a refused frame costs like any other
                self._broken(exc)
                return
            if isinstance(message, _NeedData):
                return
            self._last_frame = now
            cost = 1
            if isinstance(message, UploadRequest):
                # A chunk costs its share of a call's entries, not one frame:
                # decoding 32 full chunks in one call would hold the loop
                # for tens of milliseconds.
                cost += len(message.entries) * self.limits.frames_per_call // max(
                    1, self.limits.entries_per_call
                )
            budget -= cost
            self._work_done += cost
            self._handle(message, now)

    def _handle(self, message: Message, now: float) -> None:
        state = self.state
        if isinstance(message, LoginRequest):
            if state is State.AWAITING_LOGIN:
                self._login(message, now)
                return
            self._apply(
                Event.LOGIN_AGAIN if state is State.LOGGED_IN else Event.OTHER_REQUEST, now
            )
            return
        if isinstance(message, RegisterRequest):
            if state is State.AWAITING_LOGIN:
                self._register(message, now)
            else:
                self._apply(
                    Event.LOGIN_AGAIN if state is State.LOGGED_IN else Event.OTHER_REQUEST, now
                )
            return
        if isinstance(message, TempIDRequest | LogoutRequest):
            if state is State.AWAITING_LOGIN:
                self._apply(Event.REQUEST_BEFORE_LOGIN, now)
            elif state is State.LOGGED_IN and isinstance(message, LogoutRequest):
                self._apply(Event.LOGOUT, now)
            elif state is State.LOGGED_IN:
                allowed = self.core.may_issue_tempid(self.username or "", now)
                self._apply(Event.TEMPID_REQUEST if allowed else Event.TEMPID_RATE_LIMITED, now)
            else:
                self._apply(Event.OTHER_REQUEST, now)
            return
        if isinstance(message, UploadRequest):
            self._upload_chunk(message, now)
            return
        self._apply(Event.REPLY_TYPE, now, f"a client may not send {message.TYPE.name}")

    def _upload_chunk(self, chunk: UploadRequest, now: float) -> None:
        if self.state is State.AWAITING_LOGIN:
            self._apply(Event.REQUEST_BEFORE_LOGIN, now)
            return
        upload = self._upload
        event = upload.chunk(self.state, chunk, self.username or "", now)
        self._events += [Log(line) for line in upload.log]
        upload.log.clear()
        self._apply(event, now)

    def _login(self, request: LoginRequest, now: float) -> None:
        """Decide a LOGIN, or hand its password check to the host (a hashed
        password, when the core says so) and wait for :meth:`work_done`."""
        core, username = self.core, request.username
        outcome = core.begin_login(username, self.address, now)
        if isinstance(outcome, Event):
            self._login_decided(outcome, username, now)
        elif core.offload_hashing and passwords.needs_hashing(outcome):
            self._waiting = _Waiting(registering=False, username=username)
            self._events.append(
                NeedsWork("scrypt_verify", passwords.verify_request(outcome, request.password))
            )
        else:
            matched = passwords.verify(outcome, request.password)
            self._login_decided(core.end_login(username, self.address, matched, now), username, now)

    def _login_decided(self, event: Event, username: str, now: float) -> None:
        """Answer a LOGIN or REGISTER (now, or a rate refusal after
        Limits.refusal_delay, reading nothing more meanwhile)."""
        if not event.name.startswith("REGISTER"):
            self._login_attempt(event, username, now)  # logged when it happened
        delay = self.limits.refusal_delay
        if event in _DELAYED_REFUSALS and delay > 0:
            self._refusal = _Refusal(event, username, now + delay)
            return
        self._decided(event, username, now)

    def _decided(self, event: Event, username: str, now: float) -> None:
        if event is Event.LOGIN_OK:
            self.username = username
        self._apply(event, now)

    def _register(self, request: RegisterRequest, now: float) -> None:
        """Decide a REGISTER; a new number's password is hashed by the host
        (or here, for hosts that may block) before its line is written."""
        refusal = self.core.begin_register(request.username, self.address, now)
        if refusal is not None:
            self._login_decided(refusal, request.username, now)
        elif self.core.offload_hashing:
            self._waiting = _Waiting(registering=True, username=request.username)
            self._events.append(NeedsWork("scrypt_hash", request.password.encode("utf-8")))
        else:
            stored = passwords.hash_password(request.password)
            self._register_hashed(request.username, stored, now)

    def _register_hashed(self, username: str, stored: str, now: float) -> None:
        try:
            event = self.core.end_register(username, stored)
        except OSError as exc:
            self._events.append(
                Log(f"cannot record the registration of {username}: {exc.strerror or exc}")
            )
            self._send(ErrorReply(ErrorCode.STORAGE, "the server could not record you; try later"))
            return
        if event is Event.REGISTER_OK:
            self._events.append(Log(user_event("register", username, self.peer)))
        self._apply(event, now)

    # -- the table --------------------------------------------------------------
    def _apply(self, event: Event, now: float, why: str = "") -> None:
        """Move along the state table and send the row's reply."""
        row = transition(self.state, event)
        self.state = row.next
        self._reply(row.reply, why)
        if row.next is State.CLOSED:
            self._begin_closing(
                Closing.ABORT if event in (Event.SHUTDOWN,) else Closing.LINGER, now
            )
        elif row.next is not State.AWAITING_LOGIN:
            self._login_deadline = None
            self._decoder.max_body = wire.MAX_FRAME_BODY

    def _reply(self, reply: Reply, why: str) -> None:
        login_reply = _LOGIN_REPLIES.get(reply)
        if login_reply is not None:
            self._send(login_reply)
        elif reply is Reply.REGISTERED:
            # Told only once the credentials.txt line is on disk.
            self._send(
                _REGISTER_REPLIES[reply],
                durable=True,
                failed=ErrorReply(ErrorCode.STORAGE, "the server could not record you; try later"),
            )
        elif reply in _REGISTER_REPLIES:
            self._send(_REGISTER_REPLIES[reply])
        elif reply is Reply.TEMPID:
            self._issue_tempid()
        elif reply is Reply.UPLOAD:
            if self.username is None:
                raise RuntimeError("an upload reply before login")
            self._checking = Checking(self.core, self, self.username, self._upload.finished())
        elif reply is Reply.LOGOUT:
            self._send(_LOGOUT_REPLY, output=f"{self.username} logout")
            self._events.append(Log(user_event("logout", str(self.username), self.peer)))
        elif reply not in (Reply.NONE, Reply.DISCARD):
            fixed = _FIXED_ERROR_REPLIES.get(reply)
            self._send(fixed if fixed is not None else ErrorReply(*self._error_for(reply, why)))

    def _error_for(self, reply: Reply, why: str) -> tuple[ErrorCode, str]:
        """The ERROR a row's reply cell names, with a sentence for people."""
        fixed = _FIXED_ERRORS.get(reply)
        if fixed is not None:
            return fixed
        if reply is Reply.UNEXPECTED_DISCARDED:
            dropped = self._upload.count
            self._abandon("another request came first")
            return (
                ErrorCode.UNEXPECTED,
                f"upload interrupted by another request; {dropped:,} entries dropped",
            )
        if reply in (Reply.TOO_LARGE_DISCARDED, Reply.REFUSED_DISCARDED, Reply.DISCARD_END):
            count, code = self._upload.take_discarded()
            return code, DISCARD_TEXT[code].format(
                limit=self.limits.max_upload_entries, count=count
            )
        if reply is Reply.UNEXPECTED_REQUEST and not why:
            self._upload.take_discarded()
            return ErrorCode.UNEXPECTED, "upload interrupted by another request; it was discarded"
        code = {
            Reply.TIMEOUT: ErrorCode.TIMEOUT,
            Reply.UNEXPECTED_REQUEST: ErrorCode.UNEXPECTED,
            Reply.MALFORMED: ErrorCode.MALFORMED,
            Reply.TOO_LARGE_UPLOAD: ErrorCode.TOO_LARGE,
        }.get(reply, ErrorCode.SHUTTING_DOWN)
        return code, why

    # -- replies that wait for the disk ----------------------------------------
    def _issue_tempid(self) -> None:
        username = self.username or ""
        try:
            window = self.core.issue_tempid(username)
        except OSError as exc:
            self._events.append(
                Log(f"cannot record a TempID for {username}: {exc.strerror or exc}")
            )
            self._send(TEMPID_NOT_RECORDED)
            return
        self._send(
            TempIDReply(window),
            durable=True,
            output=f"user: {username}\nTempID: {window.tempid}",
            failed=TEMPID_NOT_RECORDED,
        )

    def _finish_checking(self) -> None:
        checking, self._checking = self._checking, None
        if checking is None:
            return
        try:
            checking.finish()  # durable at the next group commit
        except OSError as exc:
            self._events.append(
                Log(
                    f"cannot record the contact check from {checking.uploader}: "
                    f"{exc.strerror or exc}"
                )
            )
            self._send(CHECKS_NOT_RECORDED)
            return
        self._send(
            UploadReply(checking.upload.count),
            durable=True,
            output=checking.text(),
            failed=CHECKS_NOT_RECORDED,
        )

    def _send(
        self,
        message: Message,
        *,
        durable: bool = False,
        output: str | None = None,
        failed: ErrorReply | None = None,
    ) -> None:
        """Queue a reply; behind any reply that waits for the commit, so that
        a connection's replies keep their order."""
        if durable or self._held is not None:
            if self._held is None:
                self._held = []
            self._held.append(_Held(message, durable, output, failed))
            if durable and not self._commit_asked:
                self._commit_asked = True
                self._events.append(NEEDS_COMMIT)
            return
        self._out += _encoded(message)
        if output is not None:
            self._events.append(Output(output))

    # -- endings ----------------------------------------------------------------
    def _broken(self, exc: ProtocolError) -> None:
        """The peer broke framing: explain once and close at once."""
        self._abandon(f"broken frame: {exc}")
        self._events.append(Rejected(f"{self.peer}: {exc}"))
        code = ErrorCode.TOO_LARGE if isinstance(exc, FrameTooLargeError) else ErrorCode.MALFORMED
        event = Event.OVERSIZED if code is ErrorCode.TOO_LARGE else Event.MALFORMED
        row = transition(self.state, event)
        self.state = row.next
        self._send(ErrorReply(code, str(exc)[:200]))
        self._closing = Closing.ABORT
        self._peer_done = True
        self._maybe_close()

    def _begin_closing(self, how: Closing, now: float) -> None:
        if self._checking is not None:
            # No more work will run: an upload still being checked is dropped,
            # so that it cannot hold the check log from the others.
            self._abandon("the connection is closing")
        self._closing = how
        if how is Closing.LINGER:
            self._linger_deadline = now + self.limits.linger
        else:
            self._peer_done = True
        self._maybe_close()

    def _maybe_close(self) -> None:
        if (
            not self._closed
            and self._closing is not None
            and self._peer_done
            and self._held is None
            and self._checking is None
        ):
            self._closed = True
            self._events.append(CLOSE)

    def _abandon(self, why: str) -> None:
        """Drop an unfinished upload: nothing of it is recorded."""
        checking, in_progress = self._checking, self._upload.current is not None
        dropped = self._upload.drop()
        if checking is not None:
            checking.abort()
            dropped = checking.upload.count
            self.core.release_entries(dropped)
        if in_progress or checking is not None:
            self._events.append(
                Log(
                    f"upload from {self.username} abandoned after {dropped:,} entries; "
                    f"nothing recorded ({why})"
                )
            )
        self._checking = None

    def _login_attempt(self, event: Event, username: str, now: float) -> None:
        """Log the attempt: successes and blocks always, failures through the
        server's aggregating login log (a flood of probes is one summary)."""
        peer = self.peer
        if event is Event.LOGIN_OK:
            lines = [user_event("login", username, peer)]
        elif event is Event.LOGIN_BLOCKED:
            lines = [user_event("login-refused", username, peer, "reason=blocked")]
        elif event is Event.LOGIN_BLOCKS:
            blocked = f"blocked={self.core.guard.block_duration:g}s"
            lines = [user_event("login-failed", username, peer, "failures=3", blocked)]
        else:
            log = self.core.login_log
            if event is Event.LOGIN_WRONG_PASSWORD:
                count = self.core.guard.failures(username)
                text = user_event("login-failed", username, peer, f"failures={count}")
                lines = log.note("wrong", text, self.address, now)
            elif event is Event.LOGIN_UNKNOWN_USER:
                text = user_event("login-failed", username, peer, "reason=unknown-user")
                lines = log.note("unknown", text, self.address, now)
            else:
                reason = "reason=too-many-failed-logins-from-this-address"
                text = user_event("login-refused", username, peer, reason)
                lines = log.note("limited", text, self.address, now)
        self._events += [Log(line) for line in lines]
