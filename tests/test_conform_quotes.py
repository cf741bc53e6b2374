"""Every case quotes protocol_spec.md word for word.

A report shows a case's quote as the sentence the case checks, so a reader
must be able to find it in the specification. Only the layout is forgiven:
line breaks and runs of spaces, and the markdown around words (``*``,
backticks), which a plain-text quote cannot carry.
"""

import re
from pathlib import Path

import pytest

from bluetrace.conform.model import Case
from bluetrace.conform.modes import MODES

SPEC = Path(__file__).resolve().parent.parent / "protocol_spec.md"


def plain(text: str) -> str:
    """``text`` without markdown emphasis or code marks, its white space folded."""
    return " ".join(re.sub(r"[*`]", "", text).split())


SPEC_TEXT = plain(SPEC.read_text(encoding="utf-8"))
ALL_CASES: list[Case[object]] = [case for cases in MODES.values() for case in cases]


def test_plain_folds_layout_and_nothing_else() -> None:
    assert plain("a  **bold**\n`code`\tend") == "a bold code end"
    assert plain("TEMPID_REQUEST | LOGGED_IN") == "TEMPID_REQUEST | LOGGED_IN"


SAMPLE_SESSION = "(the assignment's sample session)"
"""How an untagged case names its source: it checks a text of the original
assignment's sample session, which protocol_spec.md does not repeat."""


@pytest.mark.parametrize("case", ALL_CASES, ids=[case.id for case in ALL_CASES])
def test_the_quote_is_in_the_specification(case: Case[object]) -> None:
    assert case.passages, f"{case.id} quotes nothing"
    assert case.quote == " ... ".join(case.passages)
    if not case.tags:
        assert case.quote.endswith(SAMPLE_SESSION), f"{case.id} names no tag and no source"
        return
    missing = [passage for passage in case.passages if plain(passage) not in SPEC_TEXT]
    assert missing == [], f"{case.id} quotes what protocol_spec.md does not say"
