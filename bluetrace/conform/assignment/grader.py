"""Running the groups of checks, for one submission or a class of them.

Each (submission, group) pair is one task; tasks run side by side in worker
processes (``--jobs``), each with its own ports and folders, so one
submission's 3-minute removal wait overlaps everything else. A worker ends
its programs when its group ends, also on Ctrl-C; the main process then
sweeps for anything still carrying the run's marker.
"""

import contextlib
import multiprocessing
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

from bluetrace.conform.assignment import meaning
from bluetrace.conform.assignment.checks import (
    CHECKS,
    GROUPS,
    ORDER,
    PREREQUISITES,
    STARTS_ITSELF,
)
from bluetrace.conform.assignment.session import (
    Failed,
    Group,
    Inconclusive,
    Settings,
)
from bluetrace.conform.assignment.submission import Submission
from bluetrace.conform.model import (
    Case,
    CaseContext,
    CaseFailed,
    CaseInfo,
    CaseNotApplicable,
    CaseSetupError,
    CaseSkipped,
    Outcome,
    Result,
)

CASES: dict[str, Case[Group]] = {case.id.split("/", 1)[1]: case for case in CHECKS}
GRADED = frozenset({Outcome.PASS, Outcome.INFO})


@dataclass
class GroupRun:
    submission: str
    group: str
    results: list[Result] = field(default_factory=list)
    setup_error: str | None = None


def _result(case: Case[Group], outcome: Outcome, actual: str = "", reason: str = "",
            seconds: float = 0.0) -> Result:
    return Result(case_id=case.id, tags=case.tags, quote=case.quote, expected=case.expected,
                  level=case.level, outcome=outcome, actual=actual, reason=reason,
                  seconds=seconds)


def run_check(case: Case[Group], g: Group, done: dict[str, Result],
              blocked: str | None) -> Result:
    """One check: N/A when what it builds on did not pass, else its outcome
    with the evidence of a FAIL in ``reason``."""
    name = case.id.split("/", 1)[1]
    if blocked is not None:
        return _result(case, Outcome.NOT_APPLICABLE, reason=blocked)
    for need in PREREQUISITES[name]:
        before = done[need]
        if before.outcome is Outcome.SKIPPED:
            return _result(case, Outcome.SKIPPED, reason=before.reason)
        if before.outcome not in GRADED:
            return _result(case, Outcome.NOT_APPLICABLE,
                           reason=f"needs assignment/{need}, which was {before.outcome.value}")
    ctx = CaseContext(g.settings.timeout, case.budget)
    started = time.monotonic()
    outcome, actual, reason = Outcome.PASS, "", ""
    try:
        case.run(g, ctx)
    except Failed as exc:
        outcome, actual, reason = Outcome.FAIL, exc.actual, exc.evidence
    except CaseFailed as exc:
        outcome, actual = Outcome.FAIL, exc.actual
    except CaseNotApplicable as exc:
        outcome, reason = Outcome.NOT_APPLICABLE, str(exc)
    except CaseSkipped as exc:
        outcome, reason = Outcome.SKIPPED, str(exc)
    except CaseInfo as exc:
        outcome, actual = Outcome.INFO, str(exc)
    except Inconclusive as exc:
        outcome, actual = Outcome.ERROR, str(exc)
    except CaseSetupError:
        raise
    except Exception as exc:  # a grader bug is an ERROR of this check, not a crash
        outcome = Outcome.ERROR
        actual = f"the grader failed: {type(exc).__name__}: {exc}"
        reason = traceback.format_exc(limit=4)
    if ctx.notes:
        actual = "; ".join(filter(None, [actual, *ctx.notes]))
    return _result(case, outcome, actual, reason, time.monotonic() - started)


def run_group(submission: Submission, settings: Settings, group: str) -> GroupRun:
    """Every check of one group against a fresh server; never raises."""
    run = GroupRun(submission.name, group)
    cases = [CASES[name] for name in GROUPS[group]]
    if group == "removal" and settings.quick:
        run.results = [_result(case, Outcome.SKIPPED, reason="--quick skips the 3-minute wait")
                       for case in cases]
        return run
    g = Group(submission, settings, group)
    done: dict[str, Result] = {}
    try:
        blocked = None
        if group not in STARTS_ITSELF:
            try:
                g.start_server()
            except CaseFailed as exc:
                blocked = f"the server did not start ({exc.actual}); see assignment/start"
        for case in cases:
            done[case.id.split("/", 1)[1]] = run_check(case, g, done, blocked)
    except CaseSetupError as exc:
        run.setup_error = str(exc)
    except Exception as exc:  # a grader bug in set-up: the group's checks are ERROR
        run.setup_error = f"the grader failed: {type(exc).__name__}: {exc}"
    finally:
        g.close()
    run.results = list(done.values())
    return run


@dataclass
class Cell:
    """One interop pair: a client of ``sender`` beacons a client of ``receiver``."""

    sender: str
    receiver: str
    verdict: str
    """stored, shown (on the terminal, not stored), nothing, crashed, or n/a."""
    detail: str = ""


def run_pair(sender: Submission, receiver: Submission, settings: Settings) -> Cell:
    """The sender's client (logged in to its own server, holding a TempID)
    beacons the receiver's client (logged in to its own server)."""
    tx = Group(sender, settings, f"interop-to-{receiver.name}")
    rx = Group(receiver, settings, f"interop-from-{sender.name}")
    try:
        try:
            rx.start_server()
            listener = rx.login("client-r", "+61410777777")
            tx.start_server()
            talker = tx.login("client-p", "+61410888888")
            tempid = tx.download(talker)
        except (CaseFailed, CaseNotApplicable) as exc:
            return Cell(sender.name, receiver.name, "n/a", f"set-up: {exc}")
        tx.programs.append(listener)
        heard = listener.term.mark()
        tx.command(talker, f"Beacon 127.0.0.1 {listener.udp}")
        stored = tx.wait(lambda: bool(rx.files_holding(listener, tempid)),
                         settings.timeout)
        tx.settle(listener, 0.3, 1.0)
        tx.programs.remove(listener)
        said = listener.term.since(heard)
        if stored:
            return Cell(sender.name, receiver.name, "stored")
        if not listener.term.alive() or meaning.TRACEBACK.search(said):
            return Cell(sender.name, receiver.name, "crashed", meaning.excerpt(said, 4))
        if tempid in said or "valid" in said.lower():
            return Cell(sender.name, receiver.name, "shown", meaning.excerpt(said, 4))
        return Cell(sender.name, receiver.name, "nothing")
    except CaseSetupError as exc:
        return Cell(sender.name, receiver.name, "refused", str(exc))
    finally:
        tx.close()
        rx.close()


def groups_for(prefixes: Sequence[str]) -> list[str]:
    """The groups holding a selected check (a group runs whole: its checks
    build on each other)."""
    wanted = [name for name in ORDER if _selected(name, prefixes)]
    return [group for group in GROUPS if any(name in GROUPS[group] for name in wanted)]


def _selected(name: str, prefixes: Sequence[str]) -> bool:
    return not prefixes or any(f"assignment/{name}".startswith(p) for p in prefixes)


def ordered(results: Iterable[Result], prefixes: Sequence[str]) -> list[Result]:
    """The selected results in the order of the checks' list."""
    by_name = {r.case_id.split("/", 1)[1]: r for r in results}
    return [by_name[name] for name in ORDER if name in by_name and _selected(name, prefixes)]


Task = tuple[str, Callable[..., object], tuple[object, ...]]


def run_tasks(tasks: Sequence[Task], jobs: int,
              on_done: Callable[[str, object], None] | None = None) -> dict[str, object]:
    """Run the tasks, ``jobs`` at a time in worker processes (inline when
    ``jobs`` is 1); results by task key."""
    found: dict[str, object] = {}
    if jobs <= 1:
        for key, function, args in tasks:
            found[key] = function(*args)
            if on_done is not None:
                on_done(key, found[key])
        return found
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context)
    try:
        futures: dict[Future[object], str] = {
            pool.submit(function, *args): key for key, function, args in tasks}
        pending = set(futures)
        while pending:
            finished = {f for f in pending if f.done()}
            for future in finished:
                found[futures[future]] = future.result()
                if on_done is not None:
                    on_done(futures[future], found[futures[future]])
            pending -= finished
            if pending:
                time.sleep(0.1)
    except KeyboardInterrupt:
        _interrupt_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return found


def _interrupt_workers(pool: ProcessPoolExecutor) -> None:
    """Ctrl-C reaches the workers too when typed at a terminal, but not when
    only this process was signalled: pass it on, so each worker ends its
    programs, and give them a few seconds (the caller's sweep ends the rest)."""
    workers = list(getattr(pool, "_processes", {}).values())
    for worker in workers:
        with contextlib.suppress(OSError, AttributeError):
            os.kill(worker.pid, signal.SIGINT)
    end = time.monotonic() + 5.0
    for worker in workers:
        worker.join(max(0.0, end - time.monotonic()))
        if worker.is_alive():
            worker.terminate()


def progress(key: str, value: object) -> None:
    """A line on stderr as each task ends, so a long run shows it is alive."""
    with contextlib.suppress(OSError):
        print(f"bluetrace-conform: done {key}", file=sys.stderr, flush=True)

