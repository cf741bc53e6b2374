"""Server mode, closing, timeouts and limits: how a connection ends, when the
server times one out, and the limits of section 4's table."""

import time

from bluetrace.conform import frames
from bluetrace.conform.model import (
    PARSER_INTERNALS,
    CaseContext,
    CaseFailed,
    CaseInfo,
    CaseNonStrict,
    CaseSkipped,
    Registry,
)
from bluetrace.conform.server_target import (
    LINGERS,
    ServerTarget,
    allowed_limit,
    expect_linger,
    expect_tempid,
    expect_upload_reply,
)
from bluetrace.conform.tcp import Conn, describe
from bluetrace.protocol.messages import ErrorReply
from bluetrace.protocol.wire import ErrorCode

case: Registry[ServerTarget] = Registry("server")
CASES = case.cases
# passages of protocol_spec.md that more than one case quotes
TIMEOUT_ROW = ("time a logged-in connection may complete no frame | --idle-timeout (3,600 s "
               "by default); 60 s (--stall-timeout) while an upload or part of a frame is "
               "held for it; then ERROR TIMEOUT")
LETS_CLIENT_CLOSE = ("After a reply whose next state is CLOSED, the server reads nothing "
                     "more from the connection and lets the client close first: it closes "
                     "the connection itself if the client has not done so within 2 seconds "
                     "(see 3.5) [BT-4-5]")


# -- section 3.5 and closing ------------------------------------------------------------


@case("3.5/logout", ("BT-3.5-2", "BT-4-5", "BT-4-2"),
      "the server reads nothing more from it and closes it itself if the client has not "
      "done so within 2 seconds [BT-3.5-2]",
      ("LOGOUT_REPLY; no reply to a TEMPID_REQUEST sent after it; " + LINGERS,),
      budget=3.0)
def logout(target: ServerTarget, ctx: CaseContext) -> None:
    with target.logged_in(ctx) as conn:
        conn.send(frames.LOGOUT)
        reply = conn.expect(ctx, "LOGOUT_REPLY")
        replied = time.monotonic()
        if describe(reply) != "LOGOUT_REPLY":
            raise CaseFailed(f"{describe(reply)}, not LOGOUT_REPLY")
        conn.send(frames.TEMPID_REQUEST)
        ctx.notes += expect_linger([("after LOGOUT_REPLY", conn, replied)], ctx)


@case("3.6/error-texts", ("BT-3.6-1",),
      "The text is a short sentence for people, never a parser's internals (field paths, "
      "exception names, expected and parsed values); a beacon refused for its version byte "
      "is reported naming the version byte [BT-3.6-1]",
      ("every ERROR text provoked (a bad timestamp, a bad version, an unknown type, an "
       "oversized header, NOT_LOGGED_IN) is one line under 200 characters with no parser "
       "internals",),
      level="SHOULD")
def error_texts(target: ServerTarget, ctx: CaseContext) -> None:
    provokers: list[tuple[str, bytes, bool]] = [
        ("bad timestamp", frames.upload([frames.entry(frames.random_tempid(),
                                                      "31/02/2021 10:00:00")], True), True),
        ("bad version", frames.header(0x01, 0, version=0x02), False),
        ("unknown type", frames.header(0x86, 0), False),
        ("oversized", frames.header(0x01, 600), False),
        ("not logged in", frames.TEMPID_REQUEST, False),
    ]
    problems = []
    for index, (name, data, logged) in enumerate(provokers):
        channel = f"tcp#{index + 1}"
        conn = target.logged_in(ctx, channel) if logged else target.connect(ctx, channel)
        with conn:
            conn.send(data)
            reply = conn.expect(ctx, "ERROR")
        if not isinstance(reply, ErrorReply):
            raise CaseFailed(f"{name}: {describe(reply)}, not an ERROR")
        text = reply.text
        if "\n" in text or len(text) >= 200 or PARSER_INTERNALS.search(text) or not text.strip():
            problems.append(f"{name}: {text!r}")
        else:
            ctx.notes.append(f"{name}: {text!r}")
    if problems:
        raise CaseNonStrict("texts that are not short sentences for people: "
                            + "; ".join(problems))


def _await_timeout(conn: Conn, ctx: CaseContext, limit: float, since: float, what: str) -> float:
    """ERROR TIMEOUT on ``conn`` about ``limit`` s after ``since`` (not more
    than 0.5 s early); the moment it came."""
    reply = conn.expect(ctx, "ERROR TIMEOUT", wait=max(0.0, since + limit + ctx.timeout
                                                       - time.monotonic()))
    replied = time.monotonic()
    waited = replied - since
    if not (isinstance(reply, ErrorReply) and reply.code is ErrorCode.TIMEOUT):
        raise CaseFailed(f"{describe(reply)} after {waited:.2f} s, not ERROR TIMEOUT")
    if waited < limit - 0.5:
        raise CaseFailed(f"ERROR TIMEOUT after {waited:.2f} s, before the {limit:g} s {what}")
    ctx.notes.append(f"ERROR TIMEOUT after {waited:.2f} s")
    return replied


def _short_setting(target: ServerTarget, value: float | None, option: str, what: str) -> float:
    if value is None:
        raise CaseSkipped(f"needs {option} S, the server's {what} (set it short)")
    if value > target.max_wait:
        raise CaseSkipped(f"the {what} ({value:g} s) is longer than --max-wait "
                          f"({target.max_wait:g} s)")
    return value


@case("4/login-timeout", ("BT-4-14", "BT-4-5"),
      "A connection that has not logged in within the login timeout is answered ERROR "
      "TIMEOUT and closed as \"Closing\" says; the timeout ends with a successful login "
      "[BT-4-14].",
      ("silent connection: ERROR TIMEOUT after --login-timeout (not more than 0.5 s early), "
       "then " + LINGERS + "; a connection logged in at once still works after the timeout",),
      budget=4.0)
def login_timeout(target: ServerTarget, ctx: CaseContext) -> None:
    limit = _short_setting(target, target.login_timeout, "--login-timeout", "login timeout")
    ctx.deadline += limit
    silent = target.connect(ctx, "tcp#silent")
    opened = time.monotonic()
    with silent, target.logged_in(ctx, "tcp#in") as active:
        replied = _await_timeout(silent, ctx, limit, opened, "login timeout")
        expect_tempid(active, ctx, "after the login timeout, a logged-in connection: ")
        ctx.notes += expect_linger([("after TIMEOUT", silent, replied)], ctx)


@case("4/idle-timeout", ("BT-4-16", "BT-4-2", "BT-4-5"),
      (TIMEOUT_ROW,
       LETS_CLIENT_CLOSE),
      ("a logged-in connection that sends nothing: ERROR TIMEOUT after --idle-timeout (not "
       "more than 0.5 s early), then " + LINGERS,),
      budget=4.0)
def idle_timeout(target: ServerTarget, ctx: CaseContext) -> None:
    limit = _short_setting(target, target.idle_timeout, "--idle-timeout", "idle timeout")
    ctx.deadline += limit
    with target.logged_in(ctx) as conn:
        replied = _await_timeout(conn, ctx, limit, time.monotonic(), "idle timeout")
        ctx.notes += expect_linger([("after TIMEOUT", conn, replied)], ctx)


@case("4/stall-timeout", ("BT-4-16", "BT-4-2", "BT-4-5"),
      (TIMEOUT_ROW,
       LETS_CLIENT_CLOSE),
      ("a logged-in connection that sends 3 bytes of a header and stops: ERROR TIMEOUT after "
       "--stall-timeout (not more than 0.5 s early), then " + LINGERS,),
      budget=4.0)
def stall_timeout(target: ServerTarget, ctx: CaseContext) -> None:
    limit = _short_setting(target, target.stall_timeout, "--stall-timeout", "stall timeout")
    ctx.deadline += limit
    with target.logged_in(ctx) as conn:
        conn.send(frames.TEMPID_REQUEST[:3])
        replied = _await_timeout(conn, ctx, limit, time.monotonic(), "stall timeout")
        ctx.notes += expect_linger([("after TIMEOUT", conn, replied)], ctx)


@case("4/concurrent", ("BT-4-2",),
      "one TCP connection per phone, carrying frames",
      ("two connections of the same user, logged in together, both get TEMPID_REPLY to "
       "interleaved requests",))
def concurrent(target: ServerTarget, ctx: CaseContext) -> None:
    with target.logged_in(ctx, "tcp#1", target.user) as one, \
            target.logged_in(ctx, "tcp#2", target.user) as two:
        one.send(frames.TEMPID_REQUEST)
        two.send(frames.TEMPID_REQUEST)
        for conn in (two, one):
            reply = conn.expect(ctx, "TEMPID_REPLY")
            allowed_limit(reply)
            if describe(reply).split()[0] != "TEMPID_REPLY":
                raise CaseFailed(f"{conn.channel}: {describe(reply)}, not TEMPID_REPLY")


_BURST = 20


@case("4/tempid-burst", ("BT-4-16", "BT-4-2"),
      ("TempIDs per user | a burst of a minute's worth (at least 20), then "
       "--tempids-per-hour (120 by default)",
       "A server applies each limit of this table as its row says, and answers RATE_LIMITED "
       "or BUSY only once one of them is spent [BT-4-16]"),
      ("for --burst-user (an account given no TempID within the hour): 20 TEMPID_REPLYs, then "
       "ERROR RATE_LIMITED to the 21st or 22nd request, the connection kept (an empty "
       "upload still gets UPLOAD_REPLY 0)",))
def tempid_burst(target: ServerTarget, ctx: CaseContext) -> None:
    user = target.burst_user
    if user is None:
        raise CaseSkipped("needs --burst-user, an account whose TempID burst the kit may spend")
    if target.burst_spent:
        raise CaseSkipped(f"the TempID burst of {user} was spent by an earlier run of this case")
    target.burst_spent = True
    with target.logged_in(ctx, "tcp", user) as conn:
        for number in range(1, _BURST + 3):
            conn.send(frames.TEMPID_REQUEST)
            reply = conn.expect(ctx, "TEMPID_REPLY or ERROR RATE_LIMITED")
            limited = isinstance(reply, ErrorReply) and reply.code is ErrorCode.RATE_LIMITED
            if limited and number <= _BURST:
                raise CaseFailed(f"TempID {number} of the burst of {_BURST} was refused "
                                 f"RATE_LIMITED (was {user} given TempIDs within the hour?)")
            if limited:
                ctx.notes.append(f"RATE_LIMITED from TempID {number}")
                conn.send(frames.upload([], True))
                expect_upload_reply(conn, ctx, 0)
                return
            if describe(reply).split()[0] != "TEMPID_REPLY":
                raise CaseFailed(f"TempID {number}: {describe(reply)}")
    raise CaseFailed(f"{_BURST + 2} TempIDs in a row were all granted; the spec allows a "
                     f"burst of {_BURST}")


@case("4/storage-error", ("BT-4-2",),
      "LOGGED_IN | TEMPID_REQUEST | TEMPID_REPLY (or ERROR STORAGE) | LOGGED_IN",
      ("INFO: a server's disk cannot be made to fail from outside; its own tests must "
       "show ERROR STORAGE",))
def storage_error(target: ServerTarget, ctx: CaseContext) -> None:
    raise CaseInfo("not provoked from outside: a full or failing disk is the server's to test")
