"""The bench's output: figures, the table with its legend, the summary, JSON.

A figure is only worth reading beside its ceiling, the same measurement made
in the same run against a bare stand-in that does no protocol work; so the
table prints both, their ratio, and a legend saying what each ceiling was.
"""

import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

COLUMNS = ("part", "figure", "value", "ceiling", "ratio", "target", "met")

LEGEND = """\
Columns:
  part     which part of the bench measured it (--only PART runs one part)
  figure   what was measured; a "session" is one connection doing
           login -> Download_tempID -> logout, then closing
  value    bluetrace's figure (the server and phone run as real processes)
  ceiling  the same measurement, in this run, against a bare stand-in that does
           no protocol work (what each part used is listed below)
  ratio    value / ceiling: for rates, the share of the ceiling reached (1 = as
           fast as bare Python); for times, memory and latencies, how many times
           the ceiling (1 = as good as bare Python)
  target   the figure the project aims for; judged only at full sizes
  met      yes / NO against the target; blank where no target is set"""


@dataclass
class Figure:
    """One measured figure. ``ceiling`` is in the same unit as ``value``."""

    part: str
    name: str
    value: float
    unit: str
    ceiling: float | None = None
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        """value / ceiling; None where that means nothing (no ceiling, or a
        ceiling of zero or less, as a bare server's memory growth can be)."""
        if self.ceiling is None or not self.ceiling > 0 or math.isnan(self.value):
            return None
        return self.value / self.ceiling


@dataclass
class Report:
    """Everything one run produced, in the order it was measured."""

    quick: bool
    machine: dict[str, object]
    figures: list[Figure] = field(default_factory=list)
    ceilings: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def counts(self) -> tuple[int, int, int]:
        """Targets met, missed, and set but not judged (quick sizes)."""
        met = sum(1 for f in self.figures if f.met is True)
        missed = sum(1 for f in self.figures if f.met is False)
        unjudged = sum(1 for f in self.figures if f.target and f.met is None)
        return met, missed, unjudged


def machine() -> dict[str, object]:
    """What the figures were measured on: they mean little without it."""
    model = ""
    memory_gib = float("nan")
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = int(line.split()[1]) / 1024 / 1024
                break
    except OSError:
        pass
    return {
        "cores": len(os.sched_getaffinity(0)),
        "cpu": model,
        "memory_gib": round(memory_gib, 1),
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def describe_machine(info: dict[str, object]) -> str:
    load = info.get("load_average") or []
    loads = ", ".join(str(x) for x in load) if isinstance(load, list) else ""
    return (
        f"Machine: {info['cores']} cores ({info['cpu'] or 'unknown CPU'}), "
        f"{info['memory_gib']} GiB, {info['implementation']} {info['python']}, "
        f"{info['platform']}; load average at start {loads}; {info['date']}"
    )


def number(value: float) -> str:
    """Three significant digits at least, thousands separated: 0.0147, 2.31, 400.4, 48,694."""
    if math.isnan(value):
        return "nan"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.3g}" if magnitude >= 10 else f"{value:.2f}"
    if magnitude == 0:
        return "0"
    return f"{value:.3g}"


def plural(count: int, noun: str) -> str:
    """'1 client', '10 clients'."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def table(figures: list[Figure]) -> str:
    rows = [COLUMNS]
    for f in figures:
        rows.append(
            (
                f.part,
                f.name,
                f"{number(f.value)} {f.unit}",
                "" if f.ceiling is None else f"{number(f.ceiling)} {f.unit}",
                "" if f.ratio is None else number(f.ratio),
                f.target,
                "" if f.met is None else ("yes" if f.met else "NO"),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def summary(report: Report) -> str:
    met, missed, unjudged = report.counts()
    parts = f"{len(report.figures)} figures in {report.seconds:.0f} s"
    if report.quick:
        text = f"quick run: {parts}; targets are judged at full sizes only ({unjudged} not judged)"
    else:
        text = f"targets: {met} met, {missed} missed; {parts}"
    if report.failures:
        text += f"; parts that failed: {', '.join(report.failures)}"
    return text


def render(report: Report) -> str:
    """The whole text report: machine, table, legend, ceilings, failures, summary."""
    lines = [describe_machine(report.machine), "", table(report.figures), "", LEGEND]
    if report.ceilings:
        lines += ["", "Ceilings used:"]
        width = max(len(part) for part in report.ceilings)
        lines += [f"  {part.ljust(width)}  {text}" for part, text in report.ceilings.items()]
    if report.failures:
        lines += ["", "Parts that failed (their figures are missing):"]
        lines += [f"  {part}: {error}" for part, error in report.failures.items()]
    lines += ["", summary(report)]
    return "\n".join(lines)


def _finite(row: dict[str, object]) -> dict[str, object]:
    """NaN (a figure with nothing to measure) as null: JSON has no NaN."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}


def write_json(report: Report, path: Path) -> None:
    met, missed, unjudged = report.counts()
    data = {
        "machine": report.machine,
        "quick": report.quick,
        "seconds": round(report.seconds, 1),
        "targets": {"met": met, "missed": missed, "not_judged": unjudged},
        "ceilings": report.ceilings,
        "failures": report.failures,
        "figures": [_finite(asdict(f) | {"ratio": f.ratio}) for f in report.figures],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
