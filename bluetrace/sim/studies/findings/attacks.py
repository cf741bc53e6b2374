"""Replay and relay attacks through real phones and the real server (exact engine)."""

from __future__ import annotations

from typing import Final

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from bluetrace.sim.studies.findings.registry import Finding, Investigation, Options
from bluetrace.sim.studies.findings.steps import (
    save,
)


def run_replay(opts: Options) -> Finding:
    from bluetrace.sim.studies import attacks  # noqa: PLC0415

    delays = [0.0, 60.0, 150.0, 300.0, 450.0, 600.0, 750.0, 850.0, 900.0, 1200.0]
    trials = 150 if opts.quick else 2000
    points = attacks.replay_curve(delays, trials=trials)
    worst = max(abs(p.rate - p.analytic) for p in points)
    fig, ax = plt.subplots(figsize=(4.6, 3.3))
    d = np.array([p.delay for p in points])
    ax.plot(d / 60, [p.rate for p in points], "o", ms=4, label=f"real phones ({trials} per delay)")
    grid = np.linspace(0, 20, 201)
    ax.plot(grid, np.clip(1 - grid * 60 / attacks.TEMPID_WINDOW, 0, 1), "--", c="0.4",
            label="1 - D/900")
    ax.set_xlabel("replay delay D (minutes)")
    ax.set_ylabel("share of replayed beacons accepted")
    ax.legend(fontsize=7)
    fig.tight_layout()
    name = save(fig, opts, "replay.png")
    text = (
        "A beacon replayed D seconds after it was recorded is accepted by a real phone "
        f"with the probability 1 - D/900 predicts (largest gap {worst:.3f} over "
        f"{len(points)} delays): nothing but the TempID's 15-minute window stands between an "
        "attacker and a false contact, and from 15 minutes on every replay is refused."
    )
    table = "| delay D (s) | accepted | 1 - D/900 |\n|---|---|---|\n" + "\n".join(
        f"| {p.delay:g} | {p.rate:.3f} | {p.analytic:.3f} |" for p in points
    )
    return Finding(
        text=text, figures=[name], table=table,
        data={"points": [vars(p) | {"rate": p.rate} for p in points]},
    )


def run_relay(opts: Options) -> Finding:
    from bluetrace.sim.studies import attacks  # noqa: PLC0415

    counts = [1, 2, 4] if opts.quick else [1, 2, 4, 8]
    hours = 0.25 if opts.quick else 1.0
    points = attacks.relay_lab(counts, hours=hours)
    fig, ax = plt.subplots(figsize=(4.6, 3.3))
    ax.plot([p.relays for p in points], [p.per_hour for p in points], "o-", ms=4)
    ax.set_xlabel("relays between two offices")
    ax.set_ylabel("false contacts created per hour")
    fig.tight_layout()
    name = save(fig, opts, "relay.png")
    last = points[-1]
    text = (
        f"Live relaying is never refused: each relay that hears 3 desks in one office and "
        f"re-broadcasts to 3 desks in another creates up to 9 false contacts, within minutes; "
        f"{last.relays} relays created {last.per_hour:.0f} false contacts per hour, and the "
        f"real server named {last.named_falsely} false contacts in the other office when "
        "the phones uploaded. BlueTrace's window check cannot tell a relayed beacon from a "
        "real one."
    )
    table = "| relays | false contacts | per hour | named by the server |\n|---|---|---|---|\n"
    table += "\n".join(
        f"| {p.relays} | {p.false_contacts} | {p.per_hour:.0f} | {p.named_falsely} |"
        for p in points
    )
    return Finding(text=text, figures=[name], table=table,
                   data={"points": [vars(p) for p in points]})


# -- entries of the page, in page order ----------------------------------------

ENTRIES: Final[tuple[Investigation, ...]] = (
    Investigation(
        key="replay",
        title="Replay attack: how long does a recorded beacon stay useful?",
        question=(
            "An attacker records a beacon and replays it D seconds later somewhere else. For a "
            "15-minute TempID window, is it accepted with probability 1 - D/900?"
        ),
        command="make investigate   # bluetrace.sim.studies.attacks.replay_curve",
        run=run_replay,
    ),
    Investigation(
        key="relay",
        title="Relay attack: how many false contacts does live forwarding create?",
        question=(
            'An attacker forwards beacons live from one place to another (a "wormhole"). How '
            "many false contacts per hour does that create, against the number of relays?"
        ),
        command="make investigate   # bluetrace.sim.studies.attacks.relay_lab",
        run=run_relay,
    ),
)
