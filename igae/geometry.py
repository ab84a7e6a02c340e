"""Pinhole camera geometry shared by the mesh renderer and the NeRF code.

Conventions (fixed project-wide):

- Cameras are camera-to-world ``(4, 4)`` matrices in the OpenGL / Blender / nerfstudio
  convention: the camera looks down its local -Z axis, +Y is up and +X is right.
- The world is Z-up.
- Intrinsics are a vector ``[fx, fy, cx, cy]`` in pixels. Pixel ``(u, v)`` (column ``u``,
  row ``v`` counted from the top) covers ``[u, u+1) x [v, v+1)``, so its centre is at
  ``(u + 0.5, v + 0.5)`` and a centred camera has ``cx = W / 2`` exactly.

Every function is batched, differentiable where it makes sense, and keeps the device and
dtype of its tensor inputs.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor


def focal_from_fov(fov_deg: float, size: int) -> float:
    """Focal length in pixels that spans ``fov_deg`` degrees across ``size`` pixels."""
    if not 0.0 < fov_deg < 180.0:
        raise ValueError(f"fov_deg must be in (0, 180) degrees, got {fov_deg}")
    if size <= 0:
        raise ValueError(f"size must be a positive number of pixels, got {size}")
    return 0.5 * size / math.tan(math.radians(fov_deg) / 2.0)


def fov_from_focal(focal: float, size: int) -> float:
    """Field of view in degrees across ``size`` pixels for a focal length in pixels."""
    if focal <= 0.0:
        raise ValueError(f"focal must be a positive length in pixels, got {focal}")
    if size <= 0:
        raise ValueError(f"size must be a positive number of pixels, got {size}")
    return math.degrees(2.0 * math.atan(0.5 * size / focal))


def scale_intrinsics(intrinsics: Tensor, factor: float) -> Tensor:
    """Intrinsics of the same camera at ``1/factor`` of the resolution.

    Args:
        intrinsics: ``(..., 4)`` ``[fx, fy, cx, cy]`` in pixels.
        factor: downsampling factor (e.g. 8 for an f8 latent); floats allowed.

    Returns:
        ``(..., 4)`` ``[fx, fy, cx, cy] / factor``. True division, never floor division,
        so a centred camera stays exactly centred (``cx = W / 2 -> W / (2 factor)``).
    """
    if not factor > 0:
        raise ValueError(f"factor must be positive, got {factor}")
    _check_last_dim(intrinsics, 4, "intrinsics")
    return intrinsics / factor


def look_at(eye: Tensor, target: Tensor | Sequence[float], up: Sequence[float] | Tensor = (0.0, 0.0, 1.0)) -> Tensor:
    """Camera-to-world matrices of cameras at ``eye`` looking at ``target``.

    Args:
        eye: ``(N, 3)`` camera centres.
        target: ``(3,)`` or ``(N, 3)`` points the cameras look at.
        up: ``(3,)`` world up direction (Z-up by default); the camera's +Y lies in the plane
            of ``up`` and the viewing direction, on the side of ``up``.

    Returns:
        ``(N, 4, 4)`` camera-to-world matrices (OpenGL axes: the camera's -Z column points
        from ``eye`` to ``target``). When the view direction is parallel to ``up`` (a camera
        straight above or below the target) the world axis least aligned with the view
        direction replaces ``up`` (+Y on ties: a camera above a Z-up scene then shows +X
        right and +Y up), so the result is always a proper rotation, never NaN.
    """
    _check_last_dim(eye, 3, "eye")
    if eye.dim() != 2:
        raise ValueError(f"eye must have shape (N, 3), got {tuple(eye.shape)}")
    target = torch.as_tensor(target, dtype=eye.dtype, device=eye.device).expand_as(eye)
    up_t = torch.as_tensor(up, dtype=eye.dtype, device=eye.device).expand_as(eye)
    if bool((up_t.norm(dim=-1) == 0).any()):
        raise ValueError("look_at: up must be a non-zero vector, e.g. (0, 0, 1) for a Z-up world")

    forward = target - eye
    dist = forward.norm(dim=-1, keepdim=True)
    if bool((dist <= 0).any()):
        raise ValueError("look_at: an eye coincides with its target; move the camera away from the target")
    forward = forward / dist

    right = torch.linalg.cross(forward, up_t, dim=-1)
    right_norm = right.norm(dim=-1, keepdim=True)
    # Degenerate rows (forward parallel to up): use the world axis least aligned with the view
    # direction, ties going to +Y first, so a camera straight above a Z-up object sees +X to
    # the right and +Y up on screen (Blender's top view).
    degenerate = right_norm < 1e-5 * up_t.norm(dim=-1, keepdim=True).clamp_min(1e-30)
    if bool(degenerate.any()):
        axes = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=eye.dtype, device=eye.device)
        alt_up = axes[(forward @ axes.T).abs().argmin(dim=-1)]
        right = torch.where(degenerate, torch.linalg.cross(forward, alt_up, dim=-1), right)
    # Gram-Schmidt against forward: a cross product of nearly parallel vectors loses
    # orthogonality to rounding; this restores it before normalising.
    right = right - (right * forward).sum(dim=-1, keepdim=True) * forward
    right = right / right.norm(dim=-1, keepdim=True)
    cam_up = torch.linalg.cross(right, forward, dim=-1)

    c2w = torch.zeros(eye.shape[0], 4, 4, dtype=eye.dtype, device=eye.device)
    c2w[:, :3, 0] = right
    c2w[:, :3, 1] = cam_up
    c2w[:, :3, 2] = -forward
    c2w[:, :3, 3] = eye
    c2w[:, 3, 3] = 1.0
    return c2w


def pixel_rays(c2w: Tensor, intrinsics: Tensor, width: int, height: int) -> tuple[Tensor, Tensor]:
    """World-space rays through the pixel centres of pinhole cameras.

    Args:
        c2w: ``(N, 4, 4)`` camera-to-world matrices (OpenGL axes).
        intrinsics: ``(N, 4)`` or ``(4,)`` ``[fx, fy, cx, cy]`` in pixels.
        width, height: image size in pixels.

    Returns:
        origins: ``(N, H, W, 3)`` camera centres, repeated per pixel.
        directions: ``(N, H, W, 3)`` unit world-space directions through pixel centres
            ``(u + 0.5, v + 0.5)``, row ``v`` counted from the top of the image.
    """
    if c2w.dim() != 3 or c2w.shape[-2:] != (4, 4):
        raise ValueError(f"c2w must have shape (N, 4, 4), got {tuple(c2w.shape)}")
    if width <= 0 or height <= 0:
        raise ValueError(f"width and height must be positive, got {width}x{height}")
    _check_last_dim(intrinsics, 4, "intrinsics")
    n = c2w.shape[0]
    k = intrinsics.to(dtype=c2w.dtype, device=c2w.device).expand(n, 4)
    u = torch.arange(width, dtype=c2w.dtype, device=c2w.device)
    v = torch.arange(height, dtype=c2w.dtype, device=c2w.device)
    vv, uu = torch.meshgrid(v, u, indexing="ij")  # (H, W) each
    directions = _directions(c2w[:, None, None], k[:, None, None], uu, vv)  # (N, H, W, 3)
    origins = c2w[:, :3, 3].view(n, 1, 1, 3).expand(n, height, width, 3)
    return origins, directions


def rays_at_pixels(c2w: Tensor, intrinsics: Tensor, u: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """Rays through single pixels, one per camera: the ray batch of a NeRF training step.

    Args:
        c2w: ``(R, 4, 4)`` camera of each ray; intrinsics: ``(R, 4)`` ``[fx, fy, cx, cy]``.
        u, v: ``(R,)`` integer pixel column and row (the ray passes through ``(u + 0.5, v + 0.5)``).

    Returns:
        origins, directions: ``(R, 3)``; equal to :func:`pixel_rays` at those pixels.
    """
    if c2w.dim() != 3 or intrinsics.shape != (c2w.shape[0], 4) or u.shape != (c2w.shape[0],) or v.shape != u.shape:
        raise ValueError(f"need c2w (R, 4, 4), intrinsics (R, 4), u and v (R,); got {tuple(c2w.shape)}, "
                         f"{tuple(intrinsics.shape)}, {tuple(u.shape)}, {tuple(v.shape)}")
    k = intrinsics.to(dtype=c2w.dtype, device=c2w.device)
    directions = _directions(c2w, k, u.to(c2w.dtype), v.to(c2w.dtype))
    return c2w[:, :3, 3], directions


def _directions(c2w: Tensor, k: Tensor, u: Tensor, v: Tensor) -> Tensor:
    """Unit world directions through pixel centres ``(u + 0.5, v + 0.5)``; ``c2w (..., 4, 4)``,
    ``k (..., 4)`` and ``u, v`` broadcast against each other's leading shapes."""
    fx, fy, cx, cy = k.unbind(-1)
    # Camera space: +X right, +Y up (image rows grow downwards), looking down -Z.
    x = (u + 0.5 - cx) / fx
    y = -(v + 0.5 - cy) / fy
    d_cam = torch.stack([x, y, -torch.ones_like(x)], dim=-1)  # (..., 3)
    directions = (c2w[..., :3, :3] @ d_cam[..., None])[..., 0]
    return directions / directions.norm(dim=-1, keepdim=True)


def project_points(points: Tensor, c2w: Tensor, intrinsics: Tensor) -> tuple[Tensor, Tensor]:
    """Project world points into a pinhole camera; the inverse of :func:`pixel_rays`.

    Args:
        points: ``(P, 3)`` world points.
        c2w: ``(4, 4)`` camera-to-world matrix, or ``(N, 4, 4)`` for N cameras.
        intrinsics: ``(4,)`` (or ``(N, 4)`` with batched ``c2w``) ``[fx, fy, cx, cy]``.

    Returns:
        uv: ``(P, 2)`` (or ``(N, P, 2)``) continuous pixel coordinates ``(column, row)``;
            the centre of pixel ``(u, v)`` projects to ``(u + 0.5, v + 0.5)``.
        depth: ``(P,)`` (or ``(N, P)``) z-depth along the camera's viewing axis, positive
            in front of the camera. Points with ``depth <= 0`` get meaningless ``uv``.
    """
    _check_last_dim(points, 3, "points")
    if c2w.shape[-2:] != (4, 4) or c2w.dim() not in (2, 3):
        raise ValueError(f"c2w must have shape (4, 4) or (N, 4, 4), got {tuple(c2w.shape)}")
    _check_last_dim(intrinsics, 4, "intrinsics")
    rot = c2w[..., :3, :3]
    t = c2w[..., :3, 3]
    # World -> camera: R^T (p - t); rotations are orthonormal so no inverse is needed.
    rel = points.to(c2w.dtype) - t.unsqueeze(-2)  # (..., P, 3)
    p_cam = torch.einsum("...ji,...pj->...pi", rot, rel)
    depth = -p_cam[..., 2]
    k = intrinsics.to(dtype=c2w.dtype, device=c2w.device)
    fx, fy, cx, cy = (k[..., i].unsqueeze(-1) for i in range(4))
    u = fx * p_cam[..., 0] / depth + cx
    v = -fy * p_cam[..., 1] / depth + cy
    return torch.stack([u, v], dim=-1), depth


def _check_last_dim(t: Tensor, size: int, name: str) -> None:
    if not isinstance(t, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() == 0 or t.shape[-1] != size:
        raise ValueError(f"{name} must have last dimension {size}, got shape {tuple(t.shape)}")
