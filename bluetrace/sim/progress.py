"""A progress bar over simulated time (rich, on stderr, only when stderr is a terminal)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bluetrace.sim.result import Progress, no_progress


class Bars:
    """Hands out one progress callback per labelled run; silent when not a tty."""

    def __init__(self, progress: Any) -> None:
        self._progress = progress

    def __call__(self, label: str) -> Progress:
        """A callback (simulated seconds done, total) that drives a bar named ``label``."""
        if self._progress is None:
            return no_progress
        bar = self._progress
        task = bar.add_task(label, total=1.0)

        def update(done: float, total: float) -> None:
            bar.update(task, completed=done / total if total > 0 else 1.0)

        return update


@contextmanager
def progress_bars(enabled: bool | None = None) -> Iterator[Bars]:
    """Bars on stderr if ``enabled`` (default: stderr is a terminal)."""
    on = sys.stderr.isatty() if enabled is None else enabled
    if not on:
        yield Bars(None)
        return
    from rich.console import Console  # noqa: PLC0415 (only needed on a terminal)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: PLC0415

    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("simulated time"),
        TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
        console=Console(stderr=True), transient=True,
    ) as bar:
        yield Bars(bar)


@contextmanager
def step(label: str, enabled: bool | None = None) -> Iterator[None]:
    """Say on stderr that a long step is running: a spinner with the elapsed time on
    a terminal (rich), else one line when it starts and one with its time when it
    ends, so that ``make investigate`` or a benchmark never waits without a word."""
    on = sys.stderr.isatty() if enabled is None else enabled
    started = time.perf_counter()
    if on:
        from rich.console import Console  # noqa: PLC0415 (only needed on a terminal)
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn  # noqa: PLC0415

        with Progress(SpinnerColumn(), TextColumn(label), TimeElapsedColumn(),
                      console=Console(stderr=True), transient=True) as bar:
            bar.add_task(label, total=None)
            yield
    else:
        print(f"{label} ...", file=sys.stderr, flush=True)
        yield
    print(f"{label}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
