"""The four ways a run is shown: a terminal tree, JSON, JUnit XML and HTML.

The terminal tree ends with one line, alone, of the form
``N passed, N failed, N skipped``. Counting: PASS and INFO are passed, and
NON-STRICT too unless --strict; FAIL, ERROR and FLAKY are failed;
SKIPPED, UNSUPPORTED, N/A and EXPECTED-FAIL (an excluded case) are skipped.

Whatever a target said or wrote (a file's line, a peer's text, a phone's
screen) is shown made printable: a control character (ESC, BEL, CR, ...)
or an invisible format character is written as its escape (``\x1b``), so
no data can move the operator's cursor, retitle the window or hide a line.
A field of a result is cut after MAX_FIELD characters, saying so.
"""

import argparse
import html
import json
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TextIO

from bluetrace.conform.model import CaseSetupError, Outcome, Result

MAX_FIELD = 20_000
"""Characters shown of one field of a result (what the target did, the wire
log is bounded by itself), so a flooding target cannot swell the report."""

PASSED = frozenset({Outcome.PASS, Outcome.INFO, Outcome.NON_STRICT})
SKIPPED = frozenset({Outcome.SKIPPED, Outcome.UNSUPPORTED, Outcome.EXCLUDED,
                     Outcome.NOT_APPLICABLE})


def printable(text: str, limit: int | None = MAX_FIELD) -> str:
    """``text`` with every character that is not printable, other than the
    line feed, written as its Python escape; cut after ``limit`` characters
    (the wire log is bounded by itself: None)."""
    if limit is not None and len(text) > limit:
        text = f"{text[:limit]} ... ({len(text) - limit:,} more characters not shown)"
    if text.isprintable():
        return text
    return "".join(char if char == "\n" or char.isprintable() else _escape(char)
                   for char in text)


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def tally(results: Sequence[Result]) -> dict[str, int]:
    passed = sum(r.outcome in PASSED for r in results)
    skipped = sum(r.outcome in SKIPPED for r in results)
    return {"passed": passed, "failed": len(results) - passed - skipped, "skipped": skipped}


def summary_line(results: Sequence[Result]) -> str:
    counts = tally(results)
    return f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"


def _indent(text: str, by: str) -> str:
    return "\n".join(by + line for line in text.splitlines())


def write_tree(results: Sequence[Result], out: TextIO, *, verbose: bool = False) -> None:
    """Mode, then section, then case; details under every non-pass."""
    last_mode = last_section = ""
    for result in _by_section(results):
        mode, section, name = [*result.case_id.split("/", 2), "", ""][:3]
        if not name:  # a two-part ID (assignment/<check>) has no section
            section, name = "", section
        if mode != last_mode:
            out.write(f"{mode}\n")
            last_mode, last_section = mode, ""
        if section and section != last_section:
            out.write(f"  section {section}\n")
            last_section = section
        tags = " ".join(result.tags)
        out.write(f"    {result.outcome.value:<13} {name}  [{tags}] ({result.seconds:.2f} s)\n")
        if result.outcome is Outcome.PASS and not verbose:
            continue
        pad = " " * 18
        if result.outcome in (Outcome.SKIPPED, Outcome.UNSUPPORTED, Outcome.NOT_APPLICABLE):
            out.write(f"{pad}reason: {printable(result.reason)}\n")
            continue
        if result.outcome is Outcome.PASS:
            if result.actual:
                out.write(f"{pad}seen: {printable(result.actual)}\n")
            continue
        out.write(f"{pad}quote: {result.quote}\n")
        out.write(f"{pad}expected (any of):\n")
        for allowed in result.expected:
            out.write(f"{pad}  - {allowed}\n")
        out.write(f"{pad}actual: {printable(result.actual)}\n")
        if result.reason:
            out.write(_indent(printable(result.reason), pad) + "\n")
        if result.wire:
            out.write(f"{pad}wire log:\n{_indent(printable(result.wire, None), pad + '  ')}\n")
    kinds = Counter(r.outcome.value for r in results)
    detail = ", ".join(f"{kinds[o.value]} {o.value}" for o in Outcome if kinds[o.value])
    out.write(f"\n{len(results)} cases: {detail or 'none'}\n")
    out.write(summary_line(results) + "\n")


def _section_key(section: str) -> tuple[int, ...]:
    parts = section.split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else (10**6,)


def _by_section(results: Sequence[Result]) -> list[Result]:
    """Run order is kept within a section; sections are shown in spec order,
    modes in the order they ran."""
    modes: list[str] = []
    for result in results:
        mode = result.case_id.split("/", 1)[0]
        if mode not in modes:
            modes.append(mode)

    def key(result: Result) -> tuple[int, tuple[int, ...]]:
        mode, _, rest = result.case_id.partition("/")
        return modes.index(mode), _section_key(rest.split("/", 1)[0])

    return sorted(results, key=key)


def write_json(results: Sequence[Result], path: Path) -> None:
    data = {
        "summary": tally(results),
        "results": [{**asdict(r), "outcome": r.outcome.value} for r in results],
    }
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def write_junit(results: Sequence[Result], path: Path) -> None:
    suites = ET.Element("testsuites", name="bluetrace-conform")
    by_mode: dict[str, list[Result]] = {}
    for result in results:
        by_mode.setdefault(result.case_id.split("/", 1)[0], []).append(result)
    for mode, members in by_mode.items():
        counts = tally(members)
        suite = ET.SubElement(
            suites, "testsuite", name=mode, tests=str(len(members)),
            failures=str(counts["failed"]), skipped=str(counts["skipped"]), errors="0",
            time=f"{sum(r.seconds for r in members):.3f}",
        )
        for result in members:
            case = ET.SubElement(suite, "testcase", classname=mode, name=result.case_id,
                                 time=f"{result.seconds:.3f}")
            detail = _detail(result)
            if result.outcome in PASSED:
                if result.outcome is not Outcome.PASS:
                    ET.SubElement(case, "system-out").text = f"{result.outcome.value}\n{detail}"
            elif result.outcome in SKIPPED:
                ET.SubElement(case, "skipped",
                              message=f"{result.outcome.value}: {printable(result.reason)}")
            else:
                failure = ET.SubElement(case, "failure",
                                        message=printable(result.actual[:500]),
                                        type=result.outcome.value)
                failure.text = detail
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def _detail(result: Result) -> str:
    allowed = "\n".join(f"  - {e}" for e in result.expected)
    parts = [f"tags: {' '.join(result.tags)}", f"quote: {result.quote}",
             f"expected (any of):\n{allowed}", f"actual: {printable(result.actual)}"]
    if result.reason:
        parts.append(printable(result.reason))
    if result.wire:
        parts.append(f"wire log:\n{printable(result.wire, None)}")
    return "\n".join(parts)


_COLOURS = {
    "PASS": "#2e7d32", "NON-STRICT": "#f9a825", "FAIL": "#c62828", "INFO": "#1565c0",
    "SKIPPED": "#757575", "UNSUPPORTED": "#6d4c41", "ERROR": "#6a1b9a", "FLAKY": "#ef6c00",
    "EXPECTED-FAIL": "#8d6e63", "N/A": "#9e9e9e",
}


def write_html(results: Sequence[Result], path: Path) -> None:
    """One file, no scripts or links: the style sheet is inline."""
    rows = []
    for result in results:
        colour = _COLOURS[result.outcome.value]
        body = html.escape(_detail(result)) if result.outcome is not Outcome.PASS else ""
        more = f"<details><summary>details</summary><pre>{body}</pre></details>" if body else ""
        rows.append(
            f"<tr><td><code>{html.escape(result.case_id)}</code></td>"
            f"<td style='color:{colour};font-weight:bold'>{result.outcome.value}</td>"
            f"<td>{html.escape(' '.join(result.tags))}</td>"
            f"<td>{result.seconds:.2f}</td><td>{more}</td></tr>"
        )
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>bluetrace-conform</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}"
        "pre{white-space:pre-wrap;font-size:12px;max-width:110ch}</style></head><body>"
        f"<h1>bluetrace-conform</h1><p>{html.escape(summary_line(results))}</p>"
        "<table><tr><th>case</th><th>outcome</th><th>tags</th><th>s</th><th></th></tr>"
        + "".join(rows) + "</table></body></html>\n"
    )
    path.write_text(page, encoding="utf-8")


def finish(results: Sequence[Result], args: argparse.Namespace) -> int:
    """Show the tree, write the files asked for; the exit status (0 or 1)."""
    write_tree(results, sys.stdout, verbose=args.verbose)
    sys.stdout.flush()
    try:
        if args.json:
            write_json(results, args.json)
        if args.junit:
            write_junit(results, args.junit)
        if args.html:
            write_html(results, args.html)
    except OSError as exc:
        raise CaseSetupError(f"cannot write a report: {exc.strerror or exc}") from None
    return 1 if tally(results)["failed"] else 0
