"""Apply the published exposure rules to per-pair attenuation data that someone measured.

The simulator scores the Swiss, German and Italian rules (and two plain
threshold rules) on pairs it draws from a radio model. Whoever holds real
per-pair measurements (Leith & Farrell's tram and bus data, say, which this
project does not ship) should be able to put them through the very same code
and get the rules' figures exactly: which pairs notify, TPR and FPR against
the true distance, the largest weighted minutes, and the AUC of the mean
attenuation. ``bluetrace-sim rules FILE.csv`` does that; this module reads the
file (``load_pairs``), computes (``evaluate``, pure) and prints
(``format_text``, ``RulesReport.to_json``), each apart so tests can reach
every step.

Input: a CSV file with a header row. Required columns:

* ``pair``: any label; a pair's rows may be spread over the file;
* ``distance_m``: the pair's distance in metres (a number >= 0, the same on
  all of the pair's rows);
* ``attenuation_db``: an attenuation in dB (a finite number);
* ``minutes``: the time the pair spent at that attenuation (a number >= 0):
  one histogram bin or one reading.

Optional column ``close`` (``1``/``0``, ``true``/``false``, ``yes``/``no``;
empty means "by distance") overrides the truth ``distance_m <= close_m``.
Other columns are ignored, as are blank lines and lines starting with ``#``.
One row per line (no quoted line breaks). At most ``MAX_ROWS`` data rows,
``MAX_PAIRS`` pairs and ``MAX_LINE_CHARS`` characters a line: the input is
bounded, so a wrong file fails fast with one line instead of filling memory.

Each pair's minutes go into a histogram with the edges of every rule
(``exposure.ALL_EDGES``; bucket ``i`` holds ``edges[i-1] <= attenuation <
edges[i]``), and the rules are read from it by ``exposure.weighted_minutes``,
the same function the synthetic experiment uses. The score for the AUC is the
time-weighted mean attenuation (lower is closer); a pair with no minutes at
all counts as never heard (mean +inf, the farthest).
"""

from __future__ import annotations

import bisect
import csv
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

import numpy as np
import numpy.typing as npt

from bluetrace.sim.histograms import ALL_EDGES, RULES, AttenuationHistogram, Rates, rates
from bluetrace.sim.histograms import weighted_minutes as rule_weighted_minutes
from bluetrace.sim.rules import ExposureRule
from bluetrace.sim.stats import auc

BoolArray = npt.NDArray[np.bool_]

#: Bounds on the input; tests lower them rather than write a million rows.
MAX_ROWS: Final = 1_000_000
MAX_PAIRS: Final = 100_000
MAX_LINE_CHARS: Final = 10_000
#: Default truth: a pair is a close contact at this distance or nearer (metres).
DEFAULT_CLOSE_M: Final = 2.0

REQUIRED: Final = ("pair", "distance_m", "attenuation_db", "minutes")
_TRUE: Final = frozenset({"1", "true", "yes"})
_FALSE: Final = frozenset({"0", "false", "no"})


class ReplayError(ValueError):
    """The input file cannot be read as per-pair attenuation data (one line, with a place)."""


# -- the data ------------------------------------------------------------------


@dataclass(frozen=True)
class PairData:
    """One pair as the file gives it: truth, and time per attenuation bucket."""

    label: str
    distance_m: float
    close: bool
    histogram: AttenuationHistogram
    mean_attenuation_db: float  # time-weighted; +inf when the pair has no minutes


@dataclass(frozen=True)
class RuleOutcome:
    """One rule over all pairs: its decisions scored against the truth."""

    rule: ExposureRule
    weighted: tuple[float, ...]  # per pair, in the order of RulesReport.pairs
    decisions: tuple[bool, ...]
    rates: Rates

    @property
    def notified(self) -> int:
        return self.rates.tp + self.rates.fp

    @property
    def max_weighted(self) -> float:
        return max(self.weighted)


@dataclass(frozen=True)
class RulesReport:
    """What ``bluetrace-sim rules`` reports: counts, each rule's outcome, the AUC."""

    pairs: tuple[PairData, ...]
    outcomes: tuple[RuleOutcome, ...]
    auc: float  # of the mean attenuation (lower = closer); nan when a class is empty

    @property
    def n_close(self) -> int:
        return sum(p.close for p in self.pairs)

    @property
    def n_far(self) -> int:
        return len(self.pairs) - self.n_close

    def to_json(self) -> dict[str, object]:
        """The report as JSON-ready data; nan and inf become null."""
        return {
            "n_pairs": len(self.pairs),
            "n_close": self.n_close,
            "n_far": self.n_far,
            "rules": {o.rule.name: _outcome_json(o) for o in self.outcomes},
            "auc_mean_attenuation": _finite_or_none(self.auc),
            "pairs": [_pair_json(i, p, self.outcomes) for i, p in enumerate(self.pairs)],
        }


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _outcome_json(o: RuleOutcome) -> dict[str, object]:
    r = o.rates
    return {
        "thresholds_db": list(o.rule.thresholds),
        "weights": list(o.rule.weights),
        "minutes": o.rule.minutes,
        "strict": o.rule.strict,
        "notified": o.notified,
        "tp": r.tp,
        "fn": r.fn,
        "fp": r.fp,
        "tn": r.tn,
        "tpr": _finite_or_none(r.tpr),
        "fpr": _finite_or_none(r.fpr),
        "max_weighted_minutes": o.max_weighted,
    }


def _pair_json(i: int, p: PairData, outcomes: Sequence[RuleOutcome]) -> dict[str, object]:
    return {
        "pair": p.label,
        "distance_m": p.distance_m,
        "close": p.close,
        "minutes": p.histogram.total,
        "mean_attenuation_db": _finite_or_none(p.mean_attenuation_db),
        "weighted_minutes": {o.rule.name: o.weighted[i] for o in outcomes},
        "notified": {o.rule.name: o.decisions[i] for o in outcomes},
    }


# -- computing -------------------------------------------------------------------


def evaluate(pairs: Sequence[PairData], rules: Sequence[ExposureRule] = RULES) -> RulesReport:
    """Score every rule, and the mean attenuation, on these pairs against their truth.

    Pure: no files, no printing. A rule reads a pair through
    ``exposure.weighted_minutes`` and decides with the rule's own ``>=`` or
    ``>``, exactly as in the synthetic experiment.
    """
    if not pairs:
        raise ValueError("no pairs to evaluate")
    truth = np.asarray([p.close for p in pairs], dtype=bool)
    outcomes = tuple(_score_rule(rule, pairs, truth) for rule in rules)
    score = -np.asarray([p.mean_attenuation_db for p in pairs], dtype=np.float64)
    return RulesReport(tuple(pairs), outcomes, auc(score, truth))


def _score_rule(rule: ExposureRule, pairs: Sequence[PairData], truth: BoolArray) -> RuleOutcome:
    weighted = np.asarray([rule_weighted_minutes(rule, p.histogram) for p in pairs])
    decisions = rule.notifies(weighted)
    return RuleOutcome(
        rule=rule,
        weighted=tuple(float(w) for w in weighted),
        decisions=tuple(bool(d) for d in decisions),
        rates=rates(decisions, truth),
    )


# -- reading ---------------------------------------------------------------------


@dataclass
class _Pair:
    """A pair while its rows are being read."""

    label: str
    distance_m: float
    close: bool
    line: int  # where the pair first appears, for conflict messages
    bins: list[list[float]] = field(default_factory=lambda: [[] for _ in range(len(ALL_EDGES) + 1)])
    att_minutes: list[float] = field(default_factory=list)  # attenuation x minutes per row

    def finish(self, name: str) -> PairData:
        """The pair's histogram and mean; fsum, so the order of its rows does not matter."""
        try:
            minutes = tuple(math.fsum(b) for b in self.bins)
            total = math.fsum(minutes)
            mean = math.fsum(self.att_minutes) / total if total > 0 else math.inf
        except (OverflowError, ValueError):
            minutes, total, mean = (), math.inf, math.nan
        if not math.isfinite(total) or (total > 0 and not math.isfinite(mean)):
            raise ReplayError(
                f"{name}:{self.line}: pair {self.label!r}: numbers too large to add up"
            )
        hist = AttenuationHistogram(ALL_EDGES, minutes)
        return PairData(self.label, self.distance_m, self.close, hist, mean)


@dataclass(frozen=True)
class _Row:
    label: str
    distance_m: float
    attenuation_db: float
    minutes: float
    close: bool | None  # None: decide by distance


def load_pairs(path: Path, close_m: float = DEFAULT_CLOSE_M) -> list[PairData]:
    """Read a per-pair attenuation CSV (see the module docstring) into pairs, in file order.

    Raises ReplayError (a ValueError) with ``FILE:LINE: problem`` for bad
    input, OSError when the file cannot be opened.
    """
    if not math.isfinite(close_m) or close_m < 0:
        raise ValueError(f"close distance must be a number >= 0, got {close_m}")
    with path.open(encoding="utf-8-sig", newline="") as f:
        pairs = _read(f, str(path), close_m)
    if not pairs:
        raise ReplayError(f"{path}: no data rows (no pairs)")
    return [p.finish(str(path)) for p in pairs.values()]


def _read(f: IO[str], name: str, close_m: float) -> dict[str, _Pair]:
    lines = _lines(f, name)
    header = next(lines, None)
    if header is None:
        return {}
    columns, width = _columns(header[1], name, header[0])
    pairs: dict[str, _Pair] = {}
    for count, (lineno, text) in enumerate(lines, start=1):
        if count > MAX_ROWS:
            raise ReplayError(f"{name}:{lineno}: more than {MAX_ROWS:,} data rows (the limit)")
        row = _row(_fields(text, name, lineno, width), columns, name, lineno)
        _add(pairs, row, close_m, name, lineno)
    return pairs


def _lines(f: IO[str], name: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of the lines that hold data, each at most MAX_LINE_CHARS long."""
    lineno = 0
    while True:
        try:
            text = f.readline(MAX_LINE_CHARS + 1)
        except UnicodeDecodeError:
            raise ReplayError(f"{name}:{lineno + 1}: not UTF-8 text") from None
        if not text:
            return
        lineno += 1
        if len(text.rstrip("\r\n")) > MAX_LINE_CHARS:
            raise ReplayError(f"{name}:{lineno}: line longer than {MAX_LINE_CHARS:,} characters")
        stripped = text.strip()
        if stripped and not stripped.startswith("#"):
            yield lineno, text


def _fields(text: str, name: str, lineno: int, expected: int | None) -> list[str]:
    """One line's fields; a data row must have as many as the header."""
    try:
        fields = next(csv.reader([text]))
    except csv.Error as exc:
        raise ReplayError(f"{name}:{lineno}: not a CSV row: {exc}") from None
    if expected is not None and len(fields) != expected:
        raise ReplayError(f"{name}:{lineno}: {len(fields)} fields, the header has {expected}")
    return fields


def _columns(text: str, name: str, lineno: int) -> tuple[dict[str, int], int]:
    """Column name -> index, and the number of fields, from the header.

    Every required column must be there; names are matched without case or
    surrounding spaces.
    """
    names = [c.strip().lower() for c in _fields(text, name, lineno, None)]
    columns: dict[str, int] = {}
    for i, col in enumerate(names):
        if col in columns and col in (*REQUIRED, "close"):
            raise ReplayError(f"{name}:{lineno}: column {col!r} appears twice")
        columns.setdefault(col, i)
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise ReplayError(
            f"{name}:{lineno}: header lacks column(s) {', '.join(missing)} "
            f"(needs {', '.join(REQUIRED)})"
        )
    return columns, len(names)


def _row(fields: list[str], columns: dict[str, int], name: str, lineno: int) -> _Row:
    def cell(col: str) -> str:
        return fields[columns[col]].strip()

    label = cell("pair")
    if not label:
        raise ReplayError(f"{name}:{lineno}: pair must not be empty")
    place = f"{name}:{lineno}"
    return _Row(
        label=label,
        distance_m=_number(cell("distance_m"), "distance_m", place, at_least_zero=True),
        attenuation_db=_number(cell("attenuation_db"), "attenuation_db", place),
        minutes=_number(cell("minutes"), "minutes", place, at_least_zero=True),
        close=_flag(cell("close"), place) if "close" in columns else None,
    )


def _number(text: str, col: str, place: str, *, at_least_zero: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or (at_least_zero and value < 0):
        need = "a number >= 0" if at_least_zero else "a finite number"
        raise ReplayError(f"{place}: {col} must be {need}, got {text!r}")
    return value


def _flag(text: str, place: str) -> bool | None:
    word = text.lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    if not word:
        return None
    raise ReplayError(f"{place}: close must be 1/0, true/false, yes/no or empty, got {text!r}")


def _add(pairs: dict[str, _Pair], row: _Row, close_m: float, name: str, lineno: int) -> None:
    """Put one row into its pair; a pair's distance and truth must agree on all its rows."""
    close = row.close if row.close is not None else row.distance_m <= close_m
    pair = pairs.get(row.label)
    if pair is None:
        if len(pairs) >= MAX_PAIRS:
            raise ReplayError(f"{name}:{lineno}: more than {MAX_PAIRS:,} pairs (the limit)")
        pair = pairs[row.label] = _Pair(row.label, row.distance_m, close, lineno)
    elif row.distance_m != pair.distance_m:
        raise ReplayError(
            f"{name}:{lineno}: pair {row.label!r} has distance_m {row.distance_m:g} here "
            f"but {pair.distance_m:g} on line {pair.line}"
        )
    elif close != pair.close:
        raise ReplayError(
            f"{name}:{lineno}: pair {row.label!r} is {_word(close)} here "
            f"but {_word(pair.close)} on line {pair.line}"
        )
    pair.bins[bisect.bisect_right(ALL_EDGES, row.attenuation_db)].append(row.minutes)
    pair.att_minutes.append(row.attenuation_db * row.minutes)


def _word(close: bool) -> str:
    return "close" if close else "far"


# -- printing --------------------------------------------------------------------


def format_text(report: RulesReport, source: str, close_m: float) -> str:
    """The report as a short aligned table (what ``bluetrace-sim rules`` prints)."""
    head = (
        f"{source}: {len(report.pairs):,} pairs, {report.n_close:,} close, {report.n_far:,} far "
        f"(close: distance <= {close_m:g} m unless the close column says otherwise)"
    )
    rows = [["rule", "notified", "TPR", "FPR", "max weighted min"]]
    rows += [_rule_row(o) for o in report.outcomes]
    auc_text = "-" if math.isnan(report.auc) else f"{report.auc:.3f}"
    tail = f"AUC of the time-weighted mean attenuation (lower = closer): {auc_text}"
    return "\n".join([head, *_align(rows), tail])


def _rule_row(o: RuleOutcome) -> list[str]:
    r = o.rates
    return [
        o.rule.name,
        f"{o.notified:,}",
        _rate(r.tpr, r.tp, r.tp + r.fn),
        _rate(r.fpr, r.fp, r.fp + r.tn),
        f"{o.max_weighted:.2f}",
    ]


def _rate(value: float, hits: int, of: int) -> str:
    return "-" if math.isnan(value) else f"{value:.3f} ({hits:,}/{of:,})"


def _align(rows: list[list[str]]) -> list[str]:
    """First column left-aligned, the others right-aligned, two spaces apart."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                  enumerate(zip(r, widths, strict=True))).rstrip()
        for r in rows
    ]
