"""``bluetrace-passwd USER``: add a user to credentials.txt, or change their
password, stored as a salted scrypt hash.

The password is read without echo on a terminal (twice, to catch a typo), or
as two lines from a pipe. The file is rewritten atomically (a temporary
file, then a rename), keeping every other line, its comments and its line
ends, so a crash leaves the old file or the new one. A running server picks
the change up on SIGHUP.
"""

import argparse
import getpass
import os
import sys
import tempfile
from pathlib import Path

from bluetrace import __version__
from bluetrace.protocol import wire
from bluetrace.runtime.cli import fail, whole
from bluetrace.runtime.storage import open_locked
from bluetrace.server import passwords
from bluetrace.server.records import COMMENT, RecordError, load_credentials

PROGRAM = "bluetrace-passwd"
LOCK_WAIT = 10.0
"""Seconds to wait for a running server to let go of credentials.txt."""


def _read_password() -> str | None:
    if sys.stdin.isatty():
        first = getpass.getpass("New password: ")
        second = getpass.getpass("Again: ")
    else:
        first, second = (sys.stdin.readline().rstrip("\r\n") for _ in range(2))
    return first if first == second else None


def set_password(path: Path, username: str, stored: str) -> bool:
    """Put ``<username> <stored>`` in place of the user's line, or append it;
    True if the user was new. Every other line is kept, with the file's own
    line ends (CRLF if it has any, as the samples do), and the
    new file replaces the old only once it loads as the server will load it
    (RecordError otherwise, and nothing changed).

    All under the lock a running server takes to append a registration
    (``storage.open_locked``): a registration is either in the file read
    here, or appended to the new file after the rename, never lost to the
    replaced one."""
    lock = open_locked(path, os.O_RDWR | os.O_CREAT, wait=LOCK_WAIT)
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
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        load_credentials(Path(temp))
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Add a user to credentials.txt or change their password, stored as a "
        "salted scrypt hash. Reads the password without echo (twice), or as two lines "
        "from a pipe. Send SIGHUP to a running server to reload the file.",
    )
    parser.add_argument("username", help="the phone number, e.g. +61410888888")
    parser.add_argument(
        "--data-dir", type=Path, default=Path.cwd(), help="folder of credentials.txt"
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
    args = parser.parse_args(argv)
    username: str = args.username
    if not wire.is_credential(username) or username.startswith(COMMENT):
        return fail(PROGRAM, f"not a username (printable, no spaces, 1-255 bytes): {username}", 2)
    try:
        password = _read_password()
    except (KeyboardInterrupt, EOFError):
        print(file=sys.stderr)
        return fail(PROGRAM, "interrupted; nothing changed", 130)
    if password is None:
        return fail(PROGRAM, "the two passwords differ; nothing changed")
    if not wire.is_credential(password):
        return fail(PROGRAM, "a password is 1-255 bytes of printable text with no spaces")
    path = args.data_dir / "credentials.txt"
    stored = passwords.hash_password(password, n=2**args.cost)
    try:
        new = set_password(path, username, stored)
    except BlockingIOError:
        return fail(PROGRAM, f"{path} stayed locked by a running server; nothing changed")
    except (OSError, RecordError) as exc:
        return fail(PROGRAM, str(exc))
    print(f"{'added' if new else 'changed'} {username} in {path} (hashed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
