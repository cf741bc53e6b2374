"""Uploads are recorded a slice at a time, one upload at a time, whole or not at all.

A large upload's checks go into contact_checks.txt as they are made (so the
loop never spends one long turn formatting and writing megabytes), which
means the check log must take one upload at a time: a second upload waits
for its turn, and an upload dropped midway takes back what it wrote.
"""

import zlib
from datetime import datetime
from pathlib import Path

import pytest

from bluetrace.protocol.messages import (
    ErrorReply,
    LoginReply,
    LoginRequest,
    TempIDWindow,
    UploadReply,
    UploadRequest,
    encode,
)
from bluetrace.protocol.wire import ErrorCode, LoginStatus
from bluetrace.runtime.storage import CheckLog, recover_checks
from bluetrace.server.core import Limits
from bluetrace.server.files import CheckFile
from bluetrace.testing import START, USERS, ServerLink, ServerSide
from tests.helpers import committed_blocks

ALICE, BOB = "+61410888888", "+61410999999"
MAX_CALLS = 1000


def _window(i: int) -> TempIDWindow:
    return TempIDWindow(f"{i:020d}", START, datetime(2020, 5, 14, 18, 9, 5))


def _side(tmp_path: Path, per_call: int = 100) -> tuple[ServerSide, Path]:
    side = ServerSide(limits=Limits(entries_per_call=per_call))
    path = tmp_path / "contact_checks.txt"
    side.core.check_store = CheckFile(path)
    return side, path


def _login(side: ServerSide, user: str) -> ServerLink:
    link = side.connect()
    assert link.send(LoginRequest(user, USERS[user])) == [LoginReply(LoginStatus.OK)]
    return link


def _start_upload(link: ServerLink, first: int, count: int) -> None:
    """The whole upload arrives, and the connection takes its place in line
    (checking its first slice if the check log is free)."""
    chunk = UploadRequest(tuple(_window(first + i) for i in range(count)), final=True)
    link.connection.receive_data(encode(chunk), link.clock.monotonic())
    for _ in range(MAX_CALLS):
        if link.connection._checking is not None or not link.connection.has_pending_work():
            break
        _work(link)
    _work(link)


def _work(link: ServerLink) -> None:
    link.connection.continue_work(link.clock.monotonic())


def test_a_block_written_part_by_part_reads_as_one_upload(tmp_path: Path) -> None:
    path = tmp_path / "contact_checks.txt"
    log = CheckLog(path)
    log.append_upload(["before"])
    parts = [[f"line {i}" for i in range(k, k + 3)] for k in (0, 3, 6)]
    start = log.open_block(9)
    crc = 0
    for part in parts:
        data = "".join(f"{line}\n" for line in part).encode()
        log.write_part(data)
        crc = zlib.crc32(data, crc)
    log.close_block(9, crc)
    assert start > 0
    whole = [line for part in parts for line in part]
    assert committed_blocks(path.read_bytes()) == [["before"], whole]


def test_an_aborted_block_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "contact_checks.txt"
    log = CheckLog(path)
    log.append_upload(["kept"])
    before = path.read_bytes()
    log.open_block(5)
    log.write_part(b"one\ntwo\n")
    log.abort_block()
    assert path.read_bytes() == before
    log.append_upload(["next"])
    assert committed_blocks(path.read_bytes()) == [["kept"], ["next"]]


def test_a_block_left_open_by_a_crash_is_cut_at_the_next_start(tmp_path: Path) -> None:
    path = tmp_path / "contact_checks.txt"
    log = CheckLog(path)
    log.append_upload(["whole"])
    before = path.read_bytes()
    log.open_block(4)
    log.write_part(b"a\nb\n")
    log.close()  # the process dies here: no commit line
    assert recover_checks(path) is not None
    assert path.read_bytes() == before


def test_a_second_upload_waits_for_the_first_to_be_recorded(tmp_path: Path) -> None:
    side, path = _side(tmp_path)
    side.auto_commit = True
    alice, bob = _login(side, ALICE), _login(side, BOB)
    _start_upload(alice, 0, 350)  # 4 slices of 100
    _start_upload(bob, 1000, 250)  # its turn comes after alice's
    assert alice.connection.has_pending_work()
    assert bob.connection.has_pending_work()
    # bob's calls do nothing while alice's upload is being written
    size = path.stat().st_size
    for _ in range(5):
        _work(bob)
    assert path.stat().st_size == size
    assert bob.pump(continue_work=False) == []
    assert alice.pump() == [UploadReply(350)]
    assert bob.pump() == [UploadReply(250)]
    uploads = committed_blocks(path.read_bytes())
    assert [len(u) for u in uploads] == [350, 250]
    assert all(ALICE in line for line in uploads[0])
    assert all(BOB in line for line in uploads[1])


def test_interleaved_turns_never_interleavecommitted_blocks(tmp_path: Path) -> None:
    side, path = _side(tmp_path, per_call=64)
    links = [_login(side, user) for user in (ALICE, BOB, "+61410666666")]
    for number, link in enumerate(links):
        _start_upload(link, number * 10_000, 200 + 50 * number)
    replies: list[list[object]] = [[] for _ in links]
    for _ in range(MAX_CALLS):
        for number, link in enumerate(links):  # round robin, as the loop does
            _work(link)
            replies[number] += link.pump(continue_work=False)
        if all(replies):
            break
    assert replies == [[UploadReply(200)], [UploadReply(250)], [UploadReply(300)]]
    assert sorted(len(u) for u in committed_blocks(path.read_bytes())) == [200, 250, 300]


def test_an_upload_dropped_midway_takes_back_what_it_wrote(tmp_path: Path) -> None:
    side, path = _side(tmp_path)
    alice, bob = _login(side, ALICE), _login(side, BOB)
    before = path.read_bytes() if path.exists() else b""
    _start_upload(alice, 0, 500)
    _work(alice)
    assert path.stat().st_size > len(before)  # part of it is on file already
    _start_upload(bob, 1000, 120)
    alice.close_from_client()
    assert path.read_bytes() == before
    assert bob.pump() == [UploadReply(120)]
    assert [len(u) for u in committed_blocks(path.read_bytes())] == [120]


def test_a_write_failure_midway_is_a_storage_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    side, path = _side(tmp_path)
    alice = _login(side, ALICE)
    calls = {"n": 0}
    real = CheckLog.write_part

    def failing(self: CheckLog, data: bytes) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        real(self, data)

    monkeypatch.setattr(CheckLog, "write_part", failing)
    _start_upload(alice, 0, 450)
    replies = alice.pump()
    assert len(replies) == 1
    assert isinstance(replies[0], ErrorReply)
    assert replies[0].code is ErrorCode.STORAGE
    assert committed_blocks(path.read_bytes()) == []
    monkeypatch.setattr(CheckLog, "write_part", real)
    _start_upload(alice, 0, 10)  # the log is free again, and works
    assert alice.pump() == [UploadReply(10)]


def test_the_log_refuses_a_second_open_block(tmp_path: Path) -> None:
    """Blocks must not interleave: the file itself refuses a second writer."""
    log = CheckLog(tmp_path / "contact_checks.txt")
    log.open_block(2)
    with pytest.raises(RuntimeError, match="already being written"):
        log.open_block(1)
    with pytest.raises(RuntimeError, match="already being written"):
        log.append_upload(["other"])
    log.abort_block()
    log.append_upload(["other"])
    with pytest.raises(RuntimeError, match="no block is open"):
        log.write_part(b"stray\n")
    assert committed_blocks((tmp_path / "contact_checks.txt").read_bytes()) == [["other"]]
