"""Names from files, made safe to print and to use in a path (no numpy here).

A scenario or sweep file is data someone else may have written: its names reach
the terminal, the report and the default output folder's name, so control
characters must not pass raw (an ESC sequence rewrites the user's screen, a NUL
cuts a line) and ``..`` or ``/`` must not leave the output folder.
"""

from __future__ import annotations

import re
from typing import Final

#: Longest file-name part made from a name (most file systems allow 255 bytes).
MAX_FILE_PART: Final = 80

_UNSAFE_FILE_CHARS: Final = re.compile(r"[^A-Za-z0-9._-]+")
_DOTS: Final = re.compile(r"\.{2,}")


def printable(text: str) -> str:
    """``text`` with every non-printable character written as a Python escape
    (``\\x1b``, ``\\x00``, ``\\u2028``), so it prints as what it is on one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def file_safe(text: str, fallback: str = "scenario") -> str:
    """A file-name part made from ``text``: letters, digits, ``.``, ``_`` and ``-``
    only, runs of anything else (and of dots) as one ``_``, nothing leading or
    trailing but letters and digits (so never ``..`` or a hidden file), at most
    MAX_FILE_PART characters; ``fallback`` when nothing is left."""
    safe = _DOTS.sub("_", _UNSAFE_FILE_CHARS.sub("_", text))
    safe = safe.strip("._-")[:MAX_FILE_PART].strip("._-")
    return safe or fallback
