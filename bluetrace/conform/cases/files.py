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

from datetime import datetime

from bluetrace.conform.files_target import (
    ENTRY,
    FORMATS,
    OTHER_FILES,
    OWNED,
    FilesTarget,
    check_blocks,
    check_lines,
)
from bluetrace.conform.model import CaseContext, CaseFailed, CaseInfo, CaseSkipped, Registry
from bluetrace.protocol.timefmt import parse_timestamp


def _text8(text: str) -> bool:
    raw = text.encode("utf-8")
    return 1 <= len(raw) <= 255 and all(c.isprintable() and not c.isspace() for c in text)


case: Registry[FilesTarget] = Registry("files")
CASES = case.cases


@case("5/credentials", ("BT-5-3", "BT-1-4", "BT-5-4"),
      ("credentials.txt | server (read only) | <username> <password> (one space)",
       "A line whose first character is # is a comment and is skipped, so no username starts "
       "with # (a password may). A UTF-8 byte-order mark (EF BB BF) at the very start of the "
       "file is ignored, as some editors write one [BT-5-4]"),
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
                               p.name.lower() not in OTHER_FILES
                               and OWNED.search(p.read_text("utf-8", "replace"))))
        if elsewhere:
            raise CaseFailed(f"no tempIDs.txt, but issued TempIDs are in {', '.join(elsewhere)} "
                             "(the assignment names the file tempIDs.txt)")
    check_lines(target, "tempIDs.txt", "tempIDs.txt")


@case("5/contact-checks", ("BT-5-3", "BT-5-6", "BT-5-7"),
      ("Each upload's check lines are recorded as one block, whole or not at all:",
       "<CRC> is the CRC-32 (the one zlib and PNG use) of the bytes of the N check lines as "
       "written, line ends included, as 8 lowercase hexadecimal digits [BT-5-6]",
       "at start-up the server removes it (and a torn line after the last whole block), and "
       "says so in one line; that upload had not been acknowledged [BT-5-7]"),
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
            if ENTRY.search(line):
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
      "otherwise, so expiry = start + 14 min 59 s (the lifetime less one second) [BT-1-5]",
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
      "line number and the problem (a tab, a second space, a missing password, a password "
      "over 255 bytes, a character that is not allowed, a repeated username, bytes that are "
      "not UTF-8) [BT-5-5]",
      ("INFO: start-up is not observable from the files; self mode and the server's own "
       "tests show it",))
def bad_credentials(target: FilesTarget, ctx: CaseContext) -> None:
    raise CaseInfo("a server's start-up with a bad credentials.txt is not observable here")
