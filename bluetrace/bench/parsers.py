"""Parser cost: the library's codecs called in-process, beside struct.

The only part that calls bluetrace's functions directly; the ceiling is
``struct`` unpacking or packing the same bytes with no validation at all.
"""

import struct
import timeit
from collections.abc import Callable
from datetime import datetime

from bluetrace.bench.context import Context
from bluetrace.bench.report import Figure
from bluetrace.protocol import wire
from bluetrace.protocol.messages import (
    TempIDReply,
    TempIDWindow,
    UploadRequest,
    decode,
    decode_beacon,
    encode,
    encode_beacon,
)

CEILING = "struct.unpack / struct.pack of the same bytes, no checks (in this process)"


def run(ctx: Context) -> None:
    ctx.ceiling(CEILING)
    rounds = ctx.sizes.parser_rounds
    window = TempIDWindow(
        "12345678901234567893",
        datetime(2020, 5, 14, 17, 54, 6),
        datetime(2020, 5, 14, 18, 9, 5),
    )
    beacon = encode_beacon(window)
    layout = struct.Struct("!20s19s19sB")

    def per_second(action: Callable[[], object], n: int = rounds) -> float:
        return n / timeit.timeit(action, number=n)

    def struct_parse() -> object:
        tempid, start, expiry, version = layout.unpack(beacon)
        return tempid.decode(), start.decode(), expiry.decode(), version

    ctx.progress(f"beacons and frames, {rounds:,} rounds each")
    raw = layout.unpack(beacon)
    ceiling_parse = per_second(struct_parse)
    ceiling_build = per_second(lambda: layout.pack(*raw))
    ctx.add(
        Figure(
            "parsers",
            "beacon parse, construct plain",
            per_second(lambda: wire.Beacon.parse(beacon)),
            "/s",
            ceiling_parse,
        )
    )
    rate = per_second(lambda: decode_beacon(beacon))
    ctx.add(
        Figure(
            "parsers",
            "beacon parse, decode_beacon (phone's path)",
            rate,
            "/s",
            ceiling_parse,
            *ctx.judge(">= 500,000/s", rate >= 500_000),
        )
    )
    ctx.add(
        Figure(
            "parsers",
            "beacon build, encode_beacon",
            per_second(lambda: encode_beacon(window)),
            "/s",
            ceiling_build,
        )
    )
    frame = encode(TempIDReply(window))
    frame_layout = struct.Struct("!BBI20s19s19s")
    ctx.add(
        Figure(
            "parsers",
            "TempID reply frame parse",
            per_second(lambda: decode(frame)),
            "/s",
            per_second(lambda: frame_layout.unpack(frame)),
        )
    )
    ctx.progress(f"upload chunks of {wire.MAX_UPLOAD_CHUNK} entries")
    upload = encode(UploadRequest((window,) * wire.MAX_UPLOAD_CHUNK, final=True))
    n = max(2, rounds // 1000)
    entry_rate = per_second(lambda: decode(upload), n) * wire.MAX_UPLOAD_CHUNK
    entries = struct.Struct("!" + "20s19s19s" * wire.MAX_UPLOAD_CHUNK)
    ceiling_entries = per_second(lambda: entries.unpack_from(upload, 9), n) * wire.MAX_UPLOAD_CHUNK
    ctx.add(Figure("parsers", "upload entries parsed", entry_rate, "/s", ceiling_entries))
