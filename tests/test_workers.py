"""The worker processes: jobs answered in order of completion, a full queue
refused, a dead or stuck worker replaced and its job answered, all ended on close."""

import os
import signal
import time

import pytest

from bluetrace.runtime.reactor import Reactor
from bluetrace.runtime.workers import WorkerPool, run_job
from bluetrace.server import passwords

DEAR = passwords.hash_password("dearpass", n=2**17, r=8)
"""About 0.3 s of one worker: long enough to kill, stick or queue behind."""
CHEAP = passwords.hash_password("cheap", n=2**10)


def run_until(reactor: Reactor, condition: object, seconds: float = 20.0) -> None:
    """Loop turns until ``condition()`` holds (bounded in time)."""
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("the pool did not answer in time")
        reactor.run_once(max_wait=0.05)


@pytest.fixture
def reactor() -> Reactor:
    return Reactor()


def test_jobs_run_in_a_child_and_are_answered_never_inside_submit(reactor: Reactor) -> None:
    pool = WorkerPool(reactor, workers=2, queue_limit=8)
    try:
        replies: list[bytes | None] = []
        for typed in ("cheap", "wrong", "cheap"):
            request = passwords.verify_request(CHEAP, typed)
            assert pool.submit("scrypt_verify", request, replies.append)
        assert replies == []  # answered on a later turn
        run_until(reactor, lambda: len(replies) == 3)
        assert sorted(replies) == [b"0", b"1", b"1"]  # type: ignore[type-var]
        assert pool.started == 2
        pids = [worker.proc.pid for worker in pool._workers]
        assert os.getpid() not in pids
        assert run_job("scrypt_verify", passwords.verify_request(CHEAP, "cheap")) == b"1"
    finally:
        pool.close()


def test_a_full_queue_is_refused(reactor: Reactor) -> None:
    pool = WorkerPool(reactor, workers=1, queue_limit=2)
    try:
        replies: list[bytes | None] = []
        request = passwords.verify_request(DEAR, "x")
        accepted = [pool.submit("scrypt_verify", request, replies.append) for _ in range(4)]
        assert accepted == [True, True, True, False]  # one running, two waiting
        run_until(reactor, lambda: len(replies) == 3)
        assert replies == [b"0", b"0", b"0"]
    finally:
        pool.close()


def test_a_killed_worker_is_replaced_and_its_job_answered(reactor: Reactor) -> None:
    pool = WorkerPool(reactor, workers=1, queue_limit=4)
    try:
        replies: list[bytes | None] = []
        logged: list[str] = []
        pool.log = logged.append
        assert pool.submit("scrypt_verify", passwords.verify_request(DEAR, "x"), replies.append)
        (worker,) = pool._workers
        os.kill(worker.proc.pid, signal.SIGKILL)
        run_until(reactor, lambda: len(replies) == 1)
        assert replies == [None]
        assert any("replaced" in line for line in logged)
        # A worker killed young is replaced after a pause, then serves again.
        cheap = passwords.verify_request(CHEAP, "cheap")
        assert pool.submit("scrypt_verify", cheap, replies.append)
        run_until(reactor, lambda: len(replies) == 2)
        assert replies[1] == b"1"
        assert pool.started == 2
        run_until(reactor, lambda: worker.proc.poll() is not None)
    finally:
        pool.close()


def test_a_stuck_worker_is_killed_after_the_job_timeout(reactor: Reactor) -> None:
    pool = WorkerPool(reactor, workers=1, queue_limit=4, job_timeout=0.02)
    try:
        replies: list[bytes | None] = []
        assert pool.submit("scrypt_verify", passwords.verify_request(DEAR, "x"), replies.append)
        (worker,) = pool._workers
        run_until(reactor, lambda: len(replies) == 1)
        assert replies == [None]
        run_until(reactor, lambda: worker.proc.poll() is not None)
        assert worker.proc.returncode == -signal.SIGKILL
    finally:
        pool.close()


def test_close_answers_what_waits_and_ends_every_worker(reactor: Reactor) -> None:
    pool = WorkerPool(reactor, workers=2, queue_limit=8)
    replies: list[bytes | None] = []
    for _ in range(4):
        assert pool.submit("scrypt_verify", passwords.verify_request(DEAR, "x"), replies.append)
    procs = [worker.proc for worker in pool._workers]
    assert len(procs) == 2
    pool.close()
    assert replies == [None] * 4
    assert all(proc.poll() is not None for proc in procs)
    assert not pool.submit("scrypt_verify", b"", replies.append)


def test_a_kind_outside_the_table_is_refused_before_any_process_sees_it(
    reactor: Reactor,
) -> None:
    pool = WorkerPool(reactor)
    try:
        with pytest.raises(KeyError):
            pool.submit("subprocess:run", b"touch x", lambda reply: None)
        assert pool.started == 0
    finally:
        pool.close()
