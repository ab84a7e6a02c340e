"""Undistorting images of OPENCV and OPENCV_FISHEYE cameras into pinhole images, on load.

Distortion models (coefficients as nerfstudio's ``transforms.json`` and COLMAP name them), on
normalised camera coordinates ``x = (u - cx) / fx``, ``y = (v - cy) / fy`` of the undistorted
(pinhole) image, giving the distorted coordinates the recorded image has:

- ``OPENCV`` (Brown-Conrady; ``k3`` optional): with ``r^2 = x^2 + y^2``,
  ``x_d = x (1 + k1 r^2 + k2 r^4 + k3 r^6) + 2 p1 x y + p2 (r^2 + 2 x^2)`` and
  ``y_d = y (1 + k1 r^2 + k2 r^4 + k3 r^6) + p1 (r^2 + 2 y^2) + 2 p2 x y``;
- ``OPENCV_FISHEYE`` (Kannala-Brandt): with ``theta = atan(r)``,
  ``theta_d = theta (1 + k1 theta^2 + k2 theta^4 + k3 theta^6 + k4 theta^8)`` and
  ``(x_d, y_d) = (theta_d / r) (x, y)``.

Each output pixel is mapped forward through the model and the recorded image is sampled there
(bilinear), which is what OpenCV's ``initUndistortRectifyMap`` + ``remap`` do; no iterative
inversion is needed. The pinhole camera keeps the principal point and scales the focal length
by the smallest zoom at which every output pixel samples inside the recorded image (like
OpenCV's ``getOptimalNewCameraMatrix`` with ``alpha = 0``): no invented pixels, and as much of
the field of view as that allows. Written here with torch because OpenCV is not a dependency.
Pixel centres are at ``u + 0.5`` (the library's convention, also COLMAP's and nerfstudio's).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

MODEL_COEFFICIENTS = {
    "OPENCV": ("k1", "k2", "k3", "p1", "p2"),
    "OPENCV_FISHEYE": ("k1", "k2", "k3", "k4"),
}
"""Distortion coefficients each supported model reads (missing ones are 0)."""

_ZOOM_RANGE = (0.05, 20.0)


def distort(x: Tensor, y: Tensor, model: str, coeffs: dict[str, float]) -> tuple[Tensor, Tensor]:
    """Undistorted normalised coordinates -> distorted ones (see the module docstring), any shape."""
    c = {k: float(coeffs.get(k, 0.0)) for k in MODEL_COEFFICIENTS[model]}
    r2 = x * x + y * y
    if model == "OPENCV":
        radial = 1.0 + r2 * (c["k1"] + r2 * (c["k2"] + r2 * c["k3"]))
        xd = x * radial + 2.0 * c["p1"] * x * y + c["p2"] * (r2 + 2.0 * x * x)
        yd = y * radial + c["p1"] * (r2 + 2.0 * y * y) + 2.0 * c["p2"] * x * y
        return xd, yd
    r = r2.sqrt()
    theta = torch.atan(r)
    t2 = theta * theta
    theta_d = theta * (1.0 + t2 * (c["k1"] + t2 * (c["k2"] + t2 * (c["k3"] + t2 * c["k4"]))))
    scale = torch.where(r > 1e-9, theta_d / r.clamp_min(1e-9), torch.ones_like(r))
    return x * scale, y * scale


def _sample_coords(k: Sequence[float], width: int, height: int, zoom: float, model: str, coeffs: dict[str, float],
                   u: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """Where output pixels ``(u, v)`` (indices) of the zoomed pinhole image fall in the recorded image."""
    fx, fy, cx, cy = (float(t) for t in k)
    x = (u + 0.5 - cx) / (fx * zoom)
    y = (v + 0.5 - cy) / (fy * zoom)
    xd, yd = distort(x, y, model, coeffs)
    return xd * fx + cx, yd * fy + cy  # continuous image coordinates (pixel i spans [i, i + 1])


def _border(width: int, height: int) -> tuple[Tensor, Tensor]:
    u = torch.arange(width, dtype=torch.float64)
    v = torch.arange(height, dtype=torch.float64)
    us = torch.cat([u, u, torch.zeros(height, dtype=torch.float64), torch.full((height,), width - 1.0, dtype=torch.float64)])
    vs = torch.cat([torch.zeros(width, dtype=torch.float64), torch.full((width,), height - 1.0, dtype=torch.float64), v, v])
    return us, vs


def _fits(k: Sequence[float], width: int, height: int, zoom: float, model: str, coeffs: dict[str, float]) -> bool:
    """Every border pixel of the zoomed output samples inside the recorded image, and the model
    does not fold back there (the distortion grows with the radius)."""
    us, vs = _border(width, height)
    ud, vd = _sample_coords(k, width, height, zoom, model, coeffs, us, vs)
    # Pixel centres of the recorded image span [0.5, W - 0.5]: no sample extrapolates past them.
    inside = bool(((ud >= 0.5) & (ud <= width - 0.5) & (vd >= 0.5) & (vd <= height - 0.5)).all())
    if not inside:
        return False
    cx, cy = float(k[2]), float(k[3])
    ud2, vd2 = _sample_coords(k, width, height, zoom / 1.001, model, coeffs, us, vs)  # slightly farther out
    grows = ((ud2 - cx) ** 2 + (vd2 - cy) ** 2) >= ((ud - cx) ** 2 + (vd - cy) ** 2)
    return bool(grows.all())


def pinhole_zoom(k: Sequence[float], width: int, height: int, model: str, coeffs: dict[str, float]) -> float:
    """The smallest focal-length zoom of the pinhole output whose pixels all sample inside the image.

    Raises:
        ValueError: no zoom in ``[0.05, 20]`` works (coefficients that fold the image everywhere).
    """
    lo, hi = _ZOOM_RANGE
    if not _fits(k, width, height, hi, model, coeffs):
        raise ValueError(f"{model} coefficients {coeffs} fold the image: no pinhole view of it lies inside it")
    if _fits(k, width, height, lo, model, coeffs):
        return lo
    for _ in range(40):  # bisection to ~1e-6 relative
        mid = (lo * hi) ** 0.5
        lo, hi = (lo, mid) if _fits(k, width, height, mid, model, coeffs) else (mid, hi)
    return hi


def undistort_image(image: Tensor, k: Sequence[float], model: str, coeffs: dict[str, float],
                    zoom: float | None = None) -> tuple[Tensor, list[float]]:
    """A pinhole image of the same size from a distorted one.

    Args:
        image: ``(3, H, W)`` float in [0, 1].
        k: the camera's ``[fx, fy, cx, cy]`` at this size.
        model: ``"OPENCV"`` or ``"OPENCV_FISHEYE"``; coeffs: its coefficients (missing ones 0).
        zoom: focal-length zoom of the output (default: :func:`pinhole_zoom`).

    Returns:
        ``(3, H, W)`` undistorted image and its pinhole ``[fx * zoom, fy * zoom, cx, cy]``.
    """
    _, height, width = image.shape
    zoom = pinhole_zoom(k, width, height, model, coeffs) if zoom is None else zoom
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                          indexing="ij")
    ud, vd = _sample_coords(k, width, height, zoom, model, coeffs, u, v)
    grid = torch.stack([ud / width * 2.0 - 1.0, vd / height * 2.0 - 1.0], dim=-1).to(image.dtype)  # align_corners=False
    out = F.grid_sample(image[None], grid[None], mode="bilinear", padding_mode="border", align_corners=False)[0]
    fx, fy, cx, cy = (float(t) for t in k)
    return out.clamp(0.0, 1.0), [fx * zoom, fy * zoom, cx, cy]
