"""An upload on the server, beside the connection that carries it.

As aioquic keeps a stream's buffers beside its connection, the entries of an
upload in progress, their share of the server's budget of held entries, the
checking of a finished upload a slice per call and the terminal report of
the result live here; :class:`~bluetrace.server.connection.ServerConnection`
decides from the state table when an upload starts, grows, is discarded or
is checked, and tells the peer.
"""

from dataclasses import dataclass, field
from typing import Final

from bluetrace.protocol.messages import ErrorReply, TempIDWindow
from bluetrace.protocol.wire import ErrorCode
from bluetrace.server.core import ServerCore
from bluetrace.server.stores import CheckBatch, CheckRecord

REPORT_ENTRIES: Final = 1_000
"""Entries of one upload shown on the server's terminal, in each of its two
lists. An upload up to this size is reported exactly as the specification
shows it; a larger one shows its first entries and a line saying how many
more there are, how many known contacts are among them, and that all of
them are in contact_checks.txt (the record; the terminal is a report). So
a 200,000-entry upload reports in about 130 KB, not 27 MB that no terminal
could show and the 4 MiB output buffer would drop."""
CHECKS_FILE_NAME: Final = "contact_checks.txt"
CHECKS_NOT_RECORDED: Final = ErrorReply(
    ErrorCode.STORAGE, "the server could not record the contact check; upload again later"
)
DISCARD_TEXT: Final = {
    ErrorCode.TOO_LARGE: "an upload may hold at most {limit:,} entries; "
    "this one had {count:,} and was discarded",
    ErrorCode.RATE_LIMITED: "too many upload entries from this user lately; "
    "the upload ({count:,} entries) was discarded, try again later",
    ErrorCode.BUSY: "the server is busy with other uploads; "
    "the upload ({count:,} entries) was discarded, try again later",
}
"""What the client is told when an upload was discarded, by the refusal's code."""


@dataclass
class Upload:
    """An upload between its first and its final chunk: the entries it holds,
    counted in the server's budget of held entries
    (:meth:`ServerCore.reserve_entries`) until they are checked or dropped."""

    started: str
    count: int = 0
    chunks: list[tuple[TempIDWindow, ...]] = field(default_factory=list)

    def hold(self, entries: tuple[TempIDWindow, ...]) -> None:
        """Keep a chunk's entries (already reserved) until the final chunk."""
        self.count += len(entries)
        self.chunks.append(entries)


class Checking:
    """The final chunk has arrived: check the entries a slice per call.

    The check log takes one upload at a time, so the first calls may only
    wait for this upload's turn. Then each slice also does its share of the
    telling: its terminal lines are joined and its records handed to the
    store (which writes them at once), so the call that finishes the upload
    has only the last slice and a commit line left, and one large upload
    cannot stall the loop for the others. The result is still told as one
    whole, once all is checked and recorded.
    """

    def __init__(self, core: ServerCore, owner: object, uploader: str, upload: Upload) -> None:
        self.core = core
        self.owner = owner
        self.uploader = uploader
        self.upload = upload
        self.shown: list[str] = [f"received contact log from {uploader}"]
        self.checked: list[str] = ["Contact log checking"]
        self.batch: CheckBatch | None = None
        self.reported = 0
        """Entries shown so far (at most REPORT_ENTRIES)."""
        self.known_unshown = 0
        """Known contacts among the entries past REPORT_ENTRIES."""
        self._entries = (entry for chunk in upload.chunks for entry in chunk)

    def step(self, budget: int) -> bool:
        """Check up to ``budget`` entries; True once all are checked."""
        if self.batch is None:
            self.batch = self.core.start_checks(self.owner, self.upload.count)
            if self.batch is None:
                return False  # another upload is being recorded: wait a turn
        lookup = self.core.tempids.get
        started, uploader = self.upload.started, self.uploader
        shown: list[str] = []
        checked: list[str] = []
        records: list[CheckRecord] = []
        done = True
        for entry in self._entries:
            tempid, start, expiry = entry.fields_text()
            contact = lookup(tempid)
            if self.reported < REPORT_ENTRIES:
                self.reported += 1
                shown += (f"{tempid},", f"{start},", f"{expiry};")
                if contact is None:
                    checked.append(f"{tempid}: unknown TempID")
                else:
                    checked += (f"{contact},", f"{start},", f"{tempid};")
            elif contact is not None:
                self.known_unshown += 1
            records.append(CheckRecord(started, uploader, tempid, start, expiry, contact))
            budget -= 1
            if budget <= 0:
                done = False
                break
        if shown:
            self.shown.append("\n".join(shown))
            self.checked.append("\n".join(checked))
        if records:
            self.batch.add(records)
        return done

    def finish(self) -> None:
        """All is checked: give back the held entries and complete the record
        (durable at the next group commit), then give up the check log's turn.
        OSError, with nothing of it recorded, if the record failed."""
        self.core.release_entries(self.upload.count)
        if self.batch is None:
            raise RuntimeError("an upload checked before its turn")
        try:
            self.batch.finish()
        finally:
            self.core.end_checks(self.owner)

    def abort(self) -> None:
        """Dropped before it was recorded: take back what was written, give up the turn."""
        if self.batch is not None:
            self.batch.abort()
        self.core.end_checks(self.owner)

    def text(self) -> str:
        """The terminal report: the specification's two lists, each cut
        after REPORT_ENTRIES entries with a line that says what was cut."""
        count = self.upload.count
        more = count - self.reported
        if more <= 0:
            return "\n".join(self.shown + self.checked)
        known = self.known_unshown
        contacts = f"{known:,} known contact{'' if known == 1 else 's'} among them"
        return "\n".join(
            [
                *self.shown,
                f"... and {more:,} more entries not shown ({count:,} in all)",
                *self.checked,
                f"... and {more:,} more checks not shown ({contacts}): "
                f"all {count:,} are in {CHECKS_FILE_NAME}",
            ]
        )
