"""A TempID that tempIDs.txt lists for two users: the later line wins, and the
server says so once at start-up, naming the lines."""

from pathlib import Path

import pytest

from bluetrace.server.records import CONFLICTS_SHOWN, load_tempids
from bluetrace.server.registry import TempIDRegistry
from tests.harness import running_server

WINDOW = "14/05/2020 17:54:06 14/05/2020 18:09:05"
ALICE, BOB = "+61410888888", "+61410999999"


def _tempid(n: int) -> str:
    return f"{n:020d}"


@pytest.mark.parametrize("into", [dict, TempIDRegistry])
def test_a_tempid_for_two_users_is_named_with_its_lines_and_the_winner(
    tmp_path: Path, into: type
) -> None:
    path = tmp_path / "tempIDs.txt"
    path.write_text(
        f"{ALICE} {_tempid(1)} {WINDOW}\n"
        f"{ALICE} {_tempid(2)} {WINDOW}\n"
        f"{ALICE} {_tempid(2)} {WINDOW}\n"  # the same user twice: harmless, not told
        f"{BOB} {_tempid(1)} {WINDOW}\n",
        encoding="utf-8",
    )
    tempids = into()
    report = load_tempids(path, tempids)
    assert tempids[_tempid(1)] == BOB
    assert report.conflicts == [
        f"{path}: TempID {_tempid(1)} is listed for more than one user (lines 1, and 4); "
        f"the later line wins: it belongs to {BOB}"
    ]


def test_no_repeat_costs_no_second_reading_and_no_warning(tmp_path: Path) -> None:
    path = tmp_path / "tempIDs.txt"
    path.write_text(
        "".join(f"{ALICE} {_tempid(n)} {WINDOW}\n" for n in range(1000)), encoding="utf-8"
    )
    assert load_tempids(path, TempIDRegistry()).conflicts == []


def test_many_conflicts_are_summarised(tmp_path: Path) -> None:
    path = tmp_path / "tempIDs.txt"
    count = 5000
    lines = [f"{ALICE} {_tempid(n)} {WINDOW}\n" for n in range(count)]
    lines += ["bad line\n"]
    lines += [f"{BOB} {_tempid(n)} {WINDOW}\n" for n in range(count)]
    lines += [f"{ALICE} {_tempid(0)} {WINDOW}\n"]  # the first TempID goes back to Alice
    path.write_text("".join(lines), encoding="utf-8")
    report = load_tempids(path, TempIDRegistry())
    assert len(report.conflicts) == CONFLICTS_SHOWN + 1
    # Named in the order of their first lost line; TempID 0 loses only at
    # line count + 2 (Bob's), after five others, so it is among those counted.
    assert report.conflicts[0] == (
        f"{path}: TempID {_tempid(1)} is listed for more than one user "
        f"(lines 2, and {count + 3}); the later line wins: it belongs to {BOB}"
    )
    assert report.conflicts[-1] == (
        f"{path}: ... and {count - CONFLICTS_SHOWN:,} more lines give a TempID to a user "
        "that a later line replaces; for each, the later line wins"
    )


def test_the_server_warns_on_its_stderr_at_start_up(tmp_path: Path) -> None:
    folder = tmp_path / "server"
    folder.mkdir()
    (folder / "tempIDs.txt").write_text(
        f"{ALICE} {_tempid(7)} {WINDOW}\n{BOB} {_tempid(7)} {WINDOW}\n", encoding="utf-8"
    )
    with running_server(tmp_path) as server:
        server.stderr.wait_for(
            rf"warning: .*tempIDs.txt: TempID {_tempid(7)} is listed for more than one user "
            rf"\(lines 1, and 2\); the later line wins: it belongs to \{BOB}"
        )
