"""Client rules with a manual clock and an in-memory contact log."""

from datetime import datetime, timedelta

import pytest

from bluetrace.client_core import (
    BLOCKED,
    BLOCKED_NOW,
    INVALID_COMMAND,
    INVALID_PASSWORD,
    INVALID_USERNAME,
    PROMPT,
    WELCOME,
    ClientCore,
    Effect,
    Exit,
    Prompt,
    Send,
    SendBeacon,
    Show,
    State,
)
from bluetrace.clock import ManualClock
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
    decode_beacon,
    encode_beacon,
)
from bluetrace.records import contact_line, parse_contact_line
from bluetrace.wire import MAX_UPLOAD_CHUNK, ErrorCode, LoginStatus

NOW = datetime(2020, 5, 14, 18, 0, 1)
WINDOW = TempIDWindow(
    "12345678901234567893", datetime(2020, 5, 14, 17, 54, 6), datetime(2020, 5, 14, 18, 9, 5)
)


class MemoryLog:
    def __init__(self, lines: list[str] | None = None) -> None:
        self.lines = list(lines or [])
        self.rewrites = 0
        self.fail = False

    def load(self) -> tuple[list[TempIDWindow], list[str]]:
        return [parse_contact_line(line) for line in self.lines], []

    def append(self, line: str) -> None:
        if self.fail:
            raise OSError(13, "Permission denied")
        self.lines.append(line)

    def rewrite(self, lines: list[str]) -> None:
        if self.fail:
            raise OSError(13, "Permission denied")
        self.lines = list(lines)
        self.rewrites += 1


def shown(effects: list[Effect]) -> list[str]:
    return [effect.text for effect in effects if isinstance(effect, Show)]


def make(
    log: MemoryLog | None = None, retention: float = 180
) -> tuple[ClientCore, ManualClock, MemoryLog]:
    clock = ManualClock(NOW)
    store = log or MemoryLog()
    return ClientCore(clock, lambda username: store, retention=retention), clock, store


def logged_in(
    log: MemoryLog | None = None, retention: float = 180
) -> tuple[ClientCore, ManualClock, MemoryLog]:
    core, clock, store = make(log, retention)
    assert core.start() == [Prompt("Username: ")]
    assert core.line("+61410888888") == [Prompt("Password: ", secret=True)]
    assert core.line("comp3331") == [Send(LoginRequest("+61410888888", "comp3331"))]
    assert core.frame(LoginReply(LoginStatus.OK)) == [Show(WELCOME), Prompt(PROMPT)]
    return core, clock, store


def with_tempid(window: TempIDWindow = WINDOW) -> tuple[ClientCore, ManualClock, MemoryLog]:
    core, clock, store = logged_in()
    assert core.line("Download_tempID") == [Send(TempIDRequest())]
    assert core.frame(TempIDReply(window)) == [Show(f"TempID: {window.tempid}"), Prompt(PROMPT)]
    return core, clock, store


def test_login_retries_use_the_specified_texts() -> None:
    core, _, _ = make()
    core.start()
    core.line("+61400000000")
    core.line("pw")
    assert core.frame(LoginReply(LoginStatus.UNKNOWN_USER)) == [
        Show(INVALID_USERNAME),
        Prompt("Username: "),
    ]
    core.line("+61410888888")
    core.line("wrong")
    assert core.frame(LoginReply(LoginStatus.WRONG_PASSWORD)) == [
        Show(INVALID_PASSWORD),
        Prompt("Password: ", secret=True),
    ]
    assert core.line("wrong2") == [Send(LoginRequest("+61410888888", "wrong2"))]


@pytest.mark.parametrize(
    ("status", "text"), [(LoginStatus.BLOCKED_NOW, BLOCKED_NOW), (LoginStatus.BLOCKED, BLOCKED)]
)
def test_blocks_print_and_exit(status: LoginStatus, text: str) -> None:
    core, _, _ = make()
    core.start()
    core.line("+61410888888")
    core.line("x")
    assert core.frame(LoginReply(status)) == [Show(text), Exit(1)]


def test_password_with_a_space_is_refused_locally() -> None:
    core, _, _ = make()
    core.start()
    core.line("+61410888888")
    assert core.line("two words") == [Show(INVALID_PASSWORD), Prompt("Password: ", secret=True)]


def test_invalid_command_and_empty_line() -> None:
    core, _, _ = logged_in()
    assert core.line("whatsthedate") == [Show(INVALID_COMMAND), Prompt(PROMPT)]
    assert core.line("download_tempid") == [Show(INVALID_COMMAND), Prompt(PROMPT)]
    assert core.line("") == [Prompt(PROMPT)]


def test_beacon_needs_a_tempid_and_good_arguments() -> None:
    core, _, _ = logged_in()
    assert shown(core.line("Beacon 127.0.0.1 8001")) == [
        "No TempID yet: run Download_tempID first."
    ]
    for bad in (
        "Beacon",
        "Beacon 127.0.0.1",
        "Beacon 127.0.0.1 0",
        "Beacon 127.0.0.1 65536",
        "Beacon bad_host! 80",
        "Beacon 127.0.0.1 80 extra",
        "Beacon 127.0.0.1 x",
    ):
        assert shown(core.line(bad))[0].startswith("Usage: Beacon"), bad


def test_beacon_sends_59_bytes_and_shows_the_fields() -> None:
    core, _, _ = with_tempid()
    effects = core.line("Beacon 127.0.0.1 8001")
    beacon = effects[0]
    assert isinstance(beacon, SendBeacon)
    assert (beacon.host, beacon.port, len(beacon.data)) == ("127.0.0.1", 8001, 59)
    assert decode_beacon(beacon.data) == WINDOW
    assert beacon.shown == ("12345678901234567893,", "14/05/2020 17:54:06,", "14/05/2020 18:09:05.")
    assert effects[1] == Prompt(PROMPT)


def test_expired_tempid_warns_and_still_sends() -> None:
    core, clock, _ = with_tempid()
    clock.advance(9 * 60 + 4)  # 18:09:05, the last valid second
    assert not shown(core.line("Beacon localhost 8001"))
    clock.advance(1)
    effects = core.line("Beacon localhost 8001")
    assert shown(effects)[0].startswith("Warning: your TempID expired at 14/05/2020 18:09:05")
    assert any(isinstance(effect, SendBeacon) for effect in effects)


def test_receiving_a_valid_beacon_prints_the_sample_block_and_stores_it() -> None:
    core, _, log = logged_in()
    effects = core.datagram(encode_beacon(WINDOW), ("127.0.0.1", 5000))
    assert shown(effects) == [
        "received beacon:",
        "12345678901234567893,",
        "14/05/2020 17:54:06,",
        "14/05/2020 18:09:05.",
        "Current time is:",
        "14/05/2020 18:00:01.",
        "The beacon is valid.",
    ]
    assert effects[-1] == Prompt(PROMPT)
    assert log.lines == ["12345678901234567893 14/05/2020 17:54:06 14/05/2020 18:09:05"]


@pytest.mark.parametrize(
    ("offset", "valid"),
    [(-1, False), (0, True), (14 * 60 + 59, True), (15 * 60, False)],
)
def test_validity_window_is_inclusive(offset: int, valid: bool) -> None:
    core, _, log = logged_in()
    start = NOW - timedelta(seconds=offset)
    window = TempIDWindow("0" * 20, start, start + timedelta(seconds=14 * 60 + 59))
    text = shown(core.datagram(encode_beacon(window), ("127.0.0.1", 1)))
    assert text[-1] == f"The beacon is {'valid' if valid else 'invalid'}."
    assert len(log.lines) == int(valid)


def test_malformed_datagram_is_one_notice_and_touches_nothing() -> None:
    core, _, log = logged_in()
    log.lines.append("keep")
    for junk in (
        b"",
        b"x" * 59,
        encode_beacon(WINDOW)[:-1] + b"\x02",
        encode_beacon(WINDOW) + b"\x00",
    ):
        text = shown(core.datagram(junk, ("127.0.0.1", 9)))
        assert len(text) == 1
        assert text[0].startswith("Rejected a malformed beacon from 127.0.0.1:9: ")
    assert log.lines == ["keep"]
    assert not core.contacts


def test_beacons_before_login_are_ignored() -> None:
    core, _, log = make()
    core.start()
    assert core.datagram(encode_beacon(WINDOW), ("127.0.0.1", 1)) == []
    assert log.lines == []


def test_each_entry_is_removed_exactly_retention_after_it_arrived() -> None:
    core, clock, log = logged_in(retention=180)
    core.datagram(encode_beacon(WINDOW), ("127.0.0.1", 1))
    assert core.next_deadline() == clock.monotonic() + 180
    clock.advance(60)
    other = TempIDWindow("9" * 20, WINDOW.start, WINDOW.expiry)
    core.datagram(encode_beacon(other), ("127.0.0.1", 1))
    clock.advance(119.999)
    core.timer()
    assert len(log.lines) == 2
    clock.advance(0.001)
    core.timer()
    assert log.lines == [contact_line(other)]
    clock.advance(60)
    core.timer()
    assert log.lines == []
    assert core.next_deadline() is None
    assert log.rewrites == 2


def test_entries_present_at_start_expire_retention_after_login() -> None:
    core, clock, log = logged_in(MemoryLog([contact_line(WINDOW)]), retention=180)
    assert core.next_deadline() == clock.monotonic() + 180
    clock.advance(180)
    core.timer()
    assert log.lines == []


def test_upload_shows_entries_and_sends_chunks() -> None:
    lines = [
        contact_line(TempIDWindow(f"{i:020d}", WINDOW.start, WINDOW.expiry))
        for i in range(2 * MAX_UPLOAD_CHUNK + 5)
    ]
    core, _, _ = logged_in(MemoryLog(lines))
    effects = core.line("Upload_contact_log")
    sent = [effect.message for effect in effects if isinstance(effect, Send)]
    assert [len(m.entries) for m in sent if isinstance(m, UploadRequest)] == [
        MAX_UPLOAD_CHUNK,
        MAX_UPLOAD_CHUNK,
        5,
    ]
    assert [m.final for m in sent if isinstance(m, UploadRequest)] == [False, False, True]
    assert shown(effects)[:3] == [
        "00000000000000000000,",
        "14/05/2020 17:54:06,",
        "14/05/2020 18:09:05;",
    ]
    assert core.frame(UploadReply(len(lines))) == [
        Show(f"Contact log uploaded: the server received {len(lines)} entries."),
        Prompt(PROMPT),
    ]


def test_empty_log_is_not_uploaded() -> None:
    core, _, _ = logged_in()
    assert core.line("Upload_contact_log") == [
        Show("Your contact log is empty: nothing to upload."),
        Prompt(PROMPT),
    ]


def test_lines_typed_while_waiting_run_after_the_reply() -> None:
    core, _, _ = logged_in()
    core.line("Download_tempID")
    assert core.line("whatsthedate") == []
    assert core.line("logout") == []
    effects = core.frame(TempIDReply(WINDOW))
    assert Show(INVALID_COMMAND) in effects
    assert effects[-1] == Send(LogoutRequest())
    assert core.frame(LogoutReply()) == [Exit(0)]


def test_end_of_input_logs_out_or_leaves() -> None:
    core, _, _ = logged_in()
    assert core.end_of_input() == [Send(LogoutRequest())]
    fresh, _, _ = make()
    fresh.start()
    assert fresh.end_of_input() == [Exit(0)]


def test_server_loss_is_reported_once() -> None:
    core, _, _ = logged_in()
    assert core.server_closed() == [Show("Connection to the server was lost."), Exit(1)]
    assert core.server_closed() == []


def test_server_errors_return_to_the_prompt() -> None:
    core, _, _ = logged_in()
    core.line("Download_tempID")
    effects = core.frame(
        ErrorReply(ErrorCode.STORAGE, "the server could not record a TempID; try later")
    )
    assert effects == [
        Show("Server error: the server could not record a TempID; try later"),
        Prompt(PROMPT),
    ]
    assert core.state is State.READY


def test_unwritable_contact_log_is_reported_and_the_client_goes_on() -> None:
    core, _, log = logged_in()
    log.fail = True
    text = shown(core.datagram(encode_beacon(WINDOW), ("127.0.0.1", 1)))
    assert text[-1] == "Could not save it to the contact log: Permission denied"
    assert not core.contacts
    assert core.line("whatsthedate") == [Show(INVALID_COMMAND), Prompt(PROMPT)]
