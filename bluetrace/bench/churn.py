"""Churn: server memory over many connect/close cycles.

One idle connection waits at the login prompt the whole time (it never sends
a byte), while a helper opens and closes connections that never send either.
A server that keeps anything per closed connection (a login timer and its
callback, say) grows here; the bare TCP server under the same churn is the
ceiling.
"""

import time

from bluetrace.bench.context import Context
from bluetrace.bench.load import Churn, read_result
from bluetrace.bench.processes import FrameClient, open_fds, read_until, rss_mib, wait_for
from bluetrace.bench.report import Figure

CEILING = (
    "the bare TCP server (as for sessions) under the same churn, with the same idle connection"
)


def _churn(ctx: Context, who: str, port: int, pid: int) -> tuple[float, float]:
    """RSS growth in MiB over the cycles, and cycles per second (until the
    server has closed every one of them, not just until the helper is done)."""
    cycles = ctx.sizes.churn_cycles
    baseline_fds = open_fds(pid)
    idle = FrameClient(port)  # connected, never logs in
    try:
        wait_for(lambda: open_fds(pid) > baseline_fds, f"{who} to accept the idle connection")
        settled = open_fds(pid)
        warm = max(100, cycles // 100)
        read_result(ctx.helper("bluetrace.bench.load", "churn", str(port), str(warm)))
        wait_for(lambda: open_fds(pid) <= settled, f"{who} to close the warm-up connections")
        before = rss_mib(pid)
        began = time.monotonic()
        child = ctx.helper("bluetrace.bench.load", "churn", str(port), str(cycles))

        def show(done: int) -> None:
            ctx.progress(f"{who}: {done:,}/{cycles:,} cycles")

        result = Churn.from_json(read_result(child, show, timeout=900))
        wait_for(
            lambda: open_fds(pid) <= settled,
            f"{who} to close the churned connections",
            timeout=120,
        )
        after = rss_mib(pid)
        took = time.monotonic() - began
    finally:
        idle.close()
    if result.errors:
        raise RuntimeError(f"{result.errors} of the churn connections to {who} failed")
    return after - before, result.cycles / took


def run(ctx: Context) -> None:
    ctx.ceiling(CEILING)
    cycles = ctx.sizes.churn_cycles
    ctx.progress(f"step 1/2: {cycles:,} connect/close cycles against bluetrace")
    server = ctx.server(ctx.data_dir("churn"))
    growth, rate = _churn(ctx, "bluetrace", server.port, server.pid)
    server.stop()
    ctx.progress(f"step 2/2: {cycles:,} connect/close cycles against the ceiling")
    ceiling = ctx.helper("bluetrace.bench.ceiling", "tcp")
    port = int(read_until(ceiling, b"\n").split()[1])
    bare_growth, bare_rate = _churn(ctx, "the ceiling", port, ceiling.pid)
    ctx.add(
        Figure(
            "churn",
            f"server RSS growth over {cycles:,} connect/close cycles",
            growth,
            "MiB",
            bare_growth,
            *ctx.judge("< 10 MiB", growth < 10),
        )
    )
    ctx.add(Figure("churn", "connect/close cycles/s", rate, "/s", bare_rate))
