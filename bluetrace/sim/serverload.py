"""The health authority's load a simulated run implies, beside one server's capacity.

A run counts what the server would do (``EngineResult.server_work``: TempID
requests and TempIDs issued, uploads, entries checked). Scaled to rates, these
are set beside what ``make bench`` measured one bluetrace server doing on this
machine (its ``.bluetrace/bench/results.json``), as servers needed: the load
divided by one server's rate. Without that file the rates are still given and
the ratios say that ``make bench`` has not been run.

Rates: phones ask for TempIDs on their own expiry clocks, which are spread
evenly, so the peak rate is the mean (requests over the run's seconds). Uploads
and checks happen at the run's upload moment; a real country's come every day,
so per day they are the run's over its days, and the peak checking rate is a
day's entries over CHECKING_HOURS (a health authority's working day).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bluetrace.sim.scenario import Scenario

#: Where ``make bench`` writes what one server measured.
SERVER_BENCH = Path(".bluetrace/bench/results.json")
#: Hours over which a day's uploads are checked; the peak checking rate is a
#: day's entries over them.
CHECKING_HOURS = 8.0


def implied_load(scenario: Scenario, work: Mapping[str, float]) -> dict[str, float]:
    """Rates from a run's server work (see the module docstring)."""
    seconds = scenario.duration
    days = max(scenario.days, 1)
    entries_per_day = work.get("upload_entries", 0) / days
    return {
        "tempid_requests_per_s": work.get("tempid_requests", 0) / seconds,
        "tempids_issued_per_s": work.get("tempids_issued", 0) / seconds,
        "uploads_per_day": work.get("uploads", 0) / days,
        "entries_checked_per_day": entries_per_day,
        "entries_checked_per_s_peak": entries_per_day / (CHECKING_HOURS * 3600.0),
    }


def server_capacity(path: Path = SERVER_BENCH) -> dict[str, float]:
    """One server's measured rates from ``make bench``'s results (empty when the file
    is missing, unreadable or holds neither figure): ``sessions`` (the best
    sessions/s, a TempID request being one session) and ``checking`` (entries
    checked/s)."""
    capacity: dict[str, float] = {}
    try:
        figures = json.loads(path.read_text())["figures"]
        for row in figures:
            if row.get("part") == "checking" and "entries checked/s" in row.get("name", ""):
                capacity["checking"] = float(row["value"])
            if row.get("part") == "sessions" and row.get("unit") == "/s":
                capacity["sessions"] = max(capacity.get("sessions", 0.0), float(row["value"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}
    return capacity


def load_table(load: Mapping[str, float], capacity: Mapping[str, float],
               path: Path = SERVER_BENCH) -> dict[str, Any]:
    """Rows of (figure, load, one server's rate, servers needed) and a note saying
    where the capacities come from or that they are missing (plain data, for
    results.json, the HTML report and the benchmark's table)."""
    spec = [
        ("TempIDs issued/s at peak", "tempids_issued_per_s", None),
        ("TempID requests/s at peak (one session each)", "tempid_requests_per_s", "sessions"),
        ("uploads/day", "uploads_per_day", None),
        ("entries checked/day", "entries_checked_per_day", None),
        (f"entries checked/s at peak ({CHECKING_HOURS:.0f} h a day)",
         "entries_checked_per_s_peak", "checking"),
    ]
    rows = []
    for figure, key, part in spec:
        one = capacity.get(part) if part else None
        rows.append({
            "figure": figure, "load": load[key], "one_server_per_s": one,
            "servers_needed": (load[key] / one) if one else None,
        })
    if capacity:
        note = (f"one server's rates: make bench's {path} "
                f"({', '.join(sorted(capacity))} measured)")
    else:
        note = (f"no make bench results at {path}: run make bench for one server's "
                "rates and the servers needed")
    return {"rows": rows, "note": note, "bench_file_found": bool(capacity)}
