"""What the server's records are, and where they may go: typed records and
the store protocols the protocol layer writes to, with in-memory stores.

The protocol layer hands over typed records and never sees a line format
or a file (those live in ``records`` and ``files``). Appends are not
durable on their own: the host calls ``sync`` once per loop turn (a group
commit) and only then are the replies that depend on the records released.
The memory stores serve tests and the simulator, and can be told to fail.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bluetrace.protocol.messages import TempIDWindow


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


class CredentialStore(Protocol):
    def append(self, username: str, stored: str) -> None:
        """Add a registered user's line (not yet durable); OSError if that failed."""

    def sync(self) -> None: ...


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
