"""Server rules with a manual clock: no sockets, no sleeping."""

from datetime import datetime

import pytest

from bluetrace.clock import ManualClock
from bluetrace.errors import FrameTooLargeError, RemoteProtocolError
from bluetrace.messages import (
    ErrorReply,
    LoginReply,
    LoginRequest,
    LogoutReply,
    LogoutRequest,
    TempIDReply,
    TempIDRequest,
    TempIDWindow,
    UploadReply,
    UploadRequest,
)
from bluetrace.server_core import MAX_UPLOAD_ENTRIES, ServerCore, Session, State
from bluetrace.wire import MAX_UPLOAD_CHUNK, ErrorCode, LoginStatus

USERS = {"+61410888888": "comp3331", "+61410999999": "bada4568"}
START = datetime(2020, 5, 14, 17, 54, 6)


class MemoryStore:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.fail = False

    def append(self, lines: list[str]) -> None:
        if self.fail:
            raise OSError(28, "No space left on device")
        self.lines += lines


def make_core(block: float = 60) -> tuple[ServerCore, ManualClock, MemoryStore, MemoryStore]:
    clock = ManualClock(START)
    tempids, checks = MemoryStore(), MemoryStore()
    core = ServerCore(
        dict(USERS), block, clock, tempids={}, tempid_store=tempids, check_store=checks
    )
    return core, clock, tempids, checks


def login(
    core: ServerCore, user: str, password: str, session: Session | None = None
) -> LoginStatus:
    session = session or Session("test")
    reply = core.handle(session, LoginRequest(user, password)).replies[0]
    assert isinstance(reply, LoginReply)
    return reply.status


def logged_in(core: ServerCore, user: str = "+61410888888") -> Session:
    session = Session("test")
    assert login(core, user, USERS[user], session) is LoginStatus.OK
    return session


def test_third_consecutive_failure_blocks_across_sessions() -> None:
    core, _, _, _ = make_core()
    user = "+61410888888"
    assert login(core, user, "wrong1") is LoginStatus.WRONG_PASSWORD
    assert login(core, user, "wrong2") is LoginStatus.WRONG_PASSWORD  # a new session
    assert login(core, user, "wrong3") is LoginStatus.BLOCKED_NOW
    assert login(core, user, "comp3331") is LoginStatus.BLOCKED


def test_block_lasts_exactly_block_duration() -> None:
    core, clock, _, _ = make_core(block=60)
    user = "+61410888888"
    for _ in range(3):
        login(core, user, "bad")
    clock.advance(59.999)
    assert login(core, user, "comp3331") is LoginStatus.BLOCKED
    clock.advance(0.001)
    assert login(core, user, "comp3331") is LoginStatus.OK


def test_block_end_resets_the_count() -> None:
    core, clock, _, _ = make_core(block=10)
    user = "+61410888888"
    for _ in range(3):
        login(core, user, "bad")
    clock.advance(10)
    assert login(core, user, "bad") is LoginStatus.WRONG_PASSWORD
    assert login(core, user, "bad") is LoginStatus.WRONG_PASSWORD
    assert login(core, user, "bad") is LoginStatus.BLOCKED_NOW


def test_success_resets_the_count() -> None:
    core, _, _, _ = make_core()
    user = "+61410888888"
    login(core, user, "bad")
    login(core, user, "bad")
    assert login(core, user, "comp3331") is LoginStatus.OK
    assert login(core, user, "bad") is LoginStatus.WRONG_PASSWORD
    assert login(core, user, "bad") is LoginStatus.WRONG_PASSWORD


def test_unknown_users_are_not_counted_and_block_nobody() -> None:
    core, _, _, _ = make_core()
    for _ in range(5):
        assert login(core, "+61400000000", "x") is LoginStatus.UNKNOWN_USER
    assert login(core, "+61410888888", "comp3331") is LoginStatus.OK


def test_blocking_one_user_leaves_others_alone() -> None:
    core, _, _, _ = make_core()
    for _ in range(3):
        login(core, "+61410888888", "bad")
    assert login(core, "+61410999999", "bada4568") is LoginStatus.OK


def test_blocked_replies_close_the_connection() -> None:
    core, _, _, _ = make_core()
    session = Session("t")
    core.handle(session, LoginRequest("+61410888888", "a"))
    core.handle(session, LoginRequest("+61410888888", "b"))
    outcome = core.handle(session, LoginRequest("+61410888888", "c"))
    assert outcome.close
    assert session.state is State.CLOSED


def test_passwords_are_case_sensitive() -> None:
    core, _, _, _ = make_core()
    assert login(core, "+61410888888", "COMP3331") is LoginStatus.WRONG_PASSWORD


def test_requests_before_login_are_refused() -> None:
    core, _, tempids, _ = make_core()
    for request in (TempIDRequest(), UploadRequest((), final=True), LogoutRequest()):
        reply = core.handle(Session("t"), request).replies[0]
        assert reply == ErrorReply(ErrorCode.NOT_LOGGED_IN, "log in first")
    assert tempids.lines == []


def test_tempid_is_recorded_before_the_reply_with_a_15_minute_window() -> None:
    core, _, store, _ = make_core()
    session = logged_in(core)
    outcome = core.handle(session, TempIDRequest())
    reply = outcome.replies[0]
    assert isinstance(reply, TempIDReply)
    window = reply.window
    assert window.start == START
    assert (window.expiry - window.start).total_seconds() == 14 * 60 + 59
    assert store.lines == [f"+61410888888 {window.tempid} 14/05/2020 17:54:06 14/05/2020 18:09:05"]
    assert outcome.output == ["user: +61410888888", f"TempID: {window.tempid}"]
    assert core.tempids[window.tempid] == "+61410888888"


def test_tempids_are_unique_even_when_the_draw_repeats() -> None:
    draws = iter(["1" * 20, "1" * 20, "2" * 20])
    core, _, _, _ = make_core()
    core.draw_tempid = lambda: next(draws)
    session = logged_in(core)
    first = core.handle(session, TempIDRequest()).replies[0]
    second = core.handle(session, TempIDRequest()).replies[0]
    assert isinstance(first, TempIDReply)
    assert isinstance(second, TempIDReply)
    assert (first.window.tempid, second.window.tempid) == ("1" * 20, "2" * 20)


def test_storage_failure_issues_nothing_and_keeps_serving() -> None:
    core, _, store, _ = make_core()
    session = logged_in(core)
    store.fail = True
    outcome = core.handle(session, TempIDRequest())
    assert outcome.replies[0] == ErrorReply(
        ErrorCode.STORAGE, "the server could not record a TempID; try later"
    )
    assert not outcome.close
    assert core.tempids == {}
    store.fail = False
    assert isinstance(core.handle(session, TempIDRequest()).replies[0], TempIDReply)


def _window(tempid: str) -> TempIDWindow:
    return TempIDWindow(tempid, START, datetime(2020, 5, 14, 18, 9, 5))


def test_upload_prints_entries_then_checks_with_the_uploaded_start() -> None:
    core, _, _, checks = make_core()
    core.tempids["12345678901234567890"] = "+61410999999"
    session = logged_in(core)
    entries = (_window("12345678901234567890"), _window("00000000000000000001"))
    outcome = core.handle(session, UploadRequest(entries, final=True))
    assert outcome.output == [
        "received contact log from +61410888888",
        "12345678901234567890,",
        "14/05/2020 17:54:06,",
        "14/05/2020 18:09:05;",
        "00000000000000000001,",
        "14/05/2020 17:54:06,",
        "14/05/2020 18:09:05;",
        "Contact log checking",
        "+61410999999,",
        "14/05/2020 17:54:06,",
        "12345678901234567890;",
        "00000000000000000001: unknown TempID",
    ]
    assert outcome.replies == [UploadReply(2)]
    assert len(checks.lines) == 2
    assert checks.lines[0].endswith(" +61410999999")
    assert checks.lines[1].endswith(" unknown")


def test_chunked_upload_is_checked_once_at_the_final_chunk() -> None:
    core, _, _, checks = make_core()
    session = logged_in(core)
    chunk = tuple(_window(f"{i:020d}") for i in range(MAX_UPLOAD_CHUNK))
    assert core.handle(session, UploadRequest(chunk, final=False)).replies == []
    assert checks.lines == []
    outcome = core.handle(session, UploadRequest(chunk[:5], final=True))
    assert outcome.replies == [UploadReply(MAX_UPLOAD_CHUNK + 5)]
    assert len(checks.lines) == MAX_UPLOAD_CHUNK + 5


def test_interrupted_upload_records_nothing() -> None:
    core, _, _, checks = make_core()
    session = logged_in(core)
    core.handle(session, UploadRequest((_window("1" * 20),), final=False))
    reply = core.handle(session, TempIDRequest()).replies[0]
    assert isinstance(reply, ErrorReply)
    assert reply.code is ErrorCode.UNEXPECTED
    core.handle(session, UploadRequest((_window("2" * 20),), final=False))
    core.disconnected(session)
    assert checks.lines == []


def test_upload_cap() -> None:
    core, _, _, checks = make_core()
    session = logged_in(core)
    chunk = tuple(_window(f"{i:020d}") for i in range(MAX_UPLOAD_CHUNK))
    reply = None
    for _ in range(MAX_UPLOAD_ENTRIES // MAX_UPLOAD_CHUNK + 1):
        outcome = core.handle(session, UploadRequest(chunk, final=False))
        if outcome.replies:
            reply = outcome.replies[0]
            break
    assert isinstance(reply, ErrorReply)
    assert reply.code is ErrorCode.TOO_LARGE
    assert session.upload is None
    assert checks.lines == []


def test_logout_prints_and_closes() -> None:
    core, _, _, _ = make_core()
    session = logged_in(core, "+61410999999")
    outcome = core.handle(session, LogoutRequest())
    assert outcome.replies == [LogoutReply()]
    assert outcome.output == ["+61410999999 logout"]
    assert outcome.close


def test_second_login_on_a_session_is_refused() -> None:
    core, _, _, _ = make_core()
    session = logged_in(core)
    reply = core.handle(session, LoginRequest("+61410999999", "bada4568")).replies[0]
    assert isinstance(reply, ErrorReply)
    assert reply.code is ErrorCode.ALREADY_LOGGED_IN
    assert session.username == "+61410888888"


def test_reply_types_from_a_client_close_the_connection() -> None:
    core, _, _, _ = make_core()
    outcome = core.handle(Session("t"), LogoutReply())
    assert outcome.close
    assert isinstance(outcome.replies[0], ErrorReply)


def test_protocol_error_codes() -> None:
    core, _, _, _ = make_core()
    too_big = core.protocol_error(
        Session("t"), FrameTooLargeError("frame body of 9 bytes exceeds the limit of 1")
    )
    assert too_big.replies[0].code is ErrorCode.TOO_LARGE  # type: ignore[union-attr]
    bad = core.protocol_error(Session("t"), RemoteProtocolError("unknown MessageType value 5"))
    assert bad.replies[0].code is ErrorCode.MALFORMED  # type: ignore[union-attr]
    assert bad.close


@pytest.mark.parametrize("state", [State.AWAITING_LOGIN])
def test_login_timeout_only_before_login(state: State) -> None:
    core, _, _, _ = make_core()
    assert core.login_timeout(Session("t", state)).close
    assert not core.login_timeout(logged_in(core)).close
