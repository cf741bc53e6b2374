"""Held connections: memory per logged-in idle connection, and how fast a
fresh session goes while thousands are held; beside the bare TCP server
holding the same number."""

import subprocess

from bluetrace.bench.context import LOAD_USERS, Context
from bluetrace.bench.load import percentile, sessions_result, start_sessions
from bluetrace.bench.processes import read_until, rss_mib
from bluetrace.bench.report import Figure
from bluetrace.bench.sessions import CEILING


def _measure(ctx: Context, port: int, pid: int) -> tuple[float, float]:
    """KiB of server RSS per held connection, and the p99 of fresh sessions, ms."""
    count = ctx.sizes.held
    before = rss_mib(pid)
    holder = ctx.helper(
        "bluetrace.bench.load",
        "hold",
        str(port),
        str(count),
        str(LOAD_USERS),
        stdin=subprocess.PIPE,
    )
    read_until(holder, b"ready", timeout=120)
    per_connection = (rss_mib(pid) - before) * 1024 / count
    seconds = max(1.0, ctx.sizes.session_seconds)
    result = sessions_result(start_sessions(ctx.children, port, 1, seconds))
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(60)
    return per_connection, percentile(result.latencies(), 0.99) * 1000


def run(ctx: Context) -> None:
    ctx.ceiling(CEILING)
    count = ctx.sizes.held
    ctx.progress(f"step 1/2: holding {count:,} logged-in connections on bluetrace")
    server = ctx.server(ctx.data_dir("held"))
    kib, p99 = _measure(ctx, server.port, server.pid)
    server.stop()
    ctx.progress(f"step 2/2: holding {count:,} connections on the ceiling")
    ceiling = ctx.helper("bluetrace.bench.ceiling", "tcp")
    port = int(read_until(ceiling, b"\n").split()[1])
    bare_kib, bare_p99 = _measure(ctx, port, ceiling.pid)
    ctx.add(
        Figure("held", f"server RSS per held connection ({count:,} held)", kib, "KiB", bare_kib)
    )
    ctx.add(
        Figure(
            "held",
            f"p99 fresh-session latency with {count:,} held",
            p99,
            "ms",
            bare_p99,
            *ctx.judge("< 50 ms", p99 < 50),
        )
    )
