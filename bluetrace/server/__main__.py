"""``python -m bluetrace.server``: the same as the installed program."""

import sys

from bluetrace.server.main import main

sys.exit(main())
