"""Cases, outcomes and results: the vocabulary every mode shares.

A case is a function plus what a reader of a report needs without opening the
code: the statement tags it checks, the sentence it quotes and every outcome
the specification allows. A case signals anything but a pass by raising one
of the ``Case*`` exceptions below, so its body reads as the protocol steps.
"""

import enum
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from bluetrace.conform.wirelog import WireLog


class Outcome(enum.Enum):
    PASS = "PASS"  # noqa: S105 - an outcome, not a password
    NON_STRICT = "NON-STRICT"
    """A SHOULD-level statement was missed (a failure only with --strict)."""
    FAIL = "FAIL"
    INFO = "INFO"
    """Observed behaviour the specification leaves open, reported for reading."""
    SKIPPED = "SKIPPED"
    UNSUPPORTED = "UNSUPPORTED"
    """The target lacks something the case needs (a file, an option)."""
    ERROR = "ERROR"
    """The kit itself could not run the case (not the target's fault)."""
    FLAKY = "FLAKY"
    """With --repeat: the case passed on some runs and not on others."""
    EXCLUDED = "EXPECTED-FAIL"
    """Listed in the --exclude file and did not pass: shown, not counted."""
    NOT_APPLICABLE = "N/A"
    """A check this case builds on did not pass, so it could not be graded."""


PARSER_INTERNALS = re.compile(
    r"parsing|parsed|\(field|->|Error in path|[Cc]onstruct|Terminated|Container|"
    r"Traceback|Exception|[A-Z][a-z]+Error\b|expected .* but")
"""What a text for people must not show (section 3.6): a parser's field paths,
exception names, expected and parsed values."""

FAILING = frozenset({Outcome.FAIL, Outcome.ERROR, Outcome.FLAKY})


class CaseFailed(Exception):  # noqa: N818 - named for the outcome it reports
    """The target broke the statement: ``actual`` says what it did instead."""

    def __init__(self, actual: str) -> None:
        super().__init__(actual)
        self.actual = actual


class CaseNonStrict(CaseFailed):
    """A SHOULD was missed."""


class CaseSkipped(Exception):  # noqa: N818 - named for the outcome it reports
    """The case cannot run with the options given; the message is the reason."""


class CaseUnsupported(Exception):  # noqa: N818 - named for the outcome it reports
    """The target does not offer what the case needs."""


class CaseNotApplicable(Exception):  # noqa: N818 - named for the outcome it reports
    """A prerequisite did not pass: the message names it."""


class CaseInfo(Exception):  # noqa: N818 - named for the outcome it reports
    """Nothing to grade: the message is what was observed."""


class CaseSetupError(Exception):
    """The kit cannot reach or start the target at all (exit status 2)."""


TargetT = TypeVar("TargetT")


@dataclass(frozen=True)
class Case(Generic[TargetT]):
    id: str
    """``<mode>/<spec section>/<name>``: sorted and selected by prefix."""
    tags: tuple[str, ...]
    quote: str
    """What the case checks in the specification's words, as a report shows it:
    its passages joined by `` ... ``."""
    expected: tuple[str, ...]
    """Every outcome the specification allows, in words."""
    run: Callable[[TargetT, "CaseContext"], None]
    level: str = "MUST"
    budget: float = 0.0
    """Seconds the case needs beyond the per-case timeout (a linger, a retention)."""
    passages: tuple[str, ...] = ()
    """The quote's passages, each word for word from protocol_spec.md (only its
    markdown marks left out), so a reader finds them there; several when the
    sentences a case checks do not stand together."""


Run = Callable[[TargetT, "CaseContext"], None]


class Registry(Generic[TargetT]):
    """One mode's cases, in the order they run; used as a decorator:
    ``@case("3.2/login-ok", tags, quote, expected)`` above the case's function.
    ``quote`` is one passage of the specification or a tuple of them."""

    def __init__(self, mode: str, extra_budget: float = 0.0) -> None:
        self.mode = mode
        self.extra_budget = extra_budget
        self.cases: list[Case[TargetT]] = []

    def __call__(
        self,
        case_id: str,
        tags: tuple[str, ...],
        quote: str | tuple[str, ...],
        expected: tuple[str, ...],
        *,
        level: str = "MUST",
        budget: float = 0.0,
    ) -> Callable[[Run[TargetT]], Run[TargetT]]:
        passages = (quote,) if isinstance(quote, str) else quote

        def register(run: Run[TargetT]) -> Run[TargetT]:
            self.cases.append(Case(f"{self.mode}/{case_id}", tags, " ... ".join(passages),
                                   expected, run, level, budget + self.extra_budget, passages))
            return run

        return register


@dataclass
class CaseContext:
    """What one run of one case owns: its deadline and its wire log."""

    timeout: float
    budget: float
    log: WireLog = field(default_factory=WireLog)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.timeout + self.budget

    def remaining(self, cap: float | None = None) -> float:
        """Seconds left for a wait, never more than ``cap``; fails the case
        when the whole case has run out of time."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise CaseFailed("the case ran out of time")
        return left if cap is None else min(left, cap)


@dataclass
class Result:
    case_id: str
    tags: tuple[str, ...]
    quote: str
    expected: tuple[str, ...]
    level: str
    outcome: Outcome
    actual: str = ""
    reason: str = ""
    seconds: float = 0.0
    wire: str = ""
    runs: list[str] = field(default_factory=list)
    """With --repeat: the outcome of each run."""

    @property
    def failed(self) -> bool:
        return self.outcome in FAILING


def bounded_wait(condition: Callable[[], bool], seconds: float, step: float = 0.02) -> bool:
    """Poll ``condition`` until it holds or ``seconds`` pass: a bounded wait
    on a condition, never a bare sleep."""
    end = time.monotonic() + seconds
    while True:
        if condition():
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(min(step, max(0.0, end - time.monotonic())))
