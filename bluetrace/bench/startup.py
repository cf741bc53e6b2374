"""Start-up: how long the server takes to listen, and its memory, with large
files; beside a bare process that reads the same file into a dict and listens."""

import time

from bluetrace.bench.context import Context, write_credentials
from bluetrace.bench.datafiles import write_tempids
from bluetrace.bench.processes import read_until, rss_mib, stop
from bluetrace.bench.report import Figure

CEILING = (
    "a bare Python process that reads the same file into a dict (TempID as an integer to "
    "its line's offset; username to password), no checks, then listens"
)


def _bare(ctx: Context, kind: str, path: str) -> tuple[float, float]:
    """Seconds until the bare process listens, and its RSS then."""
    began = time.monotonic()
    child = ctx.helper("bluetrace.bench.ceiling", "startup", kind, path)
    read_until(child, b"\n", timeout=300)
    took = time.monotonic() - began
    rss = rss_mib(child.pid)
    stop(child)
    return took, rss


def run(ctx: Context) -> None:
    ctx.ceiling(CEILING)
    lines = ctx.sizes.startup_tempids
    folder = ctx.data_dir("startup-tempids")
    ctx.progress(f"step 1/2: writing a {lines:,}-line tempIDs.txt, then starting with it")
    write_tempids(folder / "tempIDs.txt", lines)
    server = ctx.server(folder, timeout=300)
    ready, rss = server.ready_seconds, rss_mib(server.pid)
    server.stop()
    bare_ready, bare_rss = _bare(ctx, "tempids", str(folder / "tempIDs.txt"))
    ctx.add(
        Figure(
            "startup",
            f"start-up, {lines:,} TempIDs",
            ready,
            "s",
            bare_ready,
            *ctx.judge("<= 5 s", ready <= 5),
        )
    )
    ctx.add(
        Figure(
            "startup",
            f"RSS after start, {lines:,} TempIDs",
            rss,
            "MiB",
            bare_rss,
            *ctx.judge("<= 400 MiB", rss <= 400),
        )
    )
    users = ctx.sizes.startup_credentials
    folder = ctx.workdir / "startup-credentials"
    folder.mkdir()
    ctx.progress(f"step 2/2: writing a {users:,}-line credentials.txt, then starting with it")
    write_credentials(folder / "credentials.txt", users - 2)
    server = ctx.server(folder, timeout=300)
    ready = server.ready_seconds
    server.stop()
    bare_ready, _ = _bare(ctx, "credentials", str(folder / "credentials.txt"))
    ctx.add(
        Figure(
            "startup",
            f"start-up, {users:,}-line credentials.txt",
            ready,
            "s",
            bare_ready,
            *ctx.judge("<= 2 s", ready <= 2),
        )
    )
