"""The phone's contact log, as an object with no I/O of its own.

Kept apart from :class:`bluetrace.phone.core.Phone` as aioquic keeps loss
recovery apart from its connection: the log has rules of its own (entries in
arrival order, removal a retention after arrival, a cap that drops the oldest
entry and is told once per episode, removals from the file batched into one
rewrite per interval) and its own deadlines, while the phone owns one log and
turns what it reports into events. The file itself is an injected store.
"""

from collections import deque
from collections.abc import Sequence
from typing import Protocol

from bluetrace.protocol.messages import TempIDWindow

DEFAULT_RETENTION = 180.0
DEFAULT_MAX_CONTACTS = 200_000
"""As many entries as one upload may hold: more could never be uploaded.

A full log keeps the newest contacts, the ones a tracer needs: each new
contact replaces the oldest entry (protocol_spec.md, section 5), the user is
told once per episode of fullness, and an upload says how many entries it
left out."""
LEFT_OUT_RUNS = 1024
"""Entries pushed out of a full log are counted in runs of arrival time, at
most this many per retention period, so the count an upload reports costs
bounded memory however long a flood lasts; it may include entries up to
1/1024 of the retention past their expiry."""
DEFAULT_REWRITE_INTERVAL = 1.0
"""Removals from the contact-log file are batched into at most one rewrite
per interval, so a flood of expiring entries costs one rewrite a second,
not one per entry."""


class ContactStore(Protocol):
    """Where a phone keeps its contact log (``<username>_contactlog.txt``)."""

    def load(self) -> tuple[list[TempIDWindow], list[str]]:
        """Entries already stored, and a note for each line that was skipped."""

    def append(self, window: TempIDWindow) -> None:
        """Add one entry as a whole line; OSError if that failed."""

    def rewrite(self, windows: Sequence[TempIDWindow]) -> None:
        """Replace the whole log atomically; OSError if that failed."""


class MemoryContactStore:
    """A contact log in memory, for tests and the simulator."""

    def __init__(self, entries: Sequence[TempIDWindow] = ()) -> None:
        self.entries = list(entries)
        self.rewrites = 0
        self.fail = False

    def load(self) -> tuple[list[TempIDWindow], list[str]]:
        return list(self.entries), []

    def append(self, window: TempIDWindow) -> None:
        if self.fail:
            raise OSError(28, "No space left on device")
        self.entries.append(window)

    def rewrite(self, windows: Sequence[TempIDWindow]) -> None:
        if self.fail:
            raise OSError(28, "No space left on device")
        self.entries = list(windows)
        self.rewrites += 1


class ContactLog:
    """Entries in memory, their store, and the deadlines both keep.

    Times are the phone's monotonic seconds. Nothing here makes an event:
    each method says what happened (an episode of fullness began, so many
    entries expired) and the phone tells it.
    """

    def __init__(
        self,
        *,
        retention: float = DEFAULT_RETENTION,
        max_contacts: int = DEFAULT_MAX_CONTACTS,
        rewrite_interval: float = DEFAULT_REWRITE_INTERVAL,
    ) -> None:
        self.retention = retention
        self.max_contacts = max_contacts
        self.rewrite_interval = rewrite_interval
        self.store: ContactStore | None = None
        """None until the first login opens the file: until then there is no log."""
        self._entries: deque[tuple[float, TempIDWindow]] = deque()
        """(monotonic arrival, entry), oldest first: with one retention for
        all, arrival order is also removal order."""
        self.pushed_out: deque[list[float]] = deque()
        """Runs of entries a full log pushed out, oldest first, each
        [first arrival, last arrival, count]: see LEFT_OUT_RUNS."""
        self._full = False
        """In an episode of fullness (the user has been told)."""
        self._file_stale = False
        """The file still holds entries the log has removed."""
        self._last_rewrite = float("-inf")

    # -- what the phone reads -----------------------------------------------------
    @property
    def entries(self) -> list[TempIDWindow]:
        """The entries held, oldest first (what an upload sends)."""
        return [entry for _, entry in self._entries]

    def __len__(self) -> int:
        return len(self._entries)

    def next_expiry(self) -> float | None:
        """When the oldest entry is removed; None for an empty log."""
        return self._entries[0][0] + self.retention if self._entries else None

    def next_rewrite(self) -> float | None:
        """When the file is rewritten to drop removed entries; None if it holds none."""
        return self._last_rewrite + self.rewrite_interval if self._file_stale else None

    def left_out(self, now: float) -> int:
        """Entries pushed out of a full log that would still be held now."""
        self._forget_left_out(now)
        return int(sum(run[2] for run in self.pushed_out))

    # -- changes ------------------------------------------------------------------
    def open(self, store: ContactStore, now: float) -> tuple[int, list[str]]:
        """Take the file a login opened and the entries it holds: how many are
        kept, and a note for each problem (a line skipped, the file unreadable,
        entries past the cap left out)."""
        self.store = store
        try:
            entries, problems = store.load()
        except OSError as exc:
            entries, problems = [], [f"cannot read it ({exc.strerror or exc}); starting empty"]
        # Entries found at start are treated as received now (spec-notes, section 4).
        # Past the cap the newest are kept, as a full log keeps them.
        kept = entries[max(0, len(entries) - self.max_contacts) :]
        self._entries.extend((now, entry) for entry in kept)
        if len(entries) > len(kept):
            over = len(entries) - len(kept)
            self._count_left_out(now, over)
            self._file_stale = True
            problems.append(
                f"it holds more than the cap of {self.max_contacts:,} entries; the "
                f"{over:,} oldest {'is' if over == 1 else 'are'} left out and will be removed"
            )
        return len(kept), problems

    def add(self, window: TempIDWindow, now: float) -> bool:
        """Append a contact to the file, then hold it. True when this entry
        began an episode of fullness (the user is told once per episode).
        OSError, with nothing held, if the file could not take it; RuntimeError
        before :meth:`open`."""
        if self.store is None:
            raise RuntimeError("the contact log is not open")
        self.store.append(window)
        began_full = False
        if len(self._entries) >= self.max_contacts:
            # Full: the newest contacts are the ones a tracer needs, so the
            # oldest entry makes room; the file loses it at the next rewrite.
            self._push_out(now)
            if not self._full:
                self._full = began_full = True
        self._entries.append((now, window))
        return began_full

    def expire(self, now: float) -> int:
        """Remove the entries a retention old (the file follows at the next
        rewrite); how many went."""
        expired = 0
        entries = self._entries
        while entries and entries[0][0] + self.retention <= now:
            entries.popleft()
            expired += 1
        if expired:
            self._file_stale = True
            if self._full and len(entries) < self.max_contacts:
                self._full = False  # the episode is over; the next one is told again
        return expired

    def rewrite_if_due(self, now: float) -> bool:
        """Rewrite the file without the removed entries, at most once per
        ``rewrite_interval``; True if a rewrite was due. OSError if it failed:
        the removed entries then stay in the file until a later removal."""
        if not self._file_stale or now < self._last_rewrite + self.rewrite_interval:
            return False
        self._file_stale = False
        self._last_rewrite = now
        if self.store is not None:
            self.store.rewrite(self.entries)
        return True

    # -- internals ----------------------------------------------------------------
    def _push_out(self, now: float) -> None:
        """Drop the oldest entry (or entries) so that one more fits, and count them."""
        while self._entries and len(self._entries) >= self.max_contacts:
            arrival, _ = self._entries.popleft()
            self._count_left_out(arrival, 1)
        self._file_stale = True
        self._forget_left_out(now)

    def _count_left_out(self, arrival: float, count: int) -> None:
        runs = self.pushed_out
        if runs and arrival - runs[-1][0] <= self.retention / LEFT_OUT_RUNS:
            runs[-1][1] = max(runs[-1][1], arrival)
            runs[-1][2] += count
        else:
            runs.append([arrival, arrival, count])

    def _forget_left_out(self, now: float) -> None:
        """Runs whose entries would have expired by now no longer count."""
        runs = self.pushed_out
        while runs and runs[0][1] + self.retention <= now:
            runs.popleft()
