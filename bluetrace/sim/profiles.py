"""Phone profiles: when a phone listens and when it can be heard.

A profile is data, not behaviour. Each phone gets one profile and a random
phase, so two phones in the same room do not scan in lock-step.

* OpenTrace Android: scans 8 s every 36-43 s (a fresh gap each cycle), advertises
  180 s on / 5 s off, and does not revisit the same device within 100 s.
* OpenTrace iOS: scans 10 s every 60 s (background operation is unreliable on
  iOS; ``background_ok`` lets a scenario switch a share of iOS phones off).
* GAEN: scans 4 s every 210-300 s; the identifier rotates every 10 min.
* assignment: the course assignment's phone, which beacons every
  ``beacon_interval`` seconds by UDP and always listens. Its detection
  opportunities are the sender's beacons, not the receiver's scans.

Sources: OpenTrace and GAEN sources as summarised in docs/simulator.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PhoneProfile:
    """Duty cycle of one kind of phone.

    ``scan_every`` is the (low, high) range of the time from one scan start to
    the next; each gap is drawn uniformly in it. ``listens_always`` marks a
    phone whose receiver is always on: its detection opportunities are then the
    sender's beacons (``beacon_interval`` of the scenario).
    """

    name: str
    scan_window: float  # seconds the receiver listens per scan
    scan_every: tuple[float, float]  # seconds between scan starts (uniform range)
    adv_on: float  # seconds advertising ...
    adv_off: float  # ... then seconds silent (0: always advertising)
    revisit: float = 0.0  # seconds before the same device is read again
    id_rotation: float = 900.0  # seconds an identifier lasts on air
    listens_always: bool = False

    @property
    def mean_period(self) -> float:
        """Mean seconds between detection opportunities this phone creates as a receiver."""
        return 0.5 * (self.scan_every[0] + self.scan_every[1])

    @property
    def advertising_fraction(self) -> float:
        """Share of time this phone can be heard."""
        total = self.adv_on + self.adv_off
        return 1.0 if total <= 0 or self.adv_off <= 0 else self.adv_on / total

    @property
    def skip_after_hit(self) -> int:
        """Scans skipped after a reading of a device (the revisit rule), at the mean period."""
        if self.revisit <= 0 or self.listens_always:
            return 0
        return max(0, int(np.ceil(self.revisit / self.mean_period)) - 1)


PROFILES: Final[dict[str, PhoneProfile]] = {
    "opentrace-android": PhoneProfile(
        "opentrace-android", scan_window=8.0, scan_every=(36.0, 43.0), adv_on=180.0,
        adv_off=5.0, revisit=100.0, id_rotation=900.0,
    ),
    "opentrace-ios": PhoneProfile(
        "opentrace-ios", scan_window=10.0, scan_every=(60.0, 60.0), adv_on=1.0, adv_off=0.0,
        id_rotation=900.0,
    ),
    "gaen": PhoneProfile(
        "gaen", scan_window=4.0, scan_every=(210.0, 300.0), adv_on=1.0, adv_off=0.0,
        id_rotation=600.0,
    ),
    "assignment": PhoneProfile(
        "assignment", scan_window=0.0, scan_every=(0.0, 0.0), adv_on=1.0, adv_off=0.0,
        id_rotation=900.0, listens_always=True,
    ),
}


def get_profile(name: str) -> PhoneProfile:
    """The profile called ``name``, or a one-line ValueError naming the choices."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown phone profile {name!r} (one of {', '.join(PROFILES)})"
        ) from None


def scan_windows(
    profile: PhoneProfile, t0: float, t1: float, rng: np.random.Generator
) -> FloatArray:
    """Scan windows of one phone in [t0, t1), as an (n, 2) array of (start, end).

    The phone's cycle starts at a random phase before ``t0`` so that the first
    window may begin anywhere; every gap is drawn in ``scan_every``. A window
    that starts before ``t1`` is kept even if it ends after it. A phone that
    listens always has the single window (t0, t1).
    """
    if t1 <= t0:
        return np.empty((0, 2))
    if profile.listens_always:
        return np.array([[t0, t1]], dtype=np.float64)
    low, high = profile.scan_every
    mean = 0.5 * (low + high)
    # Enough gaps to cover the span with room to spare; drawn in one go.
    count = int((t1 - t0) / max(low, 1e-9)) + 3
    gaps = rng.uniform(low, high, count) if high > low else np.full(count, low)
    starts = t0 - rng.uniform(0.0, mean) + np.cumsum(gaps) - gaps[0]
    starts = starts[(starts + profile.scan_window > t0) & (starts < t1)]
    return np.stack([starts, starts + profile.scan_window], axis=1)


def beacon_times(
    interval: float, t0: float, t1: float, rng: np.random.Generator
) -> FloatArray:
    """Times in [t0, t1) at which a phone beaconing every ``interval`` s sends, random phase."""
    if t1 <= t0 or interval <= 0:
        return np.empty(0)
    first = t0 + rng.uniform(0.0, interval)
    return np.arange(first, t1, interval, dtype=np.float64)
