"""TLS handshake flood: healthy TLS sessions while one process, from another
address, replays a recorded ClientHello on RATE new connections a second
and never finishes a handshake.

A ClientHello costs the client nothing and the server a key exchange and a
signature, so handshakes must share the loop turn's budget with everything
else, end at the handshake deadline, and be capped per address. Healthy
sessions (login -> Download_tempID -> logout over TLS, a new connection
each) are due at a steady rate from 127.0.0.1, each timed from when it was
due; the figure is the p99 of those overlapping the flood, and the ceiling
the same sessions on a fresh TLS server with no flood, in the same run.
"""

import shutil
import subprocess
import time
from pathlib import Path

from bluetrace.bench.context import LOAD_USERS, Context
from bluetrace.bench.load import STARTUP_SLACK, percentile, read_result, sessions_result
from bluetrace.bench.processes import rss_mib
from bluetrace.bench.report import Figure

CEILING = "the same TLS sessions on a fresh TLS server with no flood, in the same run"
RATE = 20
"""Healthy TLS sessions due per second, one after another."""
LEAD = 0.5
SOURCE = "127.0.0.2"


def certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate and key made with openssl (as ``make certs``)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the handshakes part needs the openssl program")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def run(ctx: Context) -> None:
    ctx.ceiling(CEILING)
    cert, key = certificate(ctx.workdir)
    tls = ("--tls-cert", str(cert), "--tls-key", str(key))
    window, rate = ctx.sizes.hello_seconds, ctx.sizes.hello_rate

    def healthy(port: int, start: float, end: float) -> "subprocess.Popen[bytes]":
        return ctx.helper(
            "bluetrace.bench.hostile", "tls", str(port), str(RATE), repr(start), repr(end),
            "120", str(LOAD_USERS),
        )  # fmt: skip

    server = ctx.server(ctx.data_dir("handshakes-baseline"), "60", *tls)
    ctx.progress(f"baseline: {RATE} TLS sessions/s for {window:g} s, no flood")
    start = time.monotonic() + STARTUP_SLACK
    before = rss_mib(server.pid)
    baseline = sessions_result(healthy(server.port, start, start + window), timeout=300)
    base_growth = rss_mib(server.pid) - before
    server.stop()
    if baseline.errors:
        raise RuntimeError(f"{baseline.errors} TLS sessions failed with no flood")

    server = ctx.server(ctx.data_dir("handshakes-flood"), "60", *tls)
    ctx.progress(
        f"{rate:,} ClientHellos/s from {SOURCE} for {window:g} s, never finished; "
        f"{RATE} TLS sessions/s meanwhile"
    )
    start = time.monotonic() + STARTUP_SLACK
    at = start + LEAD
    before = rss_mib(server.pid)
    sessions = healthy(server.port, start, at + window)
    flood = read_result(
        ctx.helper(
            "bluetrace.bench.hostile", "hello", str(server.port), str(rate), repr(at),
            str(window), SOURCE,
        ),
        timeout=STARTUP_SLACK + LEAD + window + 60,
    )  # fmt: skip
    growth = rss_mib(server.pid) - before
    result = sessions_result(sessions, timeout=STARTUP_SLACK + LEAD + window + 300)
    began = float(str(flood["began"]))
    during = result.latencies(began, began + window)
    ctx.progress(
        f"the flood opened {int(str(flood['opened'])):,} connections "
        f"({flood['failed']} failed to connect, {flood['closed_by_server']} closed by the "
        f"server); {len(during)} TLS sessions overlapped it, {result.errors} failed"
    )
    if result.errors:
        raise RuntimeError(f"{result.errors} healthy TLS sessions failed during the flood")
    p99, base_p99 = percentile(during, 0.99) * 1000, percentile(baseline.latencies(), 0.99) * 1000
    ctx.add(
        Figure(
            "handshakes",
            f"p99 of TLS sessions, {rate:,} ClientHellos/s",
            p99,
            "ms",
            base_p99,
            *ctx.judge("< 10 x ceiling", p99 < 10 * base_p99),
        )
    )
    ctx.add(Figure("handshakes", "server RSS growth during the flood", growth, "MiB", base_growth))
