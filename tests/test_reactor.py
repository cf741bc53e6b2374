"""The loop itself: timers, call_soon, reader and writer callbacks, closes."""

import gc
import socket
import weakref

from bluetrace.runtime.reactor import Reactor
from bluetrace.runtime.transports import HIGH_WATER, Stream


class Kept:
    def method(self) -> None:
        pass


def test_a_cancelled_timer_lets_go_of_its_callback_and_the_heap_is_compacted() -> None:
    reactor = Reactor()
    kept = Kept()
    ref = weakref.ref(kept)
    handles = [reactor.call_later(120.0, kept.method) for _ in range(1000)]
    del kept
    for handle in handles:
        handle.cancel()
    gc.collect()
    assert ref() is None  # what the callback held is free at once, not in 120 s
    assert reactor.timers_pending < 2 * Reactor.COMPACT_MIN
    reactor.close()


def test_call_soon_runs_on_the_next_turn_never_inside_the_caller() -> None:
    reactor = Reactor()
    order: list[str] = []

    def first() -> None:
        order.append("first")
        reactor.call_soon(lambda: order.append("scheduled by first"))

    reactor.call_soon(first)
    assert order == []
    reactor.run_once(0)
    assert order == ["first"]
    reactor.run_once(0)
    assert order == ["first", "scheduled by first"]
    reactor.close()


def test_a_close_is_reported_on_the_next_turn() -> None:
    reactor = Reactor()
    a, b = socket.socketpair()
    closed: list[OSError | None] = []
    stream = Stream(reactor, a, lambda data: None, closed.append)
    stream.close()
    assert closed == []
    reactor.run_once(0)
    assert closed == [None]
    b.close()
    reactor.close()


def test_a_large_write_drains_through_the_writer_callback() -> None:
    """Regression: re-registering a writer (a new bound method each time) must
    not leave the loop calling the stale one, or nothing but the stale."""
    reactor = Reactor()
    a, b = socket.socketpair()
    received: list[int] = []
    sender = Stream(reactor, a, lambda data: None, lambda error: None)
    receiver = Stream(reactor, b, lambda data: received.append(len(data)), lambda error: None)
    size = 11 * HIGH_WATER
    sender.write(b"x" * size)
    for _ in range(5000):
        if sum(received) == size:
            break
        reactor.run_once(0.1)
    assert sum(received) == size
    assert sender.queued == 0
    sender.close()
    receiver.close()
    reactor.close()


def test_a_timer_days_away_does_not_overflow_the_wait() -> None:
    reactor = Reactor()
    reactor.call_later(10**9, lambda: None)
    assert reactor._timeout(None) == Reactor.MAX_WAIT
    reactor.close()
