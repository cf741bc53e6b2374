"""The codec's speed, and the data files' loading time, measured on demand.

``python -m bluetrace.bench.codec`` prints the rates of the beacon and upload
codecs through ``bluetrace.protocol.messages`` (the path the phone, server and simulator
use) beside a ``struct`` ceiling measured in the same run;
``python -m bluetrace.bench.codec files DIR`` writes large tempIDs.txt and
credentials.txt files and times loading each in a fresh process. Kept out of
``bluetrace.protocol.fastcodec`` so that the codec holds only the codec.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable
from pathlib import Path

from bluetrace.protocol import messages, wire
from bluetrace.protocol.wire import MAX_UPLOAD_CHUNK


def measure(rounds: int = 200_000) -> dict[str, float]:
    """Print and return the codec rates through ``messages`` (the path the
    phone, server and simulator use) beside a ``struct.unpack`` ceiling
    measured in the same run. Run with ``python -m bluetrace.bench.codec``."""
    import timeit  # noqa: PLC0415 (only for measuring)
    from datetime import datetime  # noqa: PLC0415


    def per_second(action: Callable[[], object], n: int) -> float:
        return n / min(timeit.repeat(action, number=n, repeat=3))

    window = messages.TempIDWindow(
        "12345678901234567893", datetime(2020, 5, 14, 17, 54, 6), datetime(2020, 5, 14, 18, 9, 5)
    )
    beacon = messages.encode_beacon(window)
    layout = struct.Struct("!20s19s19sB")

    def ceiling_beacon() -> object:
        tempid, start, expiry, version = layout.unpack(beacon)
        return tempid.decode(), start.decode(), expiry.decode(), version

    upload = messages.encode(messages.UploadRequest((window,) * MAX_UPLOAD_CHUNK, final=True))
    entries = struct.Struct("!" + "20s19s19s" * MAX_UPLOAD_CHUNK)
    n = max(2, rounds // 1000)
    figures = {
        "beacon parse/s (decode_beacon)": per_second(
            lambda: messages.decode_beacon(beacon), rounds
        ),
        "beacon parse/s ceiling (struct.unpack + 3 decodes)": per_second(ceiling_beacon, rounds),
        "beacon parse/s construct (wire.Beacon.parse)": per_second(
            lambda: wire.Beacon.parse(beacon), max(1000, rounds // 20)
        ),
        "beacon build/s (encode_beacon)": per_second(
            lambda: messages.encode_beacon(window), rounds
        ),
        "upload entries parsed/s (decode)": per_second(lambda: messages.decode(upload), n)
        * MAX_UPLOAD_CHUNK,
        "upload entries/s ceiling (struct.unpack_from)": per_second(
            lambda: entries.unpack_from(upload, 9), n * 10
        )
        * MAX_UPLOAD_CHUNK,
        "upload entries built/s (encode)": per_second(
            lambda: messages.encode(
                messages.UploadRequest((window,) * MAX_UPLOAD_CHUNK, final=True)
            ),
            n,
        )
        * MAX_UPLOAD_CHUNK,
    }
    for name, value in figures.items():
        print(f"{name:55} {value:>14,.0f}")
    return figures


def measure_files(folder: Path) -> None:
    """Time loading a tempIDs.txt and a credentials.txt already in
    ``folder`` (one process per file, so each RSS figure is its own)."""
    import subprocess  # noqa: PLC0415

    code = (
        "import resource,sys,time\n"
        "from pathlib import Path\n"
        "from bluetrace import records, registry\n"
        "t=time.perf_counter()\n"
        "p=Path(sys.argv[2])\n"
        "if sys.argv[1]=='tempids':\n"
        "    r=registry.TempIDRegistry(); n=records.load_tempids(p, r).loaded\n"
        "elif sys.argv[1]=='tempids-dict':\n"
        "    d={}; n=records.load_tempids(p, d).loaded\n"
        "elif sys.argv[1]=='bare':\n"
        "    n=0\n"
        "    with p.open('rb') as f:\n"
        "        for line in f: n+=1\n"
        "else:\n"
        "    n=len(records.load_credentials(p))\n"
        "s=time.perf_counter()-t\n"
        "print(f'{sys.argv[1]:13} {n:>9,} lines {s:6.2f} s '\n"
        "      f'{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024:7.0f} MiB peak RSS')\n"
    )
    for kind, name in (
        ("bare", "tempIDs.txt"),
        ("tempids", "tempIDs.txt"),
        ("tempids-dict", "tempIDs.txt"),
        ("bare", "credentials.txt"),
        ("credentials", "credentials.txt"),
    ):
        if (folder / name).exists():
            command = [sys.executable, "-c", code, kind, str(folder / name)]
            subprocess.run(command, check=True)


def write_files(folder: Path, tempids: int, phones: int, users: int) -> None:
    """A tempIDs.txt of ``tempids`` lines spread over ``phones`` phones and a
    credentials.txt of ``users`` lines in ``folder`` (kept if present)."""
    import random  # noqa: PLC0415

    draw = random.Random(1)
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "tempIDs.txt").exists():
        with (folder / "tempIDs.txt").open("w") as out:
            for _ in range(tempids):
                out.write(
                    f"+61{draw.randrange(phones):09d} {draw.randrange(10**20):020d} "
                    "13/05/2020 17:45:06 13/05/2020 18:00:05\n"
                )
    if not (folder / "credentials.txt").exists():
        with (folder / "credentials.txt").open("w") as out:
            for number in range(users):
                out.write(f"+61{number:09d} pw{draw.randrange(10**8)}\n")


USAGE = """usage: python -m bluetrace.bench.codec
       python -m bluetrace.bench.codec files DIR [TEMPIDS PHONES USERS]
The first prints the codec rates; the second writes DIR/tempIDs.txt and
DIR/credentials.txt (3,000,000 TempIDs of 100,000 phones and 1,000,000 users
by default) unless present, then times loading each in a fresh process."""


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if not arguments:
        measure()
    elif (
        arguments[0] == "files"
        and len(arguments) in (2, 5)
        and all(part.isdigit() for part in arguments[2:])
    ):
        sizes = [int(part) for part in arguments[2:]] or [3_000_000, 100_000, 1_000_000]
        write_files(Path(arguments[1]), *sizes)
        measure_files(Path(arguments[1]))
    else:
        sys.exit(USAGE)
