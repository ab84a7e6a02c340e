"""Camera placement around an object centred at the origin (world Z-up).

Elevation is the angle above the XY plane: ``(-90, 90)`` is the full sphere, ``(0, 90)``
the upper hemisphere. Azimuth 0 is the +X axis, growing counter-clockwise seen from above.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from igae.geometry import look_at


def sample_camera_positions(
    n: int,
    radius: float,
    elevation_deg: tuple[float, float],
    seed: int,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Random camera centres, uniform over the sphere's area within an elevation band.

    Uniform over area means ``z = sin(elevation)`` is uniform (Archimedes' hat-box theorem),
    so views do not crowd at the poles.

    Args:
        n: number of cameras.
        radius: distance of every camera from the origin.
        elevation_deg: ``(low, high)`` band in degrees, ``-90 <= low <= high <= 90``.
        seed: seed of the private ``torch.Generator`` (the global RNG is left untouched).
        dtype: output dtype.

    Returns:
        ``(n, 3)`` positions with norm ``radius``.
    """
    _check_n_radius(n, radius)
    low, high = _check_band(elevation_deg)
    gen = torch.Generator().manual_seed(int(seed))
    # Draw in float64 so the radius is exact to the output precision.
    r1 = torch.rand(n, generator=gen, dtype=torch.float64)
    r2 = torch.rand(n, generator=gen, dtype=torch.float64)
    z_lo, z_hi = math.sin(math.radians(low)), math.sin(math.radians(high))
    z = z_lo + (z_hi - z_lo) * r1
    azimuth = 2.0 * math.pi * r2
    return _spherical(z, azimuth, radius).to(dtype)


def orbit_camera_positions(n: int, radius: float, elevation_deg: float, dtype: torch.dtype = torch.float32) -> Tensor:
    """Evenly spaced turntable positions at a fixed elevation (for orbit videos).

    The first camera sits in front of the object (on the -Y axis, the Blender "front"
    view); the rest follow counter-clockwise seen from above, ``360 / n`` degrees apart,
    without repeating the first one, so the sequence loops seamlessly.

    Returns:
        ``(n, 3)`` positions with norm ``radius``.
    """
    _check_n_radius(n, radius)
    elev = _check_band((elevation_deg, elevation_deg))[0]
    azimuth = -0.5 * math.pi + 2.0 * math.pi * torch.arange(n, dtype=torch.float64) / n
    z = torch.full((n,), math.sin(math.radians(elev)), dtype=torch.float64)
    return _spherical(z, azimuth, radius).to(dtype)


def sample_cameras(
    n: int,
    radius: float,
    elevation_deg: tuple[float, float],
    seed: int,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Random cameras on a sphere (see :func:`sample_camera_positions`) looking at the origin.

    Returns:
        ``(n, 4, 4)`` camera-to-world matrices (OpenGL axes, world Z-up).
    """
    eye = sample_camera_positions(n, radius, elevation_deg, seed, dtype=torch.float64)
    return look_at(eye, torch.zeros(3, dtype=torch.float64)).to(dtype)


def _spherical(z: Tensor, azimuth: Tensor, radius: float) -> Tensor:
    """Unit-sphere points from height ``z`` and azimuth, scaled to ``radius``; ``(n, 3)``."""
    ring = torch.sqrt(torch.clamp(1.0 - z * z, min=0.0))
    pts = torch.stack([ring * torch.cos(azimuth), ring * torch.sin(azimuth), z], dim=-1)
    # Renormalise: removes rounding so every norm equals radius to the last bit or so.
    return radius * pts / pts.norm(dim=-1, keepdim=True)


def _check_n_radius(n: int, radius: float) -> None:
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer number of cameras, got {n}")
    if not radius > 0:
        raise ValueError(f"radius must be positive, got {radius}")


def _check_band(elevation_deg: tuple[float, float]) -> tuple[float, float]:
    try:
        low, high = (float(e) for e in elevation_deg)
    except (TypeError, ValueError):
        raise ValueError(f"elevation_deg must be a pair (low, high) in degrees, got {elevation_deg!r}") from None
    if not -90.0 <= low <= high <= 90.0:
        raise ValueError(
            f"elevation_deg must satisfy -90 <= low <= high <= 90 (degrees above the XY plane), got {elevation_deg!r}"
        )
    return low, high
