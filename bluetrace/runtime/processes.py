"""Ending a child process, bounded: the one way the kit, the grader and the
benchmarks stop what they started.

A program asked to stop may ignore SIGTERM, hang in its shutdown, or leave
children behind; none of that may hold up the caller or leave a process
running after it. So the steps are fixed and every wait is bounded: SIGTERM,
up to ``grace`` seconds for it to exit, SIGKILL to whatever is left, up to
``grace`` seconds more to reap the process so that no zombie remains.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def _exists(signal_to: Callable[[int, int], None], ident: int) -> bool:
    """Whether a process (``os.kill``) or a process group (``os.killpg``) is
    there, by sending it signal 0."""
    try:
        signal_to(ident, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_process(
    process: "subprocess.Popen[Any]",
    *,
    group: bool = True,
    grace: float = 3.0,
    also: Sequence[int] = (),
) -> int | None:
    """End ``process`` and return its exit status (None only if even SIGKILL
    did not let it be reaped within ``grace`` seconds).

    SIGTERM first, so a program can close its files and sockets; SIGKILL once
    ``grace`` seconds have passed without it exiting.

    ``group``: signal its whole process group, so that what it started ends
    with it; the process must lead its own group (started with
    ``start_new_session=True``: ValueError otherwise, since the signals would
    reach nothing). SIGKILL then also goes to a group that outlives its leader.

    ``also``: more process ids to end the same way (its descendants that left
    the group with setsid, found before the call while the leader still links
    them); they get SIGKILL too if any of them outlives the SIGTERM.
    """
    if group and process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(process.pid) != process.pid:
                raise ValueError(f"process {process.pid} does not lead its own process group")
    others = [pid for pid in also if pid != process.pid]

    def send(sig: signal.Signals) -> None:
        with contextlib.suppress(OSError):
            if group:
                os.killpg(process.pid, sig)
            elif process.poll() is None:
                process.send_signal(sig)
        for pid in others:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)

    send(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(grace)
    leftovers = (process.poll() is None
                 or (group and _exists(os.killpg, process.pid))
                 or any(_exists(os.kill, pid) for pid in others))
    if leftovers:
        send(signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(grace)
    return process.returncode


def spawn_module(
    module: str, kind: int = socket.SOCK_STREAM
) -> "tuple[subprocess.Popen[bytes], socket.socket]":
    """Start ``python -m module FD`` in a session of its own (a Ctrl-C or
    hang-up meant for the parent is not delivered to it; it ends when the
    parent's end of the socket closes); the process and the parent's end,
    non-blocking. OSError if it could not be started (nothing left open)."""
    parent, child = socket.socketpair(socket.AF_UNIX, kind)
    import bluetrace  # noqa: PLC0415 (the package's own location)

    root = str(Path(bluetrace.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    try:
        proc = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", module, str(child.fileno())],
            pass_fds=(child.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            env=env,
            cwd=root,
            start_new_session=True,
        )
    except OSError:
        parent.close()
        raise
    finally:
        child.close()
    parent.setblocking(False)
    return proc, parent
