"""``python -m bluetrace.sim``: the same as ``bluetrace-sim``."""

import sys

from bluetrace.sim.cli import main

sys.exit(main())
