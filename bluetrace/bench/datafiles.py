"""Large server data files written for the bench (tempIDs.txt, credentials.txt)."""

import os
import random
from datetime import datetime, timedelta
from pathlib import Path

from bluetrace.protocol.timefmt import format_timestamp


def write_tempids(path: Path, count: int) -> list[str]:
    """``count`` valid tempIDs.txt lines with distinct random TempIDs."""
    rng = random.Random(1)
    start = datetime(2020, 5, 14, 17, 54, 6)
    tempids = list(dict.fromkeys(f"{rng.randrange(10**20):020d}" for _ in range(count)))
    stamp = (
        f"{format_timestamp(start)} {format_timestamp(start + timedelta(minutes=14, seconds=59))}"
    )
    with path.open("w") as handle:
        handle.writelines(
            f"+614{i % 1000:08d} {tempid} {stamp}\n" for i, tempid in enumerate(tempids)
        )
        # On disk before the server starts: otherwise the server's first group
        # commit flushes the bench's own tens of megabytes, inside a measurement.
        handle.flush()
        os.fsync(handle.fileno())
    return tempids
