"""What the phone tells its user when something goes quietly wrong: a beacon
nobody hears, commands typed while the server is awaited, a contact log full
of bad lines, and a server that cannot be used (told once, cleanly)."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bluetrace.phone.contactfile import BAD_LINES_SHOWN
from bluetrace.phone.main import contact_log_name
from bluetrace.phone.probe import ANSWER_WAIT
from bluetrace.phone.shell import MAX_TYPED_AHEAD, NOT_RUN_TEXT
from bluetrace.runtime.reactor import Reactor
from bluetrace.runtime.transports import DatagramEndpoint, LineReader
from tests.harness import Phone, ServerProcess, free_udp_port, plain, running_server
from tests.helpers import Rig

pexpect = pytest.importorskip("pexpect")

ROOT = Path(__file__).resolve().parent.parent
WAIT = 10.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path) as running:
        yield running


def _closed_udp_port() -> int:
    """A loopback UDP port the OS just handed out and nobody holds now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- a beacon nobody hears -----------------------------------------------------------
def test_the_endpoint_names_the_address_nobody_listens_at() -> None:
    reactor = Reactor()
    errors: list[tuple[int | None, tuple[str, int] | None]] = []
    received: list[bytes] = []
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    endpoint = DatagramEndpoint(
        reactor,
        sock,
        lambda data, sender: received.append(data),
        lambda error, where: errors.append((error.errno, where)),
    )
    closed = _closed_udp_port()
    try:
        endpoint.send(b"x" * 59, ("127.0.0.1", closed))
        # Back to back, as lines from a pipe come: the second send must go out
        # (not fail with the first one's error) and both be reported.
        endpoint.send(b"x" * 59, ("127.0.0.1", closed))
        deadline = time.monotonic() + WAIT
        while len(errors) < 2 and time.monotonic() < deadline:
            reactor.run_once(max_wait=0.1)
        assert errors == [(111, ("127.0.0.1", closed))] * 2
        # The socket still receives, and the loop does not spin on the error.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.sendto(b"hello", sock.getsockname())
        deadline = time.monotonic() + WAIT
        while not received and time.monotonic() < deadline:
            reactor.run_once(max_wait=0.1)
        assert received == [b"hello"]
        assert len(errors) == 2
    finally:
        endpoint.close()
        reactor.close()


def test_a_beacon_to_a_port_nobody_listens_on_is_told(
    server: ServerProcess, tmp_path: Path
) -> None:
    phone = Phone(server, tmp_path / "p")
    try:
        phone.login("+61410999999")
        phone.command("Download_tempID")
        closed = _closed_udp_port()
        phone.proc.sendline(f"Beacon 127.0.0.1 {closed}")
        phone.proc.expect_exact(
            f"Beacon to 127.0.0.1:{closed}: nobody is listening there (port unreachable)"
        )
        phone.proc.expect_exact("> ")
        # A beacon to a phone that listens is not reported.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listening:
            listening.bind(("127.0.0.1", 0))
            port = listening.getsockname()[1]
            shown = phone.command(f"Beacon 127.0.0.1 {port}")
            listening.settimeout(WAIT)
            assert len(listening.recv(100)) == 59
            shown += phone.command("help")
        assert "nobody is listening" not in shown
        assert "Traceback" not in plain(str(phone.proc.before))
        phone.proc.sendline("logout")
        assert phone.finish() == 0
    finally:
        phone.end()


# -- commands typed while the server is awaited -------------------------------------
def test_a_command_typed_past_the_waiting_bound_is_told_not_run() -> None:
    rig = Rig()
    rig.login()
    rig.pair.side.auto_commit = False
    assert rig.type("Download_tempID") == []
    kept = [f"Beacon 127.0.0.1 {8000 + n}" for n in range(MAX_TYPED_AHEAD)]
    assert rig.type(*kept) == []  # these wait, in order, without a word
    assert rig.shell.typed_ahead_full
    shown = rig.type("Beacon 127.0.0.1 9999")
    assert shown == [
        f"Waiting for the server: Beacon 127.0.0.1 9999 not run "
        f"({MAX_TYPED_AHEAD} commands already wait)."
    ]
    rig.pair.link.commit()
    rig.apply(rig.shell.events(rig.pair.run()))
    assert [beacon.address[1] for beacon in rig.beacons] == [8000 + n for n in range(len(kept))]
    assert not rig.shell.typed_ahead_full


def test_commands_waiting_when_the_server_is_lost_are_told_not_run() -> None:
    rig = Rig()
    rig.login()
    rig.pair.side.auto_commit = False
    rig.type("Download_tempID", "Upload_contact_log")
    rig.pair.phone.receive_data(b"", rig.clock.monotonic())
    rig.apply(rig.shell.events(rig.pair.phone.next_events()))
    assert rig.shown[-1] == NOT_RUN_TEXT
    assert rig.exit == 1


def test_a_paused_line_reader_delivers_nothing_and_then_everything_in_order() -> None:
    """Paused after the tenth line of one read: no more lines come, however
    many turns pass; resumed, the rest come in order, then the end."""
    reactor = Reactor()
    read_end, write_end = os.pipe()
    held: list[str] = []
    ended: list[bool] = []

    def on_line(text: str) -> None:
        held.append(text)
        if len(held) == 10:
            reader.pause()

    reader = LineReader(reactor, read_end, on_line, lambda: ended.append(True))
    try:
        os.write(write_end, b"".join(b"line %d\n" % n for n in range(2000)))
        os.close(write_end)
        for _ in range(5):
            reactor.run_once(max_wait=0.05)
        assert len(held) == 10
        reader.resume()
        deadline = time.monotonic() + WAIT
        while not ended and time.monotonic() < deadline:
            reactor.run_once(max_wait=0.1)
        assert held == [f"line {n}" for n in range(2000)]
        assert ended == [True]
    finally:
        reader.close()
        os.close(read_end)
        reactor.close()


def test_a_pipe_far_ahead_of_the_replies_loses_no_command(
    server: ServerProcess, tmp_path: Path
) -> None:
    """Many more lines than are kept arrive in one read while a TempID is
    awaited: the pipe is read on only as they run, and every one runs."""
    folder = tmp_path / "p"
    folder.mkdir()
    count = 3 * MAX_TYPED_AHEAD + 7
    script = "+61410999999\nbada4568\nDownload_tempID\n" + "whatsthedate\n" * count + "logout\n"
    done = subprocess.run(
        [sys.executable, "-m", "bluetrace.phone.main", "127.0.0.1", str(server.port),
         str(free_udp_port())],
        check=False, cwd=folder, input=script.encode(), capture_output=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    out = done.stdout.decode()
    assert done.returncode == 0, (out[-500:], done.stderr)
    assert out.count("Error. Invalid command") == count
    assert "not run" not in out
    assert "Traceback" not in out + done.stderr.decode()


# -- a contact log full of bad lines -------------------------------------------------
def test_a_contact_log_of_many_bad_lines_is_summarised_at_login(
    server: ServerProcess, tmp_path: Path
) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    bad = 20_000
    good = "12345678901234567893 14/05/2020 17:54:06 14/05/2020 18:09:05\n"
    (folder / contact_log_name("+61410999999")).write_text(
        good + "not a contact line\n" * bad, encoding="utf-8"
    )
    done = subprocess.run(
        [sys.executable, "-m", "bluetrace.phone.main", "127.0.0.1", str(server.port),
         str(free_udp_port())],
        check=False, cwd=folder, input=b"+61410999999\nbada4568\nlogout\n",
        capture_output=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    lines = done.stdout.decode().splitlines()
    notes = [line for line in lines if line.startswith("Contact log: ")]
    name = contact_log_name("+61410999999")
    assert notes[:BAD_LINES_SHOWN] == [
        f"Contact log: {name}:{number}: expected '<TempID> <start> <expiry>'"
        for number in range(2, 2 + BAD_LINES_SHOWN)
    ]
    assert notes[BAD_LINES_SHOWN:] == [
        f"Contact log: ... and {bad - BAD_LINES_SHOWN:,} more bad lines in {name}"
    ]
    assert done.returncode == 0


# -- a server that cannot be used ------------------------------------------------------
def test_a_server_that_is_down_is_told_and_no_prompt_is_drawn_after_it(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = tmp_path / "p"
    folder.mkdir()
    phone = pexpect.spawn(
        sys.executable,
        ["-m", "bluetrace.phone.main", "127.0.0.1", str(port), str(free_udp_port())],
        cwd=str(folder), encoding="utf-8", timeout=WAIT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        phone.expect_exact("Username: ")
        phone.expect(pexpect.EOF)
        after = str(phone.before)
        phone.close()
        assert phone.exitstatus == 1
        told = f"Cannot reach the server: 127.0.0.1:{port}: Connection refused"
        assert told in after
        # The message, then the end: no prompt redrawn below it (and erased).
        assert "Username" not in after.split(told, 1)[1], repr(after)
        assert "Traceback" not in after
    finally:
        phone.terminate(force=True)


def test_help_tells_the_wait_for_the_server_check() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "bluetrace.phone.main", "--help"],
        check=True, capture_output=True, text=True, timeout=WAIT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ).stdout  # fmt: skip
    assert f"does not answer within {ANSWER_WAIT:g} s" in " ".join(shown.split())
    assert f"up to {MAX_TYPED_AHEAD} typed commands wait" in " ".join(shown.split())
