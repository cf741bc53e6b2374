"""The server's stores on disk: tempIDs.txt, contact_checks.txt and
credentials.txt, behind the protocols of ``stores``.

Lines are appended whole and made durable by the host's group commit
(``sync`` in the loop, or ``sync_begin``/``sync_end`` around the syncer
process's sync: ``server.commit``); a check batch is one CRC-framed block
of ``storage.CheckLog``, so a crash leaves no half-recorded upload.
"""

import contextlib
import errno
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

from bluetrace.runtime.storage import (
    CheckLog,
    LineAppender,
    append_lines_to,
    encode_lines,
    open_locked,
)
from bluetrace.server.records import tempid_line
from bluetrace.server.stores import CheckBatch, CheckRecord, TempIDRecord


class TempIDFile:
    """tempIDs.txt, appended whole lines at a time and synced by the group commit."""

    def __init__(self, path: Path) -> None:
        self._appender = LineAppender(path, durable=False)

    def append(self, record: TempIDRecord) -> None:
        self._appender.append([tempid_line(record.username, record.window)])

    def sync(self) -> None:
        self._appender.sync()

    @property
    def writes(self) -> int:
        return self._appender.writes

    def sync_begin(self) -> int | None:
        return self._appender.sync_begin()

    def sync_end(self) -> None:
        """Nothing to let go of: the file stays open for the server's life."""

    def close(self) -> None:
        self._appender.close()

class CheckFile:
    """contact_checks.txt: each upload one committed block, all or nothing
    (``storage.CheckLog``; a torn tail is cut off at start-up)."""

    def __init__(self, path: Path) -> None:
        self._log = CheckLog(path)

    def new_batch(self, count: int) -> CheckBatch:
        return _FileBatch(self._log, count)

    def sync(self) -> None:
        self._log.sync()

    @property
    def writes(self) -> int:
        return self._log.writes

    def sync_begin(self) -> int | None:
        return self._log.sync_begin()

    def sync_end(self) -> None:
        """Nothing to let go of: the file stays open for the server's life."""

    def close(self) -> None:
        self._log.close()

class _FileBatch:
    """One upload's block of contact_checks.txt, written a slice at a time."""

    def __init__(self, log: CheckLog, count: int) -> None:
        self._log = log
        self._count = count
        self._written = 0
        self._crc = 0
        self._error: OSError | None = None
        self._open = False
        self._eol = b"\n"
        if count:
            try:
                self._eol = log.line_end()
                log.open_block(count)
                self._open = True
            except OSError as exc:
                self._error = exc

    def add(self, records: Sequence[CheckRecord]) -> None:
        if self._error is not None or not records:
            return
        data = encode_lines([record.line() for record in records], self._eol)
        try:
            self._log.write_part(data)
        except OSError as exc:
            self._error = exc
            self.abort()
            return
        self._crc = zlib.crc32(data, self._crc)
        self._written += len(records)

    def finish(self) -> None:
        if self._error is not None:
            raise self._error
        if self._written != self._count:
            self.abort()
            raise RuntimeError(f"check block: {self._written} lines for a count of {self._count}")
        if not self._count:
            return
        try:
            self._log.close_block(self._count, self._crc)
        except OSError:
            self.abort()
            raise
        self._open = False

    def abort(self) -> None:
        if self._open:
            self._log.abort_block()
            self._open = False

class CredentialFile:
    """credentials.txt, a whole line appended per registration.

    The file is opened and locked (``storage.open_locked``, the lock
    ``bluetrace-passwd`` takes too) for each loop turn that registers
    someone, and closed by the group commit's sync, never kept open:
    ``bluetrace-passwd`` replaces the file by a rename, and a line appended
    to a file kept open from before would go to the replaced, unlinked one
    (told REGISTERED, then lost at the next start). Holding the lock from
    the write to the sync means the line is in the file the path names when
    the reply goes. The lock is tried once, never waited for in the loop:
    while ``bluetrace-passwd`` holds it (a few milliseconds), a registration
    fails with OSError (ERROR STORAGE, "try later") and nothing is written.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self.writes = 0
        self._unsynced = False

    def append(self, username: str, stored: str) -> None:
        if self._fd is None:
            try:
                self._fd = open_locked(self.path, os.O_RDWR | os.O_APPEND)
            except BlockingIOError:
                raise OSError(
                    errno.EAGAIN, "credentials.txt is being changed (locked)", str(self.path)
                ) from None
        append_lines_to(self._fd, [f"{username} {stored}"])
        self.writes += 1
        self._unsynced = True

    def sync(self) -> None:
        """Flush this turn's lines to disk, then let go of the file and its lock."""
        fd, self._fd = self._fd, None
        self._unsynced = False
        if fd is not None:
            try:
                os.fdatasync(fd)
            finally:
                os.close(fd)

    def sync_begin(self) -> int | None:
        """For the syncer: the open file, if lines were appended since the
        last sync began. It stays open, and locked, until ``sync_end``: the
        syncer's reference holds the same lock, and a line is only told
        REGISTERED once it is durable in the file the path names."""
        if self._fd is None or not self._unsynced:
            return None
        self._unsynced = False
        return self._fd

    def sync_end(self) -> None:
        """A sync ended: let go of the file and its lock, unless lines were
        appended since it began (the next sync needs the same file)."""
        if self._fd is not None and not self._unsynced:
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sync()
