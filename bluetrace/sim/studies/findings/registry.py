"""The page's entries: what an investigation is, what it returns, and the registry.

Each investigation is an entry in ``REGISTRY``: a question, the command that
reproduces it, and a function that runs it and returns the finding (sentences
built from the numbers it measured, figures, a table and the raw numbers as
JSON). Investigations that need parts not built yet are registered with
``run=None`` and a note of what they wait for, so the page shows the gap
instead of a made-up result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Options:
    """How an investigation runs: quick (for a look, or tests) or full (for the page)."""

    quick: bool
    figures: Path  # where figures go; the page links them as figures/<name>
    workers: int | None = 1


@dataclass
class Finding:
    """What an investigation found, ready for the page."""

    text: str  # a sentence or two, built from the measured numbers
    figures: list[str] = field(default_factory=list)  # file names inside the figures folder
    table: str = ""  # markdown
    details: str = ""  # markdown shown after the table
    data: dict[str, object] = field(default_factory=dict)  # saved as figures/<key>.json


@dataclass(frozen=True)
class Investigation:
    """One entry of the page. ``run`` None means: registered, waiting for ``pending``."""

    key: str
    title: str
    question: str
    command: str
    run: Callable[[Options], Finding] | None
    pending: str = ""


REGISTRY: list[Investigation] = []


def register(inv: Investigation) -> Investigation:
    if any(i.key == inv.key for i in REGISTRY):
        raise ValueError(f"investigation {inv.key!r} registered twice")
    if (inv.run is None) == (not inv.pending):
        raise ValueError(f"investigation {inv.key!r}: give run or pending, not both or neither")
    REGISTRY.append(inv)
    return inv
