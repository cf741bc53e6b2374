"""The syncer: fdatasync in a child process, answered through the loop; a
failed, dead or stuck syncer answers within its timeout and is replaced; and
the group commit never releases a reply whose record the sync did not cover."""

import errno
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bluetrace.protocol.messages import (
    ErrorReply,
    LoginReply,
    LoginRequest,
    TempIDReply,
    TempIDRequest,
    TempIDWindow,
)
from bluetrace.protocol.wire import ErrorCode, LoginStatus
from bluetrace.runtime.reactor import Reactor
from bluetrace.runtime.syncer import Syncer
from bluetrace.server.commit import GroupCommit
from bluetrace.server.files import TempIDFile
from bluetrace.server.records import load_tempids
from bluetrace.server.registry import TempIDRegistry
from bluetrace.server.stores import TempIDRecord
from tests.harness import WAIT, FrameClient, ServerProcess, running_server, wait_until

Answers = list[OSError | None]


def run_until(reactor: Reactor, condition: Callable[[], bool], seconds: float = 20.0) -> None:
    """Loop turns until ``condition()`` holds (bounded in time)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("no answer in time")
        reactor.run_once(max_wait=0.05)


def process_gone(pid: int) -> bool:
    """True once ``pid`` has ended (reaped, or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@pytest.fixture
def reactor() -> Reactor:
    return Reactor()


@pytest.fixture
def written(tmp_path: Path) -> Iterator[int]:
    fd = os.open(tmp_path / "data.txt", os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(fd, b"a record\n")
    yield fd
    os.close(fd)


def test_a_sync_runs_in_a_child_and_is_answered_on_a_later_turn(
    reactor: Reactor, written: int
) -> None:
    syncer = Syncer(reactor)
    try:
        answers: Answers = []
        syncer.sync([written], answers.append)
        assert answers == []  # never inside sync()
        assert syncer.pid is not None
        assert syncer.pid != os.getpid()
        run_until(reactor, lambda: len(answers) == 1)
        assert answers == [None]
        assert syncer.in_loop == 0
    finally:
        syncer.close()


def test_a_failed_fdatasync_is_reported_with_its_errno(reactor: Reactor) -> None:
    read_end, write_end = os.pipe()  # fdatasync on a pipe fails with EINVAL
    syncer = Syncer(reactor)
    try:
        answers: Answers = []
        syncer.sync([read_end], answers.append)
        run_until(reactor, lambda: len(answers) == 1)
        (failure,) = answers
        assert isinstance(failure, OSError)
        assert failure.errno == errno.EINVAL
    finally:
        syncer.close()
        os.close(read_end)
        os.close(write_end)


def test_a_stuck_syncer_fails_the_sync_in_time_and_is_replaced(
    reactor: Reactor, written: int
) -> None:
    logged: list[str] = []
    syncer = Syncer(reactor, timeout=0.5, log=logged.append)
    try:
        syncer.start()
        stuck = syncer.pid
        assert stuck is not None
        os.kill(stuck, signal.SIGSTOP)
        answers: Answers = []
        began = time.monotonic()
        syncer.sync([written], answers.append)
        run_until(reactor, lambda: len(answers) == 1, seconds=10)
        (failure,) = answers
        assert isinstance(failure, OSError)
        assert failure.errno == errno.ETIMEDOUT
        assert time.monotonic() - began < 5  # bounded by the timeout, not the stuck child
        assert any("replaced: a sync took over 0.5 s" in line for line in logged)
        run_until(reactor, lambda: process_gone(stuck))  # killed, even while stopped
        syncer.sync([written], answers.append)
        run_until(reactor, lambda: len(answers) == 2)
        assert answers[1] is None
        assert syncer.pid not in (None, stuck)
        assert syncer.started == 2
    finally:
        syncer.close()


def test_a_syncer_that_dies_mid_sync_is_covered_by_the_loop(
    reactor: Reactor, written: int
) -> None:
    logged: list[str] = []
    syncer = Syncer(reactor, log=logged.append)
    try:
        syncer.start()
        dying = syncer.pid
        assert dying is not None
        os.kill(dying, signal.SIGSTOP)  # hold it while the sync is in flight
        answers: Answers = []
        syncer.sync([written], answers.append)
        os.kill(dying, signal.SIGKILL)
        run_until(reactor, lambda: len(answers) == 1)
        assert answers == [None]  # synced by the loop instead
        assert syncer.in_loop == 1
        assert any(f"syncer process {dying} replaced: it ended" in line for line in logged)
        # It died young: the loop syncs for itself for a moment, then a new child serves.
        deadline = time.monotonic() + 10
        while syncer.started < 2:
            assert time.monotonic() < deadline, "no new syncer"
            before: Answers = list(answers)
            syncer.sync([written], answers.append)
            run_until(reactor, lambda: len(answers) > len(before))  # noqa: B023 (run here)
            time.sleep(0.05)  # paced: the respawn pause is a second
        assert all(answer is None for answer in answers)
    finally:
        syncer.close()


class FakeLink:
    def __init__(self) -> None:
        self.answers: list[bool] = []

    def committed(self, durable: bool) -> None:
        self.answers.append(durable)


class CountingSyncer(Syncer):
    def __init__(self, reactor: Reactor) -> None:
        super().__init__(reactor)
        self.syncs = 0

    def sync(self, fds: Sequence[int], done: Callable[[OSError | None], None]) -> None:
        self.syncs += 1
        super().sync(fds, done)


def _record(n: int) -> TempIDRecord:
    start = datetime(2020, 5, 13, 17, 45, 6)
    return TempIDRecord(f"+6141000000{n}", TempIDWindow(f"{n:020d}", start, start + timedelta(1)))


def test_a_record_written_while_its_sync_is_in_flight_waits_for_the_next(
    reactor: Reactor, tmp_path: Path
) -> None:
    """A pipelined second TempID on a held connection is not covered by the
    sync in flight: the connection is held over, not released with it."""
    store = TempIDFile(tmp_path / "tempIDs.txt")
    syncer = CountingSyncer(reactor)
    group: GroupCommit[FakeLink] = GroupCommit(
        reactor, lambda: None, files=[store], syncer=syncer
    )
    try:
        syncer.start()
        assert syncer.pid is not None
        pipelined, other = FakeLink(), FakeLink()
        store.append(_record(1))
        group.hold(pipelined)
        os.kill(syncer.pid, signal.SIGSTOP)  # keep the first sync in flight
        run_until(reactor, lambda: group.in_flight)
        store.append(_record(2))  # the same connection's next TempID
        group.noticed(pipelined)
        group.noticed(other)  # wrote nothing: changes nothing
        os.kill(syncer.pid, signal.SIGCONT)
        run_until(reactor, lambda: syncer.syncs == 2)
        assert pipelined.answers == []  # not released by the first sync
        run_until(reactor, lambda: pipelined.answers != [])
        assert pipelined.answers == [True]
        assert syncer.syncs == 2
    finally:
        group.close()
        store.close()


def test_a_failed_sync_fails_its_batch(reactor: Reactor, tmp_path: Path) -> None:
    store = TempIDFile(tmp_path / "tempIDs.txt")
    syncer = Syncer(reactor, timeout=0.3)
    logged: list[str] = []
    group: GroupCommit[FakeLink] = GroupCommit(
        reactor, lambda: None, files=[store], syncer=syncer, log=logged.append
    )
    try:
        syncer.start()
        assert syncer.pid is not None
        os.kill(syncer.pid, signal.SIGSTOP)
        link = FakeLink()
        store.append(_record(1))
        group.hold(link)
        run_until(reactor, lambda: link.answers != [])
        assert link.answers == [False]
        assert any("did not confirm a sync within 0.3 s" in line for line in logged)
    finally:
        group.close()
        store.close()


# -- the server ---------------------------------------------------------------------


def syncers_of(server: ServerProcess) -> list[int]:
    """The pids of the server's live syncer processes."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read()
        except OSError:
            continue
        if (
            int(fields[1]) == server.proc.pid
            and fields[0] not in ("Z", "X")
            and b"bluetrace.runtime.syncer" in command
        ):
            found.append(int(entry))
    return found


def syncer_of(server: ServerProcess) -> int:
    """The pid of the server's one syncer process (polled: it starts with the server)."""
    assert wait_until(lambda: len(syncers_of(server)) == 1), "no syncer process"
    (pid,) = syncers_of(server)
    return pid


def _login(client: FrameClient, user: str, password: str) -> None:
    assert client.call(LoginRequest(user, password)) == LoginReply(LoginStatus.OK)


def test_a_stuck_syncer_fails_held_replies_without_freezing_the_server(tmp_path: Path) -> None:
    with running_server(tmp_path, "--sync-timeout", "1") as server:
        stuck = syncer_of(server)
        waiting = server.connect()
        _login(waiting, "+61410888888", "comp3331")
        os.kill(stuck, signal.SIGSTOP)
        try:
            waiting.send(TempIDRequest())
            # The loop is not waiting for the disk: another phone logs in meanwhile.
            other = server.connect()
            _login(other, "+61410999999", "bada4568")
            assert waiting.receive() == ErrorReply(
                ErrorCode.STORAGE, "the server could not record a TempID; try later"
            )
            server.stderr.wait_for(f"syncer process {stuck} replaced: a sync took over 1 s")
            assert wait_until(lambda: process_gone(stuck)), "the stuck syncer was not killed"
        finally:
            if not process_gone(stuck):
                os.kill(stuck, signal.SIGKILL)
        reply = other.call(TempIDRequest())  # a new syncer makes it durable
        assert isinstance(reply, TempIDReply)
        assert syncer_of(server) != stuck
    registry = TempIDRegistry()
    load_tempids(server.data_dir / "tempIDs.txt", registry)
    assert registry.get(reply.window.tempid) == "+61410999999"


def test_a_killed_syncer_is_replaced_and_tempids_stay_durable(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        first = syncer_of(server)
        client = server.connect()
        _login(client, "+61410888888", "comp3331")
        os.kill(first, signal.SIGKILL)
        server.stderr.wait_for(rf"syncer process {first} replaced: it ended")
        issued: list[str] = []
        deadline = time.monotonic() + WAIT
        while syncers_of(server) in ([], [first]):
            # Bounded: a replacement starts at the first sync after the respawn
            # pause; meanwhile the loop syncs for itself.
            assert time.monotonic() < deadline, "the killed syncer was not replaced"
            reply = client.call(TempIDRequest())
            assert isinstance(reply, TempIDReply)
            issued.append(reply.window.tempid)
            time.sleep(0.1)  # paced: the respawn pause is a second
        assert len(syncers_of(server)) == 1
        reply = client.call(TempIDRequest())
        assert isinstance(reply, TempIDReply)
        issued.append(reply.window.tempid)
        assert "Traceback" not in server.stderr.drain()
    registry = TempIDRegistry()
    load_tempids(server.data_dir / "tempIDs.txt", registry)
    assert all(registry.get(tempid) == "+61410888888" for tempid in issued)
