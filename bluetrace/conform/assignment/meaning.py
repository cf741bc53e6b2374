"""What a terminal said, by meaning rather than by exact text.

The assignment "does not mandate the exact text" of any message, so the
grader looks for the words that carry the meaning, case-insensitively, with
punctuation and line breaks free: "Invalid Password. Please try again" and
"wrong password, try again!" both say that a password was refused.
"""

import re

WELCOME = re.compile(r"welcome|logged in|login successful|successfully logged|log ?in ok",
                     re.IGNORECASE)
BLOCKED = re.compile(r"block", re.IGNORECASE)
REFUSED = re.compile(r"invalid|incorrect|wrong|fail|denied|not match|try again|mismatch",
                     re.IGNORECASE)
UNKNOWN_USER = re.compile(
    r"invalid|incorrect|wrong|unknown|not (?:found|exist|registered|a valid|valid)|"
    r"does ?n[o']t exist|no such|try again|username|error|fail",
    re.IGNORECASE)
NO_SUCH_USER = re.compile(r"unknown|not (?:found|exist|registered)|does ?n[o']t exist|no such",
                          re.IGNORECASE)
ERROR = re.compile(r"error|invalid|unknown|not (?:a )?(?:valid|recogni[sz]ed|supported)|"
                   r"unrecogni[sz]ed|unsupported|bad command|no such command", re.IGNORECASE)
PASSWORD_PROMPT = re.compile(r"pass", re.IGNORECASE)
USER_PROMPT = re.compile(r"user|name|phone|login|id\b", re.IGNORECASE)
LOGOUT = re.compile(r"log ?(?:ged )?out|log-out|bye|disconnect|exit|left", re.IGNORECASE)
INVALID_BEACON = re.compile(r"invalid|expired|not valid|outdated|out of date|reject",
                            re.IGNORECASE)
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|Exception in thread|"
                       r"^\w+(?:\.\w+)*(?:Error|Exception): ", re.MULTILINE)
TEMPID = re.compile(r"(?<!\d)\d{20}(?!\d)")
STAMP = re.compile(r"(?<!\d)\d\d/\d\d/\d{4}\s+\d\d:\d\d:\d\d(?!\d)")


_TRACE_BLOCK = re.compile(
    r"(?:Exception in thread[^\n]*\n)?Traceback \(most recent call last\):\n"
    r"(?:[ \t][^\n]*\n|\n)*[^\n]*(?:\n|$)")


def without_tracebacks(text: str) -> str:
    """The text with Python tracebacks cut out: a value quoted in a crash
    report ("KeyError: '1234...'") is not the program showing it."""
    return _TRACE_BLOCK.sub("", text)


def tempids(text: str) -> list[str]:
    return TEMPID.findall(text)


def squeeze(text: str) -> str:
    """Line breaks and runs of white space as one space."""
    return " ".join(text.split())


def excerpt(text: str, lines: int = 12, width: int = 160) -> str:
    """The last ``lines`` non-blank lines, each cut to ``width``: evidence
    short enough to read in a report."""
    shown = [line[:width] for line in text.splitlines() if line.strip()]
    if not shown:
        return "(nothing)"
    more = len(shown) - lines
    head = [f"... {more} earlier lines"] if more > 0 else []
    return "\n".join(head + shown[-lines:])


def near(text: str, first: str, second: str, span: int = 200) -> bool:
    """``first`` and ``second`` both occur within ``span`` characters."""
    for match in re.finditer(re.escape(first), text):
        window = text[max(0, match.start() - span): match.end() + span]
        if second in window:
            return True
    return False
