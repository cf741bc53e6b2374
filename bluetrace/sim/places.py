"""Geometry of places: desk grids, vehicle seat grids and random-waypoint walking.

Positions are in metres on a flat floor. A room is a grid of desks at a fixed
pitch; a tram or bus is a grid of seats (rows along the vehicle, seats across
it with an aisle in the middle); an open area is a square in which walkers
follow the random-waypoint model (walk in a straight line to a uniform random
point at a uniform random speed, pause, repeat).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: seat geometry of vehicles: row pitch along the vehicle, seat width, aisle width (m).
VEHICLE_ROW_PITCH = 0.8
VEHICLE_SEAT_WIDTH = 0.5
VEHICLE_AISLE = 0.6


def desk_grid(rows: int, cols: int, pitch: float) -> FloatArray:
    """(rows*cols, 2) desk positions, row-major, ``pitch`` metres apart."""
    r, c = np.divmod(np.arange(rows * cols), cols)
    return np.stack([c * pitch, r * pitch], axis=1).astype(np.float64)


def seat_grid(rows: int, cols: int, row_pitch: float = VEHICLE_ROW_PITCH) -> FloatArray:
    """(rows*cols, 2) seat positions of a vehicle: half the seats each side of the aisle."""
    r, c = np.divmod(np.arange(rows * cols), cols)
    across = c * VEHICLE_SEAT_WIDTH + np.where(c >= (cols + 1) // 2, VEHICLE_AISLE, 0.0)
    return np.stack([across, r * row_pitch], axis=1).astype(np.float64)


def random_waypoint(
    rng: np.random.Generator,
    n: int,
    side: float,
    *,
    steps: int,
    dt: float,
    speed: tuple[float, float] = (0.5, 1.5),
    pause: tuple[float, float] = (0.0, 120.0),
) -> FloatArray:
    """Positions of ``n`` random-waypoint walkers in a ``side`` x ``side`` square.

    Returns a float32-compatible (steps, n, 2) array sampled every ``dt``
    seconds. Walkers start at uniform random points (the model's stationary
    distribution is not uniform, but a day's walk forgets the start).
    """
    pos = rng.uniform(0.0, side, (n, 2))
    target = rng.uniform(0.0, side, (n, 2))
    vel = rng.uniform(speed[0], speed[1], n)
    wait = np.zeros(n)
    out = np.empty((steps, n, 2), dtype=np.float64)
    for k in range(steps):
        out[k] = pos
        budget = np.full(n, dt)
        # Pausing walkers spend their budget waiting first.
        waited = np.minimum(wait, budget)
        wait -= waited
        budget -= waited
        delta = target - pos
        dist = np.hypot(delta[:, 0], delta[:, 1])
        reach = vel * budget
        arrive = (reach >= dist) & (budget > 0)
        moving = (~arrive) & (budget > 0) & (dist > 0)
        scale = np.where(moving, reach / np.maximum(dist, 1e-12), 0.0)
        pos = pos + delta * scale[:, None]
        if arrive.any():
            idx = np.flatnonzero(arrive)
            pos[idx] = target[idx]
            target[idx] = rng.uniform(0.0, side, (idx.size, 2))
            vel[idx] = rng.uniform(speed[0], speed[1], idx.size)
            wait[idx] = rng.uniform(pause[0], pause[1], idx.size)
    return out
