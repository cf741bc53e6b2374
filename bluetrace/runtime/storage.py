"""Files as data: a crash at any instant leaves every complete line intact.

Appends write whole lines in one call, start a new line first when the file
does not end with one (the specification's samples have no final newline),
and undo a partial write by truncating back. Rewrites go through a temporary
file and an atomic rename.
"""

import contextlib
import errno
import fcntl
import os
import stat
import tempfile
import time
import zlib
from collections.abc import Sequence
from pathlib import Path

_CRLF_SNIFF = 4096


def open_regular(path: Path, flags: int = os.O_RDONLY, mode: int = 0o644) -> int:
    """A descriptor for ``path`` if it is a regular file; OSError otherwise.

    Opened with O_NONBLOCK so that a FIFO put in a data file's place cannot
    hang the open (it would wait for a writer), then refused by fstat; the
    flag is cleared again for the regular file, where it changes nothing.
    """
    fd = os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: Path) -> bytes:
    """A whole regular file. Anything else (a device, a FIFO) is refused with
    OSError rather than read: /dev/zero or /dev/full would never end, and a
    FIFO would block the open itself."""
    with os.fdopen(open_regular(path), "rb") as handle:
        return handle.read()


def open_locked(path: Path, flags: int, *, wait: float = 0.0) -> int:
    """``path`` opened (a regular file) and locked with an exclusive flock;
    the lock is released when the descriptor is closed.

    The lock that the server and ``bluetrace-passwd`` share on
    credentials.txt. ``bluetrace-passwd`` replaces the file by a rename, so
    a lock taken on a file the path no longer names would guard nothing:
    after locking, the path is looked up again and, if it now names another
    file, the lock is taken anew. ``wait`` is how long to keep trying while
    the lock is held elsewhere (0: one try, for the loop); then
    BlockingIOError.
    """
    deadline = time.monotonic() + wait
    while True:
        fd = open_regular(path, flags)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
            except BlockingIOError:
                locked = False
            if locked:
                here, named = os.fstat(fd), os.stat(path)
                if (here.st_dev, here.st_ino) == (named.st_dev, named.st_ino):
                    return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
        if not locked:
            if time.monotonic() >= deadline:
                raise BlockingIOError(errno.EWOULDBLOCK, "locked by another program", str(path))
            time.sleep(0.02)  # bluetrace-passwd: waits for the server's turn to end


def append_lines_to(fd: int, lines: Sequence[str]) -> None:
    """Append whole ``lines`` to the open file ``fd`` in its own line-end
    style, after a line end (the samples have no final one); all or nothing:
    a partial write is cut back, and OSError says so."""
    size = os.fstat(fd).st_size
    eol = b"\r\n" if b"\r\n" in os.pread(fd, _CRLF_SNIFF, 0) else b"\n"
    data = b"".join(line.encode("utf-8") + eol for line in lines)
    if size and os.pread(fd, 1, size - 1) != b"\n":
        data = eol + data
    try:
        _write_all(fd, data)
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        raise


def split_lines(data: bytes) -> list[bytes]:
    """Lines without their LF or CRLF ends; a missing final newline is fine."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def _line_end_of(path: Path) -> bytes:
    """Keep a file's own line-end style, so CRLF samples stay CRLF."""
    try:
        # O_NONBLOCK: a FIFO in the file's place must not hang the open.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return b"\n"
    try:
        head = os.read(fd, _CRLF_SNIFF)
    except BlockingIOError:
        head = b""
    finally:
        os.close(fd)
    return b"\r\n" if b"\r\n" in head else b"\n"


def _write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` (a write may take only part); OSError part-way through."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


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
        self.writes = 0
        """Writes so far: a host that syncs elsewhere sees from it that a
        record was written while its sync was in flight."""
        self._unsynced = False
        """Something was written since the last sync began."""

    def _open(self) -> int:
        if self._fd is None:
            self._eol = _line_end_of(self.path)
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        return self._fd

    def append(self, lines: list[str]) -> None:
        """Write all of ``lines`` or none of them; OSError says which."""
        if lines:
            self._open()
            self._write_whole(b"".join(line.encode("utf-8") + self._eol for line in lines))

    def _write_whole(self, data: bytes) -> None:
        """Append ``data`` (whole lines) after a line end, all or nothing: a
        partial write is undone by truncating back, and OSError says so."""
        fd = self._open()
        size = os.fstat(fd).st_size
        if size and not self._clean_end and os.pread(fd, 1, size - 1) != b"\n":
            data = self._eol + data
        try:
            _write_all(fd, data)
            self.writes += 1
            self._unsynced = True
            if self.durable:
                os.fdatasync(fd)
                self._unsynced = False
        except OSError:
            self._clean_end = False
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
        self._clean_end = True

    def sync(self) -> None:
        """Flush appended lines to disk (for callers that batch: group commit);
        nothing to do when nothing was written since the last sync."""
        if self._fd is not None and self._unsynced:
            self._unsynced = False
            os.fdatasync(self._fd)

    def sync_begin(self) -> int | None:
        """For a sync run elsewhere (``runtime.syncer``): the descriptor whose
        ``fdatasync`` makes everything written so far durable, or None if
        nothing was written since the last sync began. Later writes wait for
        the next sync."""
        if self._fd is None or not self._unsynced:
            return None
        self._unsynced = False
        return self._fd

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


BEGIN = b"begin "
COMMIT = b"commit "
_MAX_BLOCK_LINES = 10_000_000
_SCAN = 1 << 20


class CheckLog(LineAppender):
    """contact_checks.txt, written one upload at a time, all or nothing.

    Each upload is one block (protocol_spec.md section 5)::

        begin <N>
        <N check lines>
        commit <N> <CRC-32 of the N lines, 8 hex digits>

    written by one writer at a time, in one go (``append_upload``) or a part
    at a time (``open_block`` ... ``close_block``), and taken back by
    truncation if it cannot be finished. A crash can tear only the last
    block, and :func:`recover_checks` cuts such a tail off at start-up, so a
    reader sees whole uploads or none. Lines before the first block (from before
    blocks existed) are left as they are. Not synced on its own: the group
    commit calls :meth:`sync` before the upload is acknowledged.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path, durable=False)
        self._block_start: int | None = None
        """Where the block being written began; None when no block is open."""

    def line_end(self) -> bytes:
        """The line end this file uses (opening it if need be; OSError if it cannot)."""
        self._open()
        return self._eol

    def append_upload(self, lines: list[str]) -> None:
        """Write ``lines`` as one committed block, or nothing (OSError says
        so, and the file is as it was)."""
        if not lines:
            return
        data = encode_lines(lines, self.line_end())
        self.open_block(len(lines))
        try:
            self.write_part(data)
            self.close_block(len(lines), zlib.crc32(data))
        except OSError:
            self.abort_block()
            raise

    # A block may also be written a part at a time, across many loop turns, by
    # one writer at a time (the server lets one upload's checks in at once):
    # open_block, write_part as each slice is checked, close_block at the end,
    # or abort_block to take it all back. A crash in between leaves a block
    # with no commit line, which recover_checks cuts off at the next start.

    def open_block(self, count: int) -> int:
        """Write the begin line of a block of ``count`` lines (OSError, and
        nothing written, if that fails); returns where the block starts."""
        if self._block_start is not None:
            raise RuntimeError("contact_checks.txt: a block is already being written")
        fd = self._open()
        start = os.fstat(fd).st_size
        self._write_whole(BEGIN + str(count).encode("ascii") + self._eol)
        self._block_start = start
        return start

    def write_part(self, data: bytes) -> None:
        """Write lines of the open block, already encoded (``encode_lines``
        with this file's line end). OSError if that fails: abort the block."""
        if self._block_start is None:
            raise RuntimeError("contact_checks.txt: no block is open")
        fd = self._open()
        self._clean_end = False
        _write_all(fd, data)
        self.writes += 1
        self._unsynced = True
        self._clean_end = True

    def close_block(self, count: int, crc: int) -> None:
        """Write the commit line: ``count`` lines whose bytes have CRC-32 ``crc``."""
        self.write_part(COMMIT + f"{count} {crc:08x}".encode("ascii") + self._eol)
        self._block_start = None

    def abort_block(self) -> None:
        """Take the unfinished block back: the file is cut to where it began."""
        start, self._block_start = self._block_start, None
        self._clean_end = False
        if start is not None and self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, start)


def encode_lines(lines: Sequence[str], eol: bytes) -> bytes:
    """Check lines as bytes, each ended by ``eol``; ValueError if a line
    holds a line end of its own (it would break the block's count)."""
    data = b"".join(line.encode("utf-8") + eol for line in lines)
    carriage = len(lines) if eol == b"\r\n" else 0
    if data.count(b"\n") != len(lines) or data.count(b"\r") != carriage:
        raise ValueError("a check line cannot hold a line end")
    return data


def recover_checks(path: Path) -> str | None:
    """Cut an incomplete last upload block (a crash while it was written)
    off contact_checks.txt; a one-line message saying what was cut, or None
    if the file ends with a whole block (or is missing).

    Reads only the last block, found by scanning back from the end."""
    try:
        fd = open_regular(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        size = os.fstat(fd).st_size
        start = _last_block_start(fd, size)
        if start is None:
            # No block yet: only a torn first "begin" line can be cut.
            start = _torn_begin_start(fd, size)
            if start is None:
                return None
            keep, what = 0, "a torn line"
        else:
            tail = os.pread(fd, size - start, start)
            keep = _whole_block_length(tail)
            if keep == len(tail):
                return None
            what = "a torn line after the last whole upload" if keep else "an unfinished upload"
        os.ftruncate(fd, start + keep)
        os.fsync(fd)
        return (
            f"{path}: removed {what} at the end ({size - start - keep} bytes), left by a "
            "crash while it was written; that upload had not been acknowledged"
        )
    finally:
        os.close(fd)


def _last_block_start(fd: int, size: int) -> int | None:
    """Offset of the last line starting with ``begin ``, or None."""
    end = size
    while end > 0:
        start = max(0, end - _SCAN)
        chunk = os.pread(fd, end - start + len(BEGIN), start)
        found = chunk.rfind(b"\n" + BEGIN)
        if found >= 0:
            return start + found + 1
        if start == 0:
            return 0 if chunk.startswith(BEGIN) else None
        end = start
    return None


def _torn_begin_start(fd: int, size: int) -> int | None:
    """Where a last line with no line end that is the start of ``begin ``
    starts, or None."""
    if size == 0:
        return None
    start = max(0, size - len(BEGIN))
    tail = os.pread(fd, size - start, start)
    if tail.endswith(b"\n"):
        return None
    line_start = tail.rfind(b"\n") + 1
    torn = tail[line_start:]
    if start + line_start > 0 and line_start == 0:
        return None  # the last line is longer than "begin ": not a torn one
    return start + line_start if BEGIN.startswith(torn) else None


def _whole_block_length(tail: bytes) -> int:
    """The length of the whole, committed block at the start of ``tail``
    (which starts with ``begin ``), or 0 if it is not one."""
    first = tail.find(b"\n")
    if first < 0:
        return 0
    head = tail[len(BEGIN) : first].rstrip(b"\r")
    if not head.isdigit() or not 0 < int(head) <= _MAX_BLOCK_LINES:
        return 0
    count = int(head)
    at = first + 1
    for _ in range(count):
        at = tail.find(b"\n", at) + 1
        if at == 0:
            return 0
    records = tail[first + 1 : at]
    end = tail.find(b"\n", at)
    if end < 0:
        return 0
    commit = tail[at:end].rstrip(b"\r")
    if commit != COMMIT + f"{count} {zlib.crc32(records):08x}".encode("ascii"):
        return 0
    return end + 1
