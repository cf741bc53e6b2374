"""The real bluetrace-client in a pseudo-terminal, against a real server."""

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bluetrace.protocol.messages import TempIDWindow, encode_beacon
from bluetrace.protocol.timefmt import format_timestamp
from tests.harness import (
    SAMPLES,
    WAIT,
    Phone,
    ServerProcess,
    free_udp_port,
    plain,
    running_server,
    wait_until,
)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[ServerProcess, list[Phone], Path]]:
    phones: list[Phone] = []
    with running_server(tmp_path, block="3") as server:
        try:
            yield server, phones, tmp_path
        finally:
            for phone in phones:
                phone.end()


def phone(world: tuple[ServerProcess, list[Phone], Path], name: str, *extra: str) -> Phone:
    server, phones, tmp = world
    new = Phone(server, tmp / name, *extra)
    phones.append(new)
    return new


def test_download_invalid_command_logout(world: tuple[ServerProcess, list[Phone], Path]) -> None:
    server = world[0]
    client = phone(world, "a")
    client.login("+61410999999")
    out = client.command("Download_tempID")
    tempid = out.split("TempID: ")[1].split()[0]
    assert len(tempid) == 20
    assert tempid.isdigit()
    assert "Error. Invalid command" in client.command("whatsthedate")
    client.proc.sendline("logout")
    assert client.finish() == 0
    server.stdout.wait_for("logout")
    assert server.stdout.text == f"user: +61410999999\nTempID: {tempid}\n+61410999999 logout\n"


def test_three_failures_block_then_blocked_then_unblocked(
    world: tuple[ServerProcess, list[Phone], Path],
) -> None:
    first = phone(world, "a")
    first.proc.expect_exact("Username: ")
    first.proc.sendline("+61410888888")
    for attempt in ("comp9331", "comp8331"):
        first.proc.expect_exact("Password: ")
        first.proc.sendline(attempt)
        first.proc.expect_exact("Invalid Password. Please try again")
    first.proc.expect_exact("Password: ")
    first.proc.sendline("comp7331")
    first.proc.expect_exact(
        "Invalid Password. Your account has been blocked. Please try again later"
    )
    assert first.finish() == 1

    second = phone(world, "b")
    second.proc.expect_exact("Username: ")
    second.proc.sendline("+61410888888")
    second.proc.expect_exact("Password: ")
    second.proc.sendline("comp3331")
    second.proc.expect_exact(
        "Your account is blocked due to multiple login failures. Please try again later"
    )
    assert second.finish() == 1

    def logs_in() -> bool:
        attempt = phone(world, "c")
        attempt.proc.expect_exact("Username: ")
        attempt.proc.sendline("+61410888888")
        attempt.proc.expect_exact("Password: ")
        attempt.proc.sendline("comp3331")
        index = attempt.proc.expect_exact(["Welcome to the BlueTrace Simulator!", "blocked"])
        attempt.end()
        return index == 0

    assert wait_until(logs_in, timeout=10, step=0.5)


def test_password_is_not_echoed_on_a_terminal(
    world: tuple[ServerProcess, list[Phone], Path],
) -> None:
    client = phone(world, "a")
    client.proc.expect_exact("Username: ")
    client.proc.sendline("+61410888888")
    client.proc.expect_exact("Password: ")
    client.proc.sendline("comp3331")
    client.proc.expect_exact("Welcome")
    assert "comp3331" not in str(client.proc.before)


def test_beaconing_between_two_clients_and_upload(
    world: tuple[ServerProcess, list[Phone], Path],
) -> None:
    server = world[0]
    sender, receiver = phone(world, "s"), phone(world, "r")
    sender.login("+61410888888")
    receiver.login("+61410999999")
    tempid = sender.command("Download_tempID").split("TempID: ")[1].split()[0]
    out = sender.command(f"Beacon 127.0.0.1 {receiver.udp}")
    assert f"{tempid}," in out
    receiver.proc.expect_exact("The beacon is valid.")
    log = receiver.folder / "+61410999999_contactlog.txt"
    assert wait_until(lambda: log.exists() and tempid in log.read_text())
    receiver.proc.expect_exact("> ")
    out = receiver.command("Upload_contact_log")
    assert f"{tempid}," in out
    server.stdout.wait_for(r"Contact log checking\n\+61410888888,\n.*\n" + tempid + ";")


def test_short_retention_empties_the_log(world: tuple[ServerProcess, list[Phone], Path]) -> None:
    sender, receiver = phone(world, "s"), phone(world, "r", "--log-retention", "2")
    sender.login("+61410888888")
    receiver.login("+61410999999")
    tempid = sender.command("Download_tempID").split("TempID: ")[1].split()[0]
    sender.command(f"Beacon 127.0.0.1 {receiver.udp}")
    receiver.proc.expect_exact("The beacon is valid.")
    receiver.proc.expect_exact("> ")
    log = receiver.folder / "+61410999999_contactlog.txt"
    # The line is written before "valid" is printed, and removed 2 s later.
    assert tempid in log.read_text()
    assert wait_until(lambda: log.read_text() == "", timeout=6)
    assert "the server received 0 entries" in receiver.command("Upload_contact_log")


def test_malformed_and_expired_datagrams(world: tuple[ServerProcess, list[Phone], Path]) -> None:
    receiver = phone(world, "r")
    receiver.login("+61410999999")
    log = receiver.folder / "+61410999999_contactlog.txt"
    now = datetime.now().replace(microsecond=0)
    expired = TempIDWindow(
        "11111111111111111111", now - timedelta(minutes=30), now - timedelta(minutes=15)
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        raw.sendto(b"not a beacon", ("127.0.0.1", receiver.udp))
        receiver.proc.expect_exact("Rejected a malformed beacon from 127.0.0.1")
        raw.sendto(encode_beacon(expired), ("127.0.0.1", receiver.udp))
        receiver.proc.expect_exact(f"{format_timestamp(expired.expiry)}.")
        receiver.proc.expect_exact("The beacon is invalid.")
    assert not log.exists() or log.read_text() == ""


def test_stored_log_is_uploaded_like_the_sample(
    world: tuple[ServerProcess, list[Phone], Path],
) -> None:
    server = world[0]
    folder = world[2] / "u"
    folder.mkdir()
    (folder / "+61410888888_contactlog.txt").write_bytes(
        (SAMPLES / "sample_contactlog.txt").read_bytes()
    )
    (server.data_dir / "tempIDs.txt").write_bytes((SAMPLES / "tempIDs.txt").read_bytes())
    server.stop()
    with running_server(world[2], block="3") as restarted:
        client = Phone(restarted, folder)
        world[1].append(client)
        client.login("+61410888888")
        out = client.command("Upload_contact_log")
        assert "12345678901234567890,\r\n13/05/2020 17:45:06,\r\n13/05/2020 18:00:05;" in out
        restarted.stdout.wait_for(r"12345678901234567891;")
        checking = restarted.stdout.text.split("Contact log checking\n")[1]
        assert checking.startswith("+61410999999,\n13/05/2020 17:45:06,\n12345678901234567890;\n")


def test_server_going_away_is_a_clear_message(
    world: tuple[ServerProcess, list[Phone], Path],
) -> None:
    server = world[0]
    client = phone(world, "a")
    client.login("+61410888888")
    server.stop()
    client.proc.expect_exact("Connection to the server was lost: the server is stopping.")
    assert client.finish() == 1
    assert "Traceback" not in str(client.proc.before)


def _client(
    *args: str,
    stdin: int | None = subprocess.DEVNULL,
    input_text: str | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """The phone as a process; by default in a fresh folder, never the
    repository's (a phone writes its contact log and lock where it runs)."""
    with tempfile.TemporaryDirectory() as scratch:
        return subprocess.run(
            [sys.executable, "-m", "bluetrace.phone.main", *args],
            input=input_text,
            stdin=None if input_text is not None else stdin,
            capture_output=True,
            text=True,
            timeout=WAIT * 2,
            check=False,
            cwd=cwd or scratch,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        )


def test_udp_port_taken_exits_1_before_any_prompt(
    world: tuple[ServerProcess, list[Phone], Path],
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("", 0))
        result = _client("127.0.0.1", str(world[0].port), str(taken.getsockname()[1]))
    assert result.returncode == 1  # 2 is kept for usage errors
    assert result.stdout == ""
    assert "cannot receive beacons on UDP port" in result.stderr
    assert "choose another port" in result.stderr


def test_no_server_is_a_clear_error() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    result = _client(
        "127.0.0.1", str(port), str(free_udp_port()), input_text="+61410888888\ncomp3331\n"
    )
    assert result.returncode == 1
    assert f"Cannot reach the server: 127.0.0.1:{port}: Connection refused" in result.stdout
    assert "Traceback" not in result.stderr


def test_piped_session_and_eof_logs_out(world: tuple[ServerProcess, list[Phone], Path]) -> None:
    server = world[0]
    result = _client(
        "127.0.0.1",
        str(server.port),
        str(free_udp_port()),
        input_text="+61410777777\ndatha457\nDownload_tempID\nwhatsthedate\n",
        cwd=world[2],
    )
    assert result.returncode == 0, result.stderr
    assert "Welcome to the BlueTrace Simulator!" in result.stdout
    assert "TempID: " in result.stdout
    assert "Error. Invalid command" in result.stdout
    assert result.stderr == ""
    server.stdout.wait_for(r"\+61410777777 logout")


def test_stdin_from_devnull_exits_cleanly(world: tuple[ServerProcess, list[Phone], Path]) -> None:
    result = _client("127.0.0.1", str(world[0].port), str(free_udp_port()), cwd=world[2])
    assert result.returncode == 0
    assert result.stdout == "Username: \n"  # the end of the pipe ends the prompt's line
    assert result.stderr == ""


@pytest.mark.parametrize(
    "args", [[], ["127.0.0.1"], ["127.0.0.1", "4000", "0"], ["127.0.0.1", "x", "8000"]]
)
def test_bad_arguments(args: list[str]) -> None:
    result = _client(*args)
    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_an_upload_past_200000_entries_is_refused_and_the_phone_stays_logged_in(
    world: tuple[ServerProcess, list[Phone], Path],
) -> None:
    """The state table's DISCARDING rows end to end, with the real phone."""
    server = world[0]
    folder = world[2] / "big"
    folder.mkdir()
    now = datetime.now().replace(microsecond=0)
    start = now.strftime("%d/%m/%Y %H:%M:%S")
    expiry = (now + timedelta(minutes=10)).strftime("%d/%m/%Y %H:%M:%S")
    lines = "".join(f"{i:020d} {start} {expiry}\n" for i in range(200_001))
    (folder / "+61410888888_contactlog.txt").write_text(lines)
    out_path = folder / "phone.out"
    with out_path.open("w") as out:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "bluetrace.phone.main",
                "127.0.0.1",
                str(server.port),
                str(free_udp_port()),
                "--max-contacts",
                "300000",
            ],
            input="+61410888888\ncomp3331\nUpload_contact_log\nDownload_tempID\nlogout\n",
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            cwd=folder,
            timeout=120,
            check=False,
        )
    shown = out_path.read_text()
    assert result.returncode == 0, result.stderr
    assert (
        "Upload refused by the server: an upload may hold at most 200,000 entries; "
        "this one had 200,001 and was discarded"
    ) in shown
    assert "TempID: " in shown.split("Upload refused", 1)[1]  # still logged in
    checks = server.data_dir / "contact_checks.txt"
    assert not checks.exists() or checks.read_text() == ""


def test_a_full_contact_log_keeps_the_newest_and_the_user_is_told(
    world: tuple[ServerProcess, list[Phone], Path],
) -> None:
    """Issue 20, item 10, on the real phone: with room for three, the last
    two of five contacts are kept (the oldest make room), the user hears of
    it once, and the upload says what it left out."""
    receiver = phone(world, "r", "--max-contacts", "3")
    receiver.login("+61410999999")
    log = receiver.folder / "+61410999999_contactlog.txt"
    now = datetime.now().replace(microsecond=0)
    windows = [
        TempIDWindow(f"{i:020d}", now - timedelta(minutes=1), now + timedelta(minutes=14))
        for i in range(5)
    ]
    seen = ""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        for window in windows:
            raw.sendto(encode_beacon(window), ("127.0.0.1", receiver.udp))
            receiver.proc.expect_exact("The beacon is valid.")
            seen += str(receiver.proc.before)
    receiver.proc.expect_exact("> ")
    seen += str(receiver.proc.before)
    assert plain(seen).count("The contact log is full (3 entries)") == 1
    newest = [window.tempid for window in windows[2:]]
    assert wait_until(lambda: [line.split()[0] for line in log.read_text().splitlines()] == newest)
    out = receiver.command("Upload_contact_log")
    assert all(f"{tempid}," in out for tempid in newest)
    assert f"{windows[0].tempid}," not in out
    assert "2 entries received within the retention period were left out" in out
