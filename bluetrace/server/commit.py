"""The server's group commit, with the disk off the loop's critical path.

A reply that tells a client its record is kept (a TempID, an upload's
acknowledgement, REGISTERED) waits until the record is durable. Records
are appended by the loop (page-cache writes, microseconds); the
``fdatasync`` that makes them durable runs in the syncer process
(``runtime.syncer``), and the loop keeps working while it does:

- Every connection that wrote such a record in a turn is *held*; at the
  end of the turn, if no sync is in flight, one sync starts for every file
  written since the last one began, and the held connections become its
  batch. While it is in flight, the next turns' connections are held for
  the next sync, which starts the moment this one is answered: one sync in
  flight at a time, each covering everything written before it began.
- A connection in the batch may write another record while the sync is in
  flight (a pipelined request): that record is not covered, and the
  connection's release would send its reply too. So every call into a
  connection reports whether it wrote (``noticed``), and a batched
  connection that wrote is held over for the next sync instead of
  released.
- A failed sync (the disk's error, or no answer within the syncer's
  timeout) fails every reply of its batch with ERROR STORAGE, as before.

Without file stores (the in-memory ones, for tests) the commit is the
core's own ``commit()``, run at the end of the turn.
"""

from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

from bluetrace.runtime.reactor import Reactor
from bluetrace.runtime.syncer import Syncer, sync_descriptors


class SyncedFile(Protocol):
    """A store whose records the syncer makes durable (``server.files``)."""

    @property
    def writes(self) -> int: ...

    def sync_begin(self) -> int | None: ...

    def sync_end(self) -> None: ...


class Held(Protocol):
    def committed(self, durable: bool) -> None: ...


L = TypeVar("L", bound=Held)


class GroupCommit(Generic[L]):
    """Holds connections until their records are durable (see the module)."""

    def __init__(
        self,
        reactor: Reactor,
        commit_in_loop: Callable[[], OSError | None],
        *,
        files: Sequence[SyncedFile] = (),
        syncer: Syncer | None = None,
        log: Callable[[str], None] = lambda text: None,
    ) -> None:
        self.reactor = reactor
        self.commit_in_loop = commit_in_loop
        self.files = tuple(files)
        self.syncer = syncer if self.files else None
        self.log = log
        self._holding: list[L] = []
        self._scheduled = False
        self._batch: list[L] | None = None
        """The connections the sync in flight answers (None: none in flight)."""
        self._members: set[L] = set()
        self._again: set[L] = set()
        """Batched connections that wrote again while the sync was in flight."""
        self._seen = 0
        self._fds: list[int] = []
        """The descriptors the sync in flight covers (open until it is answered)."""

    @property
    def in_flight(self) -> bool:
        return self._batch is not None

    def hold(self, link: L) -> None:
        """``link`` wrote a record its reply must wait for."""
        self._holding.append(link)
        if not self._scheduled:
            self._scheduled = True
            self.reactor.call_soon(self._start)

    def noticed(self, link: L) -> None:
        """After every call into ``link``'s connection: if it wrote a record
        while its batch's sync is in flight, that record waits for the next."""
        if self._batch is None:
            return
        writes = self._writes()
        if writes != self._seen:
            self._seen = writes
            if link in self._members:
                self._again.add(link)

    def flush(self) -> None:
        """Shutting down: make everything durable now, in the loop, and answer
        every held connection."""
        batch = (self._batch or []) + self._holding
        in_flight, self._fds = self._fds if self._batch is not None else [], []
        self._batch, self._holding = None, []
        self._members.clear()
        self._again.clear()
        failure = sync_descriptors(in_flight) or self.commit_in_loop()
        if self.files:
            for file in self.files:
                file.sync_end()
        self._release(batch, failure)

    def close(self) -> None:
        """End the syncer (a sync still in flight is finished in the loop)."""
        if self.syncer is not None:
            self.syncer.close()

    # -- inside -----------------------------------------------------------------
    def _writes(self) -> int:
        return sum(file.writes for file in self.files)

    def _start(self) -> None:
        self._scheduled = False
        if self._batch is not None or not self._holding:
            return  # the sync in flight starts the next one when it is answered
        batch, self._holding = self._holding, []
        if self.syncer is None:
            self._release(batch, self.commit_in_loop())
            return
        fds = [fd for fd in (file.sync_begin() for file in self.files) if fd is not None]
        self._batch = batch
        self._members = set(batch)
        self._seen = self._writes()
        self._fds = fds
        self.syncer.sync(fds, self._synced)

    def _synced(self, failure: OSError | None) -> None:
        if self._batch is None:
            return  # answered already by ``flush``
        batch, again = self._batch, self._again
        self._fds = []
        self._batch, self._again = None, set()
        self._members = set()
        for file in self.files:
            file.sync_end()
        if failure is None and again:
            self._holding.extend(link for link in batch if link in again)
            batch = [link for link in batch if link not in again]
        self._release(batch, failure)
        if self._holding:
            self._start()

    def _release(self, batch: list[L], failure: OSError | None) -> None:
        if failure is not None:
            self.log(f"cannot flush records to disk: {failure.strerror or failure}")
        for link in batch:
            link.committed(failure is None)
