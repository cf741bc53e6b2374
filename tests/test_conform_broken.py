"""The kit must be seen to fail: each deliberately broken rule is caught by
the case that names it, and the unbroken implementations pass everything.

The implementations under test are in ``tests/broken/`` (built on
``bluetrace.protocol.messages`` only). Target settings are short (block 5 s, login
timeout 2 s, retention 1.5 s) so the whole file runs in well under 90 s.
"""

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bluetrace.conform.cli import main
from bluetrace.conform.launch import HeadlessPhone, Program, start_server
from bluetrace.conform.phone import free_udp_port
from tests.broken import phone as broken_phone
from tests.broken import server as broken_server

BROKEN = Path(__file__).resolve().parent / "broken"
SAMPLES = Path(__file__).resolve().parent.parent / "bluetrace" / "samples"
PHONE_USER, PHONE_PASSWORD = "+61410888888", "comp3331"
SPARE = "+61410999999"
BURST_USER = "+61410777777"
BLOCK, LOGIN_TIMEOUT, RETENTION = "5", "2", "1.5"
IDLE_TIMEOUT, STALL_TIMEOUT = "3", "1.5"


def _server(folder: Path, *extra: str, short_idle: bool = True) -> tuple[Program, int]:
    """A broken server (unbroken without --break); ``short_idle`` for server mode
    only, since a phone idle through the beacon cases must not be timed out."""
    folder.mkdir(parents=True, exist_ok=True)
    idle = ["--idle-timeout", IDLE_TIMEOUT, "--stall-timeout", STALL_TIMEOUT] if short_idle else []
    for name in ("credentials.txt", "tempIDs.txt"):
        shutil.copy(SAMPLES / name, folder / name)
    return start_server([sys.executable, str(BROKEN / "server.py"), "0", BLOCK,
                         "--data-dir", str(folder), "--login-timeout", LOGIN_TIMEOUT,
                         *idle, *extra],
                        folder)


def _kit(tmp_path: Path, *argv: str) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Run the kit in-process; the exit status and each case's outcome."""
    report = tmp_path / f"report-{len(list(tmp_path.glob('report-*')))}.json"
    status = main([*argv, "--json", str(report)])
    data = json.loads(report.read_text())
    return status, {r["case_id"]: r["outcome"] for r in data["results"]}, data


def _server_kit(tmp_path: Path, port: int, folder: Path, *argv: str) -> tuple[
        int, dict[str, str], dict[str, Any]]:
    return _kit(tmp_path, "server", f"127.0.0.1:{port}", "--credentials",
                str(folder / "credentials.txt"), "--spare-user", SPARE, "--second-address",
                "127.0.0.2", "--block-duration", BLOCK, "--login-timeout", LOGIN_TIMEOUT,
                "--data-dir", str(folder), "--burst-user", BURST_USER,
                "--idle-timeout", IDLE_TIMEOUT, "--stall-timeout", STALL_TIMEOUT, *argv)


def _phone_command(rule: str | None = None) -> str:
    extra = f" --break {rule}" if rule else ""
    return f"{sys.executable} {BROKEN / 'phone.py'} {{host}} {{port}} {{udp}}{extra}"


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """An unbroken server for the phones of beacon mode to log in to."""
    folder = tmp_path_factory.mktemp("shared-server")
    server, port = _server(folder, short_idle=False)
    yield port
    server.stop()


def test_unbroken_server_passes_every_case(tmp_path: Path) -> None:
    server, port = _server(tmp_path / "server")
    try:
        status, outcomes, _ = _server_kit(tmp_path, port, tmp_path / "server",
                                          "--server-pid", str(server.pid))
    finally:
        server.stop()
    failed = {case: outcome for case, outcome in outcomes.items()
              if outcome not in ("PASS", "INFO")}
    assert failed == {}
    assert status == 0
    assert outcomes["server/4/shutting-down"] == "PASS"


SERVER_BREAKS = [
    ("block-per-connection", "server/4/block-across-connections", ("server/4/block-across",)),
    ("block-per-address", "server/4/blocked-second-address",
     ("server/4/block-across", "server/4/blocked-second")),
    ("window-short", "server/3.3/tempid-window", ("server/3.3/tempid-window",)),
    ("tempid-late-record", "server/3.3/tempid-durable", ("server/3.3/tempid-durable",)),
    ("cap-after-body", "server/3/oversized-before-login", ("server/3/oversized-before",)),
    ("upload-limit-recorded", "server/4/upload-limit", ("server/4/upload-limit",)),
    ("reply-type-malformed", "server/3/reply-types", ("server/3/reply-types",)),
    ("close-at-once", "server/3.5/logout", ("server/3.5/logout",)),
    ("state-before-body", "server/4/order-malformed-before-login", ("server/4/order-",)),
]
"""(rule, the case that must catch it, the case prefixes to run)."""


@pytest.mark.parametrize(("rule", "case", "prefixes"), SERVER_BREAKS)
def test_broken_server_is_caught(
    tmp_path: Path, rule: str, case: str, prefixes: tuple[str, ...]
) -> None:
    server, port = _server(tmp_path / "server", "--break", rule)
    selection = [arg for prefix in prefixes for arg in ("--case", prefix)]
    try:
        status, outcomes, _ = _server_kit(tmp_path, port, tmp_path / "server", *selection)
    finally:
        server.stop()
    assert outcomes[case] == "FAIL"
    assert status == 1


def test_unbroken_phone_passes_client_mode(tmp_path: Path) -> None:
    status, outcomes, _ = _kit(tmp_path, "client", "--exec", _phone_command())
    assert {case: o for case, o in outcomes.items() if o != "PASS"} == {}
    assert status == 0


CLIENT_BREAKS = [
    ("empty-upload-nothing", "client/3.4/upload-empty"),
    ("unknown-status-ignored", "client/3.2/unknown-status"),
    ("no-close-on-logout", "client/3.5/logout"),
]


@pytest.mark.parametrize(("rule", "case"), CLIENT_BREAKS)
def test_broken_phone_is_caught_in_client_mode(tmp_path: Path, rule: str, case: str) -> None:
    status, outcomes, data = _kit(tmp_path, "client", "--exec", _phone_command(rule),
                                  "--case", case)
    assert outcomes == {case: "FAIL"}
    assert status == 1
    assert "wire" in data["results"][0]
    assert data["results"][0]["wire"]


def _beacon_run(tmp_path: Path, port: int, rule: str | None, *argv: str) -> tuple[
        int, dict[str, str], dict[str, Any]]:
    udp = free_udp_port()
    command = _phone_command(rule).format(host="127.0.0.1", port=port, udp=udp).split()
    phone = HeadlessPhone([*command, "--log-retention", RETENTION], tmp_path / "phone",
                          PHONE_USER, PHONE_PASSWORD)
    try:
        return _kit(tmp_path, "beacon", f"127.0.0.1:{udp}", "--log",
                    str(tmp_path / "phone" / f"{PHONE_USER}_contactlog.txt"),
                    "--retention", RETENTION, *argv)
    finally:
        phone.log_out()


def test_unbroken_phone_passes_beacon_mode(tmp_path: Path, shared_server: int) -> None:
    status, outcomes, _ = _beacon_run(tmp_path, shared_server, None)
    assert {case: o for case, o in outcomes.items() if o != "PASS"} == {}
    assert status == 0


BEACON_BREAKS = [
    ("expired-stored", "beacon/2/expired"),
    ("never-removed", "beacon/2/retention"),
    ("version-31-refused", "beacon/2/version-31"),
    ("exclusive-bounds", "beacon/2/inclusive-bounds"),
]


@pytest.mark.parametrize(("rule", "case"), BEACON_BREAKS)
def test_broken_phone_is_caught_in_beacon_mode(
    tmp_path: Path, shared_server: int, rule: str, case: str
) -> None:
    status, outcomes, _ = _beacon_run(tmp_path, shared_server, rule, "--case", case)
    assert outcomes == {case: "FAIL"}
    assert status == 1


def test_every_break_rule_is_tested() -> None:
    """A rule added to a broken implementation without a test here is caught."""
    tested = {rule for rule, *_ in SERVER_BREAKS} | {rule for rule, _ in CLIENT_BREAKS} | {
        rule for rule, _ in BEACON_BREAKS}
    assert tested == set(broken_server.BREAKS) | set(broken_phone.BREAKS)
    assert len(tested) >= 10
