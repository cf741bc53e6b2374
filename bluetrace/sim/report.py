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
from typing import Any

import jinja2
import matplotlib
import numpy as np

import bluetrace
from bluetrace.sim import figures
from bluetrace.sim.runner import SeedRun
from bluetrace.sim.scenario import Scenario, scenario_to_dict

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
<table>{% for k, v in params %}<tr><td class="l">{{ k }}</td><td class="l">{{ v }}</td></tr>
{% endfor %}</table>
<h2>Who is named, against which truth</h2>
<p>Rows: <i>log</i> is BlueTrace as specified (every TempID in the uploaded log is named);
the others are exposure rules a phone logging attenuation and time could apply. Columns:
the ground-truth close-contact rules. Cells: recall / precision.</p>
<table><tr><th class="l">detector</th>{% for t in truths %}<th>{{ t }}</th>{% endfor %}</tr>
{% for det, cells in detection_rows %}<tr><td class="l">{{ det }}</td>
{% for c in cells %}<td>{{ c }}</td>{% endfor %}</tr>{% endfor %}</table>
<h2>Counters</h2>
<table>{% for k, v in counters %}<tr><td class="l">{{ k }}</td><td>{{ v }}</td></tr>
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
        ("pair-days heard by both phones, of those heard", combined["seen_by_both"], True),
        ("beacons lost, of those sent to a phone in range", combined["beacon_loss"], True),
        ("beacons received", combined["beacons"]["received"], False),
        ("TempIDs issued", combined["tempids_issued"], False),
    ):
        v, ci = _fmt(est, pct)
        rows.append({"label": label, "value": v, "ci": ci})
    rows[0]["value"] += f" ({det['tp']} of {det['true']})"
    rows[1]["value"] += f" ({det['tp']} of {det['named']})"
    return rows


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
    """metrics.csv, per_seed.csv, roc.csv, continuity.csv and sweep.csv."""
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
        for name in ("continuity", "seen_by_both", "beacon_loss", "tempids_issued"):
            e = combined[name]
            w.writerow(["", "", name, e["value"], e["low"], e["high"], e["method"]])
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
) -> Path:
    """Write every output into ``out``; returns the path of report.html."""
    out.mkdir(parents=True, exist_ok=True)
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
        ("Attenuation against distance", figures.attenuation_vs_distance(runs[0], fig_dir)),
        ("ROC per exposure rule", figures.roc_curves(runs[0].metrics, scenario.primary_rule,
                                                     fig_dir)),
        ("Per-pair detection timelines", figures.timelines(runs[0], fig_dir)),
    ]
    if sweep:
        figs.append((f"Recall and precision against {sweep[0]['key']}",
                     figures.sweep_plot(sweep, fig_dir)))
    params: list[tuple[str, str]] = []
    _flatten("", scenario_to_dict(scenario), params)
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
    counters = [(f"AUC {k}", "n/a" if v["value"] is None else f"{v['value']:.3f}")
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
        ci_note=("percentile bootstrap over seeds" if len(runs) >= 3 else
                 "Wilson score intervals on pooled counts (run --seeds 3 or more for "
                 "intervals over seeds)"),
        params=params, truths=truths, detection_rows=rows, counters=counters,
        figures=[{"title": t, "uri": "data:image/png;base64,"
                  + base64.b64encode(p.read_bytes()).decode("ascii")} for t, p in figs],
        versions=versions(),
    )
    report = out / "report.html"
    report.write_text(html)
    return report
