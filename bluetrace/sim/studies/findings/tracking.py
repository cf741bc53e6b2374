"""V5: how much of a walker's day a sniffer network can link (new numbers)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Final

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from bluetrace.sim.studies import tracking
from bluetrace.sim.studies.findings.registry import Finding, Investigation, Options
from bluetrace.sim.studies.findings.steps import (
    pct,
    save,
)

# -- V5: tracking by sniffers --------------------------------------------------------


def plot_map(
    run: tracking.TrackingRun,
    rotation_s: float,
    method: str,
    side_m: float,
    step_s: float,
    *,
    n_show: int = 5,
    hours: float = 2.0,
) -> Figure:
    """What the network sees: each linked track drawn through the sniffers that heard it.

    Grey squares are sniffers; thin grey lines the true paths of a few walkers
    over the first ``hours``; each coloured line one linked track of that walker
    (one line per track, so a break in colour is where linking failed).
    """
    sniffers = tracking.sniffer_grid(side_m, run.pitch_m)
    n_axis = round(math.sqrt(len(sniffers)))
    tracks = run.tracks[rotation_s, method]
    window = min(run.positions.shape[0], round(hours * 3600.0 / step_s))
    fig, ax = plt.subplots(figsize=(4.8, 4.8))
    ax.scatter(sniffers[:, 0], sniffers[:, 1], s=2, c="0.75", marker="s", lw=0)
    colours = plt.get_cmap("tab10")
    s = run.sightings
    for w in range(min(n_show, run.positions.shape[1])):
        ax.plot(run.positions[:window, w, 0], run.positions[:window, w, 1], lw=0.5, c="0.6")
        for t in np.nonzero((tracks.walker == w) & (tracks.first < window))[0]:
            sel = (s.walker == w) & (s.step >= tracks.first[t]) & (s.step <= tracks.last[t])
            sel &= s.step < window
            steps, inverse = np.unique(s.step[sel], return_inverse=True)
            if steps.size < 2:
                continue
            where = np.column_stack([s.sniffer[sel] // n_axis, s.sniffer[sel] % n_axis]) + 0.5
            where *= run.pitch_m
            counts = np.bincount(inverse)
            x = np.bincount(inverse, weights=where[:, 0]) / counts
            y = np.bincount(inverse, weights=where[:, 1]) / counts
            ax.plot(x, y, "-", lw=1.2, c=colours(w % 10), alpha=0.85)
            ax.plot(x[:1], y[:1], "o", ms=2.5, c=colours(w % 10))  # where each track starts
    ax.set_xlim(0, side_m)
    ax.set_ylim(0, side_m)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(
        f"sniffers every {run.pitch_m:g} m; TempID {tracking.rotation_label(rotation_s)}; "
        f"{method} linking; first {hours:g} h\ngrey: true paths of {n_show} walkers; colour: "
        "each linked track,\ndrawn through the sniffers that heard it (dot: where it starts)",
        fontsize=7,
    )
    fig.tight_layout()
    return fig


def plot_track_cdf(runs: Sequence[tracking.PitchResults]) -> Figure:
    """CDF of linked-track length: one panel per pitch, one line per rotation x method."""
    pitches = sorted({r.pitch_m for r in runs})
    fig, axes = plt.subplots(
        1, len(pitches), figsize=(3.0 * len(pitches), 2.9), sharey=True, squeeze=False
    )
    keys = sorted(
        {k for r in runs for k in r.results}, key=lambda k: (k[0] == tracking.NEVER, k[0], k[1])
    )
    colours = dict(zip(sorted({k[0] for k in keys}), ("C2", "C0", "C1"), strict=False))
    for ax, pitch in zip(axes[0], pitches, strict=True):
        for rot, method in keys:
            minutes = np.sort(
                np.concatenate(
                    [
                        np.asarray(r.results[rot, method].track_minutes)
                        for r in runs
                        if r.pitch_m == pitch
                    ]
                )
            )
            if minutes.size == 0:
                continue
            ax.step(
                np.maximum(minutes, 0.1),
                np.arange(1, minutes.size + 1) / minutes.size,
                where="post",
                c=colours.get(rot, "C3"),
                ls="-" if method == "equal" else "--",
                lw=1.0,
                label=f"{tracking.rotation_label(rot)}, {method}",
            )
        ax.set_xscale("log")
        ax.set_xlabel("linked-track length (min; lone sightings at 0.1)", fontsize=8)
        ax.set_title(f"sniffer pitch {pitch:g} m", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("share of tracks this short or shorter", fontsize=8)
    axes[0][0].legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    return fig


def run_v5(opts: Options) -> Finding:
    setup = tracking.TrackingSetup.from_scenario("city")
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    if opts.quick:
        setup = replace(setup, n_walkers=100, hours=2.0)
        seeds = (0,)
    rows, runs = tracking.tracking_table(setup, seeds=seeds)
    mid = tracking.run_pitch(setup, 75.0, seeds[0])  # the map's run, kept whole
    map_name = save(
        plot_map(mid, 900.0, "stitched", setup.side_m, setup.step_s), opts, "v5_map.png"
    )
    cdf_name = save(plot_track_cdf(runs), opts, "v5_track_cdf.png")

    def row(pitch: float, rot: str, method: str) -> tracking.TableRow:
        return next(r for r in rows if (r.pitch_m, r.rotation, r.method) == (pitch, rot, method))

    fine_eq, fine_st = row(25.0, "15 min", "equal"), row(25.0, "15 min", "stitched")
    mid_eq, mid_st = row(75.0, "15 min", "equal"), row(75.0, "15 min", "stitched")
    sparse_st = row(200.0, "15 min", "stitched")
    sparse_never = row(200.0, "never", "equal")
    mid_2h = row(75.0, "2 h", "stitched")
    text = (
        f"With TempIDs rotating every 15 minutes, a sniffer every 75 m hears a walker "
        f"{pct(mid_eq.observed_share)} of the time; linking equal TempIDs yields tracks of "
        f"{mid_eq.mean_track_min:.0f} min on average, and rotation stitching lengthens them to "
        f"{mid_st.mean_track_min:.0f} min, the longest covering {pct(mid_st.longest_share)} "
        f"of a walker's {setup.hours:g} hours (with COVIDSafe's 2-hour TempIDs: "
        f"{pct(mid_2h.longest_share)}). A sniffer every 25 m stitches tracks of "
        f"{fine_st.mean_track_min:.0f} min on average (equal TempID alone: "
        f"{fine_eq.mean_track_min:.0f} min). At 200 m only "
        f"{pct(sparse_st.stitch_precision)} of stitches join the right person"
        + (
            f", yet a TempID that never changes still links {pct(sparse_never.longest_share)} "
            "of each walker's time into one track: the rotation period limits tracking more "
            "than the density of sniffers does."
            if sparse_never.longest_share > fine_st.longest_share
            else f"; a TempID that never changes links {pct(sparse_never.longest_share)}."
        )
    )
    details = (
        f"Model (the walkers of the built-in city scenario): {setup.n_walkers} "
        f"random-waypoint walkers (speed "
        f"{setup.speed_mps[0]:g}-{setup.speed_mps[1]:g} m/s, pauses up to "
        f"{setup.pause_s[1]:g} s) in a {setup.side_m:g} m square for {setup.hours:g} hours; "
        f"sniffers at the centres of a square grid; every {setup.step_s:g} s each sniffer "
        f"within reach makes one scan through the log-distance radio model "
        f"(n = {setup.radio.n:g}, s_scan = {setup.radio.s_scan:g} dB, detection "
        + ", ".join(
            f"{pct(float(setup.radio.detect_probability(d)))} at {d} m" for d in (20, 30, 40)
        )
        + "); each walker's TempID schedule starts at a random moment of the day before. "
        f"*heard*: share of time steps some sniffer heard the walker. *linked*: share of "
        f"the walker's time inside a correctly linked track (first to last sighting). "
        f"*longest track*: share covered by the walker's single longest track. "
        f"*mean track*: mean time span of a linked track (a lone sighting counts as 0 min). "
        f"*stitches right*: share of stitches joining two TempIDs of the same walker (a "
        f"stitch needs the old ID's last and the new ID's first sighting at one sniffer "
        f"within {setup.stitch_gap_s:g} s, unambiguously both ways; wrong stitches are cut "
        f"and never counted as linked time). This stitcher guesses nothing, so an adversary "
        f"who also weighs signal strength or walking speed would link more: the stitched "
        f"figures are lower bounds. Mean over seeds {', '.join(map(str, seeds))}.\n"
    )
    return Finding(
        text=text,
        figures=[map_name, cdf_name],
        table=tracking.table_markdown(rows),
        details=details,
        data=tracking.table_json(rows, setup, seeds),
    )


# -- entries of the page, in page order ----------------------------------------

ENTRIES: Final[tuple[Investigation, ...]] = (
    Investigation(
        key="v5-tracking",
        title="V5. How much of a walker's day can a sniffer network link?",
        question=(
            "BlueTrace phones broadcast a TempID that changes every 15 minutes (COVIDSafe: "
            "2 hours). Anyone can put Bluetooth listeners on a grid across a city. How much of a "
            "person's movements can such a network join up, by equal TempIDs and by stitching an "
            "old TempID to the new one that appears at the same sniffer, against sniffer pitch "
            "and rotation period? No one has published these numbers."
        ),
        command="python -m bluetrace.sim.studies.tracking --seeds 5      # the table\n"
        "python -m bluetrace.sim.studies.investigate                # the table and the figures\n"
        "bluetrace-sim sweep bluetrace/sim/sweeps/tracking.toml   # as a sweep",
        run=run_v5,
    ),
)
