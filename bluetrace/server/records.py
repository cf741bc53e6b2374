"""The line formats of credentials.txt, tempIDs.txt and the contact log.

Readers accept LF or CRLF and a last line without a newline (the samples
that came with the specification have CRLF and no final newline).
"""

import os
import re
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path

from bluetrace.protocol import wire
from bluetrace.protocol.messages import TempIDWindow
from bluetrace.protocol.timefmt import TIMESTAMP_REGEX, parse_timestamp
from bluetrace.runtime.storage import open_regular, read_regular, split_lines
from bluetrace.server import passwords
from bluetrace.server.registry import TempIDRegistry


class RecordError(Exception):
    """A file that cannot be used, with ``file:line: reason`` as its message."""


UTF8_BOM = b"\xef\xbb\xbf"
"""A byte-order mark some Windows editors put at the start of a UTF-8 file;
credentials.txt may start with one, and it is ignored (protocol_spec.md
section 5)."""

COMMENT = "#"
"""A credentials.txt line whose first character is this is a comment, so no
username can start with it."""

CREDENTIALS_LINE = "expected '<username> <password>' separated by one space"


def load_credentials(path: Path) -> dict[str, str]:
    """Username to password. Anything doubtful stops here, naming the line
    and what is wrong with it, because a server that starts with half its
    users is worse than none.

    A million lines load in about a second: the whole file is decoded once,
    and each line is checked by :func:`wire.is_credential` (the construct
    field's rule without building anything); only a line that fails is
    examined again, to say why.
    """
    try:
        data = read_regular(path)
    except OSError as exc:
        raise RecordError(f"{path}: cannot read: {exc.strerror or exc}") from None
    parser = CredentialParser(path, data)
    while not parser.step(1 << 30):
        pass
    return parser.result()


class CredentialParser:
    """credentials.txt's bytes to users, a slice of lines per :meth:`step`.

    The server reloads the file on SIGHUP while it serves: a million lines
    take about a second to check, so the reload takes them a slice per loop
    turn instead of stopping every connection for that second. The rules
    are :func:`load_credentials`'s, which runs the same parser in one go.
    ``previous`` (the users before a reload) lets the slices also count who
    stays, so that the reload can say who it adds and removes without a
    second pass over a million names.
    """

    def __init__(
        self, path: Path, data: bytes, previous: "dict[str, str] | None" = None
    ) -> None:
        self.path = path
        self.unterminated = bool(data) and not data.endswith(b"\n")
        """The last line has no line end: a sample as given, or a file half written."""
        if data.startswith(UTF8_BOM):
            data = data[len(UTF8_BOM) :]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            number = data.count(b"\n", 0, exc.start) + 1
            raise RecordError(f"{path}:{number}: not UTF-8 text") from None
        self.lines = text.split("\n")
        self.users: dict[str, str] = {}
        self.previous = previous
        self.kept = 0
        """Users of ``previous`` found again so far."""
        self._at = 0

    def step(self, budget: int) -> bool:
        """Check up to ``budget`` more lines; True once every line is checked.
        RecordError names the first bad line."""
        path, users, previous = self.path, self.users, self.previous
        is_credential = wire.is_credential
        lines = self.lines
        end = min(len(lines), self._at + budget)
        kept = 0
        for index in range(self._at, end):
            line = lines[index]
            if line.endswith("\r"):
                line = line[:-1]
            parts = line.split(" ")
            if len(parts) == 2:
                username, password = parts
                if is_credential(username) and is_credential(password) and username[0] != COMMENT:
                    if username in users:
                        raise RecordError(
                            f"{path}:{index + 1}: username {username} appears twice"
                        )
                    if passwords.is_hashed(password):
                        why = passwords.problem(password)
                        if why is not None:
                            raise RecordError(f"{path}:{index + 1}: {why}")
                    users[username] = password
                    if previous is not None and username in previous:
                        kept += 1
                    continue
            if not line.strip() or line.startswith(COMMENT):
                continue
            raise RecordError(f"{path}:{index + 1}: {credentials_problem(line)}")
        self.kept += kept
        self._at = end
        return end >= len(lines)

    def result(self) -> dict[str, str]:
        """The users, once :meth:`step` has said it is done; RecordError if none."""
        if not self.users:
            raise RecordError(
                f"{self.path}: no users (each line is '<username> <password>', "
                f"and lines starting with {COMMENT} are comments)"
            )
        return self.users


def credentials_problem(line: str) -> str:
    """What is wrong with a credentials.txt line that is neither blank, a
    comment, nor ``<username> <password>``: one sentence naming the problem."""
    if "\t" in line:
        return f"a tab in the line: {CREDENTIALS_LINE}"
    if line.startswith(" "):
        return f"the line starts with a space: {CREDENTIALS_LINE}"
    if line.endswith(" "):
        return f"the line ends with a space: {CREDENTIALS_LINE}"
    parts = line.split(" ")
    if len(parts) == 1:
        problem = wire.credential_problem(line, "username")
        if problem is not None:
            return f"{problem}; {CREDENTIALS_LINE}"
        return f"no password after the username: {CREDENTIALS_LINE}"
    if "" in parts:
        return f"more than one space between fields: {CREDENTIALS_LINE}"
    if len(parts) > 2:
        return f"{len(parts)} fields: {CREDENTIALS_LINE} (a password cannot hold a space)"
    for name, value in zip(("username", "password"), parts, strict=True):
        problem = wire.credential_problem(value, name)
        if problem is not None:
            return problem
    return f"{CREDENTIALS_LINE}"  # pragma: no cover (every failing line is named above)


_STAMP = rb"([0-9]{2}/[0-9]{2}/[0-9]{4}) (?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
_TEMPID_LINE = re.compile(rb"(\S+) ([0-9]{20}) " + _STAMP + rb" " + _STAMP)
_REAL_STAMP = TIMESTAMP_REGEX.encode("ascii")
_TEMPID_LINES = re.compile(
    rb"^(\S+) ([0-9]{20}) " + _REAL_STAMP + rb" " + _REAL_STAMP + rb"\r?$", re.MULTILINE
)
"""Every well-formed line of a block, real dates included (the regular
expression timefmt holds equal to ``parse_timestamp``)."""
_BLOCK = 8 << 20
"""Bytes read at a time: the file is never held whole (3,000,000 lines are
222 MB, and their list of lines took a gigabyte more)."""


CONFLICTS_SHOWN = 5
"""TempIDs listed for more than one user named one by one at start-up (with
at most as many of each one's lines); the rest are counted in one line."""


@dataclass(frozen=True)
class LoadReport:
    loaded: int
    problems: list[str]
    conflicts: list[str] = field(default_factory=list)
    """Warnings: a TempID listed for two users (the later line wins)."""


def load_tempids(path: Path, into: "dict[str, str] | TempIDRegistry") -> LoadReport:
    """Fill ``into`` (TempID to phone: a dict, or the compact
    :class:`~bluetrace.server.registry.TempIDRegistry`) from tempIDs.txt, reporting
    bad lines; a later line for the same TempID wins, and a TempID that
    lines give to different users is reported (``conflicts``).

    Built for millions of lines within the start-up budget: the file is read
    in blocks, a block whose every line is well formed (real dates included)
    is cut by one ``findall``, and each distinct phone is decoded once and
    shared between its entries. A block with any other line is read line by
    line, to name it (``tests/test_registry.py`` holds the two readings
    equal).
    """
    try:
        handle = os.fdopen(open_regular(path), "rb")
    except FileNotFoundError:
        return LoadReport(0, [])
    before = len(into)
    with handle:
        loader = _TempIDLoader(path, into)
        tail = b""
        while block := handle.read(_BLOCK):
            block = tail + block
            cut = block.rfind(b"\n") + 1
            if cut == 0:
                tail = block
                continue
            tail = block[cut:]
            loader.block(block[:cut])
        if tail:
            loader.block(tail + b"\n")
    conflicts: list[str] = []
    if len(into) - before < loader.loaded:
        # Some TempID is listed more than once (the one check that costs
        # nothing when, as it should be, none is): find who lost it.
        conflicts = _conflicts(path, into)
    return LoadReport(loader.loaded, loader.problems, conflicts)


@dataclass
class _Conflict:
    lost: list[int]
    """The first CONFLICTS_SHOWN lines that gave the TempID to someone else."""
    more: int = 0
    won: int = 0


def _conflicts(path: Path, into: "dict[str, str] | TempIDRegistry") -> list[str]:
    """A second reading of tempIDs.txt, made only when it lists a TempID
    twice: the lines whose user is not the one ``into`` kept (a later line
    for that TempID replaced them). Same-user repeats are harmless and not
    told. Memory is bounded: CONFLICTS_SHOWN TempIDs are followed, the rest
    counted."""
    finder = _ConflictFinder(into)
    with os.fdopen(open_regular(path), "rb") as handle:
        tail = b""
        while block := handle.read(_BLOCK):
            data = tail + block
            cut = data.rfind(b"\n") + 1
            finder.block(data[:cut])
            tail = data[cut:]
        if tail:
            finder.block(tail + b"\n")
    return finder.warnings(path)


class _ConflictFinder:
    def __init__(self, into: "dict[str, str] | TempIDRegistry") -> None:
        self.into = into
        self.shown: dict[str, _Conflict] = {}
        self.others = 0
        self.number = 0
        self.days: dict[bytes, bool] = {}

    def block(self, data: bytes) -> None:
        """Whole lines, each ending in LF (numbered as the load numbers them)."""
        found = _TEMPID_LINES.findall(data)
        if len(found) == data.count(b"\n"):  # every line well formed: the quick way
            for phone_raw, tempid_raw in found:
                self.number += 1
                self.line(phone_raw, tempid_raw)
            return
        for raw in split_lines(data):
            self.number += 1
            match = _TEMPID_LINE.fullmatch(raw)
            if match is not None and (
                _real_date(match.group(3), self.days) and _real_date(match.group(4), self.days)
            ):
                self.line(match.group(1), match.group(2))

    def line(self, phone_raw: bytes, tempid_raw: bytes) -> None:
        tempid = tempid_raw.decode("ascii")
        kept = self.into.get(tempid)
        try:
            user = phone_raw.decode("utf-8")
        except UnicodeDecodeError:
            return  # skipped by the load, and told there
        conflict = self.shown.get(tempid)
        if user == kept:
            if conflict is not None:
                conflict.won = self.number
        elif conflict is not None:
            if len(conflict.lost) < CONFLICTS_SHOWN:
                conflict.lost.append(self.number)
            else:
                conflict.more += 1
        elif len(self.shown) < CONFLICTS_SHOWN:
            self.shown[tempid] = _Conflict([self.number])
        else:
            self.others += 1

    def warnings(self, path: Path) -> list[str]:
        warnings = []
        for tempid, conflict in self.shown.items():
            lines = ", ".join(map(str, conflict.lost))
            if conflict.more:
                lines += f" and {conflict.more:,} more"
            warnings.append(
                f"{path}: TempID {tempid} is listed for more than one user (lines {lines}, "
                f"and {conflict.won}); the later line wins: it belongs to "
                f"{self.into.get(tempid)}"
            )
        if self.others:
            warnings.append(
                f"{path}: ... and {self.others:,} more lines give a TempID to a user that a "
                "later line replaces; for each, the later line wins"
            )
        return warnings


class _TempIDLoader:
    def __init__(self, path: Path, into: "dict[str, str] | TempIDRegistry") -> None:
        self.path = path
        self.into = into
        self.loaded = 0
        self.problems: list[str] = []
        self.line = 0
        self.days: dict[bytes, bool] = {}
        self.phones: dict[bytes, str] = {}
        self.users: dict[bytes, int] = {}

    def block(self, data: bytes) -> None:
        """Whole lines, each ending in LF."""
        lines = data.count(b"\n")
        found = _TEMPID_LINES.findall(data)
        if len(found) == lines and self._all_phones(found):
            self._add(found)
            self.line += lines
            return
        for raw in split_lines(data):
            self.line += 1
            self._one(raw)

    def _all_phones(self, found: list[tuple[bytes, bytes]]) -> bool:
        """Whether every phone is UTF-8 (remembering each new one)."""
        registry = self.into if isinstance(self.into, TempIDRegistry) else None
        known = self.users if registry is not None else self.phones
        new = list(set(map(_first, found)).difference(known))
        try:
            phones = [phone_raw.decode("utf-8") for phone_raw in new]
        except UnicodeDecodeError:
            return False
        if registry is not None:
            self.users.update(zip(new, registry.user_numbers(phones), strict=True))
        else:
            self.phones.update(zip(new, phones, strict=True))
        return True

    def _add(self, found: list[tuple[bytes, bytes]]) -> None:
        """Lines already checked by the block pattern and :meth:`_all_phones`."""
        into = self.into
        if isinstance(into, TempIDRegistry):
            into.add_numbers(
                map(int, map(_second, found)), map(self.users.__getitem__, map(_first, found))
            )
        else:
            tempids = [tempid.decode("ascii") for _, tempid in found]
            into.update(zip(tempids, map(self.phones.__getitem__, map(_first, found)), strict=True))
        self.loaded += len(found)

    def _one(self, raw: bytes) -> None:
        match = _TEMPID_LINE.fullmatch(raw)
        where = f"{self.path}:{self.line}"
        if match is None:
            if raw.strip():
                self.problems.append(f"{where}: not '<phone> <TempID> <start> <expiry>'")
            return
        phone_raw, tempid, start_day, expiry_day = match.groups()
        if not (_real_date(start_day, self.days) and _real_date(expiry_day, self.days)):
            self.problems.append(f"{where}: impossible date")
            return
        phone = self.phones.get(phone_raw)
        if phone is None:
            try:
                phone = self.phones[phone_raw] = phone_raw.decode("utf-8")
            except UnicodeDecodeError:
                self.problems.append(f"{where}: not UTF-8 text")
                return
        self.into[tempid.decode("ascii")] = phone
        self.loaded += 1


_first = itemgetter(0)
_second = itemgetter(1)


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
