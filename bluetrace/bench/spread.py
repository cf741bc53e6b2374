"""Pipelining spread over many connections: healthy sessions while one
process, from one other address, opens hundreds of connections that never
log in and writes 64 KiB of 6-byte TEMPID_REQUEST frames on each, never
reading a reply.

One connection's pipelined frames are bounded per call (the ``pipelining``
part); this part checks the bound per loop turn, shared by every connection.
Healthy sessions start at a steady rate on new connections from 127.0.0.1,
each timed from when it was due, and the figure is the p99 of those
overlapping the flood; the ceiling is the same sessions on the same kind of
server with no flood, measured first. Each flood gets a fresh server, so a
server still busy with one flood cannot spoil the next figure.
"""

import time

from bluetrace.bench.context import Context
from bluetrace.bench.load import (
    STARTUP_SLACK,
    Sessions,
    percentile,
    read_result,
    sessions_result,
    start_paced,
)
from bluetrace.bench.report import Figure

CEILING = "the same healthy sessions on a fresh server with no flood, in the same run"
RATE = 100
"""Healthy sessions started per second (open loop), well within the server's means."""
LEAD = 0.5
"""Seconds the healthy sessions run before the flood starts."""
SOURCE = "127.0.0.2"
"""The flooding process's address: the healthy sessions come from 127.0.0.1."""


def _flooded(ctx: Context, connections: int) -> tuple[Sessions, dict[str, object]]:
    total, window = ctx.sizes.spread_bytes, ctx.sizes.spread_seconds
    server = ctx.server(ctx.data_dir(f"spread-{connections}"))
    start = time.monotonic() + STARTUP_SLACK
    at = start + LEAD
    healthy = start_paced(ctx.children, server.port, RATE, start, at + window, grace=120)
    flood = read_result(
        ctx.helper(
            "bluetrace.bench.hostile", "spread", str(server.port), str(connections),
            str(total), repr(at), str(window), SOURCE,
        ),
        timeout=STARTUP_SLACK + LEAD + window + 90,
    )  # fmt: skip
    sessions = sessions_result(healthy, timeout=STARTUP_SLACK + LEAD + window + 180)
    server.stop()
    return sessions, flood


def run(ctx: Context) -> None:
    ctx.ceiling(CEILING)
    window = ctx.sizes.spread_seconds
    server = ctx.server(ctx.data_dir("spread-baseline"))
    ctx.progress(f"baseline: {RATE} sessions/s for {window:g} s, no flood")
    start = time.monotonic() + STARTUP_SLACK
    baseline = sessions_result(start_paced(ctx.children, server.port, RATE, start, start + window))
    server.stop()
    base_p99 = percentile(baseline.latencies(), 0.99) * 1000
    for connections in ctx.sizes.spread_connections:
        ctx.progress(
            f"{connections:,} connections from {SOURCE}, {ctx.sizes.spread_bytes // 1024} KiB "
            f"of TEMPID_REQUEST frames each, never read, for {window:g} s; "
            f"{RATE} sessions/s meanwhile (waits up to 120 s for a stalled server)"
        )
        sessions, flood = _flooded(ctx, connections)
        began = float(str(flood["began"]))
        during = sessions.latencies(began, began + window)
        ctx.progress(
            f"{int(str(flood['connections'])):,} flooding connections opened, "
            f"{int(str(flood['sent'])):,} bytes got in, {flood['closed']} closed by the server; "
            f"{len(during)} sessions overlapped the flood (longest "
            f"{max(during, default=0.0) * 1000:,.0f} ms), {sessions.errors} failed, "
            f"{len(sessions.unfinished)} never finished"
        )
        if sessions.errors:
            raise RuntimeError(f"{sessions.errors} healthy sessions failed during the flood")
        p99 = percentile(during, 0.99) * 1000
        ctx.add(
            Figure(
                "spread",
                f"p99 of sessions, {connections:,} connections pipelining",
                p99,
                "ms",
                base_p99,
                *ctx.judge("< 10 x ceiling and < 50 ms", p99 < 10 * base_p99 and p99 < 50),
            )
        )
