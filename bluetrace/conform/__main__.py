"""``python -m bluetrace.conform`` is the same as ``bluetrace-conform``."""

import sys

from bluetrace.conform.cli import main

sys.exit(main())
