"""The phone's terminal through a real pseudo-terminal: what a user types and sees."""

import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bluetrace import __version__
from bluetrace.phone.main import FileContactLog, contact_log_name
from bluetrace.protocol.messages import TempIDWindow, encode_beacon
from tests.harness import Phone, ServerProcess, plain, running_server

pexpect = pytest.importorskip("pexpect")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path, block="3") as running:
        yield running


def _beacon_to(port: int) -> None:
    now = datetime.now().replace(microsecond=0)
    start, expiry = now - timedelta(minutes=1), now + timedelta(minutes=10)
    window = TempIDWindow("12345678901234567893", start, expiry)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        raw.sendto(encode_beacon(window), ("127.0.0.1", port))


def test_a_beacon_arriving_while_a_command_is_half_typed_keeps_the_line(
    server: ServerProcess, tmp_path: Path
) -> None:
    phone = Phone(server, tmp_path / "p")
    try:
        phone.login("+61410999999")
        phone.proc.send("Upl")
        phone.proc.expect_exact("Upl")
        _beacon_to(phone.udp)
        phone.proc.expect_exact("The beacon is valid.")
        phone.proc.expect_exact("> Upl")  # the prompt and the typed text, redrawn
        phone.proc.send("oad_contact_log\r")
        phone.proc.expect_exact("Contact log uploaded: the server received 1 entry.")
        assert "Error. Invalid command" not in plain(str(phone.proc.before))
    finally:
        phone.end()


def test_help_tab_completion_and_history(server: ServerProcess, tmp_path: Path) -> None:
    phone = Phone(server, tmp_path / "p")
    try:
        phone.login("+61410999999")
        phone.proc.sendline("help")
        phone.proc.expect_exact("show this list")
        shown = plain(str(phone.proc.before))
        for command in ("Download_tempID", "Upload_contact_log", "Beacon <dest IP> <dest port>"):
            assert command in shown
        phone.proc.send("Down\t\r")  # Tab completes the unique command
        phone.proc.expect_exact("TempID: ")
        phone.proc.expect_exact("> ")
        phone.proc.send("\x1b[A\r")  # Up: the same command again
        phone.proc.expect_exact("TempID: ")
    finally:
        phone.end()


def test_ctrl_c_logs_out_and_exits_130(server: ServerProcess, tmp_path: Path) -> None:
    phone = Phone(server, tmp_path / "p")
    try:
        phone.login("+61410999999")
        phone.proc.send("\x03")
        assert phone.finish() == 130
        server.stdout.wait_for(r"\+61410999999 logout")
    finally:
        phone.end()


def test_the_password_is_never_shown(server: ServerProcess, tmp_path: Path) -> None:
    phone = Phone(server, tmp_path / "p")
    try:
        phone.proc.expect_exact("Username: ")
        phone.proc.sendline("+61410999999")
        phone.proc.expect_exact("Password: ")
        phone.proc.sendline("bada4568")
        phone.proc.expect_exact("Welcome to the BlueTrace Simulator!")
        assert "bada4568" not in str(phone.proc.before)
    finally:
        phone.end()


@pytest.mark.parametrize(
    ("module", "program", "bad_args"),
    [
        ("bluetrace.server", "bluetrace-server", ["0", "5", "--login-timeout", "3000000"]),
        ("bluetrace.phone", "bluetrace-client", ["1", "2", "3", "--log-retention", "nan"]),
    ],
)
def test_version_and_usage(module: str, program: str, bad_args: list[str]) -> None:
    version = subprocess.run(
        [sys.executable, "-m", module, "--version"], capture_output=True, text=True, check=False
    )
    assert version.returncode == 0
    assert version.stdout.strip().endswith(__version__)
    bad = subprocess.run(
        [sys.executable, "-m", module, *bad_args], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith(f"{program}: error:")
    assert bad_args[-2].lstrip("-") in bad.stderr
    assert "Traceback" not in bad.stderr


def test_contact_log_names_are_safe_and_a_second_phone_is_refused(tmp_path: Path) -> None:
    assert contact_log_name("+61410888888") == "+61410888888_contactlog.txt"
    assert "/" not in contact_log_name("../escaped")
    assert not contact_log_name(".hidden").startswith(".")
    assert len(contact_log_name("9" * 255).encode()) <= 255
    first = FileContactLog(tmp_path, "+61410888888")
    try:
        with pytest.raises(OSError, match="another phone of \\+61410888888"):
            FileContactLog(tmp_path, "+61410888888")
    finally:
        first.close()
    FileContactLog(tmp_path, "+61410888888").close()  # free again once the first is gone
