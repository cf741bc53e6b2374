"""Registration (protocol_spec.md 3.8): the server's rules, the phone's flow, end to end."""

import subprocess
import sys
from pathlib import Path

from bluetrace.protocol.messages import (
    ErrorReply,
    LoginReply,
    LoginRequest,
    RegisterReply,
    RegisterRequest,
    encode,
)
from bluetrace.protocol.wire import ErrorCode, LoginStatus, RegisterStatus
from bluetrace.server import passwords
from bluetrace.server.core import Limits
from bluetrace.server.records import load_credentials
from bluetrace.server.stores import MemoryCredentialStore
from bluetrace.testing import ServerSide
from tests.harness import running_server
from tests.helpers import Rig

NEW = "+61400000001"


def open_side(**limits: object) -> tuple[ServerSide, MemoryCredentialStore]:
    side = ServerSide(limits=Limits(**limits))  # type: ignore[arg-type]
    store = MemoryCredentialStore()
    side.core.credential_store = store
    return side, store


def test_registration_is_closed_unless_enabled() -> None:
    link = ServerSide().connect()
    assert link.send(RegisterRequest(NEW, "newpass1")) == [RegisterReply(RegisterStatus.CLOSED)]


def test_a_registered_number_logs_in_on_the_same_connection_with_a_hashed_line() -> None:
    side, store = open_side()
    side.auto_commit = False
    link = side.connect()
    assert link.send(RegisterRequest(NEW, "newpass1")) == []  # held until durable
    assert link.commit() == [RegisterReply(RegisterStatus.REGISTERED)]
    (line,) = store.lines
    username, stored = line.split(" ")
    assert username == NEW
    assert passwords.verify(stored, "newpass1")
    assert "newpass1" not in line
    assert link.send(LoginRequest(NEW, "newpass1")) == [LoginReply(LoginStatus.OK)]
    assert link.send(RegisterRequest("+61400000002", "x")) == [
        ErrorReply(ErrorCode.ALREADY_LOGGED_IN, "already logged in")
    ]


def test_taken_and_not_a_phone_number() -> None:
    side, _ = open_side()
    link = side.connect()
    assert link.send(RegisterRequest("+61410888888", "x")) == [
        RegisterReply(RegisterStatus.TAKEN)
    ]
    for bad in ("61400000001", "+0400000001", "+12345", "alice"):
        assert link.send(RegisterRequest(bad, "x")) == [
            RegisterReply(RegisterStatus.NOT_A_PHONE_NUMBER)
        ]


def test_two_connections_racing_for_one_number_one_wins() -> None:
    side, store = open_side()
    first, second = side.connect("10.0.0.1:1"), side.connect("10.0.0.2:1")
    # Both arrive before either is answered: the loop decides them in turn.
    first.connection.receive_data(encode(RegisterRequest(NEW, "pw-one")), 0.0)
    second.connection.receive_data(encode(RegisterRequest(NEW, "pw-two")), 0.0)
    replies = first.pump() + second.pump()
    assert sorted(reply.status for reply in replies) == [  # type: ignore[union-attr]
        RegisterStatus.REGISTERED,
        RegisterStatus.TAKEN,
    ]
    assert len(store.lines) == 1


def test_registrations_per_address_are_limited() -> None:
    side, store = open_side(registrations_per_hour=2, hashes_per_second=100)
    link = side.connect("10.0.0.9:5")
    for i in range(2):
        reply = link.send(RegisterRequest(f"+6140000001{i}", "pw"))
        assert reply == [RegisterReply(RegisterStatus.REGISTERED)]
    assert link.send(RegisterRequest("+61400000019", "pw")) == []
    (refused,) = link.advance(side.core.limits.refusal_delay)
    assert isinstance(refused, ErrorReply)
    assert refused.code is ErrorCode.RATE_LIMITED
    assert len(store.lines) == 2
    other = side.connect("10.0.0.10:5")
    reply = other.send(RegisterRequest("+61400000019", "pw"))
    assert reply == [RegisterReply(RegisterStatus.REGISTERED)]


def test_a_storage_failure_registers_nobody() -> None:
    side, store = open_side()
    store.fail_append = True
    (reply,) = side.connect().send(RegisterRequest(NEW, "pw"))
    assert isinstance(reply, ErrorReply)
    assert reply.code is ErrorCode.STORAGE
    assert NEW not in side.core.credentials


def test_the_phone_registers_at_the_username_prompt_then_logs_in() -> None:
    rig = Rig()
    rig.pair.side.core.credential_store = MemoryCredentialStore()
    shown = rig.type("register", NEW, "newpass1", "newpass1")
    assert shown == [f"Registered {NEW}: log in with it now."]
    assert rig.type(NEW, "newpass1") == ["Welcome to the BlueTrace Simulator!"]
    rig.type("Download_tempID")
    assert rig.pair.phone.tempid is not None


def test_the_phone_says_when_registration_is_closed_or_the_passwords_differ() -> None:
    rig = Rig()
    assert rig.type("register", NEW, "one", "two") == [
        "The passwords differ; nothing was registered."
    ]
    assert rig.type("register", NEW, "pw", "pw") == ["This server does not take registrations."]


def test_end_to_end_with_a_real_server(tmp_path: Path) -> None:
    with running_server(tmp_path, "--allow-registration") as server:
        result = subprocess.run(
            [sys.executable, "-m", "bluetrace.phone.main", "127.0.0.1", str(server.port), "8997"],
            input=f"register\n{NEW}\nnewpass1\nnewpass1\n{NEW}\nnewpass1\nlogout\n",
            capture_output=True, text=True, timeout=30, check=False, cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"Registered {NEW}: log in with it now." in result.stdout
        assert "Welcome to the BlueTrace Simulator!" in result.stdout
        users = load_credentials(server.data_dir / "credentials.txt")
        assert passwords.verify(users[NEW], "newpass1")
