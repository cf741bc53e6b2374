"""Radio model: how strongly one phone hears another at a given distance.

Attenuation (dB) follows the log-distance model used throughout the BlueTrace
literature::

    attenuation = a0 + 10 n log10(d) + pair offset + per-scan noise

* ``a0`` and ``n`` set the mean; open space is about 40 dB at 1 m with n = 2,
  while the fits to the Leith tram and bus measurements have a0 of 64-74 dB and
  n of only 0.2-0.4 (metal carriages make distance nearly irrelevant).
* the **pair offset** is drawn once per co-location interval (one placement of
  two phones): N(0, s_pair^2), plus ``body_loss`` for the share
  ``body_fraction`` of pairs with a body in the path (a per-pair flag), plus a
  uniform +-``holder_spread`` dB for who holds the phone and how (Leith bus
  paper: +-10 dB), plus any per-phone-model offsets (``model_offsets``).
* the **per-scan noise** is N(0, s_scan^2), fresh at every scan.

A scan sees the other phone when its attenuation is at most ``threshold``.
Everything here is vectorised over numpy arrays and draws only from the
generator passed in, so the same seed gives the same draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: distances below this (metres) are clamped: two phones cannot share a point.
MIN_DISTANCE: Final = 0.1


def normal_cdf(x: npt.ArrayLike) -> FloatArray:
    """Standard normal CDF, vectorised, without scipy.

    Uses erfc through the Abramowitz-Stegun 7.1.26 rational approximation
    (absolute error below 1.5e-7), which is far below the Monte-Carlo noise of
    any estimate the simulator makes.
    """
    z = np.asarray(x, dtype=np.float64) / math.sqrt(2.0)
    a = np.abs(z)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592
        + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    erfc_abs = poly * np.exp(-a * a)
    # Phi(x) = erfc(-z) / 2: for z >= 0 that is 1 - erfc(|z|)/2.
    return np.asarray(np.where(z >= 0, 1.0 - 0.5 * erfc_abs, 0.5 * erfc_abs), dtype=np.float64)


@dataclass(frozen=True)
class RadioModel:
    """Parameters of the log-distance model with shadowing.

    ``body_loss`` is applied as a per-pair flag: each pair offset draws whether
    a body lies in the path (probability ``body_fraction``) and, if so, adds
    ``body_loss`` dB. ``holder_spread`` adds a per-pair uniform offset in
    [-holder_spread, +holder_spread] dB (how the phone is held). Per-phone-model
    offsets are not part of the pair offset: draw them per phone with
    ``model_offsets`` and add the sender's and receiver's to the pair offset.
    """

    a0: float  # dB at 1 m
    n: float  # path-loss exponent
    s_pair: float  # per-pair shadowing sd (dB)
    s_scan: float  # per-scan shadowing sd (dB)
    body_loss: float = 0.0  # dB added when a body is between (per-pair flag)
    threshold: float = 90.0  # attenuation (dB) above which a scan sees nothing
    body_fraction: float = 0.5  # share of pairs with a body in the path
    holder_spread: float = 0.0  # per-pair uniform +- dB for who holds the phone

    def __post_init__(self) -> None:
        if self.s_pair < 0 or self.s_scan < 0 or self.holder_spread < 0:
            raise ValueError("radio: standard deviations and spreads must be >= 0")
        if not 0.0 <= self.body_fraction <= 1.0:
            raise ValueError("radio: body_fraction must be in [0, 1]")

    def mean_attenuation(self, d: npt.ArrayLike) -> FloatArray:
        """Mean attenuation (dB) at distance ``d`` metres (clamped at 0.1 m)."""
        dist = np.maximum(np.asarray(d, dtype=np.float64), MIN_DISTANCE)
        return np.asarray(self.a0 + 10.0 * self.n * np.log10(dist), dtype=np.float64)

    def pair_offsets(self, rng: np.random.Generator, size: int) -> FloatArray:
        """One offset (dB) per pair placement: shadowing, body in the path, holder.

        Draws are made in a fixed order (shadowing, body flag, holder) and only
        for the terms that are switched on, so a model with the same parameters
        and seed always gives the same offsets.
        """
        out = rng.normal(0.0, self.s_pair, size) if self.s_pair > 0 else np.zeros(size)
        if self.body_loss != 0.0 and self.body_fraction > 0.0:
            out = out + self.body_loss * (rng.random(size) < self.body_fraction)
        if self.holder_spread > 0.0:
            out = out + rng.uniform(-self.holder_spread, self.holder_spread, size)
        return np.asarray(out, dtype=np.float64)

    def scan_attenuation(
        self, rng: np.random.Generator, d: npt.ArrayLike, pair_offset: npt.ArrayLike
    ) -> FloatArray:
        """Attenuation one scan measures: mean + pair offset + fresh per-scan noise."""
        mean = self.mean_attenuation(d) + np.asarray(pair_offset, dtype=np.float64)
        if self.s_scan > 0:
            return np.asarray(mean + rng.normal(0.0, self.s_scan, mean.shape), dtype=np.float64)
        return np.asarray(mean, dtype=np.float64)

    def detect_probability(
        self, d: npt.ArrayLike, pair_offset: npt.ArrayLike = 0.0
    ) -> FloatArray:
        """P(one scan's attenuation <= threshold) given distance and pair offset."""
        margin = self.threshold - (
            self.mean_attenuation(d) + np.asarray(pair_offset, dtype=np.float64)
        )
        if self.s_scan > 0:
            return normal_cdf(margin / self.s_scan)
        return np.asarray((margin >= 0).astype(np.float64))

    def with_changes(self, **changes: float) -> RadioModel:
        """A copy with some fields replaced (used by ``--set radio.x=...``)."""
        fields = {k: getattr(self, k) for k in self.__dataclass_fields__}
        unknown = set(changes) - set(fields)
        if unknown:
            raise ValueError(f"radio: unknown parameter {sorted(unknown)[0]!r}")
        fields.update(changes)
        return RadioModel(**fields)


#: Built-in radio environments (see docs/simulator.md for the sources).
#: "open": free space at 2.44 GHz (A0 about 40 dB, n = 2) with office-like
#: shadowing; "tram" and "bus": fits to the Leith & Farrell measurements.
PRESETS: Final[dict[str, RadioModel]] = {
    "open": RadioModel(a0=40.0, n=2.0, s_pair=4.0, s_scan=2.0),
    "tram": RadioModel(a0=63.9, n=0.36, s_pair=6.0, s_scan=3.1),
    "bus": RadioModel(a0=74.4, n=0.22, s_pair=5.7, s_scan=3.6),
}


#: Per-phone-model offset schemes for ``model_offsets``.
#: "none": all phones alike. "opentrace": the 21 models of the OpenTrace
#: calibration read -49.9 to -70.6 dBm at 2 m, a 20.7 dB range; the range of 21
#: normal draws is about 3.7 sd, hence N(0, 5.6^2) per phone (receive side only).
#: "gaen": the GAEN calibration table, receive correction -37..+14 dB (median
#: -5) and transmit -46..+2 dB (median -24), centred on their medians and drawn
#: as two half-uniforms either side of the median.
MODEL_OFFSET_SCHEMES: Final = ("none", "opentrace", "gaen")


def _split_uniform(
    rng: np.random.Generator, size: int, low: float, median: float, high: float
) -> FloatArray:
    """Half the mass uniform on [low, median], half on [median, high], minus the median."""
    below = rng.random(size) < 0.5
    u = rng.random(size)
    values = np.where(below, low + u * (median - low), median + u * (high - median))
    return np.asarray(values - median, dtype=np.float64)


def model_offsets(
    rng: np.random.Generator, n_phones: int, scheme: str = "none"
) -> tuple[FloatArray, FloatArray]:
    """Per-phone (transmit, receive) offsets in dB for a calibration scheme.

    A pair's attenuation gains ``tx[sender] + rx[receiver]``: a phone that
    transmits weakly or hears badly looks farther away than it is.
    """
    if scheme == "none":
        return np.zeros(n_phones), np.zeros(n_phones)
    if scheme == "opentrace":
        return np.zeros(n_phones), np.asarray(rng.normal(0.0, 5.6, n_phones))
    if scheme == "gaen":
        tx = _split_uniform(rng, n_phones, -46.0, -24.0, 2.0)
        rx = _split_uniform(rng, n_phones, -37.0, -5.0, 14.0)
        # A weak transmitter (negative TX correction) means more attenuation.
        return -tx, -rx
    raise ValueError(
        f"radio: unknown model-offset scheme {scheme!r} (one of {', '.join(MODEL_OFFSET_SCHEMES)})"
    )
