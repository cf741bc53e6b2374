"""What the server's terminal shows for an upload's contact check (issue 20, item 11).

contact_checks.txt is the record; the terminal is a report. Up to
REPORT_ENTRIES entries it is the specification's text, line for line; past
that it shows the first entries of each list and says how many more there
are and where they all are, so a 200,000-entry upload neither floods the
terminal nor vanishes from it.
"""

from datetime import datetime, timedelta
from pathlib import Path

from bluetrace.protocol.messages import (
    LoginReply,
    LoginRequest,
    TempIDReply,
    TempIDRequest,
    TempIDWindow,
    UploadReply,
    UploadRequest,
)
from bluetrace.protocol.wire import MAX_UPLOAD_CHUNK, LoginStatus
from bluetrace.server.upload import REPORT_ENTRIES
from tests.harness import running_server

UPLOADER = ("+61410999999", "bada4568")
CONTACT = ("+61410888888", "comp3331")


def _upload(count: int, tmp_path: Path) -> tuple[str, str, str]:
    """Upload ``count`` entries whose first and last are a known TempID; the
    server's stdout, the contact's TempID and the check file's text."""
    with running_server(tmp_path) as server:
        contact = server.connect()
        assert contact.call(LoginRequest(*CONTACT)) == LoginReply(LoginStatus.OK)
        issued = contact.call(TempIDRequest())
        assert isinstance(issued, TempIDReply)
        known = issued.window
        now = datetime.now().replace(microsecond=0)
        other = [
            TempIDWindow(f"{i:020d}", now, now + timedelta(minutes=14, seconds=59))
            for i in range(count - 2)
        ]
        entries = [known, *other, known]
        uploader = server.connect()
        assert uploader.call(LoginRequest(*UPLOADER)) == LoginReply(LoginStatus.OK)
        for first in range(0, len(entries), MAX_UPLOAD_CHUNK):
            chunk = tuple(entries[first : first + MAX_UPLOAD_CHUNK])
            uploader.send(UploadRequest(chunk, final=first + MAX_UPLOAD_CHUNK >= len(entries)))
        assert uploader.receive() == UploadReply(count)
        server.stdout.wait_for(r"Contact log checking")
        server.stdout.wait_for(r"\n$")
        text = server.stdout.drain()
        checks = (server.data_dir / "contact_checks.txt").read_text()
    return text, known.tempid, checks


def test_a_normal_upload_is_reported_in_full(tmp_path: Path) -> None:
    text, tempid, _ = _upload(3, tmp_path)
    checking = text.split("Contact log checking\n", 1)[1]
    assert checking.startswith(f"{CONTACT[0]},\n")
    assert checking.count(f"{tempid};") == 2
    assert ": unknown TempID\n" in checking
    assert "not shown" not in text


def test_a_huge_upload_reaches_the_terminal_as_a_summary(tmp_path: Path) -> None:
    """50,000 entries made a report larger than the 4 MiB output buffer: it
    was dropped whole, and a false "stdout was not being read" shown instead."""
    count = 50_000
    text, tempid, checks = _upload(count, tmp_path)
    assert "dropped" not in text
    received, checking = text.split("Contact log checking\n", 1)
    received = received[received.index("received contact log") :]
    assert "\n\n" not in text
    assert received.startswith(f"received contact log from {UPLOADER[0]}\n{tempid},\n")
    assert received.count(";\n") == REPORT_ENTRIES
    more = count - REPORT_ENTRIES
    assert f"... and {more:,} more entries not shown ({count:,} in all)" in received
    assert checking.startswith(f"{CONTACT[0]},\n")
    assert (
        f"... and {more:,} more checks not shown (1 known contact among them): "
        f"all {count:,} are in contact_checks.txt"
    ) in checking
    assert len(text.encode()) < 1024 * 1024
    assert checks.count(f" {tempid} ") == 2
    lines = checks.splitlines()
    assert sum(1 for line in lines if not line.startswith(("begin", "commit"))) == count


def test_control_characters_from_tempids_txt_reach_the_terminal_escaped(tmp_path: Path) -> None:
    """A tempIDs.txt username carrying ESC sequences was printed raw in the
    check report, so a data file could drive the operator's terminal."""
    tempid = "12345678901234567893"
    data_dir = tmp_path / "server"
    data_dir.mkdir()
    (data_dir / "tempIDs.txt").write_bytes(
        f"+61\x1b]0;owned\x07\x1b[2J {tempid} 14/05/2020 17:54:06 14/05/2020 18:09:05\n".encode()
    )
    now = datetime.now().replace(microsecond=0)
    entry = TempIDWindow(tempid, now, now + timedelta(minutes=14, seconds=59))
    with running_server(tmp_path) as server:
        uploader = server.connect()
        assert uploader.call(LoginRequest(*UPLOADER)) == LoginReply(LoginStatus.OK)
        assert uploader.call(UploadRequest((entry,), final=True)) == UploadReply(1)
        server.stdout.wait_for(f"{tempid};")
        text = server.stdout.drain()
    assert "+61\\x1b]0;owned\\x07\\x1b[2J,\n" in text
    assert not any(ord(char) < 0x20 and char != "\n" for char in text)
