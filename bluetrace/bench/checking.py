"""Contact checking at scale: one large upload against many known TempIDs,
and what it does to everyone else's sessions meanwhile."""

import random
import struct
import time
from datetime import datetime

from bluetrace.bench.context import PASSWORD, USER, Context
from bluetrace.bench.datafiles import write_tempids
from bluetrace.bench.load import STARTUP_SLACK, percentile, sessions_result, start_paced
from bluetrace.bench.processes import FrameClient
from bluetrace.bench.report import Figure
from bluetrace.protocol import wire
from bluetrace.protocol.messages import (
    LoginReply,
    LoginRequest,
    TempIDWindow,
    UploadReply,
    UploadRequest,
    encode,
)

RATE = 200
"""Other sessions started per second while the upload is checked, each on a
new connection and timed from when it was due (as in pipelining)."""

CEILING = (
    "entries/s: struct-unpacking the same upload and looking each TempID up in a set of "
    "the same TempIDs (in this process); latency: the same sessions on the same server "
    "just before the upload"
)


def _bare_check_rate(payload: bytes, count: int, known: set[bytes]) -> float:
    """Entries/s for the least work a check needs: split frames, look up."""
    entry = struct.Struct("!20s19s19s")
    began = time.perf_counter()
    found = 0
    offset = 0
    while offset < len(payload):
        size = wire.FRAME_HEADER_LEN + int.from_bytes(payload[offset + 2 : offset + 6], "big")
        body = payload[offset + wire.FRAME_HEADER_LEN + 3 : offset + size]
        for tempid, _, _ in entry.iter_unpack(body):
            found += tempid in known
        offset += size
    return count / (time.perf_counter() - began)


def run(ctx: Context) -> None:
    ctx.ceiling(CEILING)
    folder = ctx.data_dir("checking")
    lines = ctx.sizes.checking_tempids
    ctx.progress(f"step 1/4: writing a {lines:,}-line tempIDs.txt and starting the server")
    tempids = write_tempids(folder / "tempIDs.txt", lines)
    server = ctx.server(folder, timeout=300)
    count = ctx.sizes.upload_entries
    ctx.progress(f"step 2/4: encoding an upload of {count:,} entries")
    start, expiry = datetime(2020, 5, 14, 17, 54, 6), datetime(2020, 5, 14, 18, 9, 5)
    chosen = random.Random(7).choices(tempids, k=count)
    entries = [TempIDWindow(tempid, start, expiry) for tempid in chosen]
    chunk = wire.MAX_UPLOAD_CHUNK
    payload = b"".join(
        encode(UploadRequest(tuple(entries[i : i + chunk]), final=i + chunk >= count))
        for i in range(0, count, chunk)
    )
    background_seconds = max(2.0, count / 20_000)
    ctx.progress(
        f"step 3/4: {RATE} sessions/s for {background_seconds:g} s with no upload (baseline)"
    )
    due_from = time.monotonic() + STARTUP_SLACK
    baseline = sessions_result(
        start_paced(ctx.children, server.port, RATE, due_from, due_from + background_seconds)
    )
    ctx.progress(f"step 4/4: uploading {count:,} entries while the same sessions run")
    upload = FrameClient(server.port, timeout=300)
    server.clients.append(upload)
    if upload.call(LoginRequest(USER, PASSWORD)) != LoginReply(wire.LoginStatus.OK):
        raise RuntimeError("the bench's login was refused")
    due_from = time.monotonic() + STARTUP_SLACK
    other = start_paced(ctx.children, server.port, RATE, due_from, due_from + background_seconds)
    # By the schedule: the sessions are under way 0.2 s before the upload starts.
    time.sleep(max(0.0, due_from + 0.2 - time.monotonic()))
    began = time.monotonic()
    upload.sock.sendall(payload)
    reply = upload.receive()
    took = time.monotonic() - began
    if reply != UploadReply(count):
        raise RuntimeError(f"upload answered {reply}")
    during = sessions_result(other).latencies(began, began + took)
    rate = count / took
    known = {tempid.encode() for tempid in tempids}
    ctx.add(
        Figure(
            "checking",
            f"entries checked/s, {count:,}-entry upload, {lines:,} known",
            rate,
            "/s",
            _bare_check_rate(payload, count, known),
            *ctx.judge(">= 200,000/s", rate >= 200_000),
        )
    )
    p99 = percentile(during, 0.99) * 1000
    ctx.add(
        Figure(
            "checking",
            f"p99 session latency during upload ({len(during)} sessions)",
            p99,
            "ms",
            percentile(baseline.latencies(), 0.99) * 1000,
            *ctx.judge("< 50 ms", p99 < 50 and bool(during)),
        )
    )
