"""Files mode: the data files of section 5 in one folder.

Readers accept LF and CRLF and a last line without a line end, so the kit
does too; what it refuses is a line that is not exactly one record: that is
how a writer that glued a record onto a line without a line end shows.
A file that is not there is skipped, with the reason. A line that is not one
record fails the case that grades its file, once; the other cases read only
the whole records. Contact logs are found by name and by content, and the
layouts the original assignment leaves open (separators, extra columns, ISO
dates, another file name) are reported as INFO, not failed.
"""

import contextlib
import re
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bluetrace.conform.model import CaseContext, CaseFailed, CaseInfo, CaseSkipped, Registry
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
            if not path.is_file() or path.name.lower() in _OTHER_FILES:
                continue
            if "contactlog" in path.name.lower():
                found.append(path.name)
                continue
            with contextlib.suppress(OSError):
                head = path.read_bytes()[:65536].decode("utf-8", "replace")
                if _ENTRY.search(head) and not _OWNED.search(head):
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


def _text8(text: str) -> bool:
    raw = text.encode("utf-8")
    return 1 <= len(raw) <= 255 and all(c.isprintable() and not c.isspace() for c in text)


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


_OTHER_FILES = {"credentials.txt", "tempids.txt", "contact_checks.txt"}
_ANY_STAMP = r"(?:\d\d/\d\d/\d{4}[ T]\d\d:\d\d:\d\d|\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)"
_ENTRY = re.compile(rf"(?<!\d)[0-9]{{20}}(?!\d)\D{{1,5}}{_ANY_STAMP}\D{{1,5}}{_ANY_STAMP}")
"""A contact-log entry in any of the layouts the assignment leaves open:
any separators, extra columns after it, ISO dates."""
_OWNED = re.compile(r"^\S*\+?\d{6,}\s+[0-9]{20}\s", re.MULTILINE)
"""A tempIDs.txt-like record (a phone number first): not a contact log."""


case: Registry[FilesTarget] = Registry("files")
CASES = case.cases


@case("5/credentials", ("BT-5-3", "BT-1-4", "BT-5-4"),
      "credentials.txt | server (read only) | <username> <password> (one space); a line "
      "whose first character is # is a comment ... a byte-order mark ... is ignored [BT-5-4]",
      ("every non-blank line that is not a comment is two Text8 values (printable, no white "
       "space, 1-255 bytes) separated by one space; no username twice",))
def credentials(target: FilesTarget, ctx: CaseContext) -> None:
    matches = check_lines(target, "credentials.txt", "credentials.txt")
    bad = [m.group(0) for m in matches if not (_text8(m.group(1)) and _text8(m.group(2)))]
    if bad:
        raise CaseFailed(f"values that are not Text8: {bad[:3]}")
    names = [m.group(1) for m in matches]
    if len(set(names)) != len(names):
        raise CaseFailed("a username appears twice")


@case("5/tempids", ("BT-5-3",),
      "tempIDs.txt | server (appended) | <username> <TempID> <start> <expiry>",
      ("every non-blank line is '<username> <TempID> <start> <expiry>' with real dates",))
def tempids(target: FilesTarget, ctx: CaseContext) -> None:
    if not (target.folder / "tempIDs.txt").is_file():
        elsewhere = sorted(p.name for p in target.folder.glob("*.txt")
                           if p.name.lower() == "tempids.txt" or (
                               p.name.lower() not in _OTHER_FILES
                               and _OWNED.search(p.read_text("utf-8", "replace"))))
        if elsewhere:
            raise CaseFailed(f"no tempIDs.txt, but issued TempIDs are in {', '.join(elsewhere)} "
                             "(the assignment names the file tempIDs.txt)")
    check_lines(target, "tempIDs.txt", "tempIDs.txt")


@case("5/contact-checks", ("BT-5-3", "BT-5-6", "BT-5-7"),
      "Each upload's check lines are recorded as one block, whole or not at all: begin <N>, "
      "<N check lines>, commit <N> <CRC> ... CRC-32 ... as 8 lowercase hexadecimal digits "
      "[BT-5-6]. ... at start-up the server removes it [BT-5-7]",
      ("every check line is '<checked at> <uploader> <TempID> <start> <expiry> <contact or "
       "unknown>' with real dates, inside a whole block (or before the first 'begin'); only "
       "the last block may be torn",))
def contact_checks(target: FilesTarget, ctx: CaseContext) -> None:
    _, problems, notes = check_blocks(target)
    if problems:
        raise CaseFailed("; ".join(problems[:5]))
    check_lines(target, "contact_checks.txt", "contact_checks.txt")
    ctx.notes += notes


@case("5/contact-logs", ("BT-5-3",),
      "<username>_contactlog.txt | client | <TempID> <start> <expiry>",
      ("every non-blank line of every *_contactlog.txt is '<TempID> <start> <expiry>'",))
def contact_logs(target: FilesTarget, ctx: CaseContext) -> None:
    names = target.contact_logs()
    if not names:
        raise CaseSkipped(f"no contact log in {target.folder}")
    seen: list[str] = []
    bad: list[str] = []
    for name in names:
        if not name.endswith("_contactlog.txt"):
            seen.append(f"{name}: named otherwise than <user>_contactlog.txt")
        layouts = 0
        for number, line in target.read(name):
            if FORMATS["contactlog"].fullmatch(line):
                continue
            if _ENTRY.search(line):
                layouts += 1
            else:
                bad.append(f"{name}:{number}: {line[:120]!r}")
        if layouts:
            seen.append(f"{name}: {layouts} lines laid out otherwise than '<TempID> <start> "
                        "<expiry>' (separators, extra columns or dates the assignment leaves "
                        "open)")
    if bad:
        raise CaseFailed("lines that hold no '<TempID> <start> <expiry>' entry: "
                         + "; ".join(bad[:5]))
    if seen:
        raise CaseInfo("; ".join(seen))


@case("5/line-ends", ("BT-5-1", "BT-5-2"),
      "readers accept LF or CRLF line ends and a last line with or without a line end, and "
      "skip blank lines [BT-5-1]. Writers append whole lines and start a new line first if "
      "the file does not end with one [BT-5-2].",
      ("in every data file, a carriage return appears only before a line feed, and no line "
       "holds a NUL byte (a final line without a line end is accepted)",))
def line_ends(target: FilesTarget, ctx: CaseContext) -> None:
    names = [n for n in ("credentials.txt", "tempIDs.txt", "contact_checks.txt")
             if (target.folder / n).is_file()] + target.contact_logs()
    if not names:
        raise CaseSkipped(f"no data files in {target.folder}")
    bad = []
    for name in names:
        raw = (target.folder / name).read_bytes()
        if b"\0" in raw:
            bad.append(f"{name}: a NUL byte")
        if raw.replace(b"\r\n", b"").count(b"\r"):
            bad.append(f"{name}: a carriage return not followed by a line feed")
    if bad:
        raise CaseFailed("; ".join(bad))


@case("3.3/tempids-unique", ("BT-3.3-1",),
      "a fresh TempID drawn at random, unique among every TempID the server has issued "
      "[BT-3.3-1]",
      ("no TempID appears on two lines of tempIDs.txt",))
def tempids_unique(target: FilesTarget, ctx: CaseContext) -> None:
    matches = target.records("tempIDs.txt", "tempIDs.txt")
    seen: dict[str, int] = {}
    for match in matches:
        seen[match.group(2)] = seen.get(match.group(2), 0) + 1
    twice = [tempid for tempid, count in seen.items() if count > 1]
    if twice:
        raise CaseFailed(f"TempIDs issued more than once: {twice[:5]}")


@case("4/checks-mapping", ("BT-4-13", "BT-5-8"),
      "The server maps each entry's TempID to the phone number it was issued to, using "
      "every TempID it has ever issued, whatever the entry's dates [BT-4-13].",
      ("each contact_checks.txt line names the tempIDs.txt owner of its TempID, or "
       "'unknown' when tempIDs.txt does not hold it",))
def checks_mapping(target: FilesTarget, ctx: CaseContext) -> None:
    if not (target.folder / "contact_checks.txt").is_file():
        raise CaseSkipped(f"no contact_checks.txt in {target.folder}")
    owners = {m.group(2): m.group(1) for m in target.records("tempIDs.txt", "tempIDs.txt")}
    bad = []
    for match in check_lines(target, "contact_checks.txt", "contact_checks.txt"):
        tempid, contact = match.group(3), match.group(6)
        want = owners.get(tempid, "unknown")
        if contact != want:
            bad.append(f"{tempid}: {contact}, not {want}")
    if bad:
        raise CaseFailed("; ".join(bad[:5]))


@case("1/lifetimes", ("BT-1-5",),
      "The server issues windows of its TempID lifetime, 15 minutes unless configured "
      "otherwise, so expiry = start + 14 min 59 s [BT-1-5].",
      ("INFO: the windows' lengths found in tempIDs.txt (a server's lifetime may be "
       "configured)",))
def lifetimes(target: FilesTarget, ctx: CaseContext) -> None:
    spans: dict[str, int] = {}
    for match in target.records("tempIDs.txt", "tempIDs.txt"):
        start: datetime = parse_timestamp(match.group(3))
        span = str(parse_timestamp(match.group(4)) - start)
        spans[span] = spans.get(span, 0) + 1
    shown = ", ".join(f"{span} x{count}" for span, count in sorted(spans.items()))
    raise CaseInfo(f"expiry - start: {shown or 'no lines'}")


@case("5/bad-credentials", ("BT-5-5",),
      "Any other line stops the server at start-up with one message naming the file, the "
      "line number and the problem [BT-5-5].",
      ("INFO: start-up is not observable from the files; self mode and the server's own "
       "tests show it",))
def bad_credentials(target: FilesTarget, ctx: CaseContext) -> None:
    raise CaseInfo("a server's start-up with a bad credentials.txt is not observable here")
