"""``EngineResult``: what every engine hands to the metrics, the report and the tests.

Two engines fill it: ``fast`` (numpy, encounter level) and ``exact`` (the real
phone and server objects under a virtual clock). The metrics never look inside
an engine; they read this object and the ``World`` the engine ran on, so both
engines are measured by the same code.

Conventions an engine must keep:

* Times are seconds from the start of the run (``t = 0`` is midnight of day 0),
  as in ``World`` intervals.
* People are ``World`` person ids (0..n-1). TempIDs never appear here: an engine
  resolves them to their owner (the exact engine through the real server's
  records; the fast engine uses integer TempIDs, owner = index // per-phone).
* ``detections`` lists **every** reception whose receiver is marked in
  ``world.recorded`` (in small worlds everyone; in large ones all or a sample
  of the infected plus a sample of the others), one row per stored log
  entry (a beacon that was valid and kept), with the attenuation the receiver
  measured. Receptions by other receivers may be listed or left out; they are
  counted in ``beacons_received`` either way.
* ``named[i]`` for each infected person ``i`` who ran the app and uploaded: the
  person ids the health authority names from ``i``'s upload (the server's
  contact-log checking). Infected people without the app are absent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

#: One stored reception: ``receiver`` logged ``sender``'s beacon at ``t`` with
#: the given attenuation (dB; NaN when the engine has no signal strength).
DETECTION_DTYPE: Final = np.dtype([
    ("receiver", np.int32),
    ("sender", np.int32),
    ("t", np.float64),
    ("attenuation", np.float32),
])

#: Progress callback: (simulated seconds done, simulated seconds in total).
Progress = Callable[[float, float], None]


def no_progress(done: float, total: float) -> None:
    """A progress callback that shows nothing."""
    del done, total


def empty_detections() -> npt.NDArray[np.void]:
    """An empty detection array."""
    return np.empty(0, dtype=DETECTION_DTYPE)


def sort_detections(det: npt.NDArray[np.void]) -> npt.NDArray[np.void]:
    """Detections ordered by (receiver, sender, t): the order the metrics expect."""
    pair = det["receiver"].astype(np.int64) << 32 | det["sender"].astype(np.int64)
    return det[np.lexsort((det["t"], pair))]


@dataclass
class EngineResult:
    """Outcome of one engine run on one world (see the module docstring).

    Fields an engine must fill:

    ``engine``            "fast" or "exact".
    ``detections``        DETECTION_DTYPE array, sorted by (receiver, sender, t)
                          (use ``sort_detections``); complete for recorded receivers.
    ``named``             infected person id -> sorted int64 array of the person ids
                          the health authority names from that person's upload.
    ``beacons_sent``      beacons (detection opportunities) sent towards a phone in
                          range that runs the app: datagrams in the exact engine, scan
                          opportunities in the fast engine.
    ``beacons_received``  of those, the ones the receiver stored.
    ``beacons_lost``      of those, the ones lost (radio, datagram loss, not
                          advertising, revisit rule, invalid); sent = received + lost.
    ``tempids_issued``    TempIDs the server handed out.
    ``server_work``       counters of server work; keys used by the report:
                          "tempid_requests", "tempids_issued", "uploads",
                          "upload_entries" (log lines checked), "lookups" (TempID
                          look-ups), "named" (phones named in total).

    Optional fields (``None`` or empty: the metrics compute them from
    ``detections``, which is then expected to be complete for every receiver):

    ``pair_days``         counts of co-located pair-days where both people ran the app,
                          keyed "both" (each phone logged the other), "one", "none".
    ``pair_days_by_profile``  the same counts per profile pair ``"A|B"``, keyed
                          "both", "first_only" (only A's phone logged B's),
                          "second_only", "none" (``by_profile.PairDayCounter``).
    ``intervals``         the co-location intervals touching recorded or infected people (saves
                          the metrics regenerating large worlds); None: ask the world.
    ``elapsed_s``         wall-clock seconds of the run.
    ``extra``             any other engine-specific figures (numbers only), reported as is.
    """

    engine: str
    detections: npt.NDArray[np.void]
    named: dict[int, npt.NDArray[np.int64]]
    beacons_sent: int
    beacons_received: int
    beacons_lost: int
    tempids_issued: int
    server_work: dict[str, int] = field(default_factory=dict)
    pair_days: dict[str, int] | None = None
    pair_days_by_profile: dict[str, dict[str, int]] | None = None
    intervals: npt.NDArray[np.void] | None = None
    elapsed_s: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    def check(self) -> None:
        """Raise ValueError if the result breaks the conventions above."""
        if self.detections.dtype != DETECTION_DTYPE:
            raise ValueError("detections must use DETECTION_DTYPE")
        if self.beacons_sent != self.beacons_received + self.beacons_lost:
            raise ValueError("beacons_sent must equal beacons_received + beacons_lost")
        if self.pair_days is not None and self.pair_days_by_profile is not None:
            split = self.pair_days_by_profile.values()
            if (sum(c["both"] for c in split) != self.pair_days["both"]
                    or sum(c["none"] for c in split) != self.pair_days["none"]):
                raise ValueError("pair_days_by_profile must add up to pair_days")
        det = self.detections
        if det.size > 1:
            order = np.lexsort((det["t"], det["sender"], det["receiver"]))
            if not np.array_equal(order, np.arange(det.size)):
                raise ValueError("detections must be sorted by (receiver, sender, t)")

    def summary(self) -> dict[str, Any]:
        """Counters as plain data (for results.json)."""
        return {
            "engine": self.engine,
            "detections_listed": int(self.detections.size),
            "beacons_sent": self.beacons_sent,
            "beacons_received": self.beacons_received,
            "beacons_lost": self.beacons_lost,
            "tempids_issued": self.tempids_issued,
            "server_work": dict(self.server_work),
            "pair_days": dict(self.pair_days) if self.pair_days is not None else None,
            "pair_days_by_profile": self.pair_days_by_profile,
            "elapsed_s": round(self.elapsed_s, 3),
            "extra": dict(self.extra),
        }
