"""Who may do what: sessions, identities, TempID randomness, secrets in output."""

import collections
import itertools
import subprocess
import sys
from pathlib import Path

from bluetrace.protocol.messages import (
    ErrorReply,
    LoginReply,
    LoginRequest,
    LogoutRequest,
    TempIDReply,
    TempIDRequest,
    UploadRequest,
)
from bluetrace.protocol.wire import ErrorCode, LoginStatus
from bluetrace.server.core import random_tempid
from tests.harness import WAIT, free_udp_port, running_server

NOT_LOGGED_IN = ErrorReply(ErrorCode.NOT_LOGGED_IN, "log in first")


def test_never_logged_in_connections_cannot_download_or_upload(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        stranger = server.connect()
        assert stranger.call(TempIDRequest()) == NOT_LOGGED_IN
        assert stranger.call(UploadRequest((), final=True)) == NOT_LOGGED_IN
        assert stranger.call(LoginRequest("+61410888888", "wrong")) == LoginReply(
            LoginStatus.WRONG_PASSWORD
        )
        assert stranger.call(TempIDRequest()) == NOT_LOGGED_IN
    assert not (server.data_dir / "tempIDs.txt").exists()
    assert not (server.data_dir / "contact_checks.txt").exists()


def test_a_session_acts_only_as_its_own_user(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        client = server.connect()
        assert client.call(LoginRequest("+61410888888", "comp3331")) == LoginReply(LoginStatus.OK)
        reply = client.call(LoginRequest("+61410999999", "bada4568"))
        assert reply == ErrorReply(ErrorCode.ALREADY_LOGGED_IN, "already logged in")
        granted = client.call(TempIDRequest())
        assert isinstance(granted, TempIDReply)
    line = (server.data_dir / "tempIDs.txt").read_text().strip()
    assert line.startswith(f"+61410888888 {granted.window.tempid} ")


def test_tempids_are_unique_and_evenly_spread_over_100000_draws() -> None:
    draws = [random_tempid() for _ in range(100_000)]
    assert len(set(draws)) == len(draws)
    assert all(len(tempid) == 20 and tempid.isdigit() for tempid in draws)
    # Each of the 20 positions, each digit: expected 10,000; a bias of a few
    # percent would be visible (the bound is ~10 standard deviations).
    for position in range(20):
        counts = collections.Counter(tempid[position] for tempid in draws)
        assert all(abs(counts[digit] - 10_000) < 1_000 for digit in "0123456789"), counts
    # No arithmetic sequence between consecutive draws.
    steps = {int(b) - int(a) for a, b in itertools.pairwise(draws)}
    assert len(steps) > 99_000


def test_passwords_never_appear_in_output_logs_or_files(tmp_path: Path) -> None:
    secrets_typed = ["comp3331", "wrong-guess-1", "wrong-guess-2"]
    with running_server(tmp_path) as server:
        typed = "+61410888888\nwrong-guess-1\nwrong-guess-2\ncomp3331\nDownload_tempID\nlogout\n"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "bluetrace.phone.main",
                "127.0.0.1",
                str(server.port),
                str(free_udp_port()),
            ],
            input=typed,
            capture_output=True,
            text=True,
            timeout=WAIT * 2,
            check=False,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        assert "TempID: " in result.stdout
        server.stdout.wait_for("logout")
    texts = [result.stdout, result.stderr, server.stdout.drain(), server.stderr.drain()]
    texts += [
        path.read_text(errors="replace")
        for path in (server.data_dir.iterdir())
        if path.name != "credentials.txt" and path.is_file()
    ]
    for text in texts:
        for secret in secrets_typed:
            assert secret not in text


def test_a_logged_out_connection_can_do_nothing_more(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        client = server.connect()
        assert client.call(LoginRequest("+61410888888", "comp3331")) == LoginReply(LoginStatus.OK)
        client.call(LogoutRequest())
        client.send(TempIDRequest())
        client.send(UploadRequest((), final=True))
        assert client.closed_by_peer()
        assert client.pending == []  # nothing was answered after the logout
    assert not (server.data_dir / "tempIDs.txt").exists()
    assert "received contact log" not in server.stdout.drain()
