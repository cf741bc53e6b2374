"""One large fast-engine run split by days over a Dask cluster.

``bluetrace-sim run SCENARIO --scheduler tcp://HOST:8786`` runs inside
``scheduler(address)``: while it is active, ``fast.run_fast`` sends each
simulated day to the cluster as a task of its own instead of running the days
in turn. The result is the single-process result, bit for bit, because

* every day draws from its own random stream, fixed by the seed and the day
  (``fast.day_stream_key``, ``fast.day_rng``), not by which days ran before;
* the world and the phones' arrays are drawn once, here, and sent to every
  worker (``Client.scatter``), so no worker re-draws them;
* a day's outcome (``fast.DaysPart``) is sums, day-ordered lists and sorted
  sets, merged in day order.

A task holds the shared world and one day: its intervals, the links and the
opportunities of that day. Its memory is therefore bounded by the largest day,
whatever the number of days (docs/simulator.md gives the figures). Workers need
this package installed (the ``sim`` extra).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np

from bluetrace.sim.channel import PhoneArrays
from bluetrace.sim.fast import DaysPart, day_stream_key, run_days
from bluetrace.sim.result import Progress
from bluetrace.sim.scenario import Scenario
from bluetrace.sim.units import DAY
from bluetrace.sim.world import World

#: Seconds to wait for the scheduler to answer before giving up.
CONNECT_TIMEOUT_S = 10.0

_ADDRESS = re.compile(r"(?:(?:tcp|tls)://)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})")
# The Dask client runs are sent to, if any (distributed's Client is untyped: Any).
_CLIENT: ContextVar[Any] = ContextVar("bluetrace_sim_dask_client", default=None)


class ClusterError(RuntimeError):
    """The cluster cannot be reached or a day failed on it (one line for the user)."""


def check_address(address: str) -> str:
    """``[tcp://|tls://]HOST:PORT``, or a ClusterError naming the expected form."""
    match = _ADDRESS.fullmatch(address.strip())
    if match is None or not 1 <= int(match.group(1)) <= 65535:
        raise ClusterError(
            f"scheduler address must look like tcp://HOST:PORT (port 1-65535), not {address!r}"
        )
    return address.strip()


def active_client() -> Any:
    """The Dask client runs go to now, or None (run here)."""
    return _CLIENT.get()


@contextmanager
def using(client: Any) -> Iterator[Any]:
    """Send fast-engine runs to ``client`` (a ``distributed.Client``) inside the block."""
    token = _CLIENT.set(client)
    try:
        yield client
    finally:
        _CLIENT.reset(token)


@contextmanager
def scheduler(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> Iterator[Any]:
    """Connect to the Dask scheduler at ``address`` and send fast-engine runs to it
    inside the block; the connection is closed at the end."""
    try:
        import distributed  # noqa: PLC0415 (only runs on a cluster need it)
    except ImportError:
        raise ClusterError("--scheduler needs the 'distributed' package (the sim extra)") from None
    checked = check_address(address)
    try:
        client_type: Any = distributed.Client
        client: Any = client_type(checked, timeout=f"{timeout_s}s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    try:
        with using(client):
            yield client
    finally:
        client.close()


def run_on_cluster(
    client: Any, world: World, sc: Scenario, rng: np.random.Generator, progress: Progress
) -> DaysPart:
    """Every day of the run as one task on ``client``'s cluster, merged in day order.

    Draws the phones' arrays and the day-stream key from ``rng`` exactly as a local
    run does, so the result (and ``rng``'s state afterwards) is the same.
    """
    phones = PhoneArrays(world, rng)
    key = day_stream_key(rng)
    total = sc.duration
    progress(0.0, total)
    shared = client.scatter((world, sc, phones, key), broadcast=True)
    futures = [client.submit(_day_task, shared, day, pure=False) for day in range(sc.days)]
    parts: dict[int, DaysPart] = {}
    try:
        import distributed  # noqa: PLC0415

        as_completed: Any = distributed.as_completed
        for future in as_completed(futures):
            part: DaysPart = future.result()
            parts[part.days[0]] = part
            progress(min(len(parts) * DAY, total), total)
    except Exception as exc:
        client.cancel(futures)
        raise ClusterError(f"a day of the run failed on the cluster: "
                           f"{type(exc).__name__}: {exc}") from exc
    merged = parts[0]
    for day in range(1, sc.days):
        merged = merged.merge(parts[day])
    return merged


def _day_task(shared: tuple[World, Scenario, PhoneArrays, int], day: int) -> DaysPart:
    """One day of a run, on a worker."""
    world, sc, phones, key = shared
    return run_days(world, sc, phones, key, [day])
