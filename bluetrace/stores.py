"""Where the server's records go: typed records in, durable lines out.

The protocol layer hands over typed records and never sees a line format
(those live in ``records``). Appends are not durable on their own: the host
calls ``sync`` once per loop turn (a group commit) and only then are the
replies that depend on the records released. The memory stores serve tests
and the simulator, and can be told to fail.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bluetrace.messages import TempIDWindow
from bluetrace.records import tempid_line
from bluetrace.storage import CheckLog, LineAppender


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


class CheckStore(Protocol):
    def append_upload(self, records: Sequence[CheckRecord]) -> None:
        """Write one upload's records as a whole (not yet durable); OSError if that failed."""

    def sync(self) -> None:
        """Make every appended upload durable; OSError if that failed."""


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

    def append_upload(self, records: Sequence[CheckRecord]) -> None:
        self._log.append_upload([record.line() for record in records])

    def sync(self) -> None:
        self._log.sync()

    def close(self) -> None:
        self._log.close()


class CredentialStore(Protocol):
    def append(self, username: str, stored: str) -> None:
        """Add a registered user's line (not yet durable); OSError if that failed."""

    def sync(self) -> None: ...


class CredentialFile:
    """credentials.txt, appended a whole line per registration, synced by the group commit."""

    def __init__(self, path: Path) -> None:
        self._appender = LineAppender(path, durable=False)

    def append(self, username: str, stored: str) -> None:
        self._appender.append([f"{username} {stored}"])

    def sync(self) -> None:
        self._appender.sync()

    def close(self) -> None:
        self._appender.close()


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

    def append_upload(self, records: Sequence[CheckRecord]) -> None:
        if self.fail_append:
            raise OSError(28, "No space left on device")
        self.uploads.append(list(records))

    def sync(self) -> None:
        if self.fail_sync:
            raise OSError(28, "No space left on device")
        self.durable = len(self.uploads)
