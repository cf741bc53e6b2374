"""The phone under test in client mode: started afresh for each case, typed at
and answered as a server would; and the texts of the specification's sample
session that a phone must show."""

from dataclasses import dataclass

from bluetrace.conform.model import CaseContext, CaseFailed
from bluetrace.conform.phone import STARTUP, PhoneSession
from bluetrace.conform.tcp import Conn, describe
from bluetrace.protocol.messages import LoginReply, LoginRequest, encode
from bluetrace.protocol.wire import LoginStatus

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
        phone.expect("Password:", "the 'Password:' prompt")
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

