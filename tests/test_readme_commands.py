"""Every command block of README.md, run as a newcomer pastes it.

The README promises that each indented block can be pasted as it stands from
the top of a fresh checkout. This test takes the blocks from the README
itself, so a new or changed command is covered without editing the test,
and runs them in order in a copy of the checkout (the files git knows, as
they are in the working tree, with the installed ``.venv`` linked in, so no
install runs). Only the ports are changed, to free ones. A program that
serves (``make run-server``) is started, seen to print ``listening on``, and
stopped at the end of its block; a phone (``make run-client``) is run in a
pseudo-terminal, seen to ask for the username and the password, and ended
with Ctrl-D. Every other command either ends with status 0 or, if it is a
long job (``make test``, ``make bench``), prints its first line without an
error and is stopped there. Every process is ended, by process group.
"""

import contextlib
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.harness import free_udp_port

pexpect = pytest.importorskip("pexpect")

ROOT = Path(__file__).resolve().parent.parent
FIRST_LINE_WAIT = 30.0
"""Seconds a command may take to print its first line (a cold import of the
simulator's libraries on a busy machine is the slowest)."""
EXIT_GRACE = 2.0
"""After its first line, how long a command may take to end before it is
treated as a long job and stopped."""
FAILURE_SIGNS = ("command not found", "No such file", "Traceback", "cannot read", "make: ***")


def command_blocks(text: str) -> list[list[str]]:
    """The indented (4-space) code blocks outside fenced blocks, each a list
    of commands with their trailing ``# comments`` removed."""
    blocks: list[list[str]] = []
    current: list[str] = []
    fenced = False
    previous_blank = True
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("    ") and (current or previous_blank):
            current.append(re.sub(r"\s+#\s.*$", "", line.strip()))
            continue
        if current:
            blocks.append(current)
            current = []
        previous_blank = not line.strip()
    if current:
        blocks.append(current)
    return blocks


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fresh_copy(destination: Path) -> Path:
    """The checkout as a newcomer would have it: every file git tracks or
    would track, copied with its times (so make sees the install as done)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in filter(None, listed):
        relative = raw.decode()
        source = ROOT / relative
        if not source.is_file():
            continue  # deleted in the working tree
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    (destination / ".venv").symlink_to(ROOT / ".venv")
    return destination


@dataclass
class Runner:
    checkout: Path
    env: dict[str, str]
    server_port: int = 0
    serving: list[subprocess.Popen[bytes]] = field(default_factory=list)
    transcript: list[str] = field(default_factory=list)

    def run(self, command: str) -> None:
        started = time.monotonic()
        self._run(command)
        print(f"{time.monotonic() - started:5.1f} s  {command}")  # shown with pytest -s

    def _run(self, command: str) -> None:
        if command.startswith("make run-server"):
            self.server_port = free_tcp_port()
            self._serve(f"{command} PORT={self.server_port}")
        elif command.startswith("make run-client"):
            assert self.server_port, f"{command!r} comes before any server in its block"
            udp = free_udp_port()
            command = re.sub(r"\bUDP=\d+", "", command)
            self._phone(f"{command} PORT={self.server_port} UDP={udp}")
        else:
            self._command(command)

    def _spawn(self, command: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            ["bash", "-c", command],
            cwd=self.checkout,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _serve(self, command: str) -> None:
        process = self._spawn(command)
        self.serving.append(process)
        seen = _read_until(process, re.compile(rb"listening on"), FIRST_LINE_WAIT)
        self.transcript.append(f"$ {command}\n{seen}")
        assert "listening on" in seen, f"{command!r} did not start serving:\n{seen}"

    def _phone(self, command: str) -> None:
        phone = pexpect.spawn(
            "bash", ["-c", command], cwd=str(self.checkout), env=self.env,
            encoding="utf-8", timeout=FIRST_LINE_WAIT,
        )  # fmt: skip
        try:
            phone.expect_exact("Username: ")
            phone.sendline("+61410999999")
            phone.expect_exact("Password: ")
            phone.sendeof()  # Ctrl-D at a login prompt: the phone ends, status 0
            phone.expect(pexpect.EOF)
            phone.close()
            shown = str(phone.before)
            self.transcript.append(f"$ {command}\n{shown}")
            assert phone.exitstatus == 0, f"{command!r} ended with {phone.exitstatus}:\n{shown}"
            assert "make: ***" not in shown
        finally:
            if phone.isalive():
                phone.terminate(force=True)

    def _command(self, command: str) -> None:
        process = self._spawn(command)
        try:
            seen = _read_until(process, re.compile(rb"\n"), FIRST_LINE_WAIT)
            deadline = time.monotonic() + EXIT_GRACE
            while process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            status = process.poll()
            self.transcript.append(f"$ {command}\n{seen}[status {status}]")
            if status is not None:
                seen += _drain(process)
                assert status == 0, f"{command!r} ended with status {status}:\n{seen}"
            else:
                assert seen.strip(), f"{command!r} printed nothing in {FIRST_LINE_WAIT:g} s"
            for sign in FAILURE_SIGNS:
                assert sign not in seen, f"{command!r}:\n{seen}"
        finally:
            _stop(process)

    def end_of_block(self) -> None:
        for process in self.serving:
            _stop(process)
        self.serving.clear()
        self.server_port = 0


def _read_until(process: subprocess.Popen[bytes], wanted: re.Pattern[bytes], wait: float) -> str:
    """Output until ``wanted`` has appeared, the process ends or ``wait`` passes."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    seen = b""
    deadline = time.monotonic() + wait
    while not wanted.search(seen) and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        seen += chunk
    return seen.decode("utf-8", "replace")


def _drain(process: subprocess.Popen[bytes]) -> str:
    return _read_until(process, re.compile(rb"(?!)"), 1.0)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """The command's whole process group: SIGINT as Ctrl-C would, then SIGKILL."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(process.pid, signal.SIGINT)
            process.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=5)
    if process.stdout is not None:
        process.stdout.close()


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    if not (ROOT / ".venv" / ".installed").exists():
        pytest.skip("needs the installed .venv (make install)")
    checkout = fresh_copy(tmp_path / "checkout")
    path = os.pathsep.join(
        part for part in os.environ.get("PATH", "").split(os.pathsep) if ".venv" not in part
    )
    env = {
        key: value for key, value in os.environ.items()
        if key not in ("VIRTUAL_ENV", "PYTHONPATH", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")
    }  # fmt: skip
    # A newcomer's shell: the venv not activated. pip may not fetch anything:
    # make fuzz falls back to its hypothesis targets, as the README says.
    env.update(PATH=path, PIP_NO_INDEX="1", PIP_CONFIG_FILE=os.devnull)
    running = Runner(checkout, env)
    try:
        yield running
    finally:
        running.end_of_block()


def test_the_readme_has_command_blocks() -> None:
    blocks = command_blocks((ROOT / "README.md").read_text())
    commands = [command for block in blocks for command in block]
    assert "make run-server" in commands
    assert "make test" in commands
    assert len(commands) > 15


def test_every_readme_command_works_as_pasted(runner: Runner) -> None:
    for block in command_blocks((ROOT / "README.md").read_text()):
        for command in block:
            runner.run(command)
        runner.end_of_block()
        left = [
            path.relative_to(runner.checkout)
            for path in runner.checkout.glob("*contactlog*")
        ] + [path.relative_to(runner.checkout) for path in runner.checkout.glob(".*contactlog*")]
        assert not left, f"{block} left {left} in the checkout"
