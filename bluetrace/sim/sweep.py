"""``python -m bluetrace.sim.sweep SWEEP.toml ...``: the same as ``bluetrace-sim sweep``.

Sweeps live in ``bluetrace.sim.runs`` and their command in ``bluetrace.sim.cli``;
this module keeps the older invocation, written in sweep files and notes, working.
"""

import sys

from bluetrace.sim.cli import main

if __name__ == "__main__":
    sys.exit(main(["sweep", *sys.argv[1:]]))
