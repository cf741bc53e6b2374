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

from bluetrace.protocol.messages import ErrorReply, TempIDWindow, UploadRequest
from bluetrace.protocol.states import Event, State
from bluetrace.protocol.timefmt import format_timestamp
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


class UploadSlot:
    """A connection's upload between its chunks: the one in progress (held
    in the server's budget of entries) or, once discarded, the count of its
    entries as they pass and why it was discarded. The connection asks
    :meth:`chunk` which row of the state table a chunk is, and applies it.
    """

    def __init__(self, core: ServerCore) -> None:
        self.core = core
        self.current: Upload | None = None
        self.discarded = 0
        """Entries of the discarded upload so far (for the client's ERROR)."""
        self.discard_code = ErrorCode.TOO_LARGE
        self.log: list[str] = []
        """Lines for the server's log, taken by the connection."""

    @property
    def count(self) -> int:
        """Entries the upload in progress holds."""
        return self.current.count if self.current is not None else 0

    def chunk(self, state: State, chunk: UploadRequest, username: str, now: float) -> Event:
        """The state table's event for ``chunk`` (logged in, uploading or
        discarding), with its entries held, or the upload discarded."""
        final, size = chunk.final, len(chunk.entries)
        if state is State.DISCARDING:
            self.discarded += size
            return Event.UPLOAD_FINAL if final else Event.UPLOAD_MORE
        upload = self.current
        if state is State.LOGGED_IN or upload is None:
            upload = self.current = Upload(format_timestamp(self.core.clock.wall()))
            within = (Event.UPLOAD_FINAL, Event.UPLOAD_MORE)
        else:
            within = (Event.UPLOAD_FINAL_WITHIN, Event.UPLOAD_MORE_WITHIN)
        if upload.count + size > self.core.limits.max_upload_entries:
            self._discard(upload, size, ErrorCode.TOO_LARGE, username)
            return Event.UPLOAD_FINAL_PAST if final else Event.UPLOAD_MORE_PAST
        refusal = self.core.reserve_entries(username, size, now)
        if refusal is not None:
            self._discard(upload, size, refusal, username)
            return Event.UPLOAD_FINAL_REFUSED if final else Event.UPLOAD_MORE_REFUSED
        upload.hold(chunk.entries)
        return within[0] if final else within[1]

    def _discard(self, upload: Upload, size: int, code: ErrorCode, username: str) -> None:
        """Drop what the upload holds and count the rest as it passes."""
        self.core.release_entries(upload.count)
        self.discarded = upload.count + size
        self.discard_code = code
        self.current = None
        self.log.append(
            f"upload from {username} discarded ({code.name}) at {upload.count:,} entries"
        )

    def take_discarded(self) -> tuple[int, ErrorCode]:
        """The discarded upload's count and code, for its ERROR; then forgotten."""
        count, self.discarded = self.discarded, 0
        return count, self.discard_code

    def finished(self) -> Upload:
        """The final chunk arrived within the limits: the upload, to check."""
        upload, self.current = self.current, None
        if upload is None:
            raise RuntimeError("an upload reply with no upload in progress")
        return upload

    def drop(self) -> int:
        """Forget the upload in progress (its entries leave the budget); how
        many entries it held."""
        dropped = self.count
        if self.current is not None:
            self.core.release_entries(dropped)
        self.current = None
        return dropped


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
