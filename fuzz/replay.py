"""``python -m fuzz.replay FILE...``: run stored fuzzer inputs through the
targets again and say, for each, whether it passes and where it fails."""

import sys
import traceback
from pathlib import Path

from fuzz.targets import BEACONS, NAMES, check_input


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m fuzz.replay FILE...", file=sys.stderr)
        return 2
    failed = 0
    for name in argv:
        path = Path(name)
        try:
            data = path.read_bytes()
        except OSError as exc:
            print(f"{path}: cannot read: {exc.strerror or exc}", file=sys.stderr)
            failed += 1
            continue
        target = NAMES[BEACONS if data[:1] and data[0] & 1 else 0]
        try:
            check_input(data)
        except Exception as exc:  # the finding itself: report where it came from
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            print(
                f"{path}: {target} FAILED: {type(exc).__name__}: {exc} "
                f"(at {frame.filename}:{frame.lineno}, in {frame.name})"
            )
            failed += 1
        else:
            print(f"{path}: {target} passes ({len(data)} bytes)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
