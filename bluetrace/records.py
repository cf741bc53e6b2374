"""The line formats of credentials.txt, tempIDs.txt and the contact log.

Readers accept LF or CRLF and a last line without a newline (the samples
that came with the specification have CRLF and no final newline).
"""

import re
from dataclasses import dataclass
from pathlib import Path

from bluetrace import wire
from bluetrace.messages import TempIDWindow
from bluetrace.storage import read_regular, split_lines
from bluetrace.timefmt import parse_timestamp


class RecordError(Exception):
    """A file that cannot be used, with ``file:line: reason`` as its message."""


def load_credentials(path: Path) -> dict[str, str]:
    """Username to password. Anything doubtful stops here, naming the line,
    because a server that starts with half its users is worse than none."""
    try:
        data = read_regular(path)
    except OSError as exc:
        raise RecordError(f"{path}: cannot read: {exc.strerror or exc}") from None
    users: dict[str, str] = {}
    for number, raw in enumerate(split_lines(data), start=1):
        if not raw.strip():
            continue
        where = f"{path}:{number}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise RecordError(f"{where}: not UTF-8 text") from None
        parts = line.split(" ")
        if len(parts) != 2 or not all(wire.is_credential(part) for part in parts):
            raise RecordError(f"{where}: expected '<username> <password>' separated by one space")
        username, password = parts
        if username in users:
            raise RecordError(f"{where}: username {username} appears twice")
        users[username] = password
    if not users:
        raise RecordError(f"{path}: no users")
    return users


_STAMP = rb"([0-9]{2}/[0-9]{2}/[0-9]{4}) (?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
_TEMPID_LINE = re.compile(rb"(\S+) ([0-9]{20}) " + _STAMP + rb" " + _STAMP)


@dataclass(frozen=True)
class LoadReport:
    loaded: int
    problems: list[str]


def load_tempids(path: Path, into: dict[str, str]) -> LoadReport:
    """Fill ``into`` (TempID to phone) from tempIDs.txt, reporting bad lines.

    Built for a million lines in well under the start-up budget: one regular
    expression per line, calendar checks cached per distinct date, and phone
    strings shared between entries.
    """
    try:
        data = read_regular(path)
    except FileNotFoundError:
        return LoadReport(0, [])
    phones: dict[bytes, str] = {}
    dates: dict[bytes, bool] = {}
    problems: list[str] = []
    loaded = 0
    for number, raw in enumerate(split_lines(data), start=1):
        match = _TEMPID_LINE.fullmatch(raw)
        if match is None:
            if raw.strip():
                problems.append(f"{path}:{number}: not '<phone> <TempID> <start> <expiry>'")
            continue
        phone_raw, tempid, start_day, expiry_day = match.groups()
        if not (_real_date(start_day, dates) and _real_date(expiry_day, dates)):
            problems.append(f"{path}:{number}: impossible date")
            continue
        phone = phones.get(phone_raw)
        if phone is None:
            try:
                phone = phones[phone_raw] = phone_raw.decode("utf-8")
            except UnicodeDecodeError:
                problems.append(f"{path}:{number}: not UTF-8 text")
                continue
        into[tempid.decode("ascii")] = phone
        loaded += 1
    return LoadReport(loaded, problems)


def _real_date(day: bytes, cache: dict[bytes, bool]) -> bool:
    known = cache.get(day)
    if known is None:
        try:
            parse_timestamp(day.decode("ascii") + " 00:00:00")
            known = True
        except ValueError:
            known = False
        cache[day] = known
    return known


def tempid_line(phone: str, window: TempIDWindow) -> str:
    return f"{phone} {' '.join(window.fields_text())}"


def contact_line(window: TempIDWindow) -> str:
    return " ".join(window.fields_text())


def parse_contact_line(line: str) -> TempIDWindow:
    """One contact-log line; ValueError (with the reason) if it is not one."""
    tempid, sep, rest = line.partition(" ")
    if not sep or len(rest) != 39 or rest[19] != " ":
        raise ValueError("expected '<TempID> <start> <expiry>'")
    if not wire.is_tempid(tempid):
        raise ValueError("TempID is not 20 decimal digits")
    return TempIDWindow(tempid, parse_timestamp(rest[:19]), parse_timestamp(rest[20:]))


def load_contact_log(path: Path) -> tuple[list[TempIDWindow], list[str]]:
    """Entries already in a contact log, and a note for each line skipped."""
    try:
        data = read_regular(path)
    except FileNotFoundError:
        return [], []
    entries: list[TempIDWindow] = []
    problems: list[str] = []
    for number, raw in enumerate(split_lines(data), start=1):
        if not raw.strip():
            continue
        try:
            entries.append(parse_contact_line(raw.decode("utf-8")))
        except ValueError as exc:  # UnicodeDecodeError included
            problems.append(f"{path.name}:{number}: {exc}")
    return entries, problems
