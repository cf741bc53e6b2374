"""Idle connections: healthy sessions while three processes, from 127.0.0.1,
127.0.0.2 and 127.0.0.3, open 21,000 connections in all that never send a byte.

Connections that never log in cost the server a descriptor and memory each
and, uncapped, would take every descriptor it has for the whole login
timeout. The caps on connections not yet logged in (per address, and in all)
make the oldest of them give way, so healthy sessions, from 127.0.0.1 like a
third of the flood, are still served. The figure is the p99 of the healthy
sessions once the idle connections are open (and how many of them were
served); the ceiling is the same sessions on the same server just before.
"""

import subprocess
import time

from bluetrace.bench.context import Context
from bluetrace.bench.load import STARTUP_SLACK, percentile, sessions_result, start_paced
from bluetrace.bench.processes import open_fds, read_until
from bluetrace.bench.report import Figure

CEILING = "the same sessions on the same server just before, with no idle connections"
RATE = 100
SOURCES = ("127.0.0.1", "127.0.0.2", "127.0.0.3")


def run(ctx: Context) -> None:
    ctx.ceiling(CEILING)
    total = ctx.sizes.idle_connections
    window = max(2.0, ctx.sizes.session_seconds)
    server = ctx.server(ctx.data_dir("idle"))
    ctx.progress(f"baseline: {RATE} sessions/s for {window:g} s")
    start = time.monotonic() + STARTUP_SLACK
    baseline = sessions_result(start_paced(ctx.children, server.port, RATE, start, start + window))
    ctx.progress(f"opening {total:,} idle connections from {', '.join(SOURCES)}")
    each = str(total // len(SOURCES))
    holders = [
        ctx.helper("bluetrace.bench.hostile", "idle", str(server.port), each, source,
                   stdin=subprocess.PIPE)
        for source in SOURCES
    ]
    opened = sum(int(read_until(holder, b"\n", timeout=300).split()[1]) for holder in holders)
    held = open_fds(server.pid)
    ctx.progress(
        f"{opened:,} idle connections opened; the server holds {held:,} descriptors; "
        f"{RATE} sessions/s for {window:g} s"
    )
    start = time.monotonic() + STARTUP_SLACK
    during = sessions_result(
        start_paced(ctx.children, server.port, RATE, start, start + window, grace=150),
        timeout=window + 200,
    )
    for holder in holders:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(60)
    due = during.count + during.errors + len(during.unfinished)
    ctx.progress(
        f"{during.count} of {due} healthy sessions served, {during.errors} failed, "
        f"{len(during.unfinished)} never finished"
    )
    served = 100 * during.count / max(1, due)
    base_due = baseline.count + baseline.errors + len(baseline.unfinished)
    ctx.add(
        Figure(
            "idle",
            f"healthy sessions served with {total:,} idle connections",
            served,
            "%",
            100 * baseline.count / max(1, base_due),
            *ctx.judge(">= 99 %", served >= 99),
        )
    )
    p99 = percentile(during.latencies(), 0.99) * 1000
    base_p99 = percentile(baseline.latencies(), 0.99) * 1000
    ctx.add(
        Figure(
            "idle",
            f"p99 of sessions with {total:,} idle connections",
            p99,
            "ms",
            base_p99,
            *ctx.judge("< 10 x ceiling", p99 < 10 * base_p99),
        )
    )
