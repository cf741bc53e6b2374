"""The real server process on 127.0.0.1: sockets, files, signals, hostile peers."""

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bluetrace.protocol.messages import (
    ErrorReply,
    LoginReply,
    LoginRequest,
    LogoutReply,
    LogoutRequest,
    TempIDReply,
    TempIDRequest,
    UploadReply,
    UploadRequest,
)
from bluetrace.protocol.wire import ErrorCode, LoginStatus
from bluetrace.server.records import load_tempids
from tests.harness import SAMPLES, FrameClient, running_server


def _login(client: FrameClient, user: str = "+61410888888", password: str = "comp3331") -> None:
    assert client.call(LoginRequest(user, password)) == LoginReply(LoginStatus.OK)


def test_session_prints_the_specified_texts(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        client = server.connect()
        _login(client, "+61410999999", "bada4568")
        reply = client.call(TempIDRequest())
        assert isinstance(reply, TempIDReply)
        assert client.call(LogoutRequest()) == LogoutReply()
        assert client.closed_by_peer()
        server.stdout.wait_for("logout")
        assert server.stdout.text == (
            f"user: +61410999999\nTempID: {reply.window.tempid}\n+61410999999 logout\n"
        )
    line = (server.data_dir / "tempIDs.txt").read_text().strip()
    assert line == f"+61410999999 {' '.join(reply.window.fields_text())}"


def test_blocking_spans_connections_and_source_addresses(tmp_path: Path) -> None:
    with running_server(tmp_path, block="5") as server:  # longer than the 2 s linger
        first = server.connect("127.0.0.1")
        second = server.connect("127.0.0.2")
        user = "+61410888888"
        assert first.call(LoginRequest(user, "no1")) == LoginReply(LoginStatus.WRONG_PASSWORD)
        assert second.call(LoginRequest(user, "no2")) == LoginReply(LoginStatus.WRONG_PASSWORD)
        assert first.call(LoginRequest(user, "no3")) == LoginReply(LoginStatus.BLOCKED_NOW)
        assert first.closed_by_peer()
        assert second.call(LoginRequest(user, "comp3331")) == LoginReply(LoginStatus.BLOCKED)
        third = server.connect("127.0.0.3")
        # Wait for the block to end by polling the condition, bounded.
        deadline = time.monotonic() + 15
        status = LoginStatus.BLOCKED
        while status is LoginStatus.BLOCKED and time.monotonic() < deadline:
            third = server.connect("127.0.0.3")
            reply = third.call(LoginRequest(user, "comp3331"))
            assert isinstance(reply, LoginReply)
            status = reply.status
            if status is LoginStatus.BLOCKED:
                time.sleep(0.2)
        assert status is LoginStatus.OK


def test_many_concurrent_clients(tmp_path: Path) -> None:
    # 25 TempIDs per user at once: above the default burst, so the limit is raised.
    with running_server(tmp_path, "--tempids-per-hour", "6000") as server:
        users = [
            ("+61410666666", "kara1234"),
            ("+61410777777", "datha457"),
            ("+61410888888", "comp3331"),
            ("+61410999999", "bada4568"),
        ]
        clients = [server.connect() for _ in range(100)]
        for i, client in enumerate(clients):
            client.send(LoginRequest(*users[i % 4]))
        for client in clients:
            assert client.receive() == LoginReply(LoginStatus.OK)
            client.send(TempIDRequest())
        tempids = set()
        for client in clients:
            reply = client.receive()
            assert isinstance(reply, TempIDReply)
            tempids.add(reply.window.tempid)
        assert len(tempids) == 100
    found: dict[str, str] = {}
    assert load_tempids(server.data_dir / "tempIDs.txt", found).loaded == 100


def test_sample_files_byte_for_byte_and_restart_keeps_every_mapping(tmp_path: Path) -> None:
    data_dir = tmp_path / "server"
    data_dir.mkdir()
    shutil.copy(SAMPLES / "credentials.txt", data_dir)
    shutil.copy(SAMPLES / "tempIDs.txt", data_dir)
    original = (SAMPLES / "tempIDs.txt").read_bytes()
    issued = []
    for _ in range(2):
        with running_server(tmp_path) as server:
            client = server.connect()
            _login(client)
            reply = client.call(TempIDRequest())
            assert isinstance(reply, TempIDReply)
            issued.append(reply.window)
    data = (data_dir / "tempIDs.txt").read_bytes()
    assert data.startswith(original + b"\r\n")
    with running_server(tmp_path) as server:
        client = server.connect()
        _login(client, "+61410999999", "bada4568")
        sample = issued[0].__class__("12345678901234567891", issued[0].start, issued[0].expiry)
        assert client.call(UploadRequest((sample, *issued), final=True)) == UploadReply(3)
        server.stdout.wait_for(r"Contact log checking(\n.*){9}")
        checking = server.stdout.text.split("Contact log checking\n", 1)[1].splitlines()
        assert checking[0::3] == ["+61410888888,"] * 3
        assert checking[2::3] == [f"{w.tempid};" for w in (sample, *issued)]


@pytest.mark.parametrize(
    ("junk", "code"),
    [
        (b"\x01\x06\x00\x00\x00\x00", ErrorCode.MALFORMED),
        (b"\x02\x01\x00\x00\x00\x00", ErrorCode.MALFORMED),
        (b"\x01\x01\x00\x00\x10\x00", ErrorCode.TOO_LARGE),
        (b"\x01\x84\x00\x00\x00\x00", ErrorCode.UNEXPECTED),
    ],
)
def test_hostile_frame_closes_only_that_connection(
    tmp_path: Path, junk: bytes, code: ErrorCode
) -> None:
    with running_server(tmp_path) as server:
        good = server.connect()
        _login(good)
        bad = server.connect()
        bad.sock.sendall(junk)
        reply = bad.receive()
        assert isinstance(reply, ErrorReply)
        assert reply.code is code
        assert bad.closed_by_peer()
        assert isinstance(good.call(TempIDRequest()), TempIDReply)
        assert "Traceback" not in server.stderr.drain()


def test_login_timeout_closes_silent_connections(tmp_path: Path) -> None:
    with running_server(tmp_path, "--login-timeout", "0.5") as server:
        silent = server.connect()
        reply = silent.receive()
        assert reply == ErrorReply(ErrorCode.TIMEOUT, "no login within the time allowed")
        assert silent.closed_by_peer()
        fresh = server.connect()
        _login(fresh)
        assert isinstance(fresh.call(TempIDRequest()), TempIDReply)


def test_sigterm_stops_cleanly(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        client = server.connect()
        _login(client)
        server.proc.send_signal(signal.SIGTERM)
        assert client.receive() == ErrorReply(ErrorCode.SHUTTING_DOWN, "the server is stopping")
        assert server.proc.wait(10) == 0
        assert server.stop() == 0
        assert "Traceback" not in server.stderr.text


def _run_server(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bluetrace.server.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=20,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_bad_credentials_stop_the_server_naming_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "credentials.txt").write_text("alice pw\nbob\n")
    result = _run_server("0", "60", "--host", "127.0.0.1", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        "credentials.txt:2: no password after the username: "
        "expected '<username> <password>' separated by one space"
    )
    assert "Traceback" not in result.stderr
    missing = _run_server(
        "0", "60", "--host", "127.0.0.1", "--data-dir", str(tmp_path / "nowhere"), cwd=tmp_path
    )
    assert missing.returncode == 1
    assert "credentials.txt: cannot read" in missing.stderr


@pytest.mark.parametrize(
    "args", [[], ["4000"], ["x", "60"], ["70000", "60"], ["4000", "-5"], ["4000", "nan"]]
)
def test_bad_arguments_give_usage_and_status_2(tmp_path: Path, args: list[str]) -> None:
    result = _run_server(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    shutil.copy(SAMPLES / "credentials.txt", tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = _run_server(port, "60", "--host", "127.0.0.1", cwd=tmp_path)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "(" not in result.stderr  # no Python reprs


def test_sighup_reloads_credentials_so_new_users_can_log_in(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        client = server.connect()
        assert client.call(LoginRequest("+61400000001", "newpass1")) == LoginReply(
            LoginStatus.UNKNOWN_USER
        )
        with (server.data_dir / "credentials.txt").open("a") as credentials:
            credentials.write("\r\n+61400000001 newpass1\r\n")
        server.proc.send_signal(signal.SIGHUP)
        server.stderr.wait_for(r"credentials reloaded: 5 users \(1 added, 0 removed\)")
        assert client.call(LoginRequest("+61400000001", "newpass1")) == LoginReply(LoginStatus.OK)
