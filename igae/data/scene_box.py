"""The scene box of a bounded, object-centred capture, found from its cameras (``--aabb auto``).

The cameras of an object-centred capture look at one point. That point (the least-squares
nearest point to every optical axis) becomes the origin, and the box is the cube that the
cameras see whole from their median distance ``r``: a sphere of radius ``r sin(theta)``
(``theta`` the narrower half field of view) fits in every view centred on the point, so the
cube of that half-size holds every object the cameras show whole. Poses are then scaled so
that the box is ``[-1, 1]^3``; they are not rotated. This is the same idea as nerfstudio's
``auto`` scale with ``focus`` centring (no orientation step).

The map from the input frame to the fit's frame is a similarity ``T`` (``4x4``) recorded with
the fit, so poses given later in the input frame render the same way (:func:`apply_transform`).

This pipeline fits bounded scenes only (no scene contraction): :func:`check_bounded` raises
:class:`UnboundedSceneError` when the cameras look outward or along one direction, or when the
images show content up to their borders instead of the background.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from igae.errors import InputError

BOUNDED_HINT = ("this pipeline fits bounded, object-centred scenes (cameras around an object on a uniform "
                "background); scene contraction for unbounded scenes is out of scope. Pass --allow-unbounded "
                "to fit anyway with an explicit --aabb")
MIN_FACING = 0.9
"""Fraction of cameras that must have the common look-at point inside their field of view."""
MIN_BACKGROUND_BORDER = 0.5
"""Fraction of the training images' border pixels that must show the background colour."""
BACKGROUND_TOL = 0.1
"""Largest per-channel difference from the background colour that still counts as background."""


class UnboundedSceneError(InputError):
    """The scene is not a bounded, object-centred capture."""


@dataclass
class SceneBox:
    """Where a scene's box lies and how poses map into the fit's frame.

    Attributes:
        transform: ``(4, 4)`` similarity from the input frame to the fit's frame.
        centre: ``(3,)`` look-at point in the input frame; scale: input units -> fit units.
        radius: median camera distance from the centre (input units).
        aabb_half: half-size of the box in the fit's frame.
    """

    transform: Tensor
    centre: Tensor
    scale: float
    radius: float
    aabb_half: float

    def record(self) -> dict:
        """JSON-ready description for ``metrics.json``."""
        return {"matrix": self.transform.tolist(), "centre": self.centre.tolist(), "scale": self.scale,
                "radius": self.radius, "aabb_half": self.aabb_half,
                "meaning": "fit_c2w = matrix @ input_c2w (rotation block re-normalised); "
                           "input point = (fit point / scale) + centre"}


def look_at_point(c2w: Tensor) -> Tensor:
    """``(3,)`` point nearest (least squares) to every camera's optical axis; ``c2w`` is ``(N, 4, 4)``.

    Raises:
        UnboundedSceneError: the axes are (nearly) parallel, so no point is looked at.
    """
    origins = c2w[:, :3, 3].double()
    forward = -c2w[:, :3, 2].double()  # OpenGL: the camera looks down -Z
    forward = forward / forward.norm(dim=-1, keepdim=True)
    proj = torch.eye(3, dtype=torch.float64) - forward[:, :, None] * forward[:, None, :]  # (N, 3, 3)
    a = proj.sum(0)
    b = (proj @ origins[:, :, None]).sum(0)[:, 0]
    eig = torch.linalg.eigvalsh(a)
    if eig[0] < 1e-2 * len(c2w):
        raise UnboundedSceneError("the cameras all look in nearly one direction (a forward-facing capture), so "
                                  f"they share no look-at point: {BOUNDED_HINT}")
    return torch.linalg.solve(a, b)


def half_fov(intrinsics: Tensor, width: int, height: int) -> Tensor:
    """``(N,)`` the narrower half field of view per camera, radians (from ``[fx, fy, cx, cy]``)."""
    fx, fy = intrinsics[:, 0].double(), intrinsics[:, 1].double()
    return torch.minimum(torch.atan(0.5 * width / fx), torch.atan(0.5 * height / fy))


def check_cameras_face(c2w: Tensor, intrinsics: Tensor, width: int, height: int, centre: Tensor) -> None:
    """UnboundedSceneError unless at least ``MIN_FACING`` of the cameras see ``centre`` in their view."""
    to_centre = centre[None] - c2w[:, :3, 3].double()
    forward = -c2w[:, :3, 2].double()
    cos = (to_centre * forward).sum(-1) / (to_centre.norm(dim=-1) * forward.norm(dim=-1)).clamp_min(1e-12)
    angle = torch.acos(cos.clamp(-1.0, 1.0))
    facing = float((angle < half_fov(intrinsics, width, height)).double().mean())
    if facing < MIN_FACING:
        raise UnboundedSceneError(f"only {facing:.0%} of the cameras see the point the cameras look at together "
                                  f"(the cameras look outward or past each other): {BOUNDED_HINT}")


def check_background_border(images: Tensor, background: tuple[float, float, float]) -> None:
    """UnboundedSceneError unless at least ``MIN_BACKGROUND_BORDER`` of the border pixels of
    ``images`` ``(N, 3, H, W)`` show the background colour (content beyond the box otherwise)."""
    border = torch.cat([images[:, :, 0, :], images[:, :, -1, :], images[:, :, :, 0], images[:, :, :, -1]], dim=-1)
    bg = torch.tensor(background, dtype=images.dtype)[None, :, None]
    share = float(((border - bg).abs().amax(dim=1) <= BACKGROUND_TOL).double().mean())
    if share < MIN_BACKGROUND_BORDER:
        raise UnboundedSceneError(f"only {share:.0%} of the image borders show the background colour "
                                  f"{list(background)}: the scene has content beyond any object box: {BOUNDED_HINT}")


def check_bounded(c2w: Tensor, intrinsics: Tensor, width: int, height: int, images: Tensor,
                  background: tuple[float, float, float]) -> Tensor:
    """Both checks of a bounded, object-centred capture; returns the look-at point ``(3,)``.

    Raises:
        UnboundedSceneError: forward-facing or outward-looking cameras, or content up to the borders.
    """
    centre = look_at_point(c2w)
    check_cameras_face(c2w, intrinsics, width, height, centre)
    check_background_border(images, background)
    return centre


def auto_scene_box(c2w: Tensor, intrinsics: Tensor, width: int, height: int) -> SceneBox:
    """Centre on the cameras' look-at point and scale so the box is ``[-1, 1]^3`` (see the module docstring)."""
    centre = look_at_point(c2w)
    check_cameras_face(c2w, intrinsics, width, height, centre)
    radius = float((c2w[:, :3, 3].double() - centre).norm(dim=-1).median())
    theta = float(half_fov(intrinsics, width, height).min())
    half_input = radius * math.sin(theta)
    scale = 1.0 / half_input
    transform = torch.eye(4, dtype=torch.float64)
    transform[:3, :3] *= scale
    transform[:3, 3] = -scale * centre
    return SceneBox(transform=transform, centre=centre, scale=scale, radius=radius, aabb_half=1.0)


def apply_transform(transform: Tensor, c2w: Tensor) -> Tensor:
    """``(N, 4, 4)`` cameras of the input frame in the fit's frame: ``transform @ c2w`` with the
    similarity's scale divided out of the rotation block (so it stays a rotation)."""
    t = torch.as_tensor(transform, dtype=torch.float64)
    scale = float(torch.linalg.det(t[:3, :3])) ** (1.0 / 3.0)
    out = t @ c2w.double()
    out[:, :3, :3] /= scale
    return out.to(c2w.dtype)
