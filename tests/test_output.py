"""LineOutput: terminal and log text that never holds the loop up.

A large report (a 200,000-entry contact check prints megabytes) must go out
over several loop turns, a bounded amount each, whole and in order.
"""

import contextlib
import os
import time
from pathlib import Path

from bluetrace.runtime.output import MAX_WRITE_PER_TURN, LineOutput
from bluetrace.runtime.reactor import Reactor

MAX_TURNS = 1000


def _lines(count: int) -> list[str]:
    return [f"line {i:07d} " + "x" * 50 for i in range(count)]


def test_a_large_report_to_a_file_goes_out_a_bounded_amount_per_turn(tmp_path: Path) -> None:
    path = tmp_path / "stdout.txt"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    reactor = Reactor(time.monotonic)
    out = LineOutput(reactor, fd, "stdout", max_buffer=16 * MAX_WRITE_PER_TURN)
    lines = _lines(60_000)  # about 3.7 MiB
    out.write("\n".join(lines) + "\n")
    sizes = []
    for _ in range(MAX_TURNS):
        reactor.run_once(max_wait=0)
        sizes.append(path.stat().st_size)
        if out.pending == 0:
            break
    out.close()
    reactor.close()
    os.close(fd)
    total = len("\n".join(lines)) + 1
    assert path.read_text().splitlines() == lines
    # never more than the allowance (at most 1 MiB) in one turn: several turns
    assert MAX_WRITE_PER_TURN <= 1 << 20
    steps = [b - a for a, b in zip([0, *sizes], sizes, strict=False)]
    assert max(steps) <= MAX_WRITE_PER_TURN
    assert len([s for s in steps if s > 0]) >= total // (1 << 20)


def test_a_large_report_through_a_pipe_arrives_whole(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    reactor = Reactor(time.monotonic)
    out = LineOutput(reactor, write_end, "stdout", max_buffer=16 * MAX_WRITE_PER_TURN)
    lines = _lines(40_000)
    out.write_line("\n".join(lines))
    received = bytearray()
    for _ in range(MAX_TURNS * 10):
        reactor.run_once(max_wait=0)
        with contextlib.suppress(BlockingIOError):
            received += os.read(read_end, 1 << 20)
        if out.pending == 0 and len(received) >= len("\n".join(lines)) + 1:
            break
    out.close()
    reactor.close()
    os.close(write_end)
    os.close(read_end)
    assert received.decode().splitlines() == lines


def test_a_text_larger_than_the_buffer_is_not_blamed_on_the_reader(tmp_path: Path) -> None:
    """Issue 20, item 11: a report over the buffer was dropped, and the next
    line said the stream "was not being read" although it was."""
    path = tmp_path / "stdout.txt"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    reactor = Reactor(time.monotonic)
    out = LineOutput(reactor, fd, "stdout", max_buffer=64 * 1024)
    out.write_line("\n".join(_lines(2_000)))  # about 120 KiB
    out.write_line("next")
    for _ in range(MAX_TURNS):
        reactor.run_once(max_wait=0)
        if out.pending == 0:
            break
    out.close()
    reactor.close()
    os.close(fd)
    shown = path.read_text()
    assert "not being read" not in shown
    assert shown.startswith("[2,000 lines dropped: one report of ")
    assert "larger than the 65,536-byte stdout buffer]\n" in shown
    assert shown.endswith("next\n")
