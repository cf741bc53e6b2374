"""The phone's commands and texts, over a real phone and server connection."""

from datetime import timedelta

import pytest

from bluetrace.phone.contacts import MemoryContactStore
from bluetrace.phone.shell import (
    BEACON_REPORTS_PER_SECOND,
    BLOCKED,
    BLOCKED_NOW,
    INVALID_COMMAND,
    INVALID_PASSWORD,
    INVALID_USERNAME,
    PROMPT,
    WELCOME,
    Connect,
    Prompt,
    Stage,
)
from bluetrace.protocol.messages import TempIDWindow, decode_beacon, encode_beacon
from bluetrace.protocol.wire import MAX_UPLOAD_CHUNK
from bluetrace.testing import USERS, ServerSide
from tests.helpers import ALICE, Rig


def test_login_retries_use_the_specified_texts() -> None:
    rig = Rig()
    assert rig.type("+61400000000", "x") == [INVALID_USERNAME]
    assert rig.prompts[-1] == Prompt("Username: ")
    assert rig.type(ALICE, "wrong") == [INVALID_PASSWORD]
    assert rig.prompts[-1] == Prompt("Password: ", secret=True)
    assert rig.type("comp3331") == [WELCOME]
    assert rig.prompts[-1] == Prompt(PROMPT)


@pytest.mark.parametrize(("attempts", "text"), [(3, BLOCKED_NOW), (4, BLOCKED)])
def test_blocks_print_and_exit_1(attempts: int, text: str) -> None:
    side = ServerSide()
    for _ in range(attempts):
        rig = Rig(side)
        shown = rig.type(ALICE, "bad")
    assert shown == [text]
    assert rig.exit == 1
    assert rig.disconnected


def test_the_connection_opens_only_once_the_password_is_typed() -> None:
    rig = Rig()
    assert rig.shell.line(ALICE) == [Prompt("Password: ", secret=True)]
    assert rig.shell.line(USERS[ALICE]) == [Connect()]
    assert rig.shell.stage is Stage.CONNECTING


def test_an_unreachable_server_is_one_line_and_exit_1() -> None:
    rig = Rig()
    rig.shell.line(ALICE)
    rig.shell.line(USERS[ALICE])
    rig.apply(rig.shell.connect_failed("127.0.0.1:4000: Connection refused"))
    assert rig.shown == ["Cannot reach the server: 127.0.0.1:4000: Connection refused"]
    assert rig.exit == 1


def test_password_with_a_space_is_refused_locally() -> None:
    rig = Rig()
    assert rig.type(ALICE, "comp 3331") == [INVALID_PASSWORD]
    assert rig.shell.stage is Stage.PASSWORD


def test_invalid_commands_help_and_empty_lines() -> None:
    rig = Rig()
    rig.login()
    assert rig.type("whatsthedate") == [INVALID_COMMAND]
    assert rig.type("download_tempID") == [INVALID_COMMAND]
    assert rig.type("") == []
    shown = rig.type("help")
    assert all(name in "\n".join(shown) for name in ("Download_tempID", "Beacon", "logout"))


def test_download_then_beacon_sends_59_bytes_and_shows_the_fields() -> None:
    rig = Rig()
    rig.login()
    (line,) = rig.type("Download_tempID")
    tempid = rig.pair.phone.tempid
    assert tempid is not None
    assert line == f"TempID: {tempid.tempid}"
    shown = rig.type("Beacon 127.0.0.1 8001")
    (beacon,) = rig.beacons
    assert beacon.address == ("127.0.0.1", 8001)
    assert len(beacon.data) == 59
    assert decode_beacon(beacon.data) == tempid
    assert shown == [f"{text}{end}" for text, end in zip(tempid.fields_text(), ",,.", strict=True)]


@pytest.mark.parametrize(
    "args",
    ["Beacon", "Beacon 127.0.0.1", "Beacon localhost 8001", "Beacon 127.0.0.1 0", "Beacon ::1 80"],
)
def test_beacon_needs_an_ipv4_address_a_port_and_a_tempid(args: str) -> None:
    rig = Rig()
    rig.login()
    assert rig.type(args)[0].startswith("Usage: Beacon")
    assert rig.type("Beacon 127.0.0.1 8001") == ["No TempID yet: run Download_tempID first."]


def test_an_expired_tempid_warns_and_is_still_sent() -> None:
    rig = Rig()
    rig.login()
    rig.type("Download_tempID")
    rig.clock.advance(15 * 60)
    shown = rig.type("Beacon 127.0.0.1 8001")
    assert shown[0].startswith("Warning: your TempID expired at")
    assert len(rig.beacons) == 1


def test_a_valid_beacon_prints_the_specified_block() -> None:
    rig = Rig()
    rig.login()
    now = rig.clock.wall()
    window = TempIDWindow(
        "12345678901234567893", now - timedelta(minutes=5), now + timedelta(minutes=9)
    )
    start, expiry, current = (
        moment.strftime("%d/%m/%Y %H:%M:%S") for moment in (window.start, window.expiry, now)
    )
    assert rig.beacon_arrives(encode_beacon(window)) == [
        "received beacon:",
        "12345678901234567893,",
        f"{start},",
        f"{expiry}.",
        "Current time is:",
        f"{current}.",
        "The beacon is valid.",
    ]


def test_a_beacon_flood_is_summarised_after_a_few_reports() -> None:
    rig = Rig()
    rig.login()
    now = rig.clock.wall()
    for i in range(50):
        window = TempIDWindow(f"{i:020d}", now, now + timedelta(minutes=1))
        rig.beacon_arrives(encode_beacon(window))
    assert rig.shown.count("received beacon:") == BEACON_REPORTS_PER_SECOND
    rig.clock.advance(1.0)
    rig.apply(rig.shell.handle_timer(rig.clock.monotonic()))
    assert rig.shown[-1] == "... and 45 more beacons not shown (45 valid), from 1 sender."
    assert len(rig.pair.phone.contacts) == 50  # all stored, only the reports were cut


def test_upload_shows_entries_and_says_how_many_arrived() -> None:
    side = ServerSide()
    now = side.clock.wall()
    entries = [
        TempIDWindow(f"{i:020d}", now, now + timedelta(minutes=14))
        for i in range(MAX_UPLOAD_CHUNK + 1)
    ]
    rig = Rig(side, store=MemoryContactStore(entries[:1]))
    rig.login()
    shown = rig.type("Upload_contact_log")
    assert shown[:3] == [
        f"{text}{end}" for text, end in zip(entries[0].fields_text(), ",,;", strict=True)
    ]
    assert shown[-1] == "Contact log uploaded: the server received 1 entry."
    rig = Rig(side, store=MemoryContactStore(entries))
    rig.login("+61410999999")
    assert rig.type("Upload_contact_log")[-1].endswith("received 1,025 entries.")


def test_lines_typed_while_waiting_run_after_the_reply() -> None:
    rig = Rig()
    rig.login()
    rig.pair.side.auto_commit = False
    rig.type("Download_tempID", "Beacon 127.0.0.1 8001")
    assert rig.beacons == []  # the beacon waits for the TempID
    rig.pair.link.commit()
    rig.apply(rig.shell.events(rig.pair.run()))
    assert len(rig.beacons) == 1


def test_end_of_input_logs_out_when_logged_in_and_leaves_at_a_prompt() -> None:
    rig = Rig()
    rig.apply(rig.shell.end_of_input())
    assert rig.exit == 0
    rig = Rig()
    rig.login()
    rig.apply(rig.shell.end_of_input())
    assert rig.exit == 0
    assert rig.pair.link.output[-1] == f"{ALICE} logout"


def test_end_of_a_pipe_during_a_failed_login_sends_nothing_more() -> None:
    rig = Rig()
    rig.shell.line(ALICE)
    rig.shell.line("bad")  # Connect pending: the login has not gone out yet
    rig.apply(rig.shell.end_of_input())  # the pipe ends right after
    assert rig.exit is None
    rig.apply(rig.shell.connected(rig.clock.monotonic()))
    assert INVALID_PASSWORD in rig.shown
    assert rig.exit == 0
    assert rig.pair.side.core.guard.failures(ALICE) == 1  # nothing more was sent


def test_ctrl_c_during_login_ends_at_once_with_130() -> None:
    rig = Rig()
    rig.shell.line(ALICE)
    rig.shell.line("comp3331")
    rig.apply(rig.shell.end_of_input(interrupted=True))
    assert rig.exit == 130


def test_losing_the_server_is_reported_once_with_exit_1() -> None:
    rig = Rig()
    rig.login()
    rig.pair.phone.receive_data(b"", rig.clock.monotonic())
    rig.apply(rig.shell.events(rig.pair.phone.next_events()))
    assert rig.shown[-1] == "Connection to the server was lost: the server closed the connection."
    assert rig.exit == 1


def test_a_second_phone_of_the_user_is_refused_when_its_log_is_locked() -> None:
    rig = Rig()

    def locked(username: str) -> MemoryContactStore:
        raise OSError(16, f"another phone of {username} is already running in this folder")

    rig.pair.phone.open_store = locked
    rig.type(ALICE, USERS[ALICE])
    assert rig.shown[-1].startswith("Another phone of +61410888888 is already running")
    assert rig.exit == 1
