"""Files as data: a crash at any instant leaves every complete line intact.

Appends write whole lines in one call, start a new line first when the file
does not end with one (the specification's samples have no final newline),
and undo a partial write by truncating back. Rewrites go through a temporary
file and an atomic rename.
"""

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

_CRLF_SNIFF = 4096


def read_regular(path: Path) -> bytes:
    """A whole regular file. Anything else (a device, a FIFO) is refused with
    OSError rather than read: /dev/zero or /dev/full would never end."""
    with path.open("rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        return handle.read()


def split_lines(data: bytes) -> list[bytes]:
    """Lines without their LF or CRLF ends; a missing final newline is fine."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def _line_end_of(path: Path) -> bytes:
    """Keep a file's own line-end style, so CRLF samples stay CRLF."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_CRLF_SNIFF)
    except FileNotFoundError:
        return b"\n"
    return b"\r\n" if b"\r\n" in head else b"\n"


class LineAppender:
    """Appends whole lines to one file, optionally flushed to disk each time."""

    def __init__(self, path: Path, *, durable: bool = True) -> None:
        self.path = path
        self.durable = durable
        self._fd: int | None = None
        self._eol = b"\n"
        self._clean_end = False
        """True after our own complete write: the file ends with a line end,
        so the next append needs no look at the last byte."""

    def _open(self) -> int:
        if self._fd is None:
            self._eol = _line_end_of(self.path)
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        return self._fd

    def append(self, lines: list[str]) -> None:
        """Write all of ``lines`` or none of them; OSError says which."""
        if not lines:
            return
        fd = self._open()
        size = os.fstat(fd).st_size
        prefix = b""
        if size and not self._clean_end and os.pread(fd, 1, size - 1) != b"\n":
            prefix = self._eol
        data = prefix + b"".join(line.encode("utf-8") + self._eol for line in lines)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if self.durable:
                os.fdatasync(fd)
        except OSError:
            self._clean_end = False
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
        self._clean_end = True

    def sync(self) -> None:
        """Flush appended lines to disk (for callers that batch: group commit)."""
        if self._fd is not None:
            os.fdatasync(self._fd)

    def close(self) -> None:
        """Close, flushing to disk first what a batching caller has not."""
        self._clean_end = False
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.fdatasync(self._fd)
            os.close(self._fd)
            self._fd = None


def replace_lines(path: Path, lines: list[str]) -> None:
    """Rewrite ``path`` atomically: readers see the old file or the new one."""
    data = b"".join(line.encode("utf-8") + b"\n" for line in lines)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
