"""The authentication surfaces under attack: scrypt parameters a file may
name, registration against the hashing budget, registrations that must land
in the file the next start reads, and files that are not regular files."""

import base64
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bluetrace.protocol.messages import (
    ErrorReply,
    LoginReply,
    LoginRequest,
    RegisterReply,
    RegisterRequest,
)
from bluetrace.protocol.wire import ErrorCode, LoginStatus, RegisterStatus
from bluetrace.runtime.reactor import Reactor
from bluetrace.server import passwords
from bluetrace.server.core import Limits
from bluetrace.server.main import CredentialReloader
from bluetrace.server.records import RecordError, load_credentials
from bluetrace.server.stores import MemoryCredentialStore
from bluetrace.testing import ServerSide
from tests.harness import SAMPLES, WAIT, ServerProcess, running_server

SALT = base64.b64encode(bytes(16)).decode().rstrip("=")
KEY = "A" * 43


def line(n: int, r: int, p: int, salt: str = SALT, prefix: str = "$scrypt$") -> str:
    return f"{prefix}n={n},r={r},p={p}${salt}${KEY}"


# -- item 1: parameters bounded by what the check can do -----------------------


@pytest.mark.parametrize(
    ("n", "r", "p"),
    [(2**18, 8, 1), (2**20, 2, 1), (2**20, 1, 2), (2**14, 8, 16), (2**17, 8, 2)],
)
def test_parameters_beyond_the_checks_reach_are_refused_at_load(
    n: int, r: int, p: int, tmp_path: Path
) -> None:
    stored = line(n, r, p)
    assert passwords.problem(stored) is not None
    path = tmp_path / "credentials.txt"
    path.write_text(f"+61410888888 comp3331\n+61410999999 {stored}\n")
    with pytest.raises(RecordError, match=r"credentials\.txt:2: scrypt"):
        load_credentials(path)


def test_the_dearest_accepted_parameters_really_run() -> None:
    """The bound is OpenSSL's own count of memory: what ``problem`` lets
    through, scrypt computes (no 'memory limit exceeded' at login)."""
    for n, r, p in [(2**17, 8, 1), (2**20, 1, 1), (2**14, 8, 8)]:
        stored = line(n, r, p)
        assert passwords.problem(stored) is None, (n, r, p)
        assert passwords.verify(stored, "guess") is False


def test_verify_never_raises_on_a_stored_value_that_slipped_past_the_check() -> None:
    assert passwords.verify(line(2**18, 8, 1), "guess") is False


@pytest.mark.parametrize("cost", ["18", "20"])
def test_passwd_refuses_a_cost_it_could_not_check(cost: str, tmp_path: Path) -> None:
    (tmp_path / "credentials.txt").write_text("+61410888888 comp3331\n")
    done = subprocess.run(
        [sys.executable, "-m", "bluetrace.server.passwd", "+61400000001", "--data-dir",
         str(tmp_path), "--cost", cost],
        input="pw\npw\n", capture_output=True, text=True, check=False, timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "--cost" in done.stderr


def test_a_dear_line_is_refused_at_start_up_of_the_real_server(tmp_path: Path) -> None:
    data = tmp_path / "server"
    data.mkdir()
    (data / "credentials.txt").write_text(f"+61410999999 {line(2**18, 8, 1)}\n")
    done = subprocess.run(
        [sys.executable, "-m", "bluetrace.server.main", "0", "60", "--data-dir", str(data),
         "--host", "127.0.0.1"],
        capture_output=True, text=True, check=False, timeout=WAIT, cwd=data,
    )
    assert done.returncode == 1
    assert "credentials.txt:1: scrypt" in done.stderr
    assert "Traceback" not in done.stderr


# -- item 12: the scheme's spelling and the salt's size ------------------------


def test_upper_case_scheme_is_refused_not_read_as_a_plain_password(tmp_path: Path) -> None:
    path = tmp_path / "credentials.txt"
    stored = passwords.hash_password("pw", n=2**10).replace("$scrypt$", "$SCRYPT$")
    path.write_text(f"+61410999999 {stored}\n")
    with pytest.raises(RecordError, match=r"credentials\.txt:1: .*\$scrypt\$"):
        load_credentials(path)
    assert not passwords.verify(stored, stored)


@pytest.mark.parametrize("size", [12, 15, 49])
def test_a_salt_outside_16_to_48_bytes_is_refused(size: int, tmp_path: Path) -> None:
    salt = base64.b64encode(bytes(size)).decode().rstrip("=")
    stored = line(2**10, 8, 1, salt=salt)
    assert passwords.problem(stored) is not None
    for good in (16, 48):
        ok = base64.b64encode(bytes(good)).decode().rstrip("=")
        assert passwords.problem(line(2**10, 8, 1, salt=ok)) is None


# -- item 3: registration cannot spend the logins' hashing budget --------------


def test_malformed_registrations_spend_no_hashing_and_count_against_the_address() -> None:
    hashed = passwords.hash_password("bada4568", n=2**10)
    side = ServerSide(
        {"+61410999999": hashed, "+61410888888": "comp3331"},
        # Refusals are answered late; a short delay keeps the hashing
        # budget from refilling while the test waits for them.
        limits=Limits(hashes_per_second=4, registrations_per_hour=5, refusal_delay=0.001),
    )
    side.core.credential_store = MemoryCredentialStore()
    attacker = side.connect("10.9.9.9:1")
    replies = [
        (attacker.send(RegisterRequest("x", "pw")) or attacker.advance(0.001))[0]
        for _ in range(8)
    ]
    assert replies[:5] == [RegisterReply(RegisterStatus.NOT_A_PHONE_NUMBER)] * 5
    assert all(
        isinstance(reply, ErrorReply) and reply.code is ErrorCode.RATE_LIMITED
        for reply in replies[5:]
    )
    taken = side.connect("10.9.9.8:1").send(RegisterRequest("+61410888888", "pw"))
    assert taken == [RegisterReply(RegisterStatus.TAKEN)]
    for _ in range(4):
        assert side.connect("10.0.0.1:1").send(LoginRequest("+61410999999", "bada4568")) == [
            LoginReply(LoginStatus.OK)
        ]


def test_registrations_leave_a_share_of_the_hashing_budget_to_logins() -> None:
    hashed = passwords.hash_password("bada4568", n=2**10)
    side = ServerSide(
        {"+61410999999": hashed},
        limits=Limits(hashes_per_second=4, registrations_per_hour=100),
    )
    side.core.credential_store = MemoryCredentialStore()
    for index in range(6):
        side.connect(f"10.1.0.{index}:1").send(RegisterRequest(f"+6140000010{index}", "pw"))
    assert side.connect("10.0.0.1:1").send(LoginRequest("+61410999999", "bada4568")) == [
        LoginReply(LoginStatus.OK)
    ]


# -- item 4: REGISTERED means in the file the next start reads -----------------


def passwd(data_dir: Path, user: str, typed: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bluetrace.server.passwd", user, "--data-dir", str(data_dir),
         "--cost", "10"],
        input=typed, capture_output=True, text=True, check=False, timeout=60,
    )


def test_a_registration_after_bluetrace_passwd_survives_a_restart(tmp_path: Path) -> None:
    with running_server(tmp_path, "--allow-registration") as server:
        client = server.connect()
        assert client.call(RegisterRequest("+61400000002", "newpass2")) == RegisterReply(
            RegisterStatus.REGISTERED
        )
        changed = passwd(server.data_dir, "+61400000077", "pw77\npw77\n")
        assert changed.returncode == 0, changed.stderr
        client = server.connect()
        assert client.call(RegisterRequest("+61400000001", "newpass1")) == RegisterReply(
            RegisterStatus.REGISTERED
        )
    users = load_credentials(server.data_dir / "credentials.txt")
    assert "+61400000001" in users
    assert "+61400000002" in users
    assert "+61400000077" in users
    restarted = ServerProcess(server.data_dir, "60")
    try:
        client = restarted.connect()
        assert client.call(LoginRequest("+61400000001", "newpass1")) == LoginReply(
            LoginStatus.OK
        )
    finally:
        restarted.stop()


# -- item 9: a FIFO is refused at once -----------------------------------------


@pytest.mark.parametrize("name", ["credentials.txt", "tempIDs.txt"])
def test_a_fifo_in_place_of_a_data_file_is_refused_at_start_up(name: str, tmp_path: Path) -> None:
    data = tmp_path / "server"
    data.mkdir()
    (data / "credentials.txt").write_bytes((SAMPLES / "credentials.txt").read_bytes())
    (data / name).unlink(missing_ok=True)
    os.mkfifo(data / name)
    done = subprocess.run(
        [sys.executable, "-m", "bluetrace.server.main", "0", "60", "--data-dir", str(data),
         "--host", "127.0.0.1"],
        capture_output=True, text=True, check=False, timeout=WAIT, cwd=data,
    )
    assert done.returncode == 1
    assert name in done.stderr
    assert "not a regular file" in done.stderr


def test_a_fifo_in_place_of_credentials_on_sighup_is_refused(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        path = server.data_dir / "credentials.txt"
        path.unlink()
        os.mkfifo(path)
        server.proc.send_signal(signal.SIGHUP)
        server.stderr.wait_for("credentials not reloaded.*not a regular file")
        client = server.connect()
        assert client.call(LoginRequest("+61410888888", "comp3331")) == LoginReply(
            LoginStatus.OK
        )
        path.unlink()


# -- item 8: SIGHUP reloads -----------------------------------------------------


def test_a_reload_of_a_half_written_last_line_is_refused(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        path = server.data_dir / "credentials.txt"
        sample = path.read_bytes()
        head = sample[: sample.rindex(b"\n") + 1]
        # An in-place rewrite caught half-way through its last line.
        path.write_bytes(head + b"+61410999999 longpass")
        server.proc.send_signal(signal.SIGHUP)
        server.stderr.wait_for("credentials not reloaded.*line end")
        client = server.connect()
        assert client.call(LoginRequest("+61410999999", "longpass")) == LoginReply(
            LoginStatus.WRONG_PASSWORD
        )
        assert client.call(LoginRequest("+61410999999", "bada4568")) == LoginReply(
            LoginStatus.OK
        )
        # Finished with its line end, the same file loads.
        path.write_bytes(head + b"+61410999999 longpassword123\r\n")
        server.proc.send_signal(signal.SIGHUP)
        server.stderr.wait_for(r"credentials reloaded: 4 users")
        other = server.connect()
        assert other.call(LoginRequest("+61410999999", "longpassword123")) == LoginReply(
            LoginStatus.OK
        )


def test_the_sample_without_a_final_line_end_still_reloads_unchanged(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        server.proc.send_signal(signal.SIGHUP)
        server.stderr.wait_for("credentials (reloaded|unchanged|not reloaded)")
        assert "not reloaded" not in server.stderr.drain()


def test_a_reload_that_removes_users_says_so_loudly(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        (server.data_dir / "credentials.txt").write_bytes(b"+61410888888 comp3331\n")
        server.proc.send_signal(signal.SIGHUP)
        server.stderr.wait_for(r"warning: this reload removed 3 of 4 users")


def reloader_for(
    tmp_path: Path, text: bytes
) -> tuple[Reactor, CredentialReloader, ServerSide, list[str]]:
    path = tmp_path / "credentials.txt"
    path.write_bytes(text)
    side = ServerSide()
    reactor = Reactor()
    logged: list[str] = []
    return reactor, CredentialReloader(reactor, side.core, path, logged.append), side, logged


def run_until_idle(reactor: Reactor, reloader: CredentialReloader) -> int:
    """Loop turns until the reload (and any it asked for) is over; how many."""
    for turn in range(1, 10_000):
        reactor.run_once(max_wait=0)
        if not reloader.busy:
            reactor.run_once(max_wait=0)  # a reload asked for meanwhile starts here
            if not reloader.busy:
                return turn
    raise AssertionError("the reload did not end")


def test_sighups_during_a_reload_are_coalesced_into_one_more(tmp_path: Path) -> None:
    users = b"".join(b"+614%08d pw%d\n" % (index, index) for index in range(50_000))
    reactor, reloader, side, logged = reloader_for(tmp_path, users)
    for _ in range(200):
        reloader.request()
    turns = run_until_idle(reactor, reloader)
    assert reloader.reloads == 2  # the one begun, and one for everything that came during it
    assert turns > 2  # checked over several turns, not in one
    assert len(side.core.credentials) == 50_000
    assert any("credentials reloaded: 50,000 users" in line for line in logged)
    assert any("credentials unchanged" in line for line in logged)


def test_a_registration_during_a_reload_is_kept(tmp_path: Path) -> None:
    users = b"".join(b"+614%08d pw%d\n" % (index, index) for index in range(50_000))
    reactor, reloader, side, _ = reloader_for(tmp_path, users)
    side.core.credential_store = MemoryCredentialStore()
    reloader.request()
    reactor.run_once(max_wait=0)
    assert reloader.busy
    link = side.connect("10.3.3.3:1")
    assert link.send(RegisterRequest("+61499999999", "pw")) == [
        RegisterReply(RegisterStatus.REGISTERED)
    ]
    run_until_idle(reactor, reloader)
    assert "+61499999999" in side.core.credentials


# -- item 5: hashing off the loop --------------------------------------------------

DEAR = passwords.hash_password("dearpass", n=2**17, r=8)


def test_plain_users_are_served_while_a_dear_hash_is_checked(tmp_path: Path) -> None:
    """The check runs in a worker process: three round trips of a plain user
    finish while one dear check (about 0.3 s, 2^20 of work) is still going.
    With the check in the loop, the plain user waited for it."""
    data = tmp_path / "server"
    data.mkdir()
    (data / "credentials.txt").write_text(f"+61410888888 comp3331\n+61410999999 {DEAR}\n")
    with running_server(tmp_path) as server:
        hashed = server.connect()
        plain = server.connect()
        hashed.send(LoginRequest("+61410999999", "dearpass"))
        for _ in range(3):
            assert plain.call(LoginRequest("+61410888888", "comp3331")) == LoginReply(
                LoginStatus.OK
            )
            plain.close()
            plain = server.connect()
        hashed.sock.setblocking(False)
        try:
            early = hashed.sock.recv(65536)
        except BlockingIOError:
            early = b""
        hashed.sock.setblocking(True)
        assert early == b"", "the hashed login was answered before the plain ones"
        assert hashed.receive() == LoginReply(LoginStatus.OK)


def test_a_full_work_queue_is_answered_rate_limited(tmp_path: Path) -> None:
    data = tmp_path / "server"
    data.mkdir()
    (data / "credentials.txt").write_text(f"+61410999999 {DEAR}\n")
    with running_server(
        tmp_path, "--workers", "1", "--work-queue", "1", "--hashes-per-second", "100"
    ) as server:
        clients = [server.connect() for _ in range(3)]
        for client in clients:
            client.send(LoginRequest("+61410999999", "dearpass"))
        replies = [client.receive() for client in clients]
        assert replies.count(LoginReply(LoginStatus.OK)) == 2
        (refused,) = [reply for reply in replies if isinstance(reply, ErrorReply)]
        assert refused.code is ErrorCode.RATE_LIMITED
