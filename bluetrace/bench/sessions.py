"""Sessions: whole login -> Download_tempID -> logout sessions per second.

Load comes from a separate process with 1, 10 and 100 concurrent clients,
first against bluetrace's server, then against the bare TCP ceiling, for the
same number of seconds each.
"""

from bluetrace.bench.context import Context
from bluetrace.bench.load import percentile, sessions_result, start_sessions
from bluetrace.bench.processes import read_until
from bluetrace.bench.report import Figure, plural

CEILING = (
    "a bare selectors TCP server answering each frame with pre-built bytes of the real "
    "reply's size (no parsing, no files, no state)"
)


def start_tcp_ceiling(ctx: Context) -> int:
    """The bare TCP server (``ceiling tcp``), ended with the run; its port."""
    ceiling = ctx.helper("bluetrace.bench.ceiling", "tcp")
    return int(read_until(ceiling, b"\n").split()[1])


def run(ctx: Context) -> None:
    ctx.ceiling(CEILING)
    seconds = ctx.sizes.session_seconds
    server = ctx.server(ctx.data_dir("sessions"))
    ceiling_port = start_tcp_ceiling(ctx)
    counts = ctx.sizes.session_clients
    for i, clients in enumerate(counts, 1):
        ctx.progress(
            f"step {i}/{len(counts)}: {plural(clients, 'concurrent client')}, "
            f"{seconds:g} s against bluetrace, then {seconds:g} s against the ceiling"
        )
        real = sessions_result(start_sessions(ctx.children, server.port, clients, seconds))
        bare = sessions_result(start_sessions(ctx.children, ceiling_port, clients, seconds))
        if real.errors or bare.errors:
            raise RuntimeError(f"session errors: bluetrace {real.errors}, ceiling {bare.errors}")
        judged = clients >= 10
        rate, bare_rate = real.count / seconds, bare.count / seconds
        target, met = ctx.judge(">= 0.6 x ceiling", rate >= 0.6 * bare_rate)
        ctx.add(
            Figure(
                "sessions",
                f"sessions/s, {plural(clients, 'client')}",
                rate,
                "/s",
                bare_rate,
                target if judged else "",
                met if judged else None,
            )
        )
        ours, theirs = real.latencies(), bare.latencies()
        ctx.add(
            Figure(
                "sessions",
                f"p50 latency, {plural(clients, 'client')}",
                percentile(ours, 0.5) * 1000,
                "ms",
                percentile(theirs, 0.5) * 1000,
            )
        )
        p99, bare_p99 = percentile(ours, 0.99), percentile(theirs, 0.99)
        target, met = ctx.judge("<= 1.5 x ceiling", p99 <= 1.5 * bare_p99)
        ctx.add(
            Figure(
                "sessions",
                f"p99 latency, {plural(clients, 'client')}",
                p99 * 1000,
                "ms",
                bare_p99 * 1000,
                target if judged else "",
                met if judged else None,
            )
        )
