"""Where the server's records go: typed records in, durable lines out.

The protocol layer hands over typed records and never sees a line format
(those live in ``records``). Appends are not durable on their own: the host
calls ``sync`` once per loop turn (a group commit) and only then are the
replies that depend on the records released. The memory stores serve tests
and the simulator, and can be told to fail.
"""

import contextlib
import errno
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bluetrace.protocol.messages import TempIDWindow
from bluetrace.runtime.storage import (
    CheckLog,
    LineAppender,
    append_lines_to,
    encode_lines,
    open_locked,
)
from bluetrace.server.records import tempid_line


@dataclass(frozen=True, slots=True)
class TempIDRecord:
    """One TempID issued to one user: a line of tempIDs.txt."""

    username: str
    window: TempIDWindow


@dataclass(frozen=True, slots=True)
class CheckRecord:
    """One uploaded entry, checked: a line of contact_checks.txt.

    Times are kept as the wire's text: nothing here needs a datetime.
    """

    checked_at: str
    uploader: str
    tempid: str
    start: str
    expiry: str
    contact: str | None

    def line(self) -> str:
        return (
            f"{self.checked_at} {self.uploader} {self.tempid} {self.start} {self.expiry} "
            f"{self.contact or 'unknown'}"
        )


class TempIDStore(Protocol):
    def append(self, record: TempIDRecord) -> None:
        """Write the record (not yet durable); OSError, and nothing written, if that failed."""

    def sync(self) -> None:
        """Make every appended record durable; OSError if that failed."""


class CheckBatch(Protocol):
    """One upload's checks, handed over a slice at a time while the server checks them.

    A large upload is checked over many loop turns. Handing each slice to the
    store as it is checked (for the file: encoded and written at once, with
    the running CRC-32 the commit line carries) leaves the last turn only a
    commit line to write, so one big upload does not hold up everyone else's
    sessions while it is formatted and written. Whole or nothing still holds:
    ``finish`` completes the upload's record, ``abort`` takes it back.
    """

    def add(self, records: Sequence[CheckRecord]) -> None:
        """The next slice of checked entries (a write failure is kept for ``finish``)."""

    def finish(self) -> None:
        """Complete the record (not yet durable); OSError, and nothing left of it, on failure."""

    def abort(self) -> None:
        """Take back whatever of this upload was written."""


class CheckStore(Protocol):
    def new_batch(self, count: int) -> CheckBatch:
        """Begin the record of one upload of ``count`` entries (one at a time)."""

    def sync(self) -> None:
        """Make every finished upload durable; OSError if that failed."""


class TempIDFile:
    """tempIDs.txt, appended whole lines at a time and synced by the group commit."""

    def __init__(self, path: Path) -> None:
        self._appender = LineAppender(path, durable=False)

    def append(self, record: TempIDRecord) -> None:
        self._appender.append([tempid_line(record.username, record.window)])

    def sync(self) -> None:
        self._appender.sync()

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


class CredentialStore(Protocol):
    def append(self, username: str, stored: str) -> None:
        """Add a registered user's line (not yet durable); OSError if that failed."""

    def sync(self) -> None: ...


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

    def append(self, username: str, stored: str) -> None:
        if self._fd is None:
            try:
                self._fd = open_locked(self.path, os.O_RDWR | os.O_APPEND)
            except BlockingIOError:
                raise OSError(
                    errno.EAGAIN, "credentials.txt is being changed (locked)", str(self.path)
                ) from None
        append_lines_to(self._fd, [f"{username} {stored}"])

    def sync(self) -> None:
        """Flush this turn's lines to disk, then let go of the file and its lock."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.fdatasync(fd)
            finally:
                os.close(fd)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sync()


class MemoryCredentialStore:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.fail_append = False

    def append(self, username: str, stored: str) -> None:
        if self.fail_append:
            raise OSError(28, "No space left on device")
        self.lines.append(f"{username} {stored}")

    def sync(self) -> None:
        pass


class MemoryTempIDStore:
    """tempIDs.txt in memory; ``fail`` makes appends or syncs raise ENOSPC."""

    def __init__(self) -> None:
        self.records: list[TempIDRecord] = []
        self.durable = 0
        """How many of ``records`` a sync has covered."""
        self.fail_append = False
        self.fail_sync = False

    def append(self, record: TempIDRecord) -> None:
        if self.fail_append:
            raise OSError(28, "No space left on device")
        self.records.append(record)

    def sync(self) -> None:
        if self.fail_sync:
            raise OSError(28, "No space left on device")
        self.durable = len(self.records)


class MemoryCheckStore:
    """contact_checks.txt in memory, one list per upload."""

    def __init__(self) -> None:
        self.uploads: list[list[CheckRecord]] = []
        self.durable = 0
        self.fail_append = False
        self.fail_sync = False

    def new_batch(self, count: int) -> CheckBatch:
        return _MemoryBatch(self)

    def append_upload(self, records: Sequence[CheckRecord]) -> None:
        if self.fail_append:
            raise OSError(28, "No space left on device")
        self.uploads.append(list(records))

    def sync(self) -> None:
        if self.fail_sync:
            raise OSError(28, "No space left on device")
        self.durable = len(self.uploads)


class _MemoryBatch:
    """One upload's records, kept until ``finish`` hands them to the store whole."""

    def __init__(self, store: MemoryCheckStore) -> None:
        self._store = store
        self._records: list[CheckRecord] = []

    def add(self, records: Sequence[CheckRecord]) -> None:
        self._records.extend(records)

    def finish(self) -> None:
        self._store.append_upload(self._records)

    def abort(self) -> None:
        self._records = []
