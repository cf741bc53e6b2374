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

from bluetrace import __version__, passwords, wire
from bluetrace.cli import fail, whole
from bluetrace.records import COMMENT, RecordError, load_credentials
from bluetrace.storage import read_regular

PROGRAM = "bluetrace-passwd"


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
    (RecordError otherwise, and nothing changed)."""
    try:
        data = read_regular(path)
    except FileNotFoundError:
        data = b""
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
        type=whole(10, 20),
        default=14,
        help="scrypt cost as a power of two (default: %(default)s, about 35 ms a check)",
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
    except (OSError, RecordError) as exc:
        return fail(PROGRAM, str(exc))
    print(f"{'added' if new else 'changed'} {username} in {path} (hashed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
