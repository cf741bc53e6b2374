"""``bluetrace-passwd`` as a user meets it: which names it takes, which file
it writes and says it wrote, what a missing folder or a wrong process number
gets, and how a running server is told to read the change."""

import shutil
import subprocess
import sys
from pathlib import Path

from bluetrace.bench.processes import child_env
from bluetrace.protocol.messages import LoginReply, LoginRequest
from bluetrace.protocol.wire import LoginStatus
from bluetrace.runtime.processes import stop_process
from bluetrace.server.records import load_credentials
from tests.harness import SAMPLES, WAIT, running_server

NEW_USER = "+61400000001"
RELOAD_HINT = "a running server reads it after: kill -USR1 <its pid> (or pass --reload PID)"


def passwd(
    *args: str, cwd: Path, typed: str = "newpass1\nnewpass1\n"
) -> subprocess.CompletedProcess[str]:
    """The program run from ``cwd``, as a user in that folder would run it."""
    return subprocess.run(
        [sys.executable, "-m", "bluetrace.server.passwd", *args, "--cost", "10"],
        input=typed, capture_output=True, text=True, check=False, timeout=60,
        cwd=cwd, env=child_env(),
    )  # fmt: skip


def test_a_number_registration_refuses_is_refused_naming_the_rule(tmp_path: Path) -> None:
    shutil.copy(SAMPLES / "credentials.txt", tmp_path / "credentials.txt")
    before = (tmp_path / "credentials.txt").read_bytes()
    for name in ("0412", "0412345678", "+0412345678", "+61 400", "+123456"):
        result = passwd(name, "--data-dir", str(tmp_path), cwd=tmp_path)
        assert result.returncode == 2, (name, result.stderr)
        assert result.stdout == ""
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(f"bluetrace-passwd: not a phone number: {name} ")
        assert "+ then 7 to 15 digits, the first not 0" in result.stderr
    assert (tmp_path / "credentials.txt").read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["credentials.txt"]


def test_without_data_dir_it_uses_the_working_folder_like_the_server(tmp_path: Path) -> None:
    """The server's own default folder is its working directory; so is this
    program's, and it names the file it wrote by its absolute path."""
    shutil.copy(SAMPLES / "credentials.txt", tmp_path / "credentials.txt")
    result = passwd(NEW_USER, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    path = (tmp_path / "credentials.txt").resolve()
    assert result.stdout == f"added {NEW_USER} to {path} (hashed)\n"
    assert NEW_USER in load_credentials(path)
    again = passwd(NEW_USER, cwd=tmp_path, typed="other22\nother22\n")
    assert again.stdout == f"changed {NEW_USER} in {path} (hashed)\n"


def test_without_data_dir_it_creates_no_file_in_a_folder_that_has_none(tmp_path: Path) -> None:
    """Run from the project folder, it must not leave a stray credentials.txt
    there: it says where the server's file is and changes nothing."""
    served = tmp_path / ".bluetrace" / "server"
    served.mkdir(parents=True)
    shutil.copy(SAMPLES / "credentials.txt", served / "credentials.txt")
    result = passwd(NEW_USER, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"no credentials.txt in {tmp_path.resolve()}" in result.stderr
    assert "--data-dir .bluetrace/server" in result.stderr  # where make run-server keeps it
    assert sorted(path.name for path in tmp_path.iterdir()) == [".bluetrace"]
    assert NEW_USER not in load_credentials(served / "credentials.txt")


def test_a_data_dir_given_may_start_a_new_file(tmp_path: Path) -> None:
    result = passwd(NEW_USER, "--data-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    path = tmp_path.resolve() / "credentials.txt"
    assert result.stdout == f"added {NEW_USER} to {path} (hashed)\n"
    assert list(load_credentials(tmp_path / "credentials.txt")) == [NEW_USER]


def test_a_missing_folder_is_named_as_the_user_gave_it(tmp_path: Path) -> None:
    result = passwd(NEW_USER, "--data-dir", "no/such/place", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == (
        "bluetrace-passwd: no such folder: no/such/place (create it, or pass --data-dir "
        "naming the server's folder); nothing changed\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_bad_line_already_in_the_file_is_named_in_the_file_itself(tmp_path: Path) -> None:
    """The new file is checked before it replaces the old one; what is wrong
    is reported at its line in credentials.txt, not in a temporary file."""
    path = tmp_path / "credentials.txt"
    path.write_bytes(b"+61410888888 comp3331\nbroken\n")
    result = passwd(NEW_USER, "--data-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"bluetrace-passwd: {path}:2: no password after the username")
    assert result.stderr.endswith("; nothing changed\n")
    assert path.read_bytes() == b"+61410888888 comp3331\nbroken\n"
    assert [entry.name for entry in tmp_path.iterdir()] == ["credentials.txt"]


def test_without_reload_it_reminds_that_a_running_server_must_be_told(tmp_path: Path) -> None:
    result = passwd(NEW_USER, "--data-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"bluetrace-passwd: {RELOAD_HINT}\n"


def test_reload_makes_the_running_server_take_the_new_user_at_once(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        result = passwd(
            NEW_USER, "--data-dir", str(server.data_dir), "--reload", str(server.pid),
            cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        assert f"asked the server (pid {server.pid}) to reload it" in result.stdout
        server.stderr.wait_for(r"credentials reloaded: 5 users \(1 added, 0 removed\)")
        reply = server.connect().call(LoginRequest(NEW_USER, "newpass1"))
        assert reply == LoginReply(LoginStatus.OK)


def test_reload_of_no_running_process_is_refused_before_anything_changes(
    tmp_path: Path,
) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True, timeout=WAIT)  # fmt: skip
    pid = gone.stdout.strip()
    result = passwd(NEW_USER, "--data-dir", str(tmp_path), "--reload", pid, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == (
        f"bluetrace-passwd: --reload {pid}: no running process has that number; nothing changed\n"
    )
    assert list(tmp_path.iterdir()) == []
    for bad in ("0", "-5", "abc"):
        usage = passwd(NEW_USER, "--data-dir", str(tmp_path), "--reload", bad, cwd=tmp_path)
        assert usage.returncode == 2
        assert "--reload" in usage.stderr
        assert "Traceback" not in usage.stderr


def test_reload_never_signals_a_process_that_is_not_a_server(tmp_path: Path) -> None:
    """SIGUSR1 ends most programs: a mistyped number must not kill one."""
    other = subprocess.Popen(
        [sys.executable, "-c", "import signal; signal.pause()"], stdin=subprocess.DEVNULL
    )
    try:
        result = passwd(
            NEW_USER, "--data-dir", str(tmp_path), "--reload", str(other.pid), cwd=tmp_path
        )
        assert result.returncode == 1
        assert result.stderr.startswith(
            f"bluetrace-passwd: --reload {other.pid}: that process is not a bluetrace-server"
        )
        assert result.stderr.count("\n") == 1, result.stderr
        assert other.poll() is None  # not signalled: still running
        assert list(tmp_path.iterdir()) == []
    finally:
        stop_process(other, group=False, grace=WAIT)


def test_help_names_the_default_folder_and_the_reload(tmp_path: Path) -> None:
    result = passwd("--help", cwd=tmp_path)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "--reload PID" in text
    assert "SIGUSR1" in text
    assert "default: the working directory, as for bluetrace-server" in text
    assert "SIGHUP" not in text  # USR1 reloads whatever --reload-signal the server was given
