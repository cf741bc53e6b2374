"""Running cases: timeouts, repeats, exclusions and the outcome of each.

Cases run one after another in the order their mode lists them, each with
its own deadline (the per-case timeout plus what the case itself needs).
"""

import argparse
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bluetrace.conform.launch import end_all
from bluetrace.conform.model import (
    Case,
    CaseContext,
    CaseFailed,
    CaseInfo,
    CaseNonStrict,
    CaseNotApplicable,
    CaseSetupError,
    CaseSkipped,
    CaseUnsupported,
    Outcome,
    Result,
)


@dataclass
class RunOptions:
    timeout: float = 2.0
    repeat: int = 1
    strict: bool = False
    exclusions: dict[str, str] = field(default_factory=dict)
    select: tuple[str, ...] = ()
    """Case-ID prefixes to run (all when empty)."""


def options_from_values(args: argparse.Namespace) -> RunOptions:
    """The run options of a parsed command line."""
    exclusions = read_exclusions(args.exclude) if args.exclude else {}
    return RunOptions(timeout=args.timeout, repeat=args.repeat, strict=args.strict,
                      exclusions=exclusions, select=tuple(args.case))


def selected(cases: Sequence[Case[Any]], prefixes: Sequence[str]) -> list[Case[Any]]:
    if not prefixes:
        return list(cases)
    return [case for case in cases if any(_matches(case.id, p) for p in prefixes)]


def _matches(case_id: str, prefix: str) -> bool:
    return case_id.startswith(prefix)


def read_exclusions(path: Path) -> dict[str, str]:
    """``<case-id> <reason>`` per line; ``#`` starts a comment. A line without
    a reason is refused: an exclusion must say why."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseSetupError(f"cannot read the exclusion file {path}: {exc}") from None
    found: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        case_id, _, reason = line.partition(" ")
        if not reason.strip():
            raise CaseSetupError(f"{path}:{number}: '{case_id}' needs a reason after the case ID")
        found[case_id] = reason.strip()
    return found


def run_once(case: Case[Any], target: Any, options: RunOptions) -> Result:
    ctx = CaseContext(options.timeout, case.budget)
    started = time.monotonic()
    outcome, actual, reason = Outcome.PASS, "", ""
    try:
        case.run(target, ctx)
    except CaseNonStrict as exc:
        outcome, actual = Outcome.NON_STRICT, exc.actual
    except CaseFailed as exc:
        outcome, actual = Outcome.FAIL, exc.actual
    except CaseSkipped as exc:
        outcome, reason = Outcome.SKIPPED, str(exc)
    except CaseUnsupported as exc:
        outcome, reason = Outcome.UNSUPPORTED, str(exc)
    except CaseInfo as exc:
        outcome, actual = Outcome.INFO, str(exc)
    except CaseNotApplicable as exc:
        outcome, reason = Outcome.NOT_APPLICABLE, str(exc)
    except CaseSetupError:
        raise
    except Exception as exc:  # a kit bug is reported as ERROR, not raised
        outcome = Outcome.ERROR
        actual = f"the kit failed: {type(exc).__name__}: {exc}"
        reason = traceback.format_exc(limit=4)
    if outcome is Outcome.PASS and ctx.notes:
        actual = "; ".join(ctx.notes)
    elif ctx.notes and outcome is not Outcome.PASS:
        actual = f"{actual} (seen: {'; '.join(ctx.notes)})"
    return Result(
        case_id=case.id,
        tags=case.tags,
        quote=case.quote,
        expected=case.expected,
        level=case.level,
        outcome=outcome,
        actual=actual,
        reason=reason,
        seconds=time.monotonic() - started,
        wire=ctx.log.render() if outcome is not Outcome.PASS else "",
    )


def run_case(case: Case[Any], target: Any, options: RunOptions) -> Result:
    """One case, ``--repeat`` times. Runs that were skipped (a case that stops
    the server, or spends a limit, cannot run twice) do not make it FLAKY;
    a pass mixed with any other graded outcome does."""
    runs = [run_once(case, target, options) for _ in range(max(1, options.repeat))]
    graded = [r for r in runs if r.outcome not in _NOT_GRADED] or runs
    result = next((r for r in graded if r.outcome is not Outcome.PASS), graded[0])
    outcomes = {r.outcome for r in graded}
    if len(runs) > 1:
        result.runs = [r.outcome.value for r in runs]
        result.seconds = sum(r.seconds for r in runs)
        if Outcome.PASS in outcomes and len(outcomes) > 1:
            result.outcome = Outcome.FLAKY
            result.reason = f"outcomes over {len(runs)} runs: {', '.join(result.runs)}"
    if options.strict and result.outcome is Outcome.NON_STRICT:
        result.outcome = Outcome.FAIL
        result.reason = "a SHOULD was missed, and --strict counts it"
    exclusion = options.exclusions.get(case.id)
    if exclusion is not None and result.outcome in (
        Outcome.FAIL, Outcome.ERROR, Outcome.FLAKY, Outcome.NON_STRICT
    ):
        result.reason = f"excluded: {exclusion} (was {result.outcome.value})"
        result.outcome = Outcome.EXCLUDED
    elif exclusion is not None:
        result.reason = f"excluded ({exclusion}) but it did not fail"
    return result


_NOT_GRADED = frozenset({Outcome.SKIPPED, Outcome.UNSUPPORTED, Outcome.NOT_APPLICABLE})


def run_cases(
    cases: Sequence[Case[Any]], target: Any, options: RunOptions
) -> list[Result]:
    """Every selected case in order. On Ctrl-C every program the kit started
    is ended, with all it started, before the interrupt goes on."""
    try:
        return [run_case(case, target, options) for case in selected(cases, options.select)]
    except KeyboardInterrupt:
        end_all()
        raise
