"""What the two programs share at their edges: argument types and exits.

No traceback may reach a user, so each program's ``main`` turns expected
failures into one line on stderr and an exit status.
"""

import argparse
import resource
import sys
from collections.abc import Callable


def port(text: str, *, allow_zero: bool = True) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text}") from None
    low = 0 if allow_zero else 1
    if not low <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be {low}-65535, not {value}")
    return value


DAY = 24 * 3600
YEAR = 365 * DAY


def seconds(low: float, high: float, *, or_zero: bool = False) -> Callable[[str], float]:
    """An argument type: a number of seconds with ``low < value <= high``
    (or exactly 0, with ``or_zero``: "not at all"). Every numeric option has
    a range, so that no value can overflow a timer or a date later, in the
    middle of serving."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of seconds: {text}") from None
        if or_zero and value == 0:
            return 0.0
        if not low < value <= high:  # also refuses NaN and infinity
            lowest = f"more than {low:g}"
            if or_zero:
                lowest = "at least 0" if low == 0 else f"0 or {lowest}"
            raise argparse.ArgumentTypeError(
                f"must be {lowest} and at most {high:,.0f} seconds, not {text}"
            )
        return value

    return parse


def whole(low: int, high: int, what: str = "a whole number") -> Callable[[str], int]:
    """An argument type: an integer with ``low <= value <= high``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {what}: {text}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low:,} to {high:,}, not {value:,}")
        return value

    return parse


positive_seconds = seconds(0, YEAR)
whole_seconds = whole(1, YEAR, "a whole number of seconds")


def fail(program: str, message: str, status: int = 1) -> int:
    print(f"{program}: {message}", file=sys.stderr, flush=True)
    return status


def raise_descriptor_limit() -> int:
    """Soft limit up to the hard one: thousands of phones mean thousands of fds.

    Returns:
        The soft limit now in force (the hard one, unless raising failed or
        the hard limit is unlimited): the server sizes its connection cap by it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            return soft
        return hard
    return soft
