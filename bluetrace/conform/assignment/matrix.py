"""A class at once: the submission x check matrix and the beacon interop
matrix, on the terminal and as CSV, JSON and HTML."""

import csv
import html
import io
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TextIO

from bluetrace.conform.assignment.grader import Cell
from bluetrace.conform.model import Result
from bluetrace.conform.report import tally

SHORT = {"PASS": "pass", "FAIL": "FAIL", "N/A": "n/a", "SKIPPED": "skip", "ERROR": "ERR",
         "INFO": "info"}
INTEROP_NOTE = ("stored: the receiver's contact log gained the sender's TempID; shown: the "
                "receiver's terminal showed it, nothing stored; nothing: no sign of it; "
                "crashed: the receiver ended or printed a traceback; n/a: a client could "
                "not log in or get a TempID")


def _name(result: Result) -> str:
    return result.case_id.split("/", 1)[1]


def write_matrix(graded: dict[str, list[Result]], errors: dict[str, str],
                 cells: Sequence[Cell], out: TextIO) -> None:
    names = list(graded)
    checks: list[str] = []
    for results in graded.values():
        checks += [_name(r) for r in results if _name(r) not in checks]
    width = max([len(c) for c in checks] + [10])
    heads = [n[:12] for n in names]
    out.write(" " * width + "  " + "  ".join(f"{h:<12}" for h in heads) + "\n")
    for check in checks:
        row = []
        for name in names:
            found = next((r for r in graded[name] if _name(r) == check), None)
            row.append(SHORT.get(found.outcome.value, found.outcome.value) if found else "-")
        out.write(f"{check:<{width}}  " + "  ".join(f"{c:<12}" for c in row) + "\n")
    out.write("\n")
    for name in names:
        counts = tally(graded[name])
        state = f"ERROR: {errors[name]}" if name in errors else (
            f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
        out.write(f"{name}: {state}\n")
    if cells:
        out.write("\nbeacon interop (row: the sending client's submission, column: the "
                  "receiving one)\n")
        write_interop(cells, out)
        out.write(INTEROP_NOTE + "\n")


def write_interop(cells: Sequence[Cell], out: TextIO) -> None:
    senders = list(dict.fromkeys(c.sender for c in cells))
    receivers = list(dict.fromkeys(c.receiver for c in cells))
    width = max(len(s) for s in senders) if senders else 10
    out.write(" " * width + "  " + "  ".join(f"{r[:12]:<12}" for r in receivers) + "\n")
    for sender in senders:
        row = [next((c.verdict for c in cells if c.sender == sender and c.receiver == r), "-")
               for r in receivers]
        out.write(f"{sender:<{width}}  " + "  ".join(f"{v:<12}" for v in row) + "\n")


def csv_text(graded: dict[str, list[Result]], errors: dict[str, str]) -> str:
    checks: list[str] = []
    for results in graded.values():
        checks += [_name(r) for r in results if _name(r) not in checks]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["submission", "error", *[f"assignment/{c}" for c in checks]])
    for name, results in graded.items():
        by = {_name(r): r.outcome.value for r in results}
        writer.writerow([name, errors.get(name, ""), *[by.get(c, "") for c in checks]])
    return buffer.getvalue()


def json_data(graded: dict[str, list[Result]], errors: dict[str, str],
              cells: Sequence[Cell]) -> dict[str, object]:
    return {
        "submissions": {
            name: {"summary": tally(results), "error": errors.get(name),
                   "results": [{**asdict(r), "outcome": r.outcome.value} for r in results]}
            for name, results in graded.items()},
        "interop": [asdict(c) for c in cells],
    }


_COLOURS = {"PASS": "#c8e6c9", "FAIL": "#ffcdd2", "N/A": "#eeeeee", "SKIPPED": "#eeeeee",
            "ERROR": "#e1bee7", "INFO": "#bbdefb"}


def html_page(graded: dict[str, list[Result]], errors: dict[str, str],
              cells: Sequence[Cell]) -> str:
    names = list(graded)
    checks: list[str] = []
    for results in graded.values():
        checks += [_name(r) for r in results if _name(r) not in checks]
    rows = []
    for check in checks:
        tds = []
        for name in names:
            found = next((r for r in graded[name] if _name(r) == check), None)
            if found is None:
                tds.append("<td>-</td>")
                continue
            tip = html.escape(f"{found.actual}\n{found.reason}".strip())
            colour = _COLOURS.get(found.outcome.value, "#ffffff")
            tds.append(f"<td style='background:{colour}' title='{tip}'>"
                       f"{found.outcome.value}</td>")
        rows.append(f"<tr><th>assignment/{html.escape(check)}</th>{''.join(tds)}</tr>")
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    trouble = "".join(f"<li>{html.escape(n)}: {html.escape(e)}</li>" for n, e in errors.items())
    interop = ""
    if cells:
        receivers = list(dict.fromkeys(c.receiver for c in cells))
        senders = list(dict.fromkeys(c.sender for c in cells))
        body = "".join(
            "<tr><th>" + html.escape(s) + "</th>" + "".join(
                f"<td>{html.escape(next((c.verdict for c in cells if c.sender == s and c.receiver == r), '-'))}</td>"  # noqa: E501
                for r in receivers) + "</tr>" for s in senders)
        interop = ("<h2>Beacon interop (row sends, column receives)</h2><table><tr><th></th>"
                   + "".join(f"<th>{html.escape(r)}</th>" for r in receivers) + "</tr>"
                   + body + f"</table><p>{html.escape(INTEROP_NOTE)}</p>")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>assignment grades</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}</style></head><body>"
            f"<h1>bluetrace-conform assignment</h1><table><tr><th></th>{head}</tr>"
            + "".join(rows) + "</table>" + (f"<ul>{trouble}</ul>" if trouble else "")
            + interop + "</body></html>\n")


def write_files(graded: dict[str, list[Result]], errors: dict[str, str], cells: Sequence[Cell],
                *, json_path: Path | None, csv_path: Path | None, html_path: Path | None) -> None:
    if json_path:
        json_path.write_text(json.dumps(json_data(graded, errors, cells), indent=2) + "\n",
                             encoding="utf-8")
    if csv_path:
        csv_path.write_text(csv_text(graded, errors), encoding="utf-8")
    if html_path:
        html_path.write_text(html_page(graded, errors, cells), encoding="utf-8")

