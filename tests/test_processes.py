"""stop_process: SIGTERM, a bounded grace, SIGKILL to whatever is left, reaped."""

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bluetrace.bench.processes import wait_until
from bluetrace.runtime.processes import stop_process

IGNORE_TERM = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); "


def gone(pid: int) -> bool:
    """No such process, or only its zombie left for someone else to reap."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2] == "Z"


Started = list["subprocess.Popen[bytes]"]


@pytest.fixture
def started() -> Iterator[Started]:
    procs: Started = []
    yield procs
    for proc in procs:  # whatever a failing test left behind, its group included
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def python(code: str, procs: Started) -> tuple["subprocess.Popen[bytes]", str]:
    """``code`` in its own session, and the line it prints once it is set up
    (its signal handlers in place)."""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            start_new_session=True)
    procs.append(proc)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    assert line
    return proc, line


STUBBORN = IGNORE_TERM + "import time; print('up', flush=True); time.sleep(60)"
"""A program that ignores SIGTERM."""


def parent_of_stubborn(*, own_session: bool) -> str:
    """A program that starts a STUBBORN child and prints its pid once the child
    ignores SIGTERM."""
    return ("import subprocess, sys, time; "
            f"c = subprocess.Popen([sys.executable, '-c', {STUBBORN!r}], "
            f"stdout=subprocess.PIPE, start_new_session={own_session}); "
            "c.stdout.readline(); print(c.pid, flush=True); time.sleep(60)")


def test_a_program_that_ends_on_sigterm_gets_no_sigkill(started: Started) -> None:
    proc, _ = python("import time; print('up', flush=True); time.sleep(60)", started)
    assert stop_process(proc, grace=5.0) == -signal.SIGTERM


def test_a_program_that_ignores_sigterm_is_killed_and_reaped(started: Started) -> None:
    proc, _ = python(STUBBORN, started)
    assert stop_process(proc, group=False, grace=0.3) == -signal.SIGKILL
    assert gone(proc.pid)


def test_what_is_left_of_the_group_is_killed_after_its_leader_ends(started: Started) -> None:
    proc, line = python(parent_of_stubborn(own_session=False), started)
    grandchild = int(line)
    assert stop_process(proc, grace=0.5) == -signal.SIGTERM
    assert wait_until(lambda: gone(grandchild), timeout=5.0)


def test_also_ends_a_descendant_that_left_the_group(started: Started) -> None:
    proc, line = python(parent_of_stubborn(own_session=True), started)
    away = int(line)
    try:
        assert stop_process(proc, grace=0.5, also=[proc.pid, away]) == -signal.SIGTERM
        assert wait_until(lambda: gone(away), timeout=5.0)
    finally:
        if not gone(away):
            os.kill(away, signal.SIGKILL)


def test_group_needs_a_process_that_leads_its_group() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(ValueError, match="does not lead its own process group"):
            stop_process(proc)
    finally:
        assert stop_process(proc, group=False, grace=5.0) == -signal.SIGTERM
