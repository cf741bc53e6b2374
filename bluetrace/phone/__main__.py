"""``python -m bluetrace.phone``: the same as the installed program."""

import sys

from bluetrace.phone.main import main

sys.exit(main())
