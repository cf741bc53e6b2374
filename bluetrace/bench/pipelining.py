"""Pipelining: healthy sessions while one connection that never logged in
writes a flood of 6-byte TEMPID_REQUEST frames and never reads a reply.

A server that handles every frame of a received buffer in one loop turn
makes everyone else wait for all of them. Healthy sessions start at a steady
rate, each timed from when it was due (so a stall shows in every session it
delayed), and the figure is the p99 of those overlapping the flood's window.
The ceiling is the same sessions on the same server just before, no flood.
"""

import time

from bluetrace.bench.context import Context
from bluetrace.bench.load import (
    STARTUP_SLACK,
    Pipeline,
    percentile,
    read_result,
    sessions_result,
    start_paced,
)
from bluetrace.bench.report import Figure

CEILING = "the same sessions on the same server just before, with no flood"
RATE = 200
"""Healthy sessions started per second, each on a new connection (open loop):
well under what the server sustains, so that any delay is the flood's."""
LEAD = 0.5
"""Seconds the healthy sessions run before the flood starts."""


def run(ctx: Context) -> None:
    ctx.ceiling(CEILING)
    total, window = ctx.sizes.pipeline_bytes, ctx.sizes.pipeline_seconds
    server = ctx.server(ctx.data_dir("pipelining"))
    ctx.progress(f"step 1/2: {RATE} sessions/s for {window:g} s, no flood")
    start = time.monotonic() + STARTUP_SLACK
    baseline = sessions_result(start_paced(ctx.children, server.port, RATE, start, start + window))
    ctx.progress(
        f"step 2/2: the same sessions while one connection pipelines {total:,} bytes "
        f"of TEMPID_REQUEST frames for up to {window:g} s (the server may stall: "
        "waits up to 120 s)"
    )
    start = time.monotonic() + STARTUP_SLACK
    at = start + LEAD
    healthy = start_paced(ctx.children, server.port, RATE, start, at + window, grace=120)
    flooder = ctx.helper(
        "bluetrace.bench.load", "pipeline", str(server.port), str(total), repr(at), str(window)
    )
    flood = Pipeline.from_json(read_result(flooder, timeout=STARTUP_SLACK + LEAD + window + 60))
    began = flood.began
    sessions = sessions_result(healthy, timeout=STARTUP_SLACK + LEAD + window + 180)
    during = sessions.latencies(began, began + window)
    longest = max(during, default=0.0) * 1000
    ctx.progress(
        f"the flooding connection got {flood.sent:,} of {total:,} bytes in; "
        f"{len(during)} sessions overlapped it (longest {longest:,.0f} ms), "
        f"{len(sessions.unfinished)} never finished"
    )
    if sessions.errors:
        raise RuntimeError(f"{sessions.errors} healthy sessions failed during the flood")
    p99 = percentile(during, 0.99) * 1000
    ctx.add(
        Figure(
            "pipelining",
            f"p99 of sessions during a {total // 1024:,} KiB pipelined flood",
            p99,
            "ms",
            percentile(baseline.latencies(), 0.99) * 1000,
            *ctx.judge("< 20 ms", p99 < 20),
        )
    )
