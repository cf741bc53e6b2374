"""A phone's contact log on disk (``<username>_contactlog.txt``): one line
per beacon kept, ``<TempID> <start> <expiry>`` as the specification shows it.

The phone's own record format, apart from the server's (``server.records``):
a phone never reads the server's files, nor the server the phone's.
"""

from pathlib import Path

from bluetrace.protocol.errors import LocalProtocolError
from bluetrace.protocol.messages import TempIDWindow
from bluetrace.runtime.storage import read_regular, split_lines

BAD_LINES_SHOWN = 5
"""Bad lines named one by one at login; the rest are counted in one line,
so a damaged file cannot flood the terminal (or memory) with notes."""


def contact_line(window: TempIDWindow) -> str:
    """The log line of one kept beacon."""
    return " ".join(window.fields_text())


def parse_contact_line(line: str) -> TempIDWindow:
    """One contact-log line; ValueError (with the reason) if it is not one.
    The window keeps the line's texts (no datetime is built unless asked)."""
    tempid, sep, rest = line.partition(" ")
    if not sep or len(rest) != 39 or rest[19] != " ":
        raise ValueError("expected '<TempID> <start> <expiry>'")
    try:
        return TempIDWindow.from_text(tempid, rest[:19], rest[20:])
    except LocalProtocolError as exc:
        raise ValueError(str(exc)) from None


def load_contact_log(path: Path) -> tuple[list[TempIDWindow], list[str]]:
    """Entries already in a contact log, and notes on the lines skipped: the
    first BAD_LINES_SHOWN by name, then one that counts the rest."""
    try:
        data = read_regular(path)
    except FileNotFoundError:
        return [], []
    entries: list[TempIDWindow] = []
    problems: list[str] = []
    more = 0
    for number, raw in enumerate(split_lines(data), start=1):
        if not raw.strip():
            continue
        try:
            entries.append(parse_contact_line(raw.decode("utf-8")))
        except ValueError as exc:  # UnicodeDecodeError included
            if len(problems) < BAD_LINES_SHOWN:
                problems.append(f"{path.name}:{number}: {exc}")
            else:
                more += 1
    if more:
        noun = "line" if more == 1 else "lines"
        problems.append(f"... and {more:,} more bad {noun} in {path.name}")
    return entries, problems
