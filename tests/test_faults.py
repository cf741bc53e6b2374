"""Faults injected into real processes on 127.0.0.1: nothing acknowledged is lost.

Full disks are simulated with /dev/full (every write fails with ENOSPC),
which works as root, where permission bits would not stop a write.
"""

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bluetrace.phone.contactfile import load_contact_log
from bluetrace.protocol.messages import (
    ErrorReply,
    LoginReply,
    LoginRequest,
    TempIDReply,
    TempIDRequest,
    TempIDWindow,
    UploadRequest,
    encode,
    encode_beacon,
)
from bluetrace.protocol.wire import ErrorCode, LoginStatus
from bluetrace.server.records import load_tempids
from tests.harness import WAIT, FrameClient, Phone, running_server, wait_until

USER, PASSWORD = "+61410888888", "comp3331"
WINDOW = TempIDWindow(
    "12345678901234567890", datetime(2020, 5, 13, 17, 45, 6), datetime(2020, 5, 13, 18, 0, 5)
)


def _login(client: FrameClient, user: str = USER, password: str = PASSWORD) -> None:
    assert client.call(LoginRequest(user, password)) == LoginReply(LoginStatus.OK)


def _killed_writer(port: int, payload: bytes) -> None:
    """A separate process that logs in, writes ``payload`` and is SIGKILLed."""
    script = (
        "import socket,sys,time\n"
        f"s=socket.create_connection(('127.0.0.1',{port}))\n"
        f"s.sendall({encode(LoginRequest(USER, PASSWORD))!r})\n"
        "s.recv(100)\n"
        "s.sendall(sys.stdin.buffer.read())\n"
        "print('sent',flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert child.stdin is not None
        assert child.stdout is not None
        child.stdin.write(payload)
        child.stdin.close()
        assert child.stdout.readline() == b"sent\n"
    finally:
        child.kill()
        child.wait(WAIT)
        if child.stdout is not None:
            child.stdout.close()


def test_client_killed_mid_frame_and_mid_upload_records_nothing(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        _killed_writer(server.port, encode(TempIDRequest())[:3])
        chunk = UploadRequest((WINDOW,) * 10, final=False)
        _killed_writer(
            server.port, encode(chunk) + encode(UploadRequest((WINDOW,), final=True))[:20]
        )
        server.stderr.wait_for("abandoned after 10 entries; nothing recorded")
        healthy = server.connect()
        _login(healthy)
        assert isinstance(healthy.call(TempIDRequest()), TempIDReply)
        assert not (server.data_dir / "contact_checks.txt").exists()
        assert "Traceback" not in server.stderr.drain()


def test_server_sigkilled_during_a_burst_keeps_every_tempid_it_told(tmp_path: Path) -> None:
    told: dict[str, str] = {}
    users = [("+61410666666", "kara1234"), ("+61410777777", "datha457"), (USER, PASSWORD)]
    with running_server(tmp_path, "--tempids-per-hour", "1000000") as server:
        clients = [(server.connect(), users[i % 3][0]) for i in range(20)]
        for (client, user), (_, password) in zip(clients, users * 7, strict=False):
            _login(client, user, password)
        deadline = time.monotonic() + WAIT
        while len(told) < 300 and time.monotonic() < deadline:
            for client, _ in clients:
                client.send(TempIDRequest())
            for client, user in clients:
                reply = client.receive()
                assert isinstance(reply, TempIDReply)
                told[reply.window.tempid] = user
        for client, _ in clients:  # a burst in flight at the moment of the kill
            client.send(TempIDRequest())
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(WAIT)
        for client, user in clients:
            try:
                reply = client.receive()
            except (ConnectionError, OSError):
                continue
            if isinstance(reply, TempIDReply):
                told[reply.window.tempid] = user
    found: dict[str, str] = {}
    report = load_tempids(server.data_dir / "tempIDs.txt", found)
    assert report.problems == []  # no torn line
    assert len(told) >= 300
    for tempid, user in told.items():
        assert found.get(tempid) == user
    with running_server(tmp_path) as restarted:
        restarted.stderr.wait_for(rf"{len(found)} TempIDs known")


def test_full_disk_for_tempids_and_checks_is_a_clear_error(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        (server.data_dir / "tempIDs.txt").symlink_to("/dev/full")
        (server.data_dir / "contact_checks.txt").symlink_to("/dev/full")
        client = server.connect()
        _login(client)
        reply = client.call(TempIDRequest())
        assert reply == ErrorReply(
            ErrorCode.STORAGE, "the server could not record a TempID; try later"
        )
        reply = client.call(UploadRequest((WINDOW,), final=True))
        assert reply == ErrorReply(
            ErrorCode.STORAGE,
            "the server could not record the contact check; upload again later",
        )
        other = server.connect()
        _login(other, "+61410999999", "bada4568")
        server.stderr.wait_for("No space left on device")
        assert "Traceback" not in server.stderr.drain()


def test_a_symlinked_contact_log_is_refused_and_not_followed(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        folder = tmp_path / "phone"
        folder.mkdir()
        (folder / "+61410999999_contactlog.txt").symlink_to("/dev/full")
        phone = Phone(server, folder)
        try:
            phone.proc.expect_exact("Username: ")
            phone.proc.sendline("+61410999999")
            phone.proc.expect_exact("Password: ")
            phone.proc.sendline("bada4568")
            phone.proc.expect_exact(
                "+61410999999_contactlog.txt is a symbolic link; refusing to use it."
            )
            assert phone.finish() == 1
            server.stdout.wait_for(r"\+61410999999 logout")  # it logged out cleanly
        finally:
            phone.end()


def test_client_killed_while_rewriting_leaves_old_or_new_log(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        folder = tmp_path / "phone"
        folder.mkdir()
        log = folder / "+61410999999_contactlog.txt"
        now = datetime.now().replace(microsecond=0)
        sent = set()
        for round_number in range(4):
            phone = Phone(server, folder, "--log-retention", "0.05")
            try:
                phone.proc.expect_exact("Username: ")
                phone.proc.sendline("+61410999999")
                phone.proc.expect_exact("Password: ")
                phone.proc.sendline("bada4568")
                phone.proc.expect_exact("> ")
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
                    for i in range(400):  # arrivals and 50 ms expiries: rewrites all the time
                        tempid = f"{round_number}{i:019d}"
                        sent.add(tempid)
                        window = TempIDWindow(
                            tempid, now - timedelta(minutes=1), now + timedelta(minutes=10)
                        )
                        raw.sendto(encode_beacon(window), ("127.0.0.1", phone.udp))
                        if i % 50 == 0:
                            time.sleep(0.01)
                assert wait_until(log.exists, timeout=5)
            finally:
                os.kill(phone.proc.pid, signal.SIGKILL)
                phone.end()
            entries, problems = load_contact_log(log)
            assert problems == []
            assert {entry.tempid for entry in entries} <= sent
            assert log.read_bytes() == b"" or log.read_bytes().endswith(b"\n")


def test_silent_and_dripping_connections_time_out_without_hurting_others(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2500:
        pytest.skip(f"needs 2,500 descriptors, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    login = encode(LoginRequest(USER, PASSWORD))
    try:
        # Caps raised: this is about timeouts; test_loop_floods covers the caps.
        with running_server(
            tmp_path, "--login-timeout", "3", "--max-unauthenticated-per-address", "4000"
        ) as server:
            silent = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(1000)]
            drip = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(1000)]
            started = time.monotonic()
            healthy = server.connect()
            _login(healthy)
            assert isinstance(healthy.call(TempIDRequest()), TempIDReply)
            sent = 0
            while time.monotonic() - started < 2.5 and sent < len(login) - 1:
                for sock in drip:
                    sock.send(login[sent : sent + 1])  # a byte a turn, never a whole frame
                sent += 1
                time.sleep(0.4)
            timed_out = 0
            for sock in silent + drip:
                sock.settimeout(WAIT)
                data = b""
                while len(data) < 6 or len(data) < 6 + int.from_bytes(data[2:6], "big"):
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                if data[:2] == b"\x01\xff" and data[6] == ErrorCode.TIMEOUT:
                    timed_out += 1
            assert timed_out == 2000
            assert isinstance(healthy.call(TempIDRequest()), TempIDReply)
            for sock in silent + drip:
                sock.close()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_server_gone_while_the_client_waits(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        folder = tmp_path / "phone"
        phone = Phone(server, folder)
        try:
            phone.login(USER)
            server.proc.send_signal(signal.SIGSTOP)  # it will never answer
            phone.proc.sendline("Download_tempID")
            time.sleep(0.2)  # let the request reach the stopped server's socket
            server.proc.send_signal(signal.SIGKILL)
            phone.proc.expect_exact("Connection to the server was lost: ")
            assert phone.finish() == 1
        finally:
            phone.end()
