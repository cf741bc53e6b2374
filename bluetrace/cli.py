"""What the two programs share at their edges: argument types and exits.

No traceback may reach a user, so each program's ``main`` turns expected
failures into one line on stderr and an exit status.
"""

import argparse
import resource
import sys


def port(text: str, *, allow_zero: bool = True) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    low = 0 if allow_zero else 1
    if not low <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be {low}-65535, not {value}")
    return value


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < float("inf"):  # also refuses NaN
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def whole_seconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of seconds: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 second, not {value}")
    return value


def fail(program: str, message: str, status: int = 1) -> int:
    print(f"{program}: {message}", file=sys.stderr, flush=True)
    return status


def raise_descriptor_limit() -> int:
    """Soft limit up to the hard one: thousands of phones mean thousands of fds."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            return soft
        return hard
    return soft
