"""Console + LineEditor through a real pseudo-terminal.

tests/console_demo.py runs on the slave side of a pty, as a phone runs in a
user's terminal; the test types on the master side, reads what the terminal
would show (replayed on the ``Screen`` model), and reads the slave's modes
with ``tcgetattr`` before, during and after the run.
"""

import io
import os
import select
import shutil
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pexpect import fdpexpect

from bluetrace.term.console import Console
from tests.helpers import Screen

DEMO = Path(__file__).with_name("console_demo.py")
WAIT = 5.0


class Terminal:
    """A pty with console_demo.py on its slave side."""

    def __init__(self, folder: Path, *, columns: int = 80, stop: str = "") -> None:
        self.columns = columns
        self.master, self.slave = os.openpty()
        termios.tcsetwinsize(self.slave, (24, columns))
        self.original = termios.tcgetattr(self.slave)
        self.fifo = folder / "arrivals"
        os.mkfifo(self.fifo)
        env = {**os.environ, "TERM": "xterm", "DEMO_STOP": stop}
        self.proc = subprocess.Popen(
            [sys.executable, str(DEMO), "--fifo", str(self.fifo), "--lifetime", "15"],
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            start_new_session=True,
            env=env,
        )
        self.log = io.BytesIO()
        self.child = fdpexpect.fdspawn(self.master, timeout=WAIT)
        self.child.logfile_read = self.log

    def expect(self, text: bytes) -> None:
        self.child.expect_exact(text)

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def arrival(self) -> None:
        fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, b"!")
        finally:
            os.close(fd)

    def mode(self) -> list[Any]:
        return termios.tcgetattr(self.slave)

    def login(self) -> None:
        self.expect(b"Username: ")
        self.send(b"alice\r")
        self.expect(b"got: alice")
        self.expect(b"Password: ")
        self.send(b"pw\r")
        self.expect(b"got: password of 2 characters")
        self.expect(b"> ")

    def wait(self) -> int:
        status = self.proc.wait(WAIT)
        # The program has exited: all it wrote is in the pty already.
        while select.select([self.master], [], [], 0)[0]:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                break
            if not data:
                break
            self.log.write(data)
        return status

    def screen(self) -> list[str]:
        screen = Screen(self.columns)
        screen.feed(self.log.getvalue())
        return screen.lines()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(WAIT)
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    term = Terminal(tmp_path)
    try:
        yield term
    finally:
        term.close()


def state(pid: int) -> str:
    """The process state letter from /proc (T: stopped)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0]


def wait_for(condition: object, what: str) -> None:
    assert callable(condition)
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def assert_raw(mode: list[Any]) -> None:
    lflag, oflag = mode[3], mode[1]
    assert not lflag & (termios.ICANON | termios.ECHO | termios.ISIG)
    assert oflag & termios.OPOST
    assert oflag & termios.ONLCR


def test_typed_text_is_redrawn_after_output_arrives(terminal: Terminal) -> None:
    terminal.login()
    assert_raw(terminal.mode())
    terminal.send(b"Upl")
    terminal.expect(b"Upl")
    terminal.arrival()
    terminal.expect(b"second line 1")
    terminal.expect(b"> Upl")
    terminal.send(b"oad\r")
    terminal.expect(b"got: Upload")
    terminal.expect(b"> ")
    terminal.send(b"quit\r")
    assert terminal.wait() == 0
    assert terminal.screen() == [
        "Username: alice",
        "got: alice",
        "Password:",
        "got: password of 2 characters",
        "async line 1",
        "second line 1",
        "> Upload",
        "got: Upload",
        "> quit",
    ]
    assert terminal.mode() == terminal.original


def test_password_is_not_echoed(terminal: Terminal) -> None:
    terminal.expect(b"Username: ")
    terminal.send(b"alice\r")
    terminal.expect(b"Password: ")
    start = terminal.log.tell()
    terminal.send(b"hunter2\r")
    terminal.expect(b"got: password of 7 characters")
    shown = terminal.log.getvalue()[start:]
    assert b"hunter" not in shown
    assert b"*" not in shown
    terminal.send(b"\x04")
    assert terminal.wait() == 0


@pytest.mark.parametrize(
    ("typed", "shown", "status"),
    [
        (b"quit\r", b"", 0),
        (b"Upl\x03", b"Upl^C\r\r\ninterrupted", 130),
        (b"\x04", b"end of input", 0),
        (b"boom\r", b"console_demo: boom", 1),
        (None, b"", 143),
    ],
    ids=["quit", "ctrl-c", "ctrl-d", "exception", "sigterm"],
)
def test_the_terminal_mode_is_restored_on_every_exit(
    terminal: Terminal, typed: bytes | None, shown: bytes, status: int
) -> None:
    terminal.login()
    assert_raw(terminal.mode())
    if typed is None:
        terminal.proc.send_signal(signal.SIGTERM)
    else:
        terminal.send(typed)
    if shown:
        terminal.expect(shown)
    assert terminal.wait() == status
    assert terminal.mode() == terminal.original


def test_ctrl_z_stops_with_the_terminal_restored_and_redraws_on_continue(
    tmp_path: Path,
) -> None:
    term = Terminal(tmp_path, stop="STOP")
    try:
        term.login()
        term.send(b"Upl")
        term.expect(b"Upl")
        term.send(b"\x1a")
        wait_for(lambda: state(term.proc.pid) == "T", "the demo to stop")
        assert term.mode() == term.original  # the shell gets its terminal back
        term.proc.send_signal(signal.SIGCONT)
        term.expect(b"> Upl")
        assert_raw(term.mode())
        term.send(b"oad\r")
        term.expect(b"got: Upload")
        term.send(b"quit\r")
        assert term.wait() == 0
        assert term.screen()[-3:] == ["> Upload", "got: Upload", "> quit"]
        assert term.mode() == term.original
    finally:
        term.close()


def test_a_stop_from_elsewhere_is_followed_by_raw_mode_and_a_redraw(terminal: Terminal) -> None:
    """kill -STOP, a shell resetting the terminal, then SIGCONT."""
    terminal.login()
    terminal.send(b"Upl")
    terminal.expect(b"Upl")
    terminal.proc.send_signal(signal.SIGSTOP)
    wait_for(lambda: state(terminal.proc.pid) == "T", "the demo to stop")
    termios.tcsetattr(terminal.slave, termios.TCSANOW, terminal.original)
    terminal.proc.send_signal(signal.SIGCONT)
    terminal.expect(b"> Upl")
    wait_for(lambda: not terminal.mode()[3] & termios.ICANON, "raw mode again")
    assert_raw(terminal.mode())
    terminal.send(b"oad\r")
    terminal.expect(b"got: Upload")
    terminal.send(b"quit\r")
    assert terminal.wait() == 0
    assert terminal.mode() == terminal.original


def test_ctrl_z_without_job_control_goes_on(terminal: Terminal) -> None:
    """In an orphaned process group the kernel discards SIGTSTP: no hang."""
    terminal.login()
    terminal.send(b"Upl\x1a")
    terminal.expect(b"> Upl")
    terminal.send(b"oad\r")
    terminal.expect(b"got: Upload")
    terminal.send(b"quit\r")
    assert terminal.wait() == 0
    assert terminal.mode() == terminal.original


def test_long_lines_wrap_at_the_terminal_width(tmp_path: Path) -> None:
    term = Terminal(tmp_path, columns=20)
    try:
        term.login()
        term.send(b"Beacon 127.0.0.1 80001234567")
        term.expect(b"4567")
        term.send(b"\x1b[D" * 12)
        term.arrival()
        term.expect(b"second line 1")
        term.send(b"X\r")
        term.expect(b"got: Beacon 127.0.0.1X 80001234567")
        term.send(b"quit\r")
        assert term.wait() == 0
        assert term.screen()[-7:] == [
            "async line 1",
            "second line 1",
            "> Beacon 127.0.0.1X",
            "80001234567",
            "got: Beacon 127.0.0.",
            "1X 80001234567",
            "> quit",
        ]
    finally:
        term.close()


def test_a_pipe_is_not_a_console() -> None:
    read, write = os.pipe()
    try:
        assert not Console.is_usable(read)
        master, slave = os.openpty()
        try:
            assert Console.is_usable(slave, slave, {"TERM": "xterm"})
            assert not Console.is_usable(slave, slave, {"TERM": "dumb"})
            assert not Console.is_usable(slave, read, {"TERM": "xterm"})
        finally:
            os.close(master)
            os.close(slave)
    finally:
        os.close(read)
        os.close(write)



def test_write_delivers_everything_the_terminal_takes() -> None:
    read, write = os.pipe()
    try:
        data = bytes(range(256)) * 100
        Console(read, write).write(data)
        assert os.read(read, len(data) + 1) == data
    finally:
        os.close(read)
        os.close(write)


def test_write_to_a_terminal_that_takes_nothing_gives_up_in_bounded_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("bluetrace.term.console.WRITE_TIMEOUT", 0.05)
    read, write = os.pipe()
    try:
        os.set_blocking(write, False)
        Console(read, write).write(b"x" * (4 << 20))  # far beyond a pipe's buffer
        taken = 0
        while select.select([read], [], [], 0)[0]:
            taken += len(os.read(read, 1 << 20))
        assert 0 < taken < 4 << 20
    finally:
        os.close(read)
        os.close(write)


class Tmux:
    """The demo in a real terminal emulator (tmux, on a private server)."""

    def __init__(self, folder: Path, columns: int, *, in_bash: bool = False) -> None:
        self.socket = str(folder / "tmux.sock")  # a private server, gone with the folder
        self.fifo = folder / "arrivals"
        os.mkfifo(self.fifo)
        self.demo = f"TERM=xterm {sys.executable} {DEMO} --fifo {self.fifo} --lifetime 15"
        command = f"{self.demo}; echo demo-exit=$?; sleep 15"
        if in_bash:
            command = "bash --norc --noprofile"
        self.tmux("new-session", "-d", "-x", str(columns), "-y", "20", command)

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=WAIT,
            check=True,
        )
        return done.stdout

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.tmux("send-keys", "-t", "0", *(["-l"] if literal else []), *keys)

    def lines(self, *, joined: bool = False) -> list[str]:
        """Screen rows, or with ``joined`` the lines as printed (wraps undone)."""
        flags = ["-J"] if joined else []
        shown = self.tmux("capture-pane", "-p", *flags, "-t", "0").rstrip("\n").split("\n")
        return [line.rstrip() for line in shown if line.strip()]

    def cursor(self) -> tuple[int, int]:
        x, y = self.tmux("display", "-p", "-t", "0", "#{cursor_y} #{cursor_x}").split()
        return int(x), int(y)

    def wait_for(self, last: list[str]) -> None:
        try:
            wait_for(lambda: self.lines()[-len(last) :] == last, f"the screen to end with {last}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the screen shows {self.lines()}") from None

    def close(self) -> None:
        subprocess.run(
            ["tmux", "-S", self.socket, "kill-server"],
            capture_output=True,
            timeout=WAIT,
            check=False,
        )


NO_TMUX = shutil.which("tmux") is None or shutil.which("bash") is None


@pytest.mark.skipif(NO_TMUX, reason="tmux is not installed")
def test_in_a_real_terminal_wrapping_output_and_resize(tmp_path: Path) -> None:
    term = Tmux(tmp_path, columns=20)
    try:
        term.wait_for(["Username:"])
        term.keys("alice", literal=True)
        term.keys("Enter")
        term.wait_for(["Password:"])
        term.keys("pw", literal=True)
        term.keys("Enter")
        term.wait_for([">"])
        term.keys("Beacon 127.0.0.1 8000123456", literal=True)
        term.keys(*["Left"] * 11)
        term.wait_for(["> Beacon 127.0.0.1 8", "000123456"])
        fd = os.open(term.fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.write(fd, b"!")
        os.close(fd)
        term.wait_for(["second line 1", "> Beacon 127.0.0.1 8", "000123456"])
        row = len(term.lines()) - 2
        wait_for(lambda: term.cursor() == (row, 18), "the cursor after 127.0.0.1")
        term.tmux("resize-window", "-t", "0", "-x", "12")
        term.wait_for(["> Beacon 127", ".0.0.1 80001", "23456"])
        term.keys("X", "Enter")
        term.wait_for([">"])
        assert term.lines(joined=True)[-2:] == ["got: Beacon 127.0.0.1X 8000123456", ">"]
        term.keys("quit", literal=True)
        term.keys("Enter")
        wait_for(lambda: "demo-exit=0" in term.lines()[-1], "the demo to exit")
    finally:
        term.close()


@pytest.mark.skipif(NO_TMUX, reason="tmux is not installed")
def test_ctrl_z_and_fg_under_a_real_shell_at_the_password_prompt(tmp_path: Path) -> None:
    """The newcomer's C1: after Ctrl-Z and fg the password stayed visible."""
    term = Tmux(tmp_path, columns=60, in_bash=True)
    try:
        term.keys("PS1='$ '; " + term.demo, literal=True)
        term.keys("Enter")
        term.wait_for(["Username:"])
        term.keys("alice", literal=True)
        term.keys("Enter")
        term.wait_for(["got: alice", "Password:"])
        term.keys("hun", literal=True)
        term.keys("C-z")
        wait_for(lambda: any("Stopped" in line for line in term.lines()), "the job to stop")
        term.wait_for(["$"])
        term.keys("fg", "Enter")
        term.wait_for(["Password:"])
        term.keys("ter2", literal=True)
        term.keys("Enter")
        term.wait_for(["got: password of 7 characters", ">"])
        term.keys("quit", "Enter")
        term.wait_for(["> quit", "$"])
        assert not any("hun" in line for line in term.lines())
    finally:
        term.close()
