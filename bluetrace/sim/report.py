"""Outputs of a run: results.json, CSVs, figures and one self-contained HTML report.

The HTML report needs no network: figures are inlined as PNG data: URIs and
there is no script. It opens with the headline numbers and the parameters.
Every figure can be redrawn from results.json and the CSVs.
"""

from __future__ import annotations

import base64
import csv
import json
import math
import platform
import sys
from pathlib import Path
from typing import Any, Final

import jinja2
import matplotlib
import numpy as np

import bluetrace
from bluetrace.sim import figures
from bluetrace.sim.runs import SeedRun
from bluetrace.sim.scenario import Scenario, scenario_to_dict
from bluetrace.sim.serverload import SERVER_BENCH, implied_load, load_table, server_capacity

TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>bluetrace-sim: {{ scenario.name }}</title>
<style>
body { font-family: sans-serif; max-width: 60em; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th { background: #f0f0f0; } td.l, th.l { text-align: left; }
.headline td { font-size: 1.1em; }
img { max-width: 100%; }
</style></head><body>
<h1>bluetrace-sim: {{ scenario.name }}</h1>
<p>{{ scenario.description }}</p>
<h2>Headline numbers</h2>
<table class="headline">
<tr><th class="l">what</th><th>value</th><th>95 % interval</th></tr>
{% for h in headline %}<tr><td class="l">{{ h.label }}</td><td>{{ h.value }}</td>
<td>{{ h.ci }}</td></tr>
{% endfor %}</table>
<p>Engine <b>{{ engine }}</b>, seeds {{ seeds|join(", ") }}. Intervals: {{ ci_note }}</p>
<h2>Parameters</h2>
<table><tr><th class="l">parameter</th><th class="l">value</th><th class="l">unit</th></tr>
{% for k, v, u in params %}<tr><td class="l">{{ k }}</td><td class="l">{{ v }}</td>
<td class="l">{{ u }}</td></tr>
{% endfor %}</table>
<h2>Who is named, against which truth</h2>
<p>Rows: <i>log</i> is BlueTrace as specified (every TempID in the uploaded log is named);
the others are exposure rules a phone logging attenuation and time could apply. Columns:
the ground-truth close-contact rules. Cells: recall / precision.</p>
<table><tr><th class="l">detector</th>{% for t in truths %}<th>{{ t }}</th>{% endfor %}</tr>
{% for det, cells in detection_rows %}<tr><td class="l">{{ det }}</td>
{% for c in cells %}<td>{{ c }}</td>{% endfor %}</tr>{% endfor %}</table>
<h2>By phone profile pair</h2>
<p>Each contact's two phones, by profile (A|B, names sorted). Pair-days: co-located
pair-days with both phones running the app, logged by both phones, by A's phone only, by
B's only, by neither. Per direction: 2S/(2S+A) from S both-sided and A one-sided
pair-days (each phone's chance to log the other, if both directions were alike); A hears B:
S/(S + B only). Recall through the infected person's log, and either side (that log or
the contact's), against the {{ scenario.primary_rule }} rule. Continuity: share of
co-located 30-s windows heard, one way and by either phone. Intervals as above.</p>
<table><tr><th class="l">profiles</th><th>both / A only / B only / neither</th>
<th>seen by both</th><th>per direction</th><th>A hears B</th><th>B hears A</th>
<th>recall</th><th>either-side recall</th><th>continuity one way</th>
<th>continuity either phone</th></tr>
{% for row in by_pair %}<tr><td class="l">{{ row.label }}</td><td>{{ row.counts }}</td>
{% for c in row.cells %}<td>{{ c }}</td>{% endfor %}</tr>
{% endfor %}</table>
<h2>Counters</h2>
<table>{% for k, v in counters %}<tr><td class="l">{{ k }}</td><td>{{ v }}</td></tr>
{% endfor %}</table>
<h2>Server load</h2>
<p>What the health authority's server would have to do if this run's phones were a
country (TempIDs on the phones' expiry clocks, a day's uploads checked in a working day),
beside one bluetrace server's rates measured by make bench on this machine.
{{ server_load.note }}.</p>
<table><tr><th class="l">figure</th><th>this run</th><th>one server</th>
<th>servers needed</th></tr>
{% for row in server_load.rows %}<tr><td class="l">{{ row.figure }}</td>
<td>{{ "{:,.1f}".format(row.load) if row.load >= 10 else "{:.3g}".format(row.load) }}</td>
<td>{{ "{:,.0f}/s".format(row.one_server_per_s) if row.one_server_per_s else "-" }}</td>
<td>{{ "{:.3f}".format(row.servers_needed) if row.servers_needed is not none else
"-" }}</td></tr>
{% endfor %}</table>
<h2>Figures</h2>
{% for f in figures %}<h3>{{ f.title }}</h3><img alt="{{ f.title }}" src="{{ f.uri }}">
{% endfor %}
<p><small>bluetrace {{ versions.bluetrace }}, numpy {{ versions.numpy }},
Python {{ versions.python }}. Files: results.json, *.csv, figures/*.png and *.svg.</small></p>
</body></html>
"""


def versions() -> dict[str, str]:
    """Versions that make a result reproducible."""
    return {
        "bluetrace": bluetrace.__version__,
        "numpy": np.__version__,
        "matplotlib": matplotlib.__version__,
        "python": platform.python_version(),
        "platform": sys.platform,
    }


def _fmt(est: dict[str, Any], pct: bool = True) -> tuple[str, str]:
    value, low, high = est.get("value"), est.get("low"), est.get("high")
    if value is None:
        return "n/a", ""
    if pct:
        v = f"{100 * value:.1f} %"
        ci = f"{100 * low:.1f} - {100 * high:.1f} %" if low is not None and high is not None else ""
    else:
        v = f"{value:,.0f}"
        ci = f"{low:,.0f} - {high:,.0f}" if low is not None and high is not None else ""
    return v, ci


def headline(scenario: Scenario, combined: dict[str, Any]) -> list[dict[str, str]]:
    """The numbers the report (and the command line) open with."""
    rule = scenario.primary_rule
    det = combined["detection"]["log"][rule]
    rows = []
    for label, est, pct in (
        (f"recall of true close contacts ({rule} rule)", det["recall"], True),
        (f"precision of named contacts ({rule} rule)", det["precision"], True),
        ("continuity (30-s windows with a reception, per pair)", combined["continuity"], True),
        ("continuity, either phone (a tracer pooling both logs)",
         combined.get("continuity_either", {}), True),
        ("pair-days heard by both phones, of those heard", combined["seen_by_both"], True),
        ("beacons lost, of those sent to a phone in range", combined["beacon_loss"], True),
        ("beacons received", combined["beacons"]["received"], False),
        ("TempIDs issued", combined["tempids_issued"], False),
    ):
        v, ci = _fmt(est, pct)
        rows.append({"label": label, "value": v, "ci": ci})
    rows[0]["value"] += f" ({det['tp']} of {det['true']})"
    rows[1]["value"] += f" ({det['tp']} of {det['named']})"
    if det["true"] == 0:
        # Say why in words: nobody met the rule, so neither figure can mean anything.
        others = [f"{t} ({c['true']:,})" for t, c in combined["detection"]["log"].items()
                  if c["true"] > 0]
        why = (f"n/a: no pair met the {rule} rule's distance and time, so there is no true "
               "contact to recall")
        why += (f"; rules with true contacts here: {', '.join(others)}" if others else
                "; no built-in or scenario rule has any (try contact_rules with a shorter "
                "time or a longer distance)")
        rows[0]["value"], rows[0]["ci"] = why, ""
        rows[1]["value"] = (f"{rows[1]['value']}: every one of the {det['named']:,} phones "
                            f"named is a false positive against the {rule} rule")
    return rows


#: Units of the parameters the report lists (by the last part of the key).
UNITS: Final = {
    "days": "days", "population": "people", "uptake": "share", "p_loss": "share",
    "infected": "share or ids", "beacon_interval": "s", "tempid_lifetime": "s",
    "tempid_batch": "TempIDs", "tempid_refresh": "s", "retention": "s", "upload_at": "s",
    "cutoff": "m", "pair_detectable": "probability", "record_fraction": "share",
    "count": "places", "per_place": "people", "pitch": "m", "start": "h (clock)",
    "end": "h (clock)", "jitter": "min", "attendance": "probability", "trips": "a day",
    "trip_minutes": "min", "riders": "people", "area": "m (side)", "speed": "m/s",
    "pause": "s", "step": "s", "rows": "", "cols": "", "distance": "m", "minutes": "min",
    "share": "share", "scan_window": "s", "scan_every": "s", "adv_on": "s", "adv_off": "s",
    "revisit": "s", "id_rotation": "s", "background_spell": "s", "hear_fg": "probability",
    "hear_bg": "probability", "heard_fg": "probability", "heard_bg": "probability",
    "background_share": "share", "a0": "dB", "n": "", "s_pair": "dB", "s_scan": "dB",
    "threshold": "dB", "body_loss": "dB", "body_fraction": "share", "holder_spread": "dB",
}
#: Place fields that apply to each kind of place (the others are not shown).
PLACE_FIELDS: Final = {
    "room": ("rows", "cols", "pitch", "start", "end", "jitter", "attendance"),
    "tram": ("rows", "cols", "start", "end", "trips", "trip_minutes", "riders"),
    "bus": ("rows", "cols", "start", "end", "trips", "trip_minutes", "riders"),
    "open": ("area", "speed", "pause", "step", "start", "end"),
}
_PLACE_COMMON: Final = ("name", "kind", "count", "per_place", "radio")


def auc_text(value: float | None) -> str:
    """An AUC as the report shows it: below 0.5 is flagged (the score ranks far pairs
    above near ones), and a missing one says why."""
    if value is None:
        return "n/a (needs both close and far pairs)"
    flag = " (below 0.5: worse than chance)" if value < 0.5 else ""
    return f"{value:.3f}{flag}"


def parameter_rows(scenario: Scenario) -> list[tuple[str, str, str]]:
    """(key, value, unit) for the report: places show only the fields of their kind,
    and the tempid_refresh period only when TempIDs come in batches."""
    data = scenario_to_dict(scenario)
    if scenario.tempid_batch <= 1:
        data.pop("tempid_refresh", None)
    data["place"] = [
        {k: v for k, v in place.items()
         if k in _PLACE_COMMON or k in PLACE_FIELDS.get(str(place["kind"]), ())}
        for place in data["place"]
    ]
    flat: list[tuple[str, str]] = []
    _flatten("", data, flat)
    return [(k, v, UNITS.get(k.rsplit(".", 1)[-1].split("[")[0], "")) for k, v in flat]


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        for i, v in enumerate(value):
            _flatten(f"{prefix}[{i}]", v, out)
    else:
        out.append((prefix, json.dumps(value) if not isinstance(value, str) else value))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return _jsonable(float(value))
    return value


def write_csvs(out: Path, combined: dict[str, Any], runs: list[SeedRun],
               sweep: list[dict[str, Any]]) -> list[Path]:
    """metrics.csv, by_profile_pair.csv, per_seed.csv, roc.csv, continuity.csv, sweep.csv."""
    paths = []
    p = out / "metrics.csv"
    with p.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["detector", "truth", "metric", "value", "low", "high", "method"])
        for det, by_truth in combined["detection"].items():
            for truth, cell in by_truth.items():
                for metric in ("recall", "precision"):
                    e = cell[metric]
                    w.writerow([det, truth, metric, e["value"], e["low"], e["high"], e["method"]])
        for name, e in combined["auc"].items():
            w.writerow([name, "primary", "auc", e["value"], e["low"], e["high"], e["method"]])
        for name in ("continuity", "continuity_either", "seen_by_both", "beacon_loss",
                     "tempids_issued"):
            e = combined[name]
            w.writerow(["", "", name, e["value"], e["low"], e["high"], e["method"]])
    paths.append(p)
    p = out / "by_profile_pair.csv"
    with p.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["profiles", "metric", "value", "low", "high", "method"])
        for lab, cell in combined.get("by_profile_pair", {}).items():
            for kind, count in cell["pair_days"].items():
                w.writerow([lab, f"pair_days_{kind}", count, "", "", "count"])
            for metric, e in cell.items():
                if isinstance(e, dict) and "method" in e:
                    w.writerow([lab, metric, e["value"], e["low"], e["high"], e["method"]])
    paths.append(p)
    p = out / "per_seed.csv"
    with p.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["seed", "detector", "truth", "tp", "true", "named", "beacons_sent",
                    "beacons_received", "pair_days_both", "pair_days_one", "pair_days_none"])
        for r in runs:
            m = r.metrics
            for det, by_truth in m["detection"].items():
                for truth, c in by_truth.items():
                    w.writerow([r.seed, det, truth, c["tp"], c["true"], c["named"],
                                m["beacons"]["sent"], m["beacons"]["received"],
                                m["pair_days"]["both"], m["pair_days"]["one"],
                                m["pair_days"]["none"]])
    paths.append(p)
    p = out / "roc.csv"
    with p.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["seed", "rule", "fpr", "tpr"])
        for r in runs:
            for name, roc in r.metrics["roc"].items():
                for x, y in zip(roc["fpr"], roc["tpr"], strict=True):
                    w.writerow([r.seed, name, f"{x:.6g}", f"{y:.6g}"])
    paths.append(p)
    p = out / "continuity.csv"
    with p.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["seed", "receiver", "sender", "share_of_windows_heard"])
        for r in runs:
            c = r.metrics["continuity"]
            for key, share in zip(c.get("pair_keys", []), c["per_pair"], strict=True):
                w.writerow([r.seed, key // r.world.n, key % r.world.n, f"{share:.6g}"])
    paths.append(p)
    if sweep:
        p = out / "sweep.csv"
        with p.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["key", "value", "rule", "metric", "value_est", "low", "high"])
            for row in sweep:
                for metric in ("recall", "precision", "continuity"):
                    e = row[metric]
                    w.writerow([row["key"], row["value"], row["rule"], metric, e["value"],
                                e["low"], e["high"]])
        paths.append(p)
    return paths


def write_figure_data(out: Path, run: SeedRun) -> list[Path]:
    """attenuation.csv and timelines.csv: the first seed's data behind those figures."""
    paths = []
    p = out / "attenuation.csv"
    dist, att = figures.detection_distances(run)
    with p.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["seed", "distance_m", "attenuation_db"])
        for d, a in zip(dist.tolist(), att.tolist(), strict=True):
            w.writerow([run.seed, f"{d:.4g}", f"{a:.4g}"])
    paths.append(p)
    p = out / "timelines.csv"
    with p.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["seed", "receiver", "sender", "window", "window_start_s", "colocated",
                    "heard"])
        for rx, tx, co, heard in figures.timeline_windows(run):
            co_set, heard_set = set(co.tolist()), set(heard.tolist())
            for win in sorted(co_set | heard_set):
                w.writerow([run.seed, rx, tx, win, win * 30, int(win in co_set),
                            int(win in heard_set)])
    paths.append(p)
    return paths


def write_all(
    out: Path, scenario: Scenario, engine: str, runs: list[SeedRun], *,
    combined: dict[str, Any], sweep: list[dict[str, Any]],
    server_bench: Path = SERVER_BENCH,
) -> Path:
    """Write every output into ``out``; returns the path of report.html.

    ``server_bench``: make bench's results, for the servers the load needs."""
    out.mkdir(parents=True, exist_ok=True)
    work = {k: float(v["value"] or 0.0) for k, v in combined["server_work"].items()}
    server_load = load_table(implied_load(scenario, work), server_capacity(server_bench),
                             server_bench)
    seeds = [r.seed for r in runs]
    per_seed = [
        {"seed": r.seed,
         "engine": {k: v for k, v in r.result.summary().items() if k != "elapsed_s"},
         "metrics": {k: v for k, v in r.metrics.items() if k != "roc"}}
        for r in runs
    ]
    results = {
        "scenario": scenario_to_dict(scenario),
        "engine": engine,
        "seeds": seeds,
        "versions": versions(),
        "metrics": combined,
        "per_seed": per_seed,
        "sweep": sweep,
        "server_load": server_load,
    }
    (out / "results.json").write_text(
        json.dumps(_jsonable(results), indent=1, sort_keys=True) + "\n"
    )
    # Wall-clock times change from run to run: kept apart so that results.json
    # is identical for identical seeds.
    (out / "timing.json").write_text(json.dumps(
        {"elapsed_s": {str(r.seed): round(r.result.elapsed_s, 3) for r in runs}}, indent=1
    ) + "\n")
    write_csvs(out, combined, runs, sweep)
    write_figure_data(out, runs[0])
    fig_dir = out / "figures"
    figs = [
        (f"Attenuation against distance (seed {runs[0].seed})",
         figures.attenuation_vs_distance(runs[0], fig_dir)),
        (f"ROC per exposure rule (seed {runs[0].seed} only; the AUCs under Counters are "
         "means over every seed)",
         figures.roc_curves(runs[0].metrics, scenario.primary_rule, fig_dir)),
        (f"Per-pair detection timelines (seed {runs[0].seed})",
         figures.timelines(runs[0], fig_dir)),
    ]
    if sweep:
        figs.append((f"Recall and precision against {sweep[0]['key']}",
                     figures.sweep_plot(sweep, fig_dir)))
    params = parameter_rows(scenario)
    truths = list(next(iter(combined["detection"].values())))
    rows = []
    for det, by_truth in combined["detection"].items():
        cells = []
        for t in truths:
            c = by_truth[t]
            r, p = c["recall"]["value"], c["precision"]["value"]
            cells.append(f"{'n/a' if r is None else f'{r:.2f}'} / "
                         f"{'n/a' if p is None else f'{p:.2f}'}")
        rows.append((det, cells))
    by_pair = []
    for lab, cell in combined.get("by_profile_pair", {}).items():
        a, b = lab.split("|")
        pd = cell["pair_days"]
        shown = []
        for key in ("seen_by_both", "per_direction", f"{a}_hears_{b}", f"{b}_hears_{a}",
                    "recall", "either_recall", "continuity_one_way", "continuity_either"):
            v, ci = _fmt(cell[key])
            shown.append(f"{v} [{ci}]" if ci else v)
        by_pair.append({"label": lab, "cells": shown,
                        "counts": f"{pd['both']:,} / {pd['first_only']:,} / "
                                  f"{pd['second_only']:,} / {pd['none']:,}"})
    counters = [(f"AUC {k} (mean over seeds {seeds[0]}..{seeds[-1]})", auc_text(v["value"]))
                for k, v in combined["auc"].items()]
    counters += [(f"co-located pair-days: {k}", f"{v:,}") for k, v in combined["pair_days"].items()]
    counters += [(f"beacons {k} (mean per seed)", f"{v['value']:,.0f}")
                 for k, v in combined["beacons"].items()]
    counters += [(f"server {k} (mean per seed)", f"{v['value']:,.0f}")
                 for k, v in combined["server_work"].items()]
    html = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
        TEMPLATE
    ).render(
        scenario=scenario, engine=engine, seeds=seeds, headline=headline(scenario, combined),
        ci_note=("percentile bootstrap over seeds (ratios as ratios of sums; Wilson score "
                 "intervals on the pooled counts where every seed gives the same ratio), the "
                 "same method as bluetrace-sim sweep" if len(runs) >= 3 else
                 "Wilson score intervals on pooled counts (run --seeds 3 or more for "
                 "intervals over seeds)"),
        params=params, truths=truths, detection_rows=rows, counters=counters, by_pair=by_pair,
        figures=[{"title": t, "uri": "data:image/png;base64,"
                  + base64.b64encode(p.read_bytes()).decode("ascii")} for t, p in figs],
        versions=versions(), server_load=server_load,
    )
    report = out / "report.html"
    report.write_text(html)
    return report
