"""Phone profiles: when a phone listens and when it can be heard.

A profile is data, not behaviour. Each phone gets one profile and a random
phase, so two phones in the same room do not scan in lock-step.

* OpenTrace Android: scans 8 s every 36-43 s (a fresh gap each cycle), advertises
  180 s on / 5 s off, and does not revisit the same device within 100 s.
* OpenTrace iOS: scans 10 s every 60 s; in the background it stops scanning and
  is heard by foreground iPhones only (see the preset's sources); the share of
  time in the background is ``background_share``.
* GAEN: scans 4 s every 210-300 s; the identifier rotates every 10 min.
* assignment: the course assignment's phone, which beacons every
  ``beacon_interval`` seconds by UDP and always listens. Its detection
  opportunities are the sender's beacons, not the receiver's scans.

Every field can be changed per scenario and new profiles defined
(``resolve_profiles``). Sources: OpenTrace and GAEN sources and OpenTrace's
issue tracker, as summarised in docs/simulator.md.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


#: Profile fields a scenario may set (``--set profiles.NAME.KEY=VALUE`` or a
#: ``[profiles.NAME]`` table), besides ``share`` and ``like``.
SETTABLE: Final = (
    "scan_window", "scan_every", "adv_on", "adv_off", "revisit", "id_rotation",
    "listens_always", "hear_fg", "hear_bg", "heard_fg", "heard_bg", "background_share",
    "background_spell", "background_heard_by", "os",
)
_PROBABILITIES: Final = ("hear_fg", "hear_bg", "heard_fg", "heard_bg", "background_share")


@dataclass(frozen=True)
class PhoneProfile:
    """Duty cycle and detection of one kind of phone (all times in seconds).

    ``scan_every`` is the (low, high) range of the time from one scan start to
    the next; each gap is drawn uniformly in it. A scan lasts ``scan_window``
    and hears a sender that advertises at any moment of it. ``listens_always``
    marks a phone whose receiver is always on: its detection opportunities are
    then the sender's beacons (``beacon_interval`` of the scenario).

    Per-OS detection: a phone is in the background for a share
    ``background_share`` of its time, in spells of ``background_spell`` s
    (each spell drawn independently). In the foreground (background) one
    opportunity of it as a receiver succeeds at most with probability
    ``hear_fg`` (``hear_bg``), and as a sender with ``heard_fg``
    (``heard_bg``); in the background it is heard only by the profiles in
    ``background_heard_by`` (``"*"``: every profile).
    """

    name: str
    scan_window: float  # seconds the receiver listens per scan
    scan_every: tuple[float, float]  # seconds between scan starts (uniform range)
    adv_on: float  # seconds advertising ...
    adv_off: float  # ... then seconds silent (0: always advertising)
    revisit: float = 0.0  # seconds before the same device is read again
    id_rotation: float = 900.0  # seconds an identifier lasts on air
    listens_always: bool = False
    hear_fg: float = 1.0
    hear_bg: float = 1.0
    heard_fg: float = 1.0
    heard_bg: float = 1.0
    background_share: float = 0.0
    background_spell: float = 1800.0
    background_heard_by: tuple[str, ...] = ("*",)
    os: str = "other"  # what background_heard_by names: "android", "ios", ...

    @property
    def mean_period(self) -> float:
        """Mean seconds between detection opportunities this phone creates as a receiver."""
        return 0.5 * (self.scan_every[0] + self.scan_every[1])

    @property
    def advertising_fraction(self) -> float:
        """Share of time this phone can be heard."""
        total = self.adv_on + self.adv_off
        return 1.0 if total <= 0 or self.adv_off <= 0 else self.adv_on / total

    def advertising_overlap(self, window: float) -> float:
        """Chance that a scan of ``window`` s, at a random moment, overlaps this phone's
        advertising: (on + window) / (on + off), at most 1."""
        total = self.adv_on + self.adv_off
        if total <= 0 or self.adv_off <= 0:
            return 1.0
        return min(1.0, (self.adv_on + window) / total)

    @property
    def skip_after_hit(self) -> int:
        """Scans skipped after a reading of a device (the revisit rule), at the mean period."""
        if self.revisit <= 0 or self.listens_always:
            return 0
        return max(0, int(np.ceil(self.revisit / self.mean_period)) - 1)

    def check(self, known: Iterable[str]) -> None:
        """Raise ValueError (one line naming the profile) on values no engine can run."""
        where = f"profile {self.name!r}"
        low, high = self.scan_every
        if not self.listens_always:
            if not 0 < low <= high:
                raise ValueError(f"{where}: scan_every needs 0 < low <= high seconds")
            if not 0 < self.scan_window <= low:
                raise ValueError(f"{where}: scan_window must be > 0 and at most scan_every's "
                                 "low end (scans do not overlap)")
        if self.adv_on <= 0 or self.adv_off < 0:
            raise ValueError(f"{where}: adv_on must be > 0 and adv_off >= 0")
        if self.revisit < 0 or self.id_rotation <= 0 or self.background_spell < 1.0:
            raise ValueError(f"{where}: need revisit >= 0, id_rotation > 0 and "
                             "background_spell >= 1 s")
        for key in _PROBABILITIES:
            if not 0.0 <= float(getattr(self, key)) <= 1.0:
                raise ValueError(f"{where}: {key} must be in [0, 1]")
        del known
        if not self.os or not all(self.background_heard_by):
            raise ValueError(f"{where}: os and the names in background_heard_by must not be "
                             "empty")


PROFILES: Final[dict[str, PhoneProfile]] = {
    "opentrace-android": PhoneProfile(
        "opentrace-android", scan_window=8.0, scan_every=(36.0, 43.0), adv_on=180.0,
        adv_off=5.0, revisit=100.0, id_rotation=900.0, os="android",
    ),
    # Background behaviour from OpenTrace's own issue tracker (docs/simulator.md):
    # scanning stops in the background (opentrace-ios #18, #26), a backgrounded
    # iPhone is still found by an iPhone in the foreground but not by another
    # backgrounded one nor, reportedly, by Android (opentrace-ios #4). How much of
    # the time the app is in the background is the scenario's choice.
    "opentrace-ios": PhoneProfile(
        "opentrace-ios", scan_window=10.0, scan_every=(60.0, 60.0), adv_on=1.0, adv_off=0.0,
        id_rotation=900.0, hear_bg=0.0, background_share=0.0,
        background_heard_by=("ios",), os="ios",
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


def _setting(name: str, key: str, value: Any) -> Any:
    """One setting, coerced to its field's type, or a one-line ValueError."""
    where = f"profiles.{name}.{key}"
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if key == "scan_every":
        if number:
            value = [value, value]
        if not (isinstance(value, list | tuple) and len(value) == 2 and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in value
        )):
            raise ValueError(f"{where} must be seconds or [low, high] seconds")
        return (float(value[0]), float(value[1]))
    if key == "os":
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a name such as \"android\" or \"ios\"")
        return value
    if key == "listens_always":
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false")
        return value
    if key == "background_heard_by":
        if isinstance(value, str):
            value = [value]
        if not (isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)):
            raise ValueError(f"{where} must be a list of os names (\"*\": all)")
        return tuple(value)
    if not number or not math.isfinite(value):
        raise ValueError(f"{where} must be a finite number")
    return float(value)


def normalise_settings(
    settings: Mapping[str, Mapping[str, Any]],
) -> dict[str, dict[str, Any]]:
    """Settings with every value in its field's type (``scan_every = 120`` becomes
    (120.0, 120.0)), so that a scenario reads back equal to what was written.
    Unknown keys are left for ``resolve_profiles`` to name."""
    return {
        name: {key: (_setting(name, key, value) if key in SETTABLE else value)
               for key, value in table.items()}
        for name, table in settings.items()
    }


def resolve_profiles(settings: Mapping[str, Mapping[str, Any]]) -> dict[str, PhoneProfile]:
    """The presets with ``settings`` applied: ``{NAME: {KEY: VALUE}}`` changes preset
    NAME, or defines a new profile NAME (from the preset named by ``like``, or from
    its own ``scan_window`` and ``scan_every``). Every profile is checked."""
    out = dict(PROFILES)
    for name, table in settings.items():
        values = dict(table)
        like = values.pop("like", None)
        unknown = sorted(set(values) - set(SETTABLE))
        if unknown:
            raise ValueError(f"profiles.{name}: no setting {unknown[0]!r} (settable: "
                             f"{', '.join(SETTABLE)}, like)")
        changes = {key: _setting(name, key, value) for key, value in values.items()}
        if like is not None:
            if not isinstance(like, str) or like not in PROFILES:
                raise ValueError(f"profiles.{name}.like must name a preset "
                                 f"({', '.join(PROFILES)})")
            base: PhoneProfile | None = PROFILES[like]
        else:
            base = PROFILES.get(name)
        if base is None:
            if "scan_every" not in changes and not changes.get("listens_always", False):
                raise ValueError(f"profiles.{name}: a new profile needs like = PRESET, or "
                                 "scan_window and scan_every")
            changes.setdefault("scan_window", 0.0)
            changes.setdefault("scan_every", (0.0, 0.0))
            changes.setdefault("adv_on", 1.0)
            changes.setdefault("adv_off", 0.0)
            out[name] = PhoneProfile(name=name, **changes)
        else:
            out[name] = dataclasses.replace(base, name=name, **changes)
    for profile in out.values():
        profile.check(out)
    return out


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
