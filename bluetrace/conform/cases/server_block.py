"""Server mode, section 4 "Blocking": the spare user is blocked, from two
addresses, until the block ends; then the shutdown case, which stops the
server and so runs last."""

import os
import signal
import time

from bluetrace.conform import frames
from bluetrace.conform.model import (
    CaseContext,
    CaseFailed,
    CaseSkipped,
    Registry,
    bounded_wait,
)
from bluetrace.conform.server_target import (
    CLOSED_AT_ONCE,
    LINGERS,
    ServerTarget,
    expect_closed_at_once,
    expect_error,
    expect_linger,
    expect_status,
)
from bluetrace.conform.tcp import describe
from bluetrace.protocol.wire import ErrorCode, LoginStatus

case: Registry[ServerTarget] = Registry("server")
CASES = case.cases


# -- section 4: blocking (the spare user) ------------------------------------------------


def _spare_ready(target: ServerTarget, ctx: CaseContext) -> str:
    """The spare user, logged in once to reset its count (waiting out an old
    block first, when the block duration is known and short)."""
    spare = target.need_spare()
    for attempt in range(2):
        with target.connect(ctx, "tcp#reset") as conn:
            conn.send(frames.login(spare, target.users[spare]))
            reply = conn.expect(ctx, "LOGIN_REPLY OK")
        if describe(reply) == "LOGIN_REPLY OK":
            return spare
        duration = target.block_duration
        if attempt or describe(reply) != "LOGIN_REPLY BLOCKED" or duration is None \
                or duration > target.max_wait:
            raise CaseFailed(f"the spare user {spare} could not log in: {describe(reply)}")
        ctx.deadline += duration
        ctx.log.note("kit", f"{spare} is blocked from an earlier run: waiting {duration:g} s")
        bounded_wait(lambda: False, duration + 0.2)
    raise CaseFailed(f"the spare user {spare} could not log in")


@case("4/unknown-not-counted", ("BT-4-11",),
      "Unknown usernames are never counted [BT-4-11].",
      ("four LOGINs with an unknown username on one connection: LOGIN_REPLY UNKNOWN_USER "
       "each time, never BLOCKED_NOW or BLOCKED",))
def unknown_not_counted(target: ServerTarget, ctx: CaseContext) -> None:
    name = "no-such-user-" + frames.random_tempid()[:8]
    with target.connect(ctx) as conn:
        for attempt in range(4):
            conn.send(frames.login(name, "wrong"))
            expect_status(conn, ctx, LoginStatus.UNKNOWN_USER, f"attempt {attempt + 1}: ")


@case("4/reset-on-success", ("BT-4-10",),
      "A successful login, and the end of a block, reset the count [BT-4-10].",
      ("spare user: 2 wrong, 1 right (OK), then on a new connection 2 wrong give "
       "WRONG_PASSWORD (not BLOCKED_NOW) and a right one gives OK",),
      budget=2.0)
def reset_on_success(target: ServerTarget, ctx: CaseContext) -> None:
    spare = _spare_ready(target, ctx)
    password = target.users[spare]
    for channel in ("tcp#1", "tcp#2"):
        with target.connect(ctx, channel) as conn:
            for attempt in range(2):
                conn.send(frames.login(spare, password + "x"))
                expect_status(conn, ctx, LoginStatus.WRONG_PASSWORD,
                              f"{channel}, wrong password {attempt + 1}: ")
            conn.send(frames.login(spare, password))
            expect_status(conn, ctx, LoginStatus.OK, f"{channel}, right password: ")


@case("4/block-across-connections", ("BT-4-7", "BT-4-8", "BT-4-5"),
      "The server counts consecutive wrong passwords per username, across every connection "
      "and source address [BT-4-7]. The third consecutive failure blocks the user for "
      "block_duration seconds from that moment [BT-4-8]",
      ("spare user, one wrong password per connection (the second from --second-address "
       "when given): WRONG_PASSWORD, WRONG_PASSWORD, BLOCKED_NOW; then " + LINGERS,),
      budget=4.0)
def block_across_connections(target: ServerTarget, ctx: CaseContext) -> None:
    spare = _spare_ready(target, ctx)
    wrong = target.users[spare] + "x"
    sources = [None, target.second_address, None]
    for index, source in enumerate(sources[:2]):
        with target.connect(ctx, f"tcp#{index + 1}", source) as conn:
            conn.send(frames.login(spare, wrong))
            expect_status(conn, ctx, LoginStatus.WRONG_PASSWORD,
                          f"wrong password {index + 1} (own connection): ")
    with target.connect(ctx, "tcp#3") as conn:
        conn.send(frames.login(spare, wrong))
        expect_status(conn, ctx, LoginStatus.BLOCKED_NOW,
                      "the third wrong password, on a third connection: ")
        target.blocked_at = time.monotonic()
        ctx.notes += expect_linger([("after BLOCKED_NOW", conn, target.blocked_at)], ctx)


def _need_block(target: ServerTarget) -> str:
    spare = target.need_spare()
    if target.blocked_at is None:
        raise CaseSkipped("needs the block made by server/4/block-across-connections")
    duration = target.block_duration
    if duration is not None and time.monotonic() - target.blocked_at > duration - 0.5:
        raise CaseSkipped(f"the block ({duration:g} s) ended before this case could run")
    return spare


@case("4/blocked-any-password", ("BT-4-9",),
      "while blocked, every LOGIN for that user is answered BLOCKED without comparing the "
      "password [BT-4-9]",
      ("LOGIN_REPLY BLOCKED for the right password and for a wrong one, each on its own "
       "connection",))
def blocked_any_password(target: ServerTarget, ctx: CaseContext) -> None:
    spare = _need_block(target)
    for channel, password in (("tcp#right", target.users[spare]), ("tcp#wrong", "wrong")):
        with target.connect(ctx, channel) as conn:
            conn.send(frames.login(spare, password))
            expect_status(conn, ctx, LoginStatus.BLOCKED, f"{channel}: ")


@case("4/blocked-second-address", ("BT-4-7", "BT-4-9"),
      "The server counts consecutive wrong passwords per username, across every connection "
      "and source address [BT-4-7].",
      ("from --second-address, the right password gets LOGIN_REPLY BLOCKED",))
def blocked_second_address(target: ServerTarget, ctx: CaseContext) -> None:
    spare = _need_block(target)
    if target.second_address is None:
        raise CaseSkipped("needs --second-address (127.0.0.2 on Linux loopback)")
    with target.connect(ctx, "tcp#2nd", target.second_address) as conn:
        conn.send(frames.login(spare, target.users[spare]))
        expect_status(conn, ctx, LoginStatus.BLOCKED, f"from {target.second_address}: ")


@case("4/block-ends", ("BT-4-8", "BT-4-10"),
      ("The third consecutive failure blocks the user for block_duration seconds from that "
       "moment [BT-4-8]",
       "A successful login, and the end of a block, reset the count [BT-4-10]"),
      ("after --block-duration has passed: a wrong password gives WRONG_PASSWORD (the count "
       "starts afresh) and the right one gives OK",),
      budget=2.0)
def block_ends(target: ServerTarget, ctx: CaseContext) -> None:
    spare = target.need_spare()
    duration = target.block_duration
    if duration is None:
        raise CaseSkipped("needs --block-duration S, the server's block duration (set it short)")
    if duration > target.max_wait:
        raise CaseSkipped(f"the block duration ({duration:g} s) is longer than --max-wait")
    if target.blocked_at is None:
        raise CaseSkipped("needs the block made by server/4/block-across-connections")
    ends = target.blocked_at + duration + 0.3
    ctx.deadline = max(ctx.deadline, ends + ctx.timeout + ctx.budget)
    bounded_wait(lambda: time.monotonic() >= ends, max(0.0, ends - time.monotonic()) + 0.1)
    with target.connect(ctx) as conn:
        conn.send(frames.login(spare, target.users[spare] + "x"))
        expect_status(conn, ctx, LoginStatus.WRONG_PASSWORD, "after the block, a wrong password: ")
        conn.send(frames.login(spare, target.users[spare]))
        expect_status(conn, ctx, LoginStatus.OK, "after the block, the right password: ")
    target.blocked_at = None


@case("4/shutting-down", ("BT-4-6", "BT-4-2"),
      ("any | (the server stops) | ERROR SHUTTING_DOWN | CLOSED",
       "Two rows close at once, once the reply is sent: a malformed or oversized frame (the "
       "stream cannot be trusted) and SHUTTING_DOWN (the server is exiting) [BT-4-6]"),
      ("after SIGTERM to --server-pid: ERROR SHUTTING_DOWN on a logged-in connection, then "
       + CLOSED_AT_ONCE,))
def shutting_down(target: ServerTarget, ctx: CaseContext) -> None:
    if target.server_pid is None:
        raise CaseSkipped("stops the server: give --server-pid PID to run it (it runs last)")
    try:
        conn = target.logged_in(ctx)
    except CaseFailed as exc:
        if exc.actual.startswith("cannot connect"):
            raise CaseSkipped("the server was stopped by an earlier run of this case") from None
        raise
    with conn:
        os.kill(target.server_pid, signal.SIGTERM)
        ctx.log.note("kit", f"SIGTERM to {target.server_pid}")
        expect_error(conn, ctx, ErrorCode.SHUTTING_DOWN)
        expect_closed_at_once(conn, ctx)
