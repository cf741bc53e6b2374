"""The server connection with bytes and a manual clock: no sockets, no sleeping."""

from datetime import datetime

import pytest

from bluetrace.protocol import wire
from bluetrace.protocol.errors import DataAfterEndError
from bluetrace.protocol.messages import (
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
    encode,
)
from bluetrace.protocol.states import State
from bluetrace.protocol.wire import MAX_UPLOAD_CHUNK, ErrorCode, LoginStatus
from bluetrace.server.connection import PRE_LOGIN_MAX_BODY
from bluetrace.server.core import Limits
from bluetrace.testing import START, USERS, ServerLink, ServerSide

ALICE, BOB = "+61410888888", "+61410999999"


def status_of(replies: list[Message]) -> LoginStatus:
    assert len(replies) == 1
    reply = replies[0]
    assert isinstance(reply, LoginReply)
    return reply.status


def error_of(replies: list[Message]) -> ErrorReply:
    assert len(replies) == 1
    reply = replies[0]
    assert isinstance(reply, ErrorReply)
    return reply


def login(side: ServerSide, user: str, password: str) -> LoginStatus:
    return status_of(side.connect().send(LoginRequest(user, password)))


def logged_in(side: ServerSide, user: str = ALICE) -> ServerLink:
    link = side.connect()
    assert status_of(link.send(LoginRequest(user, USERS[user]))) is LoginStatus.OK
    return link


def window(tempid: str) -> TempIDWindow:
    return TempIDWindow(tempid, START, datetime(2020, 5, 14, 18, 9, 5))


# -- blocking ---------------------------------------------------------------------
def test_third_consecutive_failure_blocks_across_connections() -> None:
    side = ServerSide()
    assert login(side, ALICE, "wrong1") is LoginStatus.WRONG_PASSWORD
    assert login(side, ALICE, "wrong2") is LoginStatus.WRONG_PASSWORD
    assert login(side, ALICE, "wrong3") is LoginStatus.BLOCKED_NOW
    assert login(side, ALICE, "comp3331") is LoginStatus.BLOCKED


def test_block_lasts_exactly_block_duration() -> None:
    side = ServerSide(block=60)
    for _ in range(3):
        login(side, ALICE, "bad")
    side.clock.advance(59.999)
    assert login(side, ALICE, "comp3331") is LoginStatus.BLOCKED
    side.clock.advance(0.001)
    assert login(side, ALICE, "comp3331") is LoginStatus.OK


def test_block_end_resets_the_count() -> None:
    side = ServerSide(block=10)
    for _ in range(3):
        login(side, ALICE, "bad")
    side.clock.advance(10)
    assert login(side, ALICE, "bad") is LoginStatus.WRONG_PASSWORD
    assert login(side, ALICE, "bad") is LoginStatus.WRONG_PASSWORD
    assert login(side, ALICE, "bad") is LoginStatus.BLOCKED_NOW


def test_success_resets_the_count_and_unknown_users_block_nobody() -> None:
    side = ServerSide()
    login(side, ALICE, "bad")
    login(side, ALICE, "bad")
    assert login(side, ALICE, "comp3331") is LoginStatus.OK
    assert login(side, ALICE, "bad") is LoginStatus.WRONG_PASSWORD
    for _ in range(5):
        assert login(side, "+61400000000", "x") is LoginStatus.UNKNOWN_USER
    assert login(side, BOB, "bada4568") is LoginStatus.OK


def test_passwords_are_case_sensitive() -> None:
    assert login(ServerSide(), ALICE, "COMP3331") is LoginStatus.WRONG_PASSWORD


def test_blocked_replies_end_the_session_and_the_client_closes_first() -> None:
    side = ServerSide()
    link = side.connect()
    for password in ("a", "b"):
        link.send(LoginRequest(ALICE, password))
    assert status_of(link.send(LoginRequest(ALICE, "c"))) is LoginStatus.BLOCKED_NOW
    assert link.connection.state is State.CLOSED
    assert not link.close_asked  # lingering: the client closes first
    assert link.send(TempIDRequest()) == []  # read and dropped
    link.close_from_client()
    assert link.close_asked


def test_lingering_ends_after_two_seconds_without_the_client() -> None:
    link = logged_in(ServerSide())
    assert link.send(LogoutRequest()) == [LogoutReply()]
    link.advance(1.999)
    assert not link.close_asked
    link.advance(0.001)
    assert link.close_asked


# -- requests and replies -----------------------------------------------------------
def test_requests_before_login_are_refused() -> None:
    side = ServerSide()
    link = side.connect()
    for request in (TempIDRequest(), UploadRequest((), final=True), LogoutRequest()):
        assert error_of(link.send(request)) == ErrorReply(ErrorCode.NOT_LOGGED_IN, "log in first")
    assert side.tempid_store.records == []


def test_tempid_is_told_only_once_durable_with_a_15_minute_window() -> None:
    side = ServerSide()
    side.auto_commit = False
    link = logged_in(side)
    assert link.send(TempIDRequest()) == []  # held for the group commit
    assert link.commits_asked == 1
    assert link.output == []
    replies = link.commit(durable=True)
    reply = replies[0]
    assert isinstance(reply, TempIDReply)
    assert reply.window.start == START
    assert (reply.window.expiry - reply.window.start).total_seconds() == 14 * 60 + 59
    assert [record.window for record in side.tempid_store.records] == [reply.window]
    assert link.output == [f"user: {ALICE}", f"TempID: {reply.window.tempid}"]
    assert side.registry[reply.window.tempid] == ALICE


def test_a_failed_commit_turns_the_tempid_into_a_storage_error() -> None:
    side = ServerSide()
    side.auto_commit = False
    link = logged_in(side)
    link.send(TempIDRequest())
    assert error_of(link.commit(durable=False)).code is ErrorCode.STORAGE
    assert link.output == []


def test_replies_keep_their_order_behind_a_held_one() -> None:
    side = ServerSide()
    side.auto_commit = False
    link = logged_in(side)
    assert link.send(TempIDRequest(), LoginRequest(BOB, "x")) == []
    replies = link.commit()
    assert isinstance(replies[0], TempIDReply)
    assert error_of(replies[1:]).code is ErrorCode.ALREADY_LOGGED_IN


def test_storage_failure_issues_nothing_and_keeps_serving() -> None:
    side = ServerSide()
    link = logged_in(side)
    side.tempid_store.fail_append = True
    assert error_of(link.send(TempIDRequest())).code is ErrorCode.STORAGE
    assert side.registry == {}
    side.tempid_store.fail_append = False
    assert isinstance(link.send(TempIDRequest())[0], TempIDReply)


def test_tempids_are_unique_even_when_the_draw_repeats() -> None:
    side = ServerSide()
    draws = iter(["1" * 20, "1" * 20, "2" * 20])
    side.core.draw_tempid = lambda: next(draws)
    link = logged_in(side)
    first, second = link.send(TempIDRequest())[0], link.send(TempIDRequest())[0]
    assert isinstance(first, TempIDReply)
    assert isinstance(second, TempIDReply)
    assert (first.window.tempid, second.window.tempid) == ("1" * 20, "2" * 20)


def test_upload_prints_its_block_whole_with_the_uploaded_start() -> None:
    side = ServerSide()
    side.registry["12345678901234567890"] = BOB
    link = logged_in(side)
    entries = (window("12345678901234567890"), window("00000000000000000001"))
    assert link.send(UploadRequest(entries, final=True)) == [UploadReply(2)]
    assert link.output == [
        f"received contact log from {ALICE}",
        "12345678901234567890,",
        "14/05/2020 17:54:06,",
        "14/05/2020 18:09:05;",
        "00000000000000000001,",
        "14/05/2020 17:54:06,",
        "14/05/2020 18:09:05;",
        "Contact log checking",
        f"{BOB},",
        "14/05/2020 17:54:06,",
        "12345678901234567890;",
        "00000000000000000001: unknown TempID",
    ]
    (records,) = side.check_store.uploads
    assert [record.contact for record in records] == [BOB, None]
    assert records[1].line().endswith(" unknown")


def test_an_empty_log_is_one_empty_final_chunk() -> None:
    side = ServerSide()
    link = logged_in(side)
    assert link.send(UploadRequest((), final=True)) == [UploadReply(0)]
    assert link.output == [f"received contact log from {ALICE}", "Contact log checking"]


def test_upload_reply_waits_for_the_check_record_to_be_durable() -> None:
    side = ServerSide()
    side.auto_commit = False
    link = logged_in(side)
    assert link.send(UploadRequest((window("1" * 20),), final=True)) == []
    assert error_of(link.commit(durable=False)).code is ErrorCode.STORAGE
    assert link.send(UploadRequest((window("1" * 20),), final=True)) == []
    assert link.commit(durable=True) == [UploadReply(1)]


def test_chunked_upload_is_checked_once_and_slice_by_slice() -> None:
    side = ServerSide(limits=Limits(entries_per_call=100))
    link = logged_in(side)
    chunk = tuple(window(f"{i:020d}") for i in range(MAX_UPLOAD_CHUNK))
    assert link.send(UploadRequest(chunk, final=False)) == []
    assert side.check_store.uploads == []
    link.connection.receive_data(
        encode(UploadRequest(chunk[:5], final=True)), side.clock.monotonic()
    )
    assert link.connection.has_pending_work()  # one call checked only a slice
    assert link.pump() == [UploadReply(MAX_UPLOAD_CHUNK + 5)]
    assert len(side.check_store.uploads[0]) == MAX_UPLOAD_CHUNK + 5


def test_interrupted_upload_records_nothing() -> None:
    side = ServerSide()
    link = logged_in(side)
    link.send(UploadRequest((window("1" * 20),), final=False))
    assert error_of(link.send(TempIDRequest())).code is ErrorCode.UNEXPECTED
    assert link.connection.state is State.LOGGED_IN
    link.send(UploadRequest((window("2" * 20),), final=False))
    link.close_from_client()
    assert side.check_store.uploads == []
    assert any("abandoned" in line for line in link.logs)


def test_an_upload_past_the_limit_is_discarded_through_its_final_chunk() -> None:
    limit = 3 * MAX_UPLOAD_CHUNK
    side = ServerSide(limits=Limits(max_upload_entries=limit))
    link = logged_in(side)
    chunk = tuple(window(f"{i:020d}") for i in range(MAX_UPLOAD_CHUNK))
    for _ in range(4):
        assert link.send(UploadRequest(chunk, final=False)) == []
    assert link.connection.state is State.DISCARDING
    error = error_of(link.send(UploadRequest(chunk[:1], final=True)))
    assert error.code is ErrorCode.TOO_LARGE
    assert "4,097" in error.text
    assert side.check_store.uploads == []
    assert link.connection.state is State.LOGGED_IN  # still logged in
    assert isinstance(link.send(TempIDRequest())[0], TempIDReply)


def test_logout_prints_and_ends() -> None:
    link = logged_in(ServerSide(), BOB)
    assert link.send(LogoutRequest()) == [LogoutReply()]
    assert link.output == [f"{BOB} logout"]
    assert link.connection.state is State.CLOSED


def test_second_login_on_a_connection_is_refused() -> None:
    link = logged_in(ServerSide())
    assert error_of(link.send(LoginRequest(BOB, "bada4568"))).code is ErrorCode.ALREADY_LOGGED_IN
    assert link.connection.username == ALICE


def test_reply_types_from_a_client_end_the_connection() -> None:
    link = ServerSide().connect()
    assert error_of(link.send(LogoutReply())).code is ErrorCode.UNEXPECTED
    assert link.connection.state is State.CLOSED


# -- framing, caps, timers, budgets -----------------------------------------------------
@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\x02\x04\x00\x00\x00\x00", ErrorCode.MALFORMED),  # frame version 2
        (b"\x01\x86\x00\x00\x00\x00", ErrorCode.MALFORMED),  # unknown type
        (b"\x01\x01\x00\x00\x02\x01", ErrorCode.TOO_LARGE),  # 513-byte LOGIN before login
        (b"\x01\x03\x00\x00\x00\x03\x02\x00\x00", ErrorCode.MALFORMED),  # bad flags
    ],
)
def test_broken_frames_are_answered_and_closed_at_once(data: bytes, code: ErrorCode) -> None:
    link = ServerSide().connect()
    assert error_of(link.feed(data)).code is code
    assert link.close_asked
    assert "parsing" not in error_of([ErrorReply(code, "x")]).text


def test_a_malformed_upload_before_login_is_malformed_not_unauthenticated() -> None:
    link = ServerSide().connect()
    bad = b"\x01\x03\x00\x00\x00\x03\x07\x00\x00"
    assert error_of(link.feed(bad)).code is ErrorCode.MALFORMED


def test_after_login_the_full_frame_size_is_allowed() -> None:
    link = logged_in(ServerSide())
    chunk = tuple(window(f"{i:020d}") for i in range(MAX_UPLOAD_CHUNK))
    assert link.send(UploadRequest(chunk, final=True)) == [UploadReply(MAX_UPLOAD_CHUNK)]


def test_login_timeout_only_before_login() -> None:
    side = ServerSide(limits=Limits(login_timeout=120))
    idle, busy = side.connect(), logged_in(side)
    assert idle.connection.get_timer() == side.clock.monotonic() + 120
    assert busy.connection.get_timer() == side.clock.monotonic() + side.core.limits.idle_timeout
    assert idle.advance(119.9) == []
    assert error_of(idle.advance(0.1)).code is ErrorCode.TIMEOUT
    assert idle.connection.state is State.CLOSED
    assert not idle.close_asked
    idle.advance(side.core.limits.linger)
    assert idle.close_asked
    assert busy.connection.state is State.LOGGED_IN


def test_each_call_handles_a_bounded_number_of_frames() -> None:
    """A stranger pipelining thousands of frames gets a slice of work per call."""
    side = ServerSide(limits=Limits(frames_per_call=8))
    link = side.connect()
    link.connection.receive_data(encode(TempIDRequest()) * 1000, side.clock.monotonic())
    first = link.decoder.messages(link.connection.data_to_send())
    assert len(first) == 8
    assert link.connection.has_pending_work()
    assert not link.connection.wants_input()
    rest = link.pump()
    assert len(first) + len(rest) == 1000
    assert link.connection.wants_input()


def test_shut_down_says_so_and_closes_at_once() -> None:
    link = logged_in(ServerSide())
    link.connection.shut_down(0.0)
    assert error_of(link.pump()).code is ErrorCode.SHUTTING_DOWN
    assert link.close_asked


def test_the_pre_login_cap_is_the_largest_login() -> None:
    longest = LoginRequest("u" * wire.MAX_TEXT_LEN, "p" * wire.MAX_TEXT_LEN)
    assert len(encode(longest)) - wire.FRAME_HEADER_LEN == PRE_LOGIN_MAX_BODY
    link = ServerSide({"u" * 255: "p" * 255}).connect()
    assert status_of(link.send(longest)) is LoginStatus.OK


# -- the end of the stream ------------------------------------------------------
@pytest.mark.parametrize("first", [b"", encode(LoginRequest(ALICE, USERS[ALICE]))])
def test_bytes_after_the_end_of_the_stream_are_a_host_error(first: bytes) -> None:
    """As in h11: once the host has said the stream ended, more bytes from the
    same stream are a bug in the host, told at once rather than dropped."""
    link = ServerSide().connect()
    link.feed(first)
    link.close_from_client()
    link.close_from_client()  # saying it again is harmless
    with pytest.raises(DataAfterEndError, match="after the end of the stream"):
        link.connection.receive_data(encode(LogoutRequest()), 0.0)
