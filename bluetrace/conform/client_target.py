"""The phone under test in client mode: started afresh for each case, typed at
and answered as a server would; and the texts of the specification's sample
session that a phone must show."""

import select
import time
from dataclasses import dataclass

from bluetrace.conform.model import CaseContext, CaseFailed
from bluetrace.conform.phone import STARTUP, PhoneSession
from bluetrace.conform.tcp import Closed, Conn, describe
from bluetrace.protocol.messages import (
    ErrorReply,
    LoginReply,
    LoginRequest,
    LogoutRequest,
    encode,
)
from bluetrace.protocol.wire import ErrorCode, LoginStatus

PROMPT_POLL = 0.05
"""Seconds between looks at the terminal and the listener while the kit
waits for the 'Password:' prompt."""
PROBE_CLOSE_WAIT = 0.5
"""How long the kit waits, after the prompt, for a phone to close the
connection it checked the server on (a phone that keeps it sends nothing
before the password is typed, so the wait ends with the time)."""

WELCOME = "Welcome to the BlueTrace Simulator!"
INVALID_USERNAME = "Invalid Username. Please try again"
INVALID_PASSWORD = "Invalid Password. Please try again"  # noqa: S105 - a message
BLOCKED_NOW = "Invalid Password. Your account has been blocked. Please try again later"
BLOCKED = "Your account is blocked due to multiple login failures. Please try again later"
INVALID_COMMAND = "Error. Invalid command"


@dataclass
class ClientTarget:
    command: str
    user: str
    password: str
    max_wait: float = 10.0

    def start(self, ctx: CaseContext, files: dict[str, bytes] | None = None) -> PhoneSession:
        return PhoneSession(self.command, ctx, files)

    def login(self, phone: PhoneSession, ctx: CaseContext,
              status: LoginStatus = LoginStatus.OK) -> Conn:
        """Type the username and password, check the LOGIN frame, answer ``status``."""
        phone.expect("Username:", "the 'Username:' prompt", wait=STARTUP + ctx.timeout)
        phone.type(self.user)
        self.password_prompt(phone, ctx)
        phone.type(self.password)
        conn = phone.accept()
        request = conn.expect(ctx, "LOGIN")
        if not isinstance(request, LoginRequest):
            raise CaseFailed(f"the phone sent {describe(request)}, not LOGIN")
        if (request.username, request.password) != (self.user, self.password):
            raise CaseFailed(f"LOGIN carried {request.username!r} and a password other than "
                             "the one typed" if request.username == self.user else
                             f"LOGIN carried username {request.username!r}, not {self.user!r}")
        conn.send(encode(LoginReply(status)))
        if status is LoginStatus.OK:
            phone.expect(WELCOME, repr(WELCOME))
        return conn

    def password_prompt(self, phone: PhoneSession, ctx: CaseContext) -> None:
        """Wait for the 'Password:' prompt. A phone may connect before it
        asks for the password and check that a BlueTrace server answers (a
        LOGOUT before login, which the state table answers ERROR
        NOT_LOGGED_IN and nothing else): the kit answers it as a server
        would, and the login may come on that connection or, as bluetrace's
        phone does, on a new one; a phone that connects only after the
        password is waited for as before."""
        deadline = time.monotonic() + ctx.remaining(ctx.timeout)
        probe: Conn | None = None
        while True:
            if phone.conn is None and select.select([phone.listener], [], [], 0)[0]:
                phone.accept()  # it may also be a phone that connects early and waits
            conn = phone.conn
            if conn is not None and probe is None:
                first = conn.next_frame(ctx, PROMPT_POLL)
                if isinstance(first, LogoutRequest):
                    conn.send(encode(ErrorReply(ErrorCode.NOT_LOGGED_IN, "log in first")))
                    probe = conn
                elif isinstance(first, Closed):
                    phone.conn = None  # closed before the password: the login opens another
                elif first is not None:
                    raise CaseFailed(f"before the password, the phone sent {describe(first)}")
            left = deadline - time.monotonic()
            try:
                phone.expect("Password:", "the 'Password:' prompt", wait=min(PROMPT_POLL, left))
            except CaseFailed:
                if time.monotonic() >= deadline:
                    raise
            else:
                break
        if probe is not None and isinstance(probe.wait_closed(ctx, PROBE_CLOSE_WAIT), Closed):
            probe.close()  # the check's own connection: the login opens another
            phone.conn = None
