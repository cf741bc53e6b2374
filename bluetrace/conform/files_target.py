"""The data folder under test in files mode, and the readers of section 5's
formats that the files cases and the server cases (``--data-dir``) share.

Readers accept LF and CRLF and a last line without a line end, so the kit
does too; what they refuse is a line that is not exactly one record: that is
how a writer that glued a record onto a line without a line end shows.
"""

import contextlib
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from bluetrace.conform.model import CaseFailed, CaseSkipped
from bluetrace.protocol.timefmt import parse_timestamp

_STAMP = r"(\d\d/\d\d/\d{4} \d\d:\d\d:\d\d)"
_TEMPID = r"([0-9]{20})"
_NAME = r"(\S+)"
FORMATS = {
    "credentials.txt": re.compile(r"(\S+) (\S+)"),
    "tempIDs.txt": re.compile(f"{_NAME} {_TEMPID} {_STAMP} {_STAMP}"),
    "contact_checks.txt": re.compile(f"{_STAMP} {_NAME} {_TEMPID} {_STAMP} {_STAMP} {_NAME}"),
    "contactlog": re.compile(f"{_TEMPID} {_STAMP} {_STAMP}"),
}
SHOWN = {
    "credentials.txt": "<username> <password>",
    "tempIDs.txt": "<username> <TempID> <start> <expiry>",
    "contact_checks.txt": "<checked at> <uploader> <TempID> <start> <expiry> <contact or unknown>",
    "contactlog": "<TempID> <start> <expiry>",
}

OTHER_FILES = {"credentials.txt", "tempids.txt", "contact_checks.txt"}
_ANY_STAMP = r"(?:\d\d/\d\d/\d{4}[ T]\d\d:\d\d:\d\d|\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)"
ENTRY = re.compile(rf"(?<!\d)[0-9]{{20}}(?!\d)\D{{1,5}}{_ANY_STAMP}\D{{1,5}}{_ANY_STAMP}")
"""A contact-log entry in any of the layouts the assignment leaves open:
any separators, extra columns after it, ISO dates."""
OWNED = re.compile(r"^\S*\+?\d{6,}\s+[0-9]{20}\s", re.MULTILINE)
"""A tempIDs.txt-like record (a phone number first): not a contact log."""


@dataclass
class FilesTarget:
    folder: Path

    def raw_lines(self, name: str) -> list[bytes]:
        """The lines of ``name`` as written, line ends included."""
        path = self.folder / name
        if not path.is_file():
            raise CaseSkipped(f"no {name} in {self.folder}")
        return path.read_bytes().splitlines(keepends=True)

    def read(self, name: str) -> list[tuple[int, str]]:
        """(line number, text) of each non-blank line, LF or CRLF; for
        credentials.txt, comment lines and a leading byte-order mark are skipped."""
        path = self.folder / name
        if not path.is_file():
            raise CaseSkipped(f"no {name} in {self.folder}")
        raw = path.read_bytes()
        if name == "credentials.txt":
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CaseFailed(f"{name} is not UTF-8 text ({exc.reason} at byte "
                             f"{exc.start})") from None
        lines = text.split("\n")
        kept = [(number, line[:-1] if line.endswith("\r") else line)
                for number, line in enumerate(lines, start=1) if line.strip()]
        if name == "credentials.txt":
            kept = [(number, line) for number, line in kept if not line.startswith("#")]
        return kept

    def contact_logs(self) -> list[str]:
        """Contact logs by name (any ``*contactlog*.txt``: the assignment's
        ``<user>_contactlog.txt`` and the other spellings submissions use) and
        by content (a text file of TempID entries that is no other data file)."""
        found = []
        for path in sorted(self.folder.glob("*.txt")):
            if not path.is_file() or path.name.lower() in OTHER_FILES:
                continue
            if "contactlog" in path.name.lower():
                found.append(path.name)
                continue
            with contextlib.suppress(OSError):
                head = path.read_bytes()[:65536].decode("utf-8", "replace")
                if ENTRY.search(head) and not OWNED.search(head):
                    found.append(path.name)
        return found

    def records(self, name: str, kind: str) -> list[re.Match[str]]:
        """The lines of ``name`` that are one record of ``kind``; the others
        are reported once, by the case that grades the file's format."""
        found = (FORMATS[kind].fullmatch(line) for _, line in self.read(name))
        return [m for m in found if m is not None]


def _real(stamp: str) -> bool:
    try:
        parse_timestamp(stamp)
    except ValueError:
        return False
    return True


def check_lines(target: FilesTarget, name: str, kind: str) -> list[re.Match[str]]:
    """Every non-blank line of ``name`` must be one record of ``kind``
    (contact_checks.txt: the check lines of its whole blocks, see check_blocks)."""
    bad: list[str] = []
    matches: list[re.Match[str]] = []
    numbered = check_blocks(target)[0] if name == "contact_checks.txt" else target.read(name)
    for number, line in numbered:
        match = FORMATS[kind].fullmatch(line)
        if match is None or not all(_real(g) for g in match.groups() if g and "/" in g
                                    and ":" in g):
            bad.append(f"{name}:{number}: {line[:120]!r}")
            continue
        matches.append(match)
    if bad:
        raise CaseFailed(f"lines that are not '{SHOWN[kind]}' (with real dates): "
                         + "; ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5
                                                 else ""))
    return matches


_BEGIN = re.compile(rb"begin ([0-9]+)\r?\n?")
_COMMIT = re.compile(rb"commit ([0-9]+) ([0-9a-f]{8})\r?\n?")


def check_blocks(target: FilesTarget) -> tuple[list[tuple[int, str]], list[str], list[str]]:
    """contact_checks.txt read as section 5 says: lines before the first
    ``begin`` are kept as they are, then ``begin N`` / N lines / ``commit N CRC``
    blocks. Returns the check lines of whole blocks (numbered), the problems,
    and notes (a torn last block, which a crash may leave)."""
    lines = target.raw_lines("contact_checks.txt")
    checks: list[tuple[int, str]] = []
    problems: list[str] = []
    torn: list[str] = []
    index, seen_begin = 0, False
    while index < len(lines):
        number, raw = index + 1, lines[index]
        begin = _BEGIN.fullmatch(raw)
        if begin is None:
            if seen_begin and raw.strip():
                problems.append(f"contact_checks.txt:{number}: a line outside any block")
            elif raw.strip():
                checks.append((number, raw.decode("utf-8", "replace").rstrip("\r\n")))
            index += 1
            continue
        seen_begin = True
        if torn:
            problems.append(f"contact_checks.txt:{torn[-1]}: a torn block was not removed "
                            "before later blocks were written")
            torn.clear()
        count = int(begin.group(1))
        body = lines[index + 1 : index + 1 + count]
        commit = lines[index + 1 + count] if index + 1 + count < len(lines) else b""
        match = _COMMIT.fullmatch(commit)
        whole = (len(body) == count and match is not None and int(match.group(1)) == count
                 and f"{zlib.crc32(b''.join(body)):08x}" == match.group(2).decode())
        if whole:
            checks += [(index + 2 + k, line.decode("utf-8", "replace").rstrip("\r\n"))
                       for k, line in enumerate(body)]
            index += count + 2
        else:
            torn.append(str(number))
            index += 1
            while index < len(lines) and not _BEGIN.fullmatch(lines[index]):
                index += 1
    notes = [f"contact_checks.txt:{n}: a torn last block (left by a crash, removed at the "
             "next start)" for n in torn]
    return checks, problems, notes
