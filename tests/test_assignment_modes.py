"""The beacon and files modes on what submissions of the assignment really
do: beacons in a format of their own, listeners that die on a malformed
datagram, contact logs laid out as the assignment leaves open."""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bluetrace.conform.assignment.procs import free_port, udp_port_bound
from bluetrace.conform.assignment.submission import detect
from bluetrace.conform.cli import main
from bluetrace.conform.model import CaseSetupError

SAMPLES = Path(__file__).resolve().parent.parent / "bluetrace" / "samples"

LISTENER = '''
import json, socket, sys
from datetime import datetime
port, log, kind = int(sys.argv[1]), sys.argv[2], sys.argv[3]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", port))
while True:
    data, _ = sock.recvfrom(4096)
    if kind == "json":
        try:
            message = json.loads(data)
        except ValueError:
            continue
        tempid, start, expiry = message["id"], message["start"], message["expiry"]
    else:
        if len(data) != 59:
            raise SystemExit("a datagram that is not 59 bytes: the listener dies")
        text = data[:58].decode("ascii", "replace")
        tempid, start, expiry = text[:20], text[20:39], text[39:58]
    fmt = "%d/%m/%Y %H:%M:%S"
    try:
        first, last = datetime.strptime(start, fmt), datetime.strptime(expiry, fmt)
    except ValueError:
        continue
    if tempid.isdigit() and first <= datetime.now() <= last:
        with open(log, "a") as handle:
            handle.write(f"{tempid} {start} {expiry}\\n")
'''


def _listen(tmp_path: Path, kind: str) -> tuple["subprocess.Popen[bytes]", int, Path]:
    script = tmp_path / "listener.py"
    script.write_text(LISTENER)
    port, log = free_port(2), tmp_path / "+61410777777_contactlog.txt"
    process = subprocess.Popen([sys.executable, str(script), str(port), str(log), kind])
    end = time.monotonic() + 10
    while not udp_port_bound(port) and time.monotonic() < end:
        time.sleep(0.05)
    return process, port, log


def _beacon(tmp_path: Path, kind: str) -> tuple[int, dict[str, dict[str, str]]]:
    process, port, log = _listen(tmp_path, kind)
    report = tmp_path / "r.json"
    try:
        status = main(["beacon", f"127.0.0.1:{port}", "--log", str(log), "--json",
                       str(report), "--timeout", "1"])
    finally:
        process.kill()
        process.wait()
    return status, {r["case_id"]: r for r in json.loads(report.read_text())["results"]}


def test_another_beacon_format_is_one_verdict(tmp_path: Path) -> None:
    status, results = _beacon(tmp_path, "json")
    assert status == 1
    assert results["beacon/2/format"]["outcome"] == "FAIL"
    others = {k: r["outcome"] for k, r in results.items() if k != "beacon/2/format"}
    assert set(others.values()) == {"N/A"}, others


def test_a_listener_that_dies_is_said_loudly(tmp_path: Path) -> None:
    status, results = _beacon(tmp_path, "fragile")
    assert status == 1
    assert results["beacon/2/format"]["outcome"] == "PASS"
    died = [k for k, r in results.items() if "STOPPED RECEIVING" in r["actual"]]
    assert died == ["beacon/2/wrong-length"]
    order = list(results)
    later = order[order.index("beacon/2/wrong-length") + 1:]
    assert {results[k]["outcome"] for k in later} <= {"N/A", "SKIPPED"}


def test_a_dead_port_is_a_setup_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["beacon", f"127.0.0.1:{free_port(2)}", "--log", "x"]) == 2
    assert "nothing listens on UDP port" in capsys.readouterr().err


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("credentials.txt", "tempIDs.txt"):
        shutil.copy(SAMPLES / name, folder / name)
    return folder


def _files(folder: Path, tmp_path: Path) -> tuple[int, dict[str, dict[str, str]]]:
    report = tmp_path / "f.json"
    status = main(["files", str(folder), "--json", str(report)])
    return status, {r["case_id"]: r for r in json.loads(report.read_text())["results"]}


def test_open_contact_log_layouts_are_info(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "+61410777777-contactlog.txt").write_text(
        "12345678901234567891,13/05/2020 17:54:06,13/05/2020 18:09:05\n")
    (folder / "+61410888888_contactlog.txt").write_text(
        "12345678901234567890 13/05/2020 17:45:06 13/05/2020 18:00:05 1 2020-05-13T17:50:00\n")
    status, results = _files(folder, tmp_path)
    assert status == 0
    logs = results["files/5/contact-logs"]
    assert logs["outcome"] == "INFO"
    assert "-contactlog.txt" in logs["actual"]


def test_tempids_written_under_another_name(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "tempIDs.txt").rename(folder / "tempIds.txt")
    status, results = _files(folder, tmp_path)
    assert status == 1
    assert results["files/5/tempids"]["outcome"] == "FAIL"
    assert "tempIds.txt" in results["files/5/tempids"]["actual"]


def test_a_glued_line_is_reported_once(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    with (folder / "tempIDs.txt").open("ab") as handle:
        handle.write(b"+61410888888 00000000000000000001 14/05/2020 17:54:06 "
                     b"14/05/2020 18:09:05\n")
    status, results = _files(folder, tmp_path)
    assert status == 1
    failed = [k for k, r in results.items() if r["outcome"] == "FAIL"]
    assert failed == ["files/5/tempids"]
    assert results["files/4/checks-mapping"]["outcome"] == "SKIPPED"


@pytest.mark.parametrize(("files", "language", "where"), [
    (["server.py", "client.py"], "python", "."),
    (["a2/Server.java", "a2/Client.java"], "java", "a2"),
    (["src/c/server.c", "src/c/client.c", "src/c/Makefile"], "c", "src/c"),
])
def test_programs_are_found_by_the_names_the_assignment_fixes(
        tmp_path: Path, files: list[str], language: str, where: str) -> None:
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    found = detect(tmp_path, "s")
    assert (found.language, found.program_dir) == (language, where)
    assert "{port}" in found.server
    assert "{udp}" in found.client


def test_a_folder_without_programs_is_a_setup_error(tmp_path: Path) -> None:
    (tmp_path / "server.py").write_text("")
    with pytest.raises(CaseSetupError, match="--server-cmd"):
        detect(tmp_path, "s")
    found = detect(tmp_path, "s", "srv {port} {block}", "cli {host} {port} {udp}")
    assert found.server == ("srv", "{port}", "{block}")
