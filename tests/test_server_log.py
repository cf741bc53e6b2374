"""The server's log stream (stderr): every line stamped with the local time
to the millisecond and its offset; the events of a user's session in one
shape; standard output left exactly as the specification writes it."""

import os
import re
import shutil
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from bluetrace.protocol.messages import (
    LoginReply,
    LoginRequest,
    LogoutReply,
    LogoutRequest,
    RegisterReply,
    RegisterRequest,
)
from bluetrace.protocol.wire import LoginStatus, RegisterStatus
from bluetrace.server.logstream import LogStamp, log_line
from tests.harness import SAMPLES, WAIT, ServerProcess, running_server, wait_until

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d(?::\d\d)?"
LINE = re.compile(rf"{STAMP} bluetrace-server: \S")
PEER = r"127\.0\.0\.1:\d+"


@pytest.fixture
def zone(request: pytest.FixtureRequest) -> Iterator[str]:
    """The process's local time zone set to ``request.param`` for the test."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    try:
        yield request.param
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


@pytest.mark.parametrize("zone", ["UTC", "Australia/Sydney", "America/St_Johns"], indirect=True)
def test_the_stamp_is_iso_8601_local_time_with_milliseconds_and_offset(zone: str) -> None:
    moments = [
        1_796_491_201.123,  # 2026-12-05T17:20:01.123Z
        1_796_491_201.1234,  # the same millisecond: the cached stamp
        1_796_491_201.9995,  # rounds up into the next second
        1_796_491_202.0,
        1_775_318_399.999,  # 2026-04-04T15:59:59.999Z: Sydney leaves daylight saving
        1_775_318_400.0,
    ]
    readings = iter(moments)
    stamp = LogStamp(lambda: next(readings))
    for moment in moments:
        expected = datetime.fromtimestamp(moment).astimezone().isoformat(timespec="milliseconds")
        assert stamp() == expected
    sydney = LogStamp(lambda: 1_775_318_399.999)()
    if zone == "Australia/Sydney":
        assert sydney == "2026-04-05T02:59:59.999+11:00"
        assert LogStamp(lambda: 1_775_318_400.0)() == "2026-04-05T02:00:00.000+10:00"
    elif zone == "UTC":
        assert sydney == "2026-04-04T15:59:59.999+00:00"
    else:
        assert sydney.endswith("-02:30")  # Newfoundland: a half-hour offset


def test_a_log_line_is_the_stamp_then_the_program() -> None:
    line = log_line("listening on 127.0.0.1:1", lambda: "2026-12-05T17:20:01.123+00:00")
    assert line == "2026-12-05T17:20:01.123+00:00 bluetrace-server: listening on 127.0.0.1:1"


def stderr_lines(server: ServerProcess) -> list[str]:
    return server.stderr.drain().splitlines()


def test_every_log_line_is_stamped_and_session_events_have_one_shape(tmp_path: Path) -> None:
    data_dir = tmp_path / "server"
    data_dir.mkdir()
    shutil.copy(SAMPLES / "credentials.txt", data_dir / "credentials.txt")
    (data_dir / "tempIDs.txt").write_text("not a tempID line\n")  # a line skipped at start-up
    with running_server(tmp_path, "--allow-registration", "--idle-timeout", "3") as server:
        user, password = "+61410888888", "comp3331"
        client = server.connect()
        assert client.call(LoginRequest(user, password)) == LoginReply(LoginStatus.OK)
        assert client.call(LogoutRequest()) == LogoutReply()
        assert wait_until(lambda: "logout user=" in server.stderr.drain(), WAIT)
        client = server.connect()
        assert client.call(LoginRequest(user, "wrong")) == LoginReply(LoginStatus.WRONG_PASSWORD)
        client = server.connect()
        assert client.call(RegisterRequest("+61400000005", "newpass5")) == RegisterReply(
            RegisterStatus.REGISTERED
        )
        idle = server.connect()
        assert idle.call(LoginRequest("+61400000005", "newpass5")) == LoginReply(LoginStatus.OK)
        assert idle.closed_by_peer()
        server.stderr.wait_for("idle-close user=")
        stdout = server.stdout.drain()
    lines = stderr_lines(server)
    assert lines, "the server logged nothing"
    for line in lines:
        assert LINE.match(line), f"not a stamped log line: {line!r}"
    text = "\n".join(lines)
    assert re.search(rf"{STAMP} bluetrace-server: skipped ", text)  # start-up lines too
    for event, name in [
        ("login", user),
        ("logout", user),
        ("register", "+61400000005"),
        ("login", "+61400000005"),
        ("idle-close", "+61400000005"),
    ]:
        shape = rf"^{STAMP} bluetrace-server: {event} user={re.escape(name)} peer={PEER}( |$)"
        assert re.search(shape, text, re.MULTILINE), f"no {event} line for {name}:\n{text}"
    failed = rf"^{STAMP} bluetrace-server: login-failed user={re.escape(user)} peer={PEER} "
    assert re.search(failed, text, re.MULTILINE), text
    assert re.search(r"idle-close user=\S+ peer=\S+ idle=\d+s$", text, re.MULTILINE), text
    # Standard output is the specification's, untouched: no stamps, no program name.
    assert f"{user} logout\n" in stdout
    assert "bluetrace-server" not in stdout
    assert not re.search(STAMP, stdout)
