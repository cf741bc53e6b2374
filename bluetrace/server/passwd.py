"""``bluetrace-passwd USER``: add a user to credentials.txt, or change their
password, stored as a salted scrypt hash.

The password is read without echo on a terminal (twice, to catch a typo), or
as two lines from a pipe. The file is rewritten atomically (a temporary
file, then a rename), keeping every other line, its comments and its line
ends, so a crash leaves the old file or the new one.

A user is a phone number as registration takes it (``wire.is_phone_number``,
the server's own check). The folder is the server's: without ``--data-dir``
the working directory, as for ``bluetrace-server``, and there the file must
already exist, so that a run from the wrong folder leaves no stray
credentials.txt behind. A running server reads the change on SIGUSR1, which
reloads whatever ``--reload-signal`` it was given: ``--reload PID`` sends it,
to a process that is checked to be a bluetrace-server first (SIGUSR1 ends
most other programs).
"""

import argparse
import getpass
import os
import signal
import sys
import tempfile
from pathlib import Path

from bluetrace import __version__
from bluetrace.protocol import wire
from bluetrace.protocol.timefmt import shown
from bluetrace.runtime.cli import fail, whole
from bluetrace.runtime.storage import open_locked
from bluetrace.server import passwords
from bluetrace.server.records import CredentialParser, RecordError

PROGRAM = "bluetrace-passwd"
LOCK_WAIT = 10.0
"""Seconds to wait for a running server to let go of credentials.txt."""
RUN_SERVER_DIR = Path(".bluetrace") / "server"
"""Where ``make run-server`` keeps the server's files, under the project folder."""
SERVER_NAMES = ("bluetrace-server", "bluetrace.server.main")
"""What a server's command line holds: the installed program, or the module."""
PHONE_RULE = "a user is a number as registration takes it: + then 7 to 15 digits, the first not 0"
RELOAD_HINT = "a running server reads it after: kill -USR1 <its pid> (or pass --reload PID)"


def _read_password() -> str | None:
    if sys.stdin.isatty():
        first = getpass.getpass("New password: ")
        second = getpass.getpass("Again: ")
    else:
        first, second = (sys.stdin.readline().rstrip("\r\n") for _ in range(2))
    return first if first == second else None


def set_password(path: Path, username: str, stored: str, *, create: bool = True) -> bool:
    """Put ``<username> <stored>`` in place of the user's line, or append it;
    True if the user was new. Every other line is kept, with the file's own
    line ends (CRLF if it has any, as the samples do), and the
    new file replaces the old only once it loads as the server will load it
    (RecordError otherwise, and nothing changed).

    All under the lock a running server takes to append a registration
    (``storage.open_locked``): a registration is either in the file read
    here, or appended to the new file after the rename, never lost to the
    replaced one. ``create``: False when the file must already exist
    (FileNotFoundError otherwise)."""
    lock = open_locked(path, os.O_RDWR | (os.O_CREAT if create else 0), wait=LOCK_WAIT)
    try:
        return _rewrite(path, username, stored, _read_all(lock))
    finally:
        os.close(lock)  # only now may the server append again


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _rewrite(path: Path, username: str, stored: str, data: bytes) -> bool:
    eol = b"\r\n" if b"\r\n" in data else b"\n"
    lines = data.split(b"\n") if data else []
    if lines and lines[-1] == b"":
        lines.pop()
    lines = [raw.rstrip(b"\r") for raw in lines]
    line = f"{username} {stored}".encode()
    new = True
    for index, text in enumerate(lines):
        if text.split(b" ", 1)[0] == username.encode() and not text.startswith(b"#"):
            lines[index] = line
            new = False
    if new:
        lines.append(line)
    payload = b"".join(text + eol for text in lines)
    # Checked as the server will load it, under the file's own name: an
    # error names a line of credentials.txt, not of the temporary file.
    parser = CredentialParser(path, payload)
    parser.step(len(parser.lines))
    parser.result()
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            os.chmod(temp, path.stat().st_mode & 0o777)
        os.replace(temp, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself on disk before the lock goes
        finally:
            os.close(directory)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return new


def _server_problem(pid: int) -> str | None:
    """Why ``pid`` cannot be sent SIGUSR1, or None: it must be running, be
    ours to signal and, where /proc shows command lines, be a bluetrace-server
    (SIGUSR1 ends most other programs: a mistyped number must not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "no running process has that number"
    except PermissionError:
        return "that process is another user's; run this as the user the server runs as"
    proc = Path("/proc")
    if not (proc / "self" / "cmdline").exists():
        return None  # no /proc here: running and ours is all that can be known
    try:
        words = (proc / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return "no running process has that number"
    args = [word.decode("utf-8", "replace") for word in words if word]
    if not any(Path(arg).name in SERVER_NAMES for arg in args):
        shown_args = shown(" ".join(args)[:80]) or "no command line (it has ended)"
        return f"that process is not a bluetrace-server ({shown_args}); check its pid"
    return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Add a user to credentials.txt or change their password, stored as a "
        "salted scrypt hash. Reads the password without echo (twice), or as two lines "
        "from a pipe. A running server reads the change when it gets SIGUSR1 (--reload "
        "sends it).",
    )
    parser.add_argument(
        "username",
        help="a phone number as registration takes it: + then 7 to 15 digits, the first "
        "not 0 (e.g. +61410888888)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="the server's folder, holding credentials.txt (default: the working "
        "directory, as for bluetrace-server, where credentials.txt must then already "
        f"exist; make run-server's folder is {RUN_SERVER_DIR} under the project)",
    )
    parser.add_argument(
        "--reload",
        type=whole(1, 2**31 - 1, "a process number"),
        metavar="PID",
        help="then send SIGUSR1 to the running server with this process number, which "
        "makes it read credentials.txt again; checked first to be a bluetrace-server "
        "(default: no signal, and a reminder)",
    )
    parser.add_argument(
        "--cost",
        type=whole(10, 17),
        default=14,
        help="scrypt cost n as a power of two, 10 to 17 (r=8, p=1; 17 is the dearest a "
        "server will check: n*r*p at most 2^20, 128 MiB) (default: %(default)s, about "
        "35 ms a check)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _folder_problem(given: Path | None, folder: Path) -> str | None:
    """Why credentials.txt in ``folder`` is not the file to change, or None.
    ``given``: the --data-dir as typed (None: the working directory)."""
    naming = "pass --data-dir naming the server's folder"
    if given is not None:
        if not given.exists():
            return f"no such folder: {given} (create it, or {naming})"
        if not given.is_dir():
            return f"not a folder: {given} ({naming})"
        return None
    if (folder / "credentials.txt").exists():
        return None
    if (folder / RUN_SERVER_DIR / "credentials.txt").exists():
        where = f"make run-server's is here: pass --data-dir {RUN_SERVER_DIR}"
    else:
        where = naming
    return f"no credentials.txt in {folder}, the working directory; {where}"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    username: str = args.username
    if not wire.is_phone_number(username):
        return fail(PROGRAM, f"not a phone number: {shown(username)} ({PHONE_RULE})", 2)
    given: Path | None = args.data_dir
    folder = given if given is not None else Path.cwd()
    problem = _folder_problem(given, folder)
    if problem is None and args.reload is not None:
        reload_problem = _server_problem(args.reload)
        if reload_problem is not None:
            problem = f"--reload {args.reload}: {reload_problem}"
    if problem is not None:
        return fail(PROGRAM, f"{problem}; nothing changed")
    try:
        password = _read_password()
    except (KeyboardInterrupt, EOFError):
        print(file=sys.stderr)
        return fail(PROGRAM, "interrupted; nothing changed", 130)
    if password is None:
        return fail(PROGRAM, "the two passwords differ; nothing changed")
    if not wire.is_credential(password):
        rule = "a password is 1-255 bytes of printable text with no spaces"
        return fail(PROGRAM, f"{rule}; nothing changed")
    path = (folder / "credentials.txt").absolute()
    stored = passwords.hash_password(password, n=2**args.cost)
    try:
        new = set_password(path, username, stored, create=given is not None)
    except BlockingIOError:
        return fail(PROGRAM, f"{path} stayed locked by a running server; nothing changed")
    except FileNotFoundError:
        problem = _folder_problem(given, folder) or f"{path} has gone"
        return fail(PROGRAM, f"{problem}; nothing changed")
    except OSError as exc:
        return fail(PROGRAM, f"cannot update {path}: {exc.strerror or exc}; nothing changed")
    except RecordError as exc:
        return fail(PROGRAM, f"{exc}; nothing changed")
    done = f"added {username} to" if new else f"changed {username} in"
    if args.reload is None:
        print(f"{done} {path} (hashed)", flush=True)
        return fail(PROGRAM, RELOAD_HINT, 0)
    try:
        os.kill(args.reload, signal.SIGUSR1)
    except OSError as exc:
        print(f"{done} {path} (hashed)", flush=True)
        return fail(PROGRAM, f"--reload {args.reload}: {exc.strerror or exc}; {RELOAD_HINT}")
    print(f"{done} {path} (hashed); asked the server (pid {args.reload}) to reload it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
