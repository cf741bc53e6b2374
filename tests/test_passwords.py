"""Hashed credentials: the scrypt form, mixed files, the hashing budget, bluetrace-passwd."""

import subprocess
import sys
from pathlib import Path

import pytest

from bluetrace.protocol.messages import ErrorReply, LoginReply, LoginRequest
from bluetrace.protocol.wire import ErrorCode, LoginStatus
from bluetrace.server import passwords
from bluetrace.server.core import Limits
from bluetrace.server.records import RecordError, load_credentials
from bluetrace.testing import ServerSide

FAST = 2**10  # a cheap cost keeps the tests quick; the form is the same


def test_hash_and_verify_round_trip_and_every_hash_is_salted() -> None:
    stored = passwords.hash_password("comp3331", n=FAST)
    assert stored.startswith("$scrypt$n=1024,r=8,p=1$")
    assert passwords.problem(stored) is None
    assert passwords.verify(stored, "comp3331")
    assert not passwords.verify(stored, "comp3332")
    assert stored != passwords.hash_password("comp3331", n=FAST)
    assert passwords.verify("comp3331", "comp3331")  # the assignment's plain form
    assert not passwords.verify("comp3331", "COMP3331")


@pytest.mark.parametrize(
    "bad",
    [
        "$scrypt$",
        "$scrypt$n=1000,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$" + "A" * 43,  # not a power of two
        "$scrypt$n=4194304,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$" + "A" * 43,  # too dear
        "$scrypt$n=1024,r=8,p=1$short$" + "A" * 43,
    ],
)
def test_a_malformed_hash_is_refused_at_start_up_and_matches_nothing(
    bad: str, tmp_path: Path
) -> None:
    assert passwords.problem(bad) is not None
    assert not passwords.verify(bad, bad)
    path = tmp_path / "credentials.txt"
    path.write_text(f"+61410888888 comp3331\n+61410999999 {bad}\n")
    with pytest.raises(RecordError, match=r"credentials\.txt:2: "):
        load_credentials(path)


def test_plain_and_hashed_users_log_in_side_by_side() -> None:
    users = {
        "+61410888888": "comp3331",
        "+61410999999": passwords.hash_password("bada4568", n=FAST),
    }
    side = ServerSide(users)
    assert side.connect().send(LoginRequest("+61410888888", "comp3331")) == [
        LoginReply(LoginStatus.OK)
    ]
    assert side.connect().send(LoginRequest("+61410999999", "bada4568")) == [
        LoginReply(LoginStatus.OK)
    ]
    wrong = side.connect().send(LoginRequest("+61410999999", "$scrypt$"))
    assert wrong == [LoginReply(LoginStatus.WRONG_PASSWORD)]


def test_hash_checks_beyond_the_budget_are_refused_without_a_check() -> None:
    users = {"+61410999999": passwords.hash_password("bada4568", n=FAST)}
    # Refusals are answered refusal_delay late: short, so that the budget
    # does not refill while the test waits.
    limits = Limits(hashes_per_second=2, failed_logins_per_minute=100, refusal_delay=0.001)
    side = ServerSide(users, limits=limits)
    links = [side.connect() for _ in range(3)]
    replies = [
        (link.send(LoginRequest("+61410999999", "wrong")) or link.advance(0.001))[0]
        for link in links
    ]
    assert replies[:2] == [LoginReply(LoginStatus.WRONG_PASSWORD)] * 2
    assert isinstance(replies[2], ErrorReply)
    assert replies[2].code is ErrorCode.RATE_LIMITED
    assert side.core.guard.failures("+61410999999") == 2  # the refused one counted nothing
    side.clock.advance(1.0)
    assert side.connect().send(LoginRequest("+61410999999", "bada4568")) == [
        LoginReply(LoginStatus.OK)
    ]


def test_bluetrace_passwd_adds_and_changes_a_user_atomically(tmp_path: Path) -> None:
    path = tmp_path / "credentials.txt"
    path.write_bytes(b"# sample users\r\n+61410888888 comp3331\r\n+61410999999 bada4568")

    def passwd(user: str, typed: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bluetrace.server.passwd", user, "--data-dir", str(tmp_path),
             "--cost", "10"],
            input=typed, capture_output=True, text=True, check=False, timeout=30,
        )

    added = passwd("+61400000001", "newpass1\nnewpass1\n")
    assert added.returncode == 0, added.stderr
    assert "added +61400000001" in added.stdout
    changed = passwd("+61410999999", "fresh99\nfresh99\n")
    assert "changed +61410999999" in changed.stdout
    users = load_credentials(path)
    assert users["+61410888888"] == "comp3331"
    assert passwords.verify(users["+61410999999"], "fresh99")
    assert passwords.verify(users["+61400000001"], "newpass1")
    data = path.read_bytes()
    assert data.startswith(b"# sample users\r\n+61410888888 comp3331\r\n")
    assert data.count(b"\r\n") == data.count(b"\n")  # the file's CRLF style is kept
    differ = passwd("+61400000002", "one\ntwo\n")
    assert differ.returncode == 1
    assert "differ" in differ.stderr
    assert b"+61400000002" not in path.read_bytes()
