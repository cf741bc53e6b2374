"""The kit against a hostile target (issue 20, item 12): a flood of output,
children that leave for sessions of their own, and control characters in
data files. Each is run on the real ``bluetrace-conform`` process."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from bluetrace.conform.terminal import MAX_PENDING, PtyProgram
from bluetrace.conform.wirelog import HEAD_EVENTS, TAIL_EVENTS, WireLog
from tests.harness import wait_until

SAMPLES = Path(__file__).resolve().parent.parent / "bluetrace" / "samples"
ROOT = Path(__file__).resolve().parent.parent
KIT = [sys.executable, "-m", "bluetrace.conform"]
KIT_WAIT = 60.0


def _state(pid: int) -> str | None:
    """The process's state letter, or None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return raw[raw.rfind(b")") + 2 :].split()[0].decode()


def _ended(pid: int) -> bool:
    return _state(pid) in (None, "Z")


def _kill_if_left(pid: int) -> None:
    """A test ends what it started, even when the kit did not."""
    if not _ended(pid):
        os.kill(pid, signal.SIGKILL)


def _target(tmp_path: Path, body: str) -> str:
    script = tmp_path / "target.py"
    script.write_text(textwrap.dedent(body))
    return f"{sys.executable} {script}"


_ESCAPER = """\
    import subprocess, sys, time
    # A child that leaves for a session of its own, and whose parent exits
    # at once: it is in no group of the phone's and no descendant of it.
    code = (
        "import os, subprocess, sys; "
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], "
        "start_new_session=True); "
        "f = os.environ['PIDFILE']; open(f + '.new', 'w').write(str(p.pid)); "
        "os.replace(f + '.new', f)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    print("Username: ", end="", flush=True)
    time.sleep(60)
"""


def _escaper(tmp_path: Path) -> tuple[str, dict[str, str], Path]:
    pidfile = tmp_path / "escaped.pid"
    env = {**os.environ, "PIDFILE": str(pidfile), "PYTHONPATH": str(ROOT)}
    return _target(tmp_path, _ESCAPER), env, pidfile


def _escaped_pid(pidfile: Path) -> int:
    try:
        return int(pidfile.read_text())
    except (OSError, ValueError):
        return 0


def test_a_child_in_a_session_of_its_own_is_ended_with_the_case(tmp_path: Path) -> None:
    command, env, pidfile = _escaper(tmp_path)
    kit = subprocess.Popen(
        [*KIT, "client", "--exec", command, "--case", "client/3.2/login-ok", "--timeout", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    escaped = 0
    try:
        assert wait_until(lambda: _escaped_pid(pidfile) != 0, timeout=20)
        escaped = _escaped_pid(pidfile)
        assert kit.wait(KIT_WAIT) == 1  # the case fails: the target never logs in
        assert wait_until(lambda: _ended(escaped), timeout=5), _state(escaped)
    finally:
        if kit.poll() is None:
            kit.kill()
            kit.wait()
        if escaped:
            _kill_if_left(escaped)


def test_ctrl_c_ends_the_target_and_all_it_started(tmp_path: Path) -> None:
    command, env, pidfile = _escaper(tmp_path)
    kit = subprocess.Popen(
        [*KIT, "client", "--exec", command, "--case", "client/3.2/login-ok", "--timeout", "30"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    escaped = 0
    try:
        assert wait_until(lambda: _escaped_pid(pidfile) != 0, timeout=20)
        escaped = _escaped_pid(pidfile)
        kit.send_signal(signal.SIGINT)
        assert kit.wait(KIT_WAIT) == 130
        assert wait_until(lambda: _ended(escaped), timeout=5), _state(escaped)
    finally:
        if kit.poll() is None:
            kit.kill()
            kit.wait()
        if escaped:
            _kill_if_left(escaped)


_FLOOD = """\
    import sys
    block = (("x" * 199 + "\\n") * 300).encode()
    while True:
        sys.stdout.buffer.write(block)
"""


def test_a_flooding_target_leaves_a_bounded_report(tmp_path: Path) -> None:
    """Before: every byte printed was kept three times and shown in the
    report (7.8 MB of HTML for this one case; 1.34 GB of memory over a run)."""
    html = tmp_path / "report.html"
    result = subprocess.run(
        [*KIT, "client", "--exec", _target(tmp_path, _FLOOD), "--case",
         "client/3.2/login-ok", "--html", str(html)],
        capture_output=True, text=True, timeout=KIT_WAIT, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 1
    assert "events (" in result.stdout
    assert f"a case keeps its first {HEAD_EVENTS} and last {TAIL_EVENTS} events" in result.stdout
    assert len(result.stdout) < 2_000_000
    assert html.stat().st_size < 2_000_000


def test_the_wire_log_keeps_its_head_and_tail_and_counts_the_rest() -> None:
    log = WireLog()
    for number in range(10_000):
        log.received("tcp", number.to_bytes(4, "big") * 16_384)
    log.note("terminal", "y" * 100_000)
    shown = log.render()
    assert len(shown) < (HEAD_EVENTS + TAIL_EVENTS) * 2_000
    assert "00 00 00 00" in shown  # the first event
    assert "00 00 27 0f" in shown  # the last one
    cut = 10_001 - HEAD_EVENTS - TAIL_EVENTS
    assert f"... {cut:,} events ({cut * 65_536:,} bytes) not kept" in shown
    assert "98,000 more characters not kept" in shown


def test_a_terminal_keeps_only_the_latest_text(tmp_path: Path) -> None:
    program = PtyProgram(_target(tmp_path, _FLOOD).split(), tmp_path)
    try:
        end = time.monotonic() + 20
        while program.discarded == 0 and time.monotonic() < end:
            program.read_available(0.5)
        assert program.discarded > 0
        assert len(program.pending) <= MAX_PENDING
    finally:
        program.close()
    assert program.process.returncode is not None


def test_control_characters_from_a_data_file_are_shown_escaped(tmp_path: Path) -> None:
    """A tempIDs.txt username carrying ESC sequences reached the operator's
    terminal raw through the files mode's report."""
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "credentials.txt").write_bytes((SAMPLES / "credentials.txt").read_bytes())
    tempid = "12345678901234567893"
    (folder / "tempIDs.txt").write_bytes(
        f"+61\x1b]0;owned\x07\x1b[2J {tempid} 14/05/2020 17:54:06 14/05/2020 18:09:05\n".encode()
    )
    (folder / "contact_checks.txt").write_bytes(
        f"14/05/2020 18:00:01 +61410888888 {tempid} 14/05/2020 17:54:06 "
        "14/05/2020 18:09:05 +61410999999\n".encode()
    )
    xml = tmp_path / "report.xml"
    result = subprocess.run(
        [*KIT, "files", str(folder), "--verbose", "--junit", str(xml)],
        capture_output=True, text=True, timeout=KIT_WAIT, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 1
    assert "\\x1b]0;owned\\x07\\x1b[2J" in result.stdout
    assert not any(ord(c) < 0x20 and c != "\n" for c in result.stdout)
    assert "\x1b" not in xml.read_text()
