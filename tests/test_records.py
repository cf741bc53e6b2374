"""File formats and durable writes, on the specification's sample bytes."""

import os
from datetime import datetime
from pathlib import Path

import pytest

from bluetrace.phone.contactfile import contact_line, load_contact_log, parse_contact_line
from bluetrace.protocol.messages import TempIDWindow
from bluetrace.runtime.storage import LineAppender, replace_lines
from bluetrace.server.records import RecordError, load_credentials, load_tempids, tempid_line
from tests.harness import SAMPLES


def test_sample_files_are_crlf_without_final_newline() -> None:
    for name in ("credentials.txt", "tempIDs.txt", "sample_contactlog.txt"):
        data = (SAMPLES / name).read_bytes()
        assert b"\r\n" in data
        assert not data.endswith(b"\n")


def test_sample_credentials_load_without_carriage_returns() -> None:
    assert load_credentials(SAMPLES / "credentials.txt") == {
        "+61410666666": "kara1234",
        "+61410777777": "datha457",
        "+61410888888": "comp3331",
        "+61410999999": "bada4568",
    }


_FORMAT = "expected '<username> <password>' separated by one space"


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        (b"alice pw\nbob\n", 2, f"no password after the username: {_FORMAT}"),
        (b"alice pw\n\nbob  pw2\n", 3, f"more than one space between fields: {_FORMAT}"),
        (b"alice pw extra\n", 1, f"3 fields: {_FORMAT} (a password cannot hold a space)"),
        (b"alice\tpw\n", 1, f"a tab in the line: {_FORMAT}"),
        (b"alice pw \n", 1, f"the line ends with a space: {_FORMAT}"),
        (b" alice pw\n", 1, f"the line starts with a space: {_FORMAT}"),
        (b"alice pw\nalice pw2\n", 2, "username alice appears twice"),
        (b"alice pw\r\nbob p\xffw\r\n", 2, "not UTF-8 text"),
        (b"alice " + b"p" * 256 + b"\n", 1, "password is 256 bytes long, at most 255"),
        (b"alice pw\x07\n", 1, "password holds a control character U+0007"),
        (
            b"al\xe2\x80\x8bice pw\n",
            1,
            "username holds an invisible or unassigned character U+200B",
        ),
        (b"ok pw\n\xef\xbb\xbfalice pw\n", 2, "username holds a byte-order mark U+FEFF"),
    ],
)
def test_malformed_credentials_name_file_line_and_problem(
    tmp_path: Path, content: bytes, line: int, reason: str
) -> None:
    path = tmp_path / "credentials.txt"
    path.write_bytes(content)
    with pytest.raises(RecordError) as caught:
        load_credentials(path)
    assert str(caught.value) == f"{path}:{line}: {reason}"


def test_credentials_bom_comments_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "credentials.txt"
    path.write_bytes(
        b"\xef\xbb\xbf# accounts for the demo\r\n"
        b"+61410888888 comp3331\r\n"
        b"   \r\n"
        b"#+61410777777 datha457\r\n"
        b"+61410666666 #kara1234"
    )
    assert load_credentials(path) == {"+61410888888": "comp3331", "+61410666666": "#kara1234"}


def test_a_file_of_comments_has_no_users(tmp_path: Path) -> None:
    path = tmp_path / "credentials.txt"
    path.write_bytes(b"# alice pw\n")
    with pytest.raises(RecordError, match=r"no users \(each line is '<username> <password>'"):
        load_credentials(path)


def test_missing_or_empty_credentials(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match=r"credentials\.txt: cannot read"):
        load_credentials(tmp_path / "credentials.txt")
    (tmp_path / "credentials.txt").write_bytes(b"\r\n\n")
    with pytest.raises(RecordError, match="no users"):
        load_credentials(tmp_path / "credentials.txt")


def test_sample_tempids_load(tmp_path: Path) -> None:
    found: dict[str, str] = {}
    report = load_tempids(SAMPLES / "tempIDs.txt", found)
    assert report.loaded == 3
    assert report.problems == []
    assert found == {
        "12345678901234567890": "+61410999999",
        "12345678901234567891": "+61410888888",
        "12345678901234567892": "+61410777777",
    }


def test_bad_tempid_lines_are_reported_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "tempIDs.txt"
    path.write_bytes(
        b"+6141 12345678901234567890 13/05/2020 17:45:06 13/05/2020 18:00:05\n"
        b"torn line\n"
        b"+6141 12345678901234567891 31/02/2020 17:45:06 13/05/2020 18:00:05\n"
        b"+6141 1234567890123456789x 13/05/2020 17:45:06 13/05/2020 18:00:05\n"
        b"+6142 12345678901234567892 13/05/2020 23:59:59 14/05/2020 00:14:58"
    )
    found: dict[str, str] = {}
    report = load_tempids(path, found)
    assert found == {"12345678901234567890": "+6141", "12345678901234567892": "+6142"}
    assert [problem.split(": ")[0] for problem in report.problems] == [
        f"{path}:2",
        f"{path}:3",
        f"{path}:4",
    ]


WINDOW = TempIDWindow(
    "01234567890123456789", datetime(2020, 5, 14, 17, 54, 6), datetime(2020, 5, 14, 18, 9, 5)
)


def test_append_to_a_file_without_final_newline_keeps_its_crlf(tmp_path: Path) -> None:
    path = tmp_path / "tempIDs.txt"
    path.write_bytes((SAMPLES / "tempIDs.txt").read_bytes())
    appender = LineAppender(path)
    appender.append([tempid_line("+61410888888", WINDOW)])
    appender.append([tempid_line("+61410666666", WINDOW)])
    appender.close()
    data = path.read_bytes()
    assert data.startswith((SAMPLES / "tempIDs.txt").read_bytes() + b"\r\n+61410888888 ")
    assert data.endswith(b"\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")
    found: dict[str, str] = {}
    assert load_tempids(path, found).loaded == 5
    assert found["01234567890123456789"] == "+61410666666"


def test_append_after_a_torn_line_starts_a_new_line(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_bytes(b"complete\ntorn pa")
    appender = LineAppender(path)
    appender.append(["next"])
    appender.close()
    assert path.read_bytes() == b"complete\ntorn pa\nnext\n"


def test_failed_append_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "log.txt"
    path.write_bytes(b"one\n")
    appender = LineAppender(path)
    real_write = os.write

    def half_then_fail(fd: int, data: bytes) -> int:
        real_write(fd, bytes(data[:3]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_fail)
    with pytest.raises(OSError, match="No space"):
        appender.append(["two", "three"])
    monkeypatch.undo()
    appender.close()
    assert path.read_bytes() == b"one\n"


def test_contact_log_lines_round_trip_and_sample_loads(tmp_path: Path) -> None:
    assert parse_contact_line(contact_line(WINDOW)) == WINDOW
    entries, problems = load_contact_log(SAMPLES / "sample_contactlog.txt")
    assert problems == []
    assert [entry.tempid for entry in entries] == ["12345678901234567890", "12345678901234567891"]
    path = tmp_path / "x_contactlog.txt"
    replace_lines(path, [contact_line(WINDOW), "garbage"])
    entries, problems = load_contact_log(path)
    assert entries == [WINDOW]
    assert problems == ["x_contactlog.txt:2: expected '<TempID> <start> <expiry>'"]
    assert [p.name for p in tmp_path.iterdir()] == ["x_contactlog.txt"]


def test_contact_log_problems_are_sentences(tmp_path: Path) -> None:
    path = tmp_path / "x_contactlog.txt"
    path.write_bytes(
        b"12345678901234567890 31/02/2020 17:45:06 13/05/2020 18:00:05\n"
        b"1234567890123456789x 13/05/2020 17:45:06 13/05/2020 18:00:05\n"
        b"12345678901234567890 13/05/2020 17:45:06 13/05/2020 18:00:05\n"
    )
    entries, problems = load_contact_log(path)
    assert [entry.fields_text() for entry in entries] == [
        ("12345678901234567890", "13/05/2020 17:45:06", "13/05/2020 18:00:05")
    ]
    assert problems == [
        "x_contactlog.txt:1: start is not a real DD/MM/YYYY HH:MM:SS time: 31/02/2020 17:45:06",
        "x_contactlog.txt:2: TempID is not 20 decimal digits",
    ]
