"""What server mode knows about the server under test, and the steps most
of its cases share (log in, expect an error, watch how a connection ends)."""

import time
from dataclasses import dataclass, field
from pathlib import Path

from bluetrace.conform import frames
from bluetrace.conform.model import CaseContext, CaseFailed, CaseSkipped
from bluetrace.conform.tcp import Closed, Conn, describe
from bluetrace.protocol.messages import ErrorReply, LoginReply, Message, TempIDReply, UploadReply
from bluetrace.protocol.wire import ErrorCode, LoginStatus

CLOSED_AT_ONCE = "the server closes the connection at once (FIN or RST), within the timeout"
LINGERS = ("the server stays open about 2 s for the client to close first, then closes it "
           "(FIN or RST), reading nothing more")
LINGER = 2.0
"""Section 3.5: a server lets the client close first for 2 seconds."""
LINGER_EARLIEST = 1.5
"""A close sooner than this after the reply counts as not letting the client
close first (0.5 s of slack for a server whose timer starts a little early)."""


@dataclass
class ServerTarget:
    host: str
    port: int
    users: dict[str, str]
    user: str
    spare: str | None = None
    second_address: str | None = None
    block_duration: float | None = None
    login_timeout: float | None = None
    idle_timeout: float | None = None
    stall_timeout: float | None = None
    tempid_lifetime: int = 900
    data_dir: Path | None = None
    server_pid: int | None = None
    max_wait: float = 10.0
    """Longest target setting (block, login timeout) the kit waits out."""
    burst_user: str | None = None
    """An account whose TempID burst the rate-limit case may spend."""
    burst_spent: bool = False
    blocked_at: float | None = field(default=None)
    """Monotonic time the spare user was blocked by the blocking case."""
    _turn: int = 0

    @property
    def password(self) -> str:
        return self.users[self.user]

    def ordinary_users(self) -> list[str]:
        """Accounts for cases that log in: the --user first, then the others
        (never the spare or burst user), so that per-user limits such as the
        TempID rate are shared out."""
        others = [u for u in self.users if u not in (self.user, self.spare, self.burst_user)]
        return [self.user, *others]

    def connect(self, ctx: CaseContext, channel: str = "tcp", source: str | None = None) -> Conn:
        return Conn.open(self.host, self.port, ctx, channel, source)

    def logged_in(self, ctx: CaseContext, channel: str = "tcp", user: str | None = None) -> Conn:
        """A logged-in connection; ``conn.user`` names the account it used."""
        if user is None:
            accounts = self.ordinary_users()
            user = accounts[self._turn % len(accounts)]
            self._turn += 1
        conn = self.connect(ctx, channel)
        conn.user = user
        conn.send(frames.login(user, self.users[user]))
        reply = conn.expect(ctx, "LOGIN_REPLY OK")
        allowed_limit(reply)
        if not (isinstance(reply, LoginReply) and reply.status is LoginStatus.OK):
            conn.close()
            raise CaseFailed(f"logging in as {user} gave {describe(reply)}, not OK")
        return conn

    def need_data_dir(self) -> Path:
        if self.data_dir is None:
            raise CaseSkipped("needs --data-dir, the folder holding the server's files")
        return self.data_dir

    def need_spare(self) -> str:
        if self.spare is None:
            raise CaseSkipped("needs --spare-user, an account the kit may block")
        return self.spare


LIMIT_CODES = frozenset({ErrorCode.RATE_LIMITED, ErrorCode.BUSY})


def allowed_limit(reply: Message, wanted: ErrorCode | None = None) -> None:
    """Section 4 lets a server answer RATE_LIMITED or BUSY once a limit of its
    table is spent (failed logins per address, TempIDs or upload entries per
    user, entries held): the case cannot go on, but nothing was broken."""
    if isinstance(reply, ErrorReply) and reply.code in LIMIT_CODES and reply.code is not wanted:
        raise CaseSkipped(f"the server answered ERROR {reply.code.name}, which section 4 allows "
                          f"once one of its limits is spent ({reply.text!r}); run again later "
                          "or against a fresh server")


def expect_status(conn: Conn, ctx: CaseContext, status: LoginStatus, what: str = "") -> None:
    reply = conn.expect(ctx, f"LOGIN_REPLY {status.name}")
    allowed_limit(reply)
    if not (isinstance(reply, LoginReply) and reply.status is status):
        raise CaseFailed(f"{what}{describe(reply)}, not LOGIN_REPLY {status.name}")


def expect_error(conn: Conn, ctx: CaseContext, code: ErrorCode, what: str = "") -> ErrorReply:
    reply = conn.expect(ctx, f"ERROR {code.name}")
    allowed_limit(reply, code)
    if not (isinstance(reply, ErrorReply) and reply.code is code):
        raise CaseFailed(f"{what}{describe(reply)}, not ERROR {code.name}")
    return reply


def expect_tempid(conn: Conn, ctx: CaseContext, what: str = "") -> TempIDReply:
    conn.send(frames.TEMPID_REQUEST)
    reply = conn.expect(ctx, "TEMPID_REPLY")
    allowed_limit(reply)
    if not isinstance(reply, TempIDReply):
        raise CaseFailed(f"{what}TEMPID_REQUEST gave {describe(reply)}, not TEMPID_REPLY")
    return reply


def expect_closed_at_once(conn: Conn, ctx: CaseContext, what: str = "") -> Closed:
    """Closed (FIN or RST) within the per-case timeout, with nothing more said."""
    ended = conn.wait_closed(ctx, ctx.timeout)
    if ended is None:
        raise CaseFailed(f"{what}the connection was still open {ctx.timeout:g} s later; "
                         "the spec closes it at once")
    if not isinstance(ended, Closed):
        raise CaseFailed(f"{what}{describe(ended)} came after the reply, then nothing")
    return ended


def expect_kept(conn: Conn, ctx: CaseContext, logged_in: bool, target: ServerTarget) -> None:
    """The connection survived an error: prove it with a request that works."""
    if logged_in:
        expect_tempid(conn, ctx, "the connection was to be kept, but ")
        return
    conn.send(frames.login(target.user, target.password))
    reply = conn.expect(ctx, "LOGIN_REPLY OK (the connection is kept)")
    allowed_limit(reply)
    if not (isinstance(reply, LoginReply) and reply.status is LoginStatus.OK):
        raise CaseFailed(f"the connection was to be kept; LOGIN then gave {describe(reply)}")


def expect_linger(conns: list[tuple[str, Conn, float]], ctx: CaseContext) -> list[str]:
    """Each connection must stay open about 2 s after its last reply (the
    client closes first) and then be closed by the server. ``conns`` holds
    (label, connection, monotonic time of the last reply). Returns what was
    seen per connection; raises if any broke the rule."""
    seen: list[str] = []
    problems: list[str] = []
    for label, conn, replied in conns:
        late = replied + LINGER + ctx.timeout
        ended: Message | Closed | None = conn.wait_closed(ctx, max(0.0, late - time.monotonic()))
        after = time.monotonic() - replied
        if ended is None:
            problems.append(f"{label}: still open {after:.2f} s after the reply")
        elif not isinstance(ended, Closed):
            problems.append(f"{label}: {describe(ended)} after the reply; it reads nothing more")
        elif after < LINGER_EARLIEST:
            problems.append(f"{label}: {ended} {after:.2f} s after the reply, before the "
                            "client's 2 s to close first")
        else:
            seen.append(f"{label}: {ended} {after:.2f} s after the reply")
    if problems:
        raise CaseFailed("; ".join(problems + seen))
    return seen


def expect_upload_reply(conn: Conn, ctx: CaseContext, total: int) -> None:
    reply = conn.expect(ctx, f"UPLOAD_REPLY {total}")
    allowed_limit(reply)
    if not (isinstance(reply, UploadReply) and reply.received == total):
        raise CaseFailed(f"{describe(reply)}, not UPLOAD_REPLY {total}")


def lines_with(path_text: str, needle: str) -> list[str]:
    return [line for line in path_text.splitlines() if needle in line]


def read_data_file(target: ServerTarget, name: str) -> str:
    path = target.need_data_dir() / name
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
