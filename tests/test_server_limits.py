"""Limits that keep one client from holding the server, with bytes and a manual clock."""

from datetime import datetime

from bluetrace.protocol.messages import (
    ErrorReply,
    LoginReply,
    LoginRequest,
    Message,
    TempIDReply,
    TempIDRequest,
    TempIDWindow,
    UploadReply,
    UploadRequest,
)
from bluetrace.protocol.states import State
from bluetrace.protocol.wire import MAX_UPLOAD_CHUNK, ErrorCode, LoginStatus
from bluetrace.server.core import Limits
from bluetrace.testing import START, USERS, ServerLink, ServerSide

ALICE, BOB = "+61410888888", "+61410999999"
WINDOW = TempIDWindow("1" * 20, START, datetime(2020, 5, 14, 18, 9, 5))
CHUNK = (WINDOW,) * MAX_UPLOAD_CHUNK


def only(replies: list[Message]) -> Message:
    assert len(replies) == 1
    return replies[0]


def logged_in(side: ServerSide, user: str = ALICE, peer: str = "127.0.0.1:1") -> ServerLink:
    link = side.connect(peer)
    assert only(link.send(LoginRequest(user, USERS[user]))) == LoginReply(LoginStatus.OK)
    return link


def test_one_address_may_fail_only_so_often_and_counts_toward_no_block() -> None:
    side = ServerSide(limits=Limits(failed_logins_per_minute=5))
    link = side.connect("10.0.0.9:4000")
    for _ in range(5):
        assert only(link.send(LoginRequest("+61400000000", "x"))) == LoginReply(
            LoginStatus.UNKNOWN_USER
        )
    assert link.send(LoginRequest(ALICE, "wrong")) == []  # answered after refusal_delay
    refused = only(link.advance(Limits().refusal_delay))
    assert isinstance(refused, ErrorReply)
    assert refused.code is ErrorCode.RATE_LIMITED
    assert side.core.guard.failures(ALICE) == 0  # the password was never looked at
    assert link.connection.state is State.AWAITING_LOGIN
    other = side.connect("10.0.0.10:4000")  # another address is not affected
    assert only(other.send(LoginRequest(ALICE, USERS[ALICE]))) == LoginReply(LoginStatus.OK)
    side.clock.advance(60)
    assert only(link.send(LoginRequest(ALICE, USERS[ALICE]))) == LoginReply(LoginStatus.OK)


def test_failed_logins_are_logged_a_few_at_a_time_then_summarised() -> None:
    side = ServerSide(limits=Limits(failed_logins_per_minute=10**6))
    link = side.connect()
    for _ in range(100):
        link.send(LoginRequest("+61400000000", "x"))
    assert len(link.logs) == side.core.login_log.LINES_PER_INTERVAL
    assert link.logs[0] == (
        "login-failed user=+61400000000 peer=127.0.0.1:50000 reason=unknown-user"
    )
    (summary,) = side.core.login_log.summary(side.clock.monotonic())
    assert summary.startswith("95 more failed logins not shown: 95 unknown users")


def test_tempids_per_user_are_rate_limited_after_a_burst() -> None:
    side = ServerSide(limits=Limits(tempid_burst=3, tempids_per_hour=3600))
    link = logged_in(side)
    for _ in range(3):
        assert isinstance(only(link.send(TempIDRequest())), TempIDReply)
    refused = only(link.send(TempIDRequest()))
    assert isinstance(refused, ErrorReply)
    assert refused.code is ErrorCode.RATE_LIMITED
    side.clock.advance(1.0)  # 3,600 an hour is one a second
    assert isinstance(only(link.send(TempIDRequest())), TempIDReply)


def test_upload_entries_per_user_are_rate_limited_and_the_upload_discarded() -> None:
    side = ServerSide(limits=Limits(entry_burst=2 * MAX_UPLOAD_CHUNK, entries_per_hour=3600))
    link = logged_in(side)
    for _ in range(3):
        assert link.send(UploadRequest(CHUNK, final=False)) == []
    assert link.connection.state is State.DISCARDING
    refused = only(link.send(UploadRequest((WINDOW,), final=True)))
    assert isinstance(refused, ErrorReply)
    assert refused.code is ErrorCode.RATE_LIMITED
    assert "3,073 entries" in refused.text
    assert side.check_store.uploads == []
    assert side.core.held_entries == 0
    assert link.connection.state is State.LOGGED_IN


def test_the_server_wide_budget_of_held_entries_refuses_with_busy() -> None:
    side = ServerSide(limits=Limits(max_held_entries=200_000))
    hogs = [logged_in(side, user, f"127.0.0.{i}:1") for i, user in enumerate(USERS)]
    sent = 0
    while sent + MAX_UPLOAD_CHUNK <= 190_000:
        hogs[0].send(UploadRequest(CHUNK, final=False))
        sent += MAX_UPLOAD_CHUNK
    assert side.core.held_entries == sent
    for _ in range(11):  # the 11th would pass 200,000 held in all
        hogs[1].send(UploadRequest(CHUNK, final=False))
    refused = only(hogs[1].send(UploadRequest((), final=True)))
    assert isinstance(refused, ErrorReply)
    assert refused.code is ErrorCode.BUSY
    assert side.core.held_entries == sent  # the refused upload holds nothing
    hogs[0].close_from_client()
    assert side.core.held_entries == 0
    assert only(hogs[2].send(UploadRequest(CHUNK, final=True))) == UploadReply(MAX_UPLOAD_CHUNK)
    assert side.core.held_entries == 0


def test_an_idle_logged_in_connection_is_told_and_closed() -> None:
    side = ServerSide(limits=Limits(idle_timeout=100, stall_timeout=10))
    link = logged_in(side)
    assert link.advance(99.9) == []
    timeout = only(link.advance(0.1))
    assert isinstance(timeout, ErrorReply)
    assert timeout.code is ErrorCode.TIMEOUT
    assert link.connection.state is State.CLOSED


def test_a_parked_upload_stalls_out_sooner_and_is_dropped() -> None:
    side = ServerSide(limits=Limits(idle_timeout=100, stall_timeout=10))
    link = logged_in(side)
    link.send(UploadRequest(CHUNK, final=False))
    assert side.core.held_entries == MAX_UPLOAD_CHUNK
    timeout = only(link.advance(10))
    assert isinstance(timeout, ErrorReply)
    assert timeout.code is ErrorCode.TIMEOUT
    assert side.core.held_entries == 0
    assert side.check_store.uploads == []


def test_half_a_frame_parked_after_login_stalls_out() -> None:
    side = ServerSide(limits=Limits(idle_timeout=100, stall_timeout=10))
    link = logged_in(side)
    link.feed(b"\x01\x03\x00\x00")
    timeout = only(link.advance(10))
    assert isinstance(timeout, ErrorReply)
    assert timeout.code is ErrorCode.TIMEOUT


def test_a_rate_refusal_is_answered_after_the_delay_and_frames_behind_it_wait() -> None:
    """A client that tries again as soon as it is answered is paced by the
    server: RATE_LIMITED comes refusal_delay late, and nothing behind the
    refused LOGIN is read before it."""
    side = ServerSide(limits=Limits(failed_logins_per_minute=1, refusal_delay=2.0))
    link = side.connect("10.0.0.9:4000")
    assert only(link.send(LoginRequest("+61400000000", "x"))) == LoginReply(
        LoginStatus.UNKNOWN_USER
    )
    assert link.send(LoginRequest(ALICE, "wrong"), TempIDRequest()) == []
    assert link.connection.busy
    assert link.advance(1.9) == []
    refused, behind = link.advance(0.1)
    assert isinstance(refused, ErrorReply)
    assert refused.code is ErrorCode.RATE_LIMITED
    assert isinstance(behind, ErrorReply)  # a TempID request before login, answered in order
    assert not link.connection.busy


def test_with_no_refusal_delay_a_rate_refusal_is_answered_at_once() -> None:
    side = ServerSide(limits=Limits(failed_logins_per_minute=1, refusal_delay=0))
    link = side.connect("10.0.0.9:4000")
    link.send(LoginRequest("+61400000000", "x"))
    refused = only(link.send(LoginRequest(ALICE, "wrong")))
    assert isinstance(refused, ErrorReply)
    assert refused.code is ErrorCode.RATE_LIMITED
