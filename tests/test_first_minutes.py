"""What a newcomer meets in the first minutes: a server that is not there, the
wrong port, a program that is no bluetrace server, a TLS mismatch (each told
before the password is asked), and how ``make run-client`` ends."""

import os
import select
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.harness import ServerProcess, free_udp_port, running_server

pexpect = pytest.importorskip("pexpect")

ROOT = Path(__file__).resolve().parent.parent
VERDICT_WAIT = 5.0
"""The issue's bound: each failure is told within this many seconds."""


def _phone(port: int, folder: Path, *extra: str) -> "pexpect.spawn":
    folder.mkdir(exist_ok=True)
    return pexpect.spawn(
        sys.executable,
        ["-m", "bluetrace.phone.main", "127.0.0.1", str(port), str(free_udp_port()), *extra],
        cwd=str(folder),
        encoding="utf-8",
        timeout=VERDICT_WAIT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _told_before_the_password(phone: "pexpect.spawn", text: str) -> str:
    """Type the username; ``text`` must come (and the phone end with 1)
    within VERDICT_WAIT, without a password prompt."""
    phone.expect_exact("Username: ")
    started = time.monotonic()
    phone.sendline("+61410999999")
    index = phone.expect_exact([text, "Password: "], timeout=VERDICT_WAIT)
    elapsed = time.monotonic() - started
    assert index == 0, f"the password was asked: {phone.before!r}"
    shown = f"{phone.before}{phone.after}"
    phone.expect(pexpect.EOF, timeout=VERDICT_WAIT)
    shown += str(phone.before)
    phone.close()
    assert phone.exitstatus == 1
    assert elapsed < VERDICT_WAIT
    assert "Traceback" not in shown
    return shown


@contextmanager
def listener() -> Iterator[socket.socket]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


def test_a_server_that_is_not_running_is_told_at_once(tmp_path: Path) -> None:
    with listener() as sock:
        port = sock.getsockname()[1]
    phone = _phone(port, tmp_path / "p")
    try:
        _told_before_the_password(phone, f"Cannot reach the server: 127.0.0.1:{port}: ")
        assert "Connection refused (is the server running" in str(phone.before)
    finally:
        phone.terminate(force=True)


def test_a_port_where_a_silent_program_listens_is_told_within_seconds(tmp_path: Path) -> None:
    with listener() as sock:  # accepts (the kernel does) and never answers
        phone = _phone(sock.getsockname()[1], tmp_path / "p")
        try:
            _told_before_the_password(phone, "did not answer within 3 s: not a bluetrace server")
        finally:
            phone.terminate(force=True)


def test_a_program_that_speaks_something_else_is_named(tmp_path: Path) -> None:
    with listener() as sock:
        phone = _phone(sock.getsockname()[1], tmp_path / "p")
        try:
            phone.expect_exact("Username: ")
            ready, _, _ = select.select([sock], [], [], VERDICT_WAIT)
            assert ready, "the phone did not connect before the username"
            peer, _ = sock.accept()
            with peer:
                peer.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                phone.expect_exact(
                    'is not a bluetrace server (it answered "HTTP/1.1 400 Bad Request")'
                )
                phone.expect(pexpect.EOF)
                phone.close()
                assert phone.exitstatus == 1
                assert "Password: " not in str(phone.before)
        finally:
            phone.terminate(force=True)


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_a_plain_phone_at_a_tls_server_is_told_which_option(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    with running_server(tmp_path, "--tls-cert", str(cert), "--tls-key", str(key)) as server:
        phone = _phone(server.port, tmp_path / "p")
        try:
            shown = _told_before_the_password(phone, "--tls-ca FILE or --tls-pin SHA256")
            assert "TLS" in shown
        finally:
            phone.terminate(force=True)


def test_a_tls_phone_at_a_plain_server_is_told_which_option(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    with running_server(tmp_path) as server:
        phone = _phone(server.port, tmp_path / "p", "--tls-ca", str(certificate[0]))
        try:
            shown = _told_before_the_password(phone, "does not speak TLS")
            assert "without --tls-ca and --tls-pin" in shown
            assert "wrong version number" not in shown
        finally:
            phone.terminate(force=True)


def test_a_certificate_the_pin_does_not_match_is_told_which_option(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    with running_server(tmp_path, "--tls-cert", str(cert), "--tls-key", str(key)) as server:
        phone = _phone(server.port, tmp_path / "p", "--tls-pin", "ab" * 32)
        try:
            shown = _told_before_the_password(phone, "does not match --tls-pin")
            assert "Traceback" not in shown
        finally:
            phone.terminate(force=True)


def test_registration_refuses_a_bad_number_before_the_passwords(
    tmp_path: Path,
) -> None:
    with running_server(tmp_path, "--allow-registration") as server:
        phone = _phone(server.port, tmp_path / "p")
        try:
            phone.expect_exact("Username: ")
            phone.sendline("register")
            phone.expect_exact("Phone number to register")
            phone.sendline("0412345678")
            index = phone.expect_exact(["Not an international phone number", "Password: "])
            assert index == 0
            phone.expect_exact("Phone number to register")
        finally:
            phone.terminate(force=True)


# -- make run-client ------------------------------------------------------------
@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path) as running:
        yield running


def _make_phone(server: ServerProcess, tmp_path: Path) -> "pexpect.spawn":
    if not (ROOT / ".venv" / ".installed").exists():
        pytest.skip("needs the installed .venv (make install)")
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    phone = pexpect.spawn(
        "make",
        ["run-client", f"PORT={server.port}", f"UDP={free_udp_port()}",
         f"CLIENT_DIR={tmp_path / 'client'}"],
        cwd=str(ROOT), env=env, encoding="utf-8", timeout=VERDICT_WAIT * 2,
    )  # fmt: skip
    phone.expect_exact("Username: ")
    phone.sendline("+61410999999")
    phone.expect_exact("Password: ")
    phone.sendline("bada4568")
    phone.expect_exact("> ")
    return phone


def test_make_run_client_ended_by_logout_exits_0_without_a_make_error(
    server: ServerProcess, tmp_path: Path
) -> None:
    phone = _make_phone(server, tmp_path)
    try:
        phone.sendline("logout")
        phone.expect(pexpect.EOF)
        phone.close()
        assert phone.exitstatus == 0
        assert "make: ***" not in str(phone.before)
    finally:
        phone.terminate(force=True)


def test_make_run_client_after_ctrl_c_is_130_without_a_make_error(
    server: ServerProcess, tmp_path: Path
) -> None:
    phone = _make_phone(server, tmp_path)
    try:
        phone.send("\x03")
        phone.expect(pexpect.EOF)
        phone.close()
        # make ends as interrupted: a shell shows 128 + SIGINT = 130
        assert phone.exitstatus == 130 or phone.signalstatus == 2, (
            phone.exitstatus, phone.signalstatus, phone.before
        )
        assert "make: ***" not in str(phone.before)
        server.stdout.wait_for(r"\+61410999999 logout")
    finally:
        phone.terminate(force=True)


# -- piped input ------------------------------------------------------------------
def test_piped_output_never_lands_on_the_prompt_line(server: ServerProcess, tmp_path: Path) -> None:
    """Lines typed into a pipe are not echoed: whatever a line brings starts on
    a line of its own, whether it came at once or after a reply."""
    folder = tmp_path / "p"
    folder.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bluetrace.phone.main", "127.0.0.1", str(server.port),
         str(free_udp_port())],
        cwd=folder, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.stdin is not None
    assert proc.stdout is not None
    seen = b""

    def until(text: bytes) -> None:
        nonlocal seen
        deadline = time.monotonic() + VERDICT_WAIT * 2
        assert proc.stdout is not None
        while text not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                seen += os.read(proc.stdout.fileno(), 65536)
        assert text in seen, seen

    try:
        proc.stdin.write(b"+61410999999\nbada4568\n")
        proc.stdin.flush()
        until(b"Welcome to the BlueTrace Simulator!\n> ")
        proc.stdin.write(b"whatsthedate\n")  # typed while the prompt shows
        proc.stdin.flush()
        until(b"Error. Invalid command\n> ")
        proc.stdin.write(b"logout\n")
        proc.stdin.close()
        assert proc.wait(timeout=VERDICT_WAIT * 2) == 0
        seen += proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()
    lines = seen.decode().splitlines()
    assert "Error. Invalid command" in lines, lines
    assert not [line for line in lines if line.startswith("> ") and line[2:].strip()], lines

