"""Empty-space skipping for per-scene NeRF fitting: an occupancy grid and a sampler that uses it.

An :class:`OccupancyGrid` is a ``resolution^3`` boolean grid over the scene box, kept up to
date from the field's density (an exponential moving maximum, Instant-NGP style). The
:class:`OccupancySampler` places the renderer's ``S`` samples per ray only where the grid is
occupied, so a small ``S`` resolves thin content that plain stratified sampling over the whole
box would step over.

Design (and why):

- **One grid state on every device.** The grid, its update rule and ``mark_invisible_cells``
  are plain torch, so the same code (tested on CPU) runs on CUDA. On CUDA only the ray
  traversal is delegated to nerfacc: ``nerfacc.OccGridEstimator.sampling`` walks the grid's
  occupied cells with its CUDA kernel; the estimator's ``binaries`` buffer is pointed at this
  grid's ``occupied`` tensor before every call, so both backends skip exactly the same cells.
  nerfacc's own ``update_every_n_steps`` / ``mark_invisible_cells`` are not used: the latter
  assumes OpenCV cameras (``+Z`` forward) while this project uses OpenGL ones, and one update
  rule on both devices keeps CPU tests meaningful for GPU runs.
- **Batched output.** The project's renderer composites batched ``(R, S)`` intervals (packed
  rendering with ``ray_indices`` is CUDA-only in nerfacc 0.5.3). Both backends therefore
  produce, per ray, the union of occupied *segments* (CPU: a torch march through the grid;
  CUDA: nerfacc's packed marching intervals scattered into an ``(R, M)`` table, see
  :func:`packed_to_segments`), and one shared routine (:func:`samples_in_segments`) places
  exactly ``S`` samples inside that union.
- **Why this equals nerfacc's skipping for compositing.** Volume rendering
  ``w_i = T_i (1 - exp(-sigma_i delta_i))`` with ``T_i = exp(-sum_{j<i} sigma_j delta_j)``:
  a stretch of empty space (``sigma = 0``) adds nothing to the sums, so its transmittance is
  1 and it gets zero weight. Rendering along a ray is then the same as rendering along the
  ray with its empty stretches cut out. Samples are laid out stratified along that cut-out
  ray ("occupied length" ``u``): each interval has length ``delta`` in ``u`` and its midpoint
  is mapped back to the real ``t``. The returned interval is ``t_mid -+ delta / 2``; the
  renderer only uses the midpoint (where it evaluates the field) and the length, so the
  result is the quadrature of the cut-out ray. Intervals are sorted and never overlap; gaps
  between them are skipped empty space (nerfacc's packed samples have gaps too). An interval
  that straddles the end of one occupied segment and the start of the next is drawn at its
  midpoint's location with its full length, i.e. it no longer coincides with a piece of the
  real ray; anything that needs the exact spatial extent of intervals (e.g. a distortion
  loss) should not use this sampler.
- **Rays with no occupied segment** (they miss the box or cross only free cells) get ``S``
  zero-length intervals at their entry point: weight exactly 0, opacity exactly 0, so they
  render the background.
- **Starts fully occupied**: before the first update the sampler is plain stratified
  sampling over the ray's span in the box (identical to
  :func:`~igae.fields.sampling.stratified_samples`, jitter included).

Update rule (:meth:`OccupancyGrid.update`, in the spirit of nerfacc's ``OccGridEstimator``):
every ``every_n`` steps the density is evaluated at one uniformly random point in each of
the chosen cells (all visible cells during warm-up; afterwards ``n_cells / 4`` random cells
plus up to ``n_cells / 4`` currently occupied ones), the per-cell value becomes
``max(ema_decay * old, new)``, and a cell is occupied when the opacity of one marching step
through it, ``density * step_size``, reaches ``min(threshold, mean over visible cells)``.
Capping the threshold at the mean keeps a fresh, uniformly faint field (``softplus(-1)`` =
0.31 per unit length is 0.005 per step of 1/64) from being declared empty everywhere, which
would stop training for good; a field with no contrast at all keeps every cell.

What was not run: there is no GPU on the development machines, so the nerfacc branch
(``OccGridEstimator.sampling``, a CUDA kernel) has never been executed. The CPU tests cover
everything around it: backend selection, building the estimator (its constructor runs on
CPU), pointing its ``binaries`` at the grid, and the packed-to-batched conversion fed with
packed samples made by the torch march. nerfacc documents its samples as sorted by ray then
``t``, which :func:`packed_to_segments` relies on. ``pytest -m gpu`` (tests/test_gpu.py) compares
the two backends on one grid where CUDA exists.

Backend choice on CUDA (``nerf.occupancy.backend``): nerfacc's extension is compiled at first use
and may be missing (no ``nvcc``) or locked by a killed build; ``auto`` then falls back to the torch
march with one warning, ``nerfacc`` stops with the cause (see :mod:`igae.fields.nerfacc_cuda`).
The choice is made when the sampler is built, so the memory probe before training already uses
the backend training will use.
"""

from __future__ import annotations

import math
import warnings
from typing import Callable

import torch
from torch import Tensor

from igae.errors import InputError
from igae.fields.base import FieldFn
from igae.fields.nerfacc_cuda import nerfacc_cuda_status
from igae.fields.sampling import RayBundle, ray_aabb, stratified_samples

BACKENDS = ("auto", "torch", "nerfacc")
DensityFn = Callable[[Tensor], Tensor]
"""``(N, 3)`` world points -> ``(N,)`` (or ``(N, 1)``) non-negative density, e.g. ``field.density``."""


def resolve_backend(backend: str, device: torch.device | str) -> str:
    """Which traversal backend serves rays on ``device``: ``"nerfacc"`` or ``"torch"``.

    - ``"auto"``: on CUDA, nerfacc's kernel when its extension loads (tried once per process,
      see :mod:`igae.fields.nerfacc_cuda`), else the torch march with one warning naming the
      cause; elsewhere the torch march.
    - ``"torch"``: the torch march everywhere (e.g. to compare backends on a GPU).
    - ``"nerfacc"``: nerfacc's kernel; an error on a non-CUDA device or when the extension
      cannot be loaded or built (nerfacc 0.5.3 has no CPU traversal).

    Raises:
        ValueError: unknown backend, or ``"nerfacc"`` on a non-CUDA device.
        InputError: ``"nerfacc"`` on CUDA but the extension is unavailable (names the cause).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "torch":
        return "torch"
    if not _is_cuda(device):
        if backend == "nerfacc":
            raise ValueError(f"backend='nerfacc' needs a CUDA device (nerfacc's OccGridEstimator.sampling is a "
                             f"CUDA kernel), got device {str(device)!r}; use backend='auto' or 'torch' on CPU")
        return "torch"
    status = nerfacc_cuda_status()
    if status.available:
        return "nerfacc"
    if backend == "nerfacc":
        raise InputError(f"nerf.occupancy.backend is 'nerfacc' but nerfacc's CUDA extension is unavailable: "
                         f"{status.reason}. Install a CUDA toolkit matching torch {torch.version.cuda} (nvcc on PATH, "
                         f"CUDA_HOME) and ninja, then run `igae build-extensions`; or set nerf.occupancy.backend "
                         f"to 'auto' (falls back to the torch march) or 'torch'")
    global _FALLBACK_WARNED
    if not _FALLBACK_WARNED:
        _FALLBACK_WARNED = True
        warnings.warn(f"nerf.occupancy.backend 'auto': nerfacc's CUDA extension is unavailable ({status.reason}); "
                      f"the occupancy sampler marches the same grid in torch on {device} instead (same samples, "
                      f"slower). Set nerf.occupancy.backend: torch to silence this, or fix the build "
                      f"(`igae build-extensions`).", RuntimeWarning, stacklevel=2)
    return "torch"


_FALLBACK_WARNED = False
"""The fallback warning is printed once per process, not once per sampler."""


def _is_cuda(device: torch.device | str) -> bool:
    """Whether ``device`` is a CUDA device (one place, so CPU tests can simulate a GPU's choices)."""
    return torch.device(device).type == "cuda"


def _as_resolution(resolution: int | tuple[int, int, int]) -> tuple[int, int, int]:
    res = (resolution,) * 3 if isinstance(resolution, int) else tuple(int(r) for r in resolution)
    if len(res) != 3 or min(res) < 1:
        raise ValueError(f"resolution must be a positive int or 3 positive ints, got {resolution}")
    return res  # type: ignore[return-value]


class OccupancyGrid(torch.nn.Module):
    """Boolean occupancy of ``rx * ry * rz`` cells over an axis-aligned box, updated from a density.

    Cell ``(i, j, k)`` covers ``aabb[0] + ([i, j, k] + [0, 1)) * cell_size`` (x, y, z order,
    the same layout as nerfacc's ``binaries[0]``).

    Args:
        aabb: ``(2, 3)`` ``[min_xyz, max_xyz]``.
        resolution: cells per axis (int or 3 ints).
        step_size: marching step along rays (world units); also the length over which
            :meth:`update` measures a cell's opacity. Default: half the smallest cell edge,
            so every cell a ray crosses for at least that long gets a marching sample.

    Buffers (saved in ``state_dict``):
        aabb: ``(2, 3)``.
        density: ``(rx, ry, rz)`` float32 moving maximum of the density; ``-1`` marks cells no
            camera sees (never updated, never occupied).
        occupied: ``(rx, ry, rz)`` bool; all ``True`` at construction.
    """

    def __init__(self, aabb: Tensor, resolution: int | tuple[int, int, int] = 64,
                 step_size: float | None = None) -> None:
        super().__init__()
        box = torch.as_tensor(aabb, dtype=torch.float32)
        if box.shape != (2, 3) or not bool((box[1] > box[0]).all()):
            raise ValueError(f"aabb must be (2, 3) [min_xyz, max_xyz] with max > min, got {box.tolist()}")
        self.resolution = _as_resolution(resolution)
        self.register_buffer("aabb", box.clone())
        self.register_buffer("density", torch.zeros(self.resolution))
        self.register_buffer("occupied", torch.ones(self.resolution, dtype=torch.bool))
        cell = (box[1] - box[0]) / torch.tensor(self.resolution, dtype=torch.float32, device=box.device)
        self.step_size = float(cell.min()) / 2.0 if step_size is None else float(step_size)
        if not self.step_size > 0:
            raise ValueError(f"step_size must be positive, got {step_size}")

    @property
    def n_cells(self) -> int:
        return math.prod(self.resolution)

    @property
    def cell_size(self) -> Tensor:
        """``(3,)`` cell edge lengths."""
        return (self.aabb[1] - self.aabb[0]) / torch.tensor(self.resolution, dtype=self.aabb.dtype,
                                                             device=self.aabb.device)

    def occupancy_fraction(self) -> float:
        """Fraction of cells currently occupied."""
        return float(self.occupied.float().mean())

    def cell_coords(self, flat_index: Tensor) -> Tensor:
        """``(N, 3)`` long ``(i, j, k)`` of flat (row-major) cell indices ``(N,)``."""
        rx, ry, rz = self.resolution
        return torch.stack([flat_index // (ry * rz), (flat_index // rz) % ry, flat_index % rz], dim=-1)

    def cell_centres(self) -> Tensor:
        """``(n_cells, 3)`` world-space cell centres in flat (row-major) order."""
        idx = torch.arange(self.n_cells, device=self.aabb.device)
        return self.aabb[0] + (self.cell_coords(idx).to(self.aabb.dtype) + 0.5) * self.cell_size

    def occupied_at(self, points: Tensor) -> Tensor:
        """``(...)`` bool: the cell containing each ``(..., 3)`` point is occupied (outside the box: ``False``)."""
        rel = (points - self.aabb[0].to(points)) / self.cell_size.to(points)
        res = torch.tensor(self.resolution, device=points.device)
        ijk = torch.floor(rel).long()
        inside = ((ijk >= 0) & (ijk < res)).all(dim=-1)
        ijk = torch.minimum(ijk.clamp_min(0), res - 1)  # any valid index; masked by `inside` below
        _, ry, rz = self.resolution
        flat = (ijk[..., 0] * ry + ijk[..., 1]) * rz + ijk[..., 2]
        return self.occupied.reshape(-1)[flat] & inside

    def occupied_along(self, origins: Tensor, directions: Tensor, t: Tensor) -> Tensor:
        """``(R, M)`` bool occupancy at ``origins + t * directions`` for points known to be in the box.

        The marching fast path: points in grid units are ``a + t * b`` with per-ray ``a, b``
        (one fused multiply-add per point and axis), and indices are clamped instead of
        tested, so points a rounding error outside the box read the boundary cell.

        Args:
            origins, directions: ``(R, 3)``; t: ``(R, M)``.
        """
        cell = self.cell_size.to(origins)
        a = (origins - self.aabb[0].to(origins)) / cell  # (R, 3)
        b = directions / cell
        _, ry, rz = self.resolution
        flat = torch.zeros(t.shape, dtype=torch.int32, device=t.device)
        # One axis at a time on contiguous (R, M) int32 tensors: a broadcast (R, M, 3) version
        # and int64 arithmetic are both measurably slower on CPU. Truncation equals floor for
        # the non-negative coordinates of in-box points. (int32 holds any grid up to 1290^3.)
        for axis, stride in ((0, ry * rz), (1, rz), (2, 1)):
            coord = torch.addcmul(a[:, axis, None], b[:, axis, None], t).to(torch.int32)
            flat.add_(coord.clamp_(0, self.resolution[axis] - 1), alpha=stride)
        return self.occupied.reshape(-1).take(flat.long())

    @torch.no_grad()
    def update(
        self,
        step: int,
        density_fn: DensityFn,
        every_n: int = 16,
        threshold: float = 0.01,
        ema_decay: float = 0.95,
        warmup_steps: int = 256,
        generator: torch.Generator | None = None,
        chunk: int = 65536,
    ) -> bool:
        """Refresh the grid from ``density_fn`` when ``step % every_n == 0`` (see the module docstring).

        Args:
            step: training step.
            density_fn: ``(N, 3) -> (N,)`` density, e.g. ``field.density`` or
                ``lambda p: field.density(p, scene)``; called without gradients in chunks.
            every_n: update period in steps.
            threshold: opacity of one marching step (``density * step_size``) above which a
                cell is occupied; capped at the mean over visible cells.
            ema_decay: per-update decay of the stored density before taking the max.
            warmup_steps: before this step every visible cell is evaluated.
            generator: random source (on the grid's device) for the cell subset and the point
                inside each cell, for reproducible runs.
            chunk: points per ``density_fn`` call.

        Returns:
            Whether the grid was updated at this step.
        """
        if every_n < 1 or not 0.0 <= ema_decay <= 1.0 or threshold < 0:
            raise ValueError(f"need every_n >= 1, 0 <= ema_decay <= 1 and threshold >= 0, "
                             f"got {every_n}, {ema_decay}, {threshold}")
        if step % every_n != 0:
            return False
        dev = self.aabb.device
        density = self.density.reshape(-1)
        if step < warmup_steps:
            idx = torch.nonzero(density >= 0)[:, 0]
        else:
            # A random quarter of all cells finds newly filled space; up to a quarter of the
            # occupied cells lets space that emptied decay (nerfacc does the same).
            n = max(1, self.n_cells // 4)
            uniform = torch.randint(self.n_cells, (n,), device=dev, generator=generator)
            uniform = uniform[density[uniform] >= 0]
            occ = torch.nonzero(self.occupied.reshape(-1))[:, 0]
            if occ.numel() > n:
                occ = occ[torch.randint(occ.numel(), (n,), device=dev, generator=generator)]
            idx = torch.unique(torch.cat([uniform, occ]))
        # One random point per cell: over many updates the max sees all of the cell, so thin
        # content that misses the cell centre is still found.
        jitter = torch.rand(idx.numel(), 3, device=dev, generator=generator)
        points = self.aabb[0] + (self.cell_coords(idx).float() + jitter) * self.cell_size
        parts = [density_fn(p).reshape(-1).float() for p in points.split(chunk)]
        new = torch.cat(parts) if parts else torch.zeros(0, device=dev)
        if new.shape != idx.shape:
            raise ValueError(f"density_fn must return one density per point, "
                             f"got {new.numel()} for {idx.numel()} points")
        density[idx] = torch.maximum(density[idx] * ema_decay, new.clamp_min(0.0))
        self._threshold(threshold)
        return True

    def _threshold(self, threshold: float) -> None:
        occ = self.density * self.step_size
        visible = self.density >= 0
        mean = occ[visible].mean() if bool(visible.any()) else occ.new_tensor(0.0)
        self.occupied = visible & (occ >= torch.clamp(mean, max=threshold))

    @torch.no_grad()
    def mark_invisible_cells(self, c2w: Tensor, intrinsics: Tensor, width: int, height: int,
                             near: float = 0.0, chunk: int = 32768) -> int:
        """Mark cells that no camera sees as free for good (density ``-1``); call once before training.

        A cell counts as seen when some camera's image (with a margin of the cell's projected
        half-diagonal, so cells straddling the image border are kept) contains its centre in
        front of ``near``, or when the cell touches a camera's plane (its projection is
        unbounded). Cameras are OpenGL (look down ``-Z``), as everywhere in the project.

        Args:
            c2w: ``(N, 4, 4)`` camera-to-world; intrinsics: ``(N, 4)`` or ``(4,)`` ``[fx, fy, cx, cy]``.
            width, height: image size in pixels.
            near: cells entirely closer than this to every camera are unseen.

        Returns:
            Number of visible cells.
        """
        from igae.geometry import project_points  # local: geometry is only needed here

        if c2w.dim() != 3 or c2w.shape[-2:] != (4, 4):
            raise ValueError(f"c2w must be (N, 4, 4), got {tuple(c2w.shape)}")
        c2w = c2w.to(self.aabb)
        k = intrinsics.to(self.aabb).expand(c2w.shape[0], 4)
        half_diag = float(self.cell_size.norm()) / 2.0
        focal = k[:, :2].amax(dim=-1, keepdim=True)  # (N, 1)
        visible = []
        for centres in self.cell_centres().split(chunk):
            uv, depth = project_points(centres, c2w, k)  # (N, P, 2), (N, P)
            margin = focal * half_diag / depth.clamp_min(1e-6)
            in_image = ((uv[..., 0] >= -margin) & (uv[..., 0] <= width + margin)
                        & (uv[..., 1] >= -margin) & (uv[..., 1] <= height + margin))
            seen = (depth > near - half_diag) & ((depth <= half_diag) | in_image)
            visible.append(seen.any(dim=0))
        vis = torch.cat(visible).reshape(self.resolution)
        self.density = torch.where(vis, self.density.clamp_min(0.0), torch.full_like(self.density, -1.0))
        self.occupied = self.occupied & vis
        return int(vis.sum())


# ----------------------------------------------------------------------------------- segments
def march_segments(grid: OccupancyGrid, origins: Tensor, directions: Tensor, t_near: Tensor,
                   t_far: Tensor) -> tuple[Tensor, Tensor]:
    """Occupied stretches of rays, by marching through the grid (pure torch, any device).

    Each ray is cut into steps of ``grid.step_size`` from ``t_near`` (the last one clipped at
    ``t_far``); a step is kept when the cell at its midpoint is occupied. No field is
    evaluated: one boolean lookup per step.

    Args:
        origins, directions: ``(R, 3)``; t_near, t_far: ``(R,)`` span inside the box.

    Returns:
        seg_starts, seg_ends: ``(R, M)`` sorted steps; free steps have zero length
        (``seg_ends == seg_starts``). ``M = ceil(max span / step_size)``.
    """
    step = grid.step_size
    span = (t_far - t_near).clamp_min(0.0)
    m = max(1, math.ceil(float(span.max()) / step)) if span.numel() else 1
    j = torch.arange(m, device=origins.device, dtype=origins.dtype)
    starts = (t_near[:, None] + j * step).minimum(t_far[:, None])  # (R, M)
    ends = (starts + step).minimum(t_far[:, None])
    mid = (starts + ends) * 0.5
    occ = grid.occupied_along(origins, directions, mid) & (ends > starts)
    return starts, torch.where(occ, ends, starts)


def packed_to_segments(ray_indices: Tensor, t_starts: Tensor, t_ends: Tensor, n_rays: int,
                       fill: Tensor) -> tuple[Tensor, Tensor]:
    """nerfacc's packed samples -> an ``(R, M)`` table of segments (pure torch, any device).

    Args:
        ray_indices: ``(N,)`` ray of each sample, sorted (nerfacc emits samples ray by ray,
            in increasing ``t``); t_starts, t_ends: ``(N,)``.
        n_rays: ``R``.
        fill: ``(R,)`` where to put the zero-length padding of each ray (e.g. its ``t_far``).

    Returns:
        seg_starts, seg_ends: ``(R, M)``, ``M`` = most samples on one ray (at least 1); row
        ``r`` holds ray ``r``'s samples in order, then zero-length padding at ``fill[r]``.
    """
    ray_indices = ray_indices.long()
    counts = torch.bincount(ray_indices, minlength=n_rays)
    m = max(1, int(counts.max())) if ray_indices.numel() else 1
    first = torch.cumsum(counts, 0) - counts  # index of each ray's first sample
    col = torch.arange(ray_indices.numel(), device=ray_indices.device) - first[ray_indices]
    seg_starts = fill[:, None].expand(n_rays, m).clone()
    seg_ends = seg_starts.clone()
    seg_starts[ray_indices, col] = t_starts.to(seg_starts)
    seg_ends[ray_indices, col] = t_ends.to(seg_ends)
    return seg_starts, seg_ends


def samples_in_segments(seg_starts: Tensor, seg_ends: Tensor, t_near: Tensor, n: int, train: bool,
                        generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """``n`` intervals per ray laid out stratified along the union of its segments.

    The union is treated as one ray with the gaps cut out (coordinate ``u`` = occupied length
    so far). :func:`~igae.fields.sampling.stratified_samples` tiles ``[0, total]`` in ``u``;
    each interval's midpoint is mapped back to ``t`` and the interval keeps its ``u`` length
    (see the module docstring for why this is exact for compositing).

    Args:
        seg_starts, seg_ends: ``(R, M)`` sorted, disjoint segments (zero-length ones ignored).
        t_near: ``(R,)`` where rays with no occupied length put their zero-length intervals.
        n: intervals per ray; train/generator: stratified jitter as in ``stratified_samples``.

    Returns:
        t_starts, t_ends: ``(R, n)``, sorted, non-overlapping (up to rounding).
    """
    lengths = (seg_ends - seg_starts).clamp_min(0.0)
    cum = torch.cumsum(lengths, dim=-1)  # (R, M) occupied length up to the end of each segment
    total = cum[:, -1]
    u_starts, u_ends = stratified_samples(torch.zeros_like(total), total, n, train, generator)
    u_mid = (u_starts + u_ends) * 0.5
    delta = u_ends - u_starts
    # Segment holding each midpoint: the first whose cumulative end exceeds it (zero-length
    # segments never qualify: their end equals the previous one's).
    seg = torch.searchsorted(cum.contiguous(), u_mid.contiguous(), right=True).clamp(max=cum.shape[-1] - 1)
    before = cum.gather(1, seg) - lengths.gather(1, seg)
    s0, s1 = seg_starts.gather(1, seg), seg_ends.gather(1, seg)
    t_mid = torch.minimum(torch.maximum(s0 + (u_mid - before), s0), s1)
    t_mid = torch.cummax(t_mid, dim=-1).values  # rounding must not unsort the samples
    empty = (total <= 0)[:, None]
    t_mid = torch.where(empty, t_near[:, None].expand_as(t_mid), t_mid)
    half = torch.where(empty, torch.zeros_like(delta), delta * 0.5)
    return (t_mid - half).detach(), (t_mid + half).detach()


# ------------------------------------------------------------------------------------ sampler
class OccupancySampler:
    """Sampler (see :class:`~igae.fields.sampling.Sampler`) with empty-space skipping.

    ``S = samples_per_ray`` intervals per ray, stratified along the ray's occupied stretches
    inside ``aabb``; the field is not evaluated while sampling. Same public methods on every
    device; the traversal backend follows the device (:func:`resolve_backend`).

    Typical use in a per-scene fit::

        sampler = OccupancySampler(field.aabb, resolution=64, samples_per_ray=64, device=device)
        sampler.mark_invisible_cells(c2w, intrinsics, width, height)     # optional, once
        for step in range(n_steps):
            sampler.update(step, field.density)                         # no-op unless step % 16 == 0
            out = render_bundle(field, rays, sampler, background, train=True, generator=gen)

    Args:
        aabb: ``(2, 3)`` scene box (usually the field's).
        resolution: grid cells per axis.
        samples_per_ray: ``S``.
        near: smallest ``t`` (cameras inside the box).
        step_size: marching step; default half a cell (see :class:`OccupancyGrid`).
        backend: ``"auto"`` (nerfacc on CUDA when its extension loads, torch otherwise), ``"torch"``
            or ``"nerfacc"`` (see :func:`resolve_backend`).
        device: where the grid lives; rays must be on the same device.
    """

    def __init__(self, aabb: Tensor, resolution: int | tuple[int, int, int] = 64, samples_per_ray: int = 64,
                 near: float = 0.0, step_size: float | None = None, backend: str = "auto",
                 device: torch.device | str = "cpu") -> None:
        if samples_per_ray < 1:
            raise ValueError(f"samples_per_ray must be >= 1, got {samples_per_ray}")
        self.grid = OccupancyGrid(aabb, resolution, step_size)
        self.samples_per_ray = samples_per_ray
        self.near = near
        self._requested_backend = backend
        self.backend = resolve_backend(backend, device)
        self._estimator: torch.nn.Module | None = None
        self.grid.to(device)

    @property
    def device(self) -> torch.device:
        return self.grid.aabb.device

    def to(self, device: torch.device | str) -> "OccupancySampler":
        """Move the grid; the backend is chosen again for the new device."""
        self.backend = resolve_backend(self._requested_backend, device)
        self.grid.to(device)
        self._estimator = None
        return self

    def update(self, step: int, density_fn: DensityFn, every_n: int = 16, threshold: float = 0.01,
               ema_decay: float = 0.95, warmup_steps: int = 256,
               generator: torch.Generator | None = None) -> bool:
        """Refresh the grid (:meth:`OccupancyGrid.update`); the one grid serves both backends."""
        return self.grid.update(step, density_fn, every_n, threshold, ema_decay, warmup_steps, generator)

    def mark_invisible_cells(self, c2w: Tensor, intrinsics: Tensor, width: int, height: int,
                             near: float = 0.0) -> int:
        """See :meth:`OccupancyGrid.mark_invisible_cells`."""
        return self.grid.mark_invisible_cells(c2w, intrinsics, width, height, near)

    def state_dict(self) -> dict[str, Tensor]:
        """The grid's buffers, for checkpoints."""
        return self.grid.state_dict()

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.grid.load_state_dict(state)

    def estimator(self) -> torch.nn.Module:
        """The ``nerfacc.OccGridEstimator`` that traverses this grid (built on first use).

        Its ``binaries`` buffer is (re)pointed at ``grid.occupied`` here, so it always sees the
        current grid; its own occupancy values and update methods are unused.
        """
        import nerfacc  # local: the torch backend needs no nerfacc

        if self._estimator is None:
            est = nerfacc.OccGridEstimator(roi_aabb=self.grid.aabb.reshape(-1).float().cpu(),
                                           resolution=list(self.grid.resolution), levels=1)
            self._estimator = est.to(self.device)
        if tuple(self._estimator.binaries.shape) != (1, *self.grid.resolution):
            raise RuntimeError(f"nerfacc estimator grid {tuple(self._estimator.binaries.shape)} does not match "
                               f"(1, {self.grid.resolution})")
        self._estimator.binaries = self.grid.occupied[None]
        return self._estimator

    def occupied_segments(self, rays: RayBundle) -> tuple[Tensor, Tensor, Tensor]:
        """``t_near (R,)`` and the ``(R, M)`` occupied segments of each ray, by the active backend."""
        aabb = self.grid.aabb.to(rays.origins.dtype)
        t_near, t_far, _ = ray_aabb(rays.origins, rays.directions, aabb, self.near)
        if self.backend == "torch":
            seg_starts, seg_ends = march_segments(self.grid, rays.origins, rays.directions, t_near, t_far)
            return t_near, seg_starts, seg_ends
        # nerfacc (CUDA only; not run on the development machines): the kernel marches the
        # same grid at the same step, clipped to each ray's box span, and returns only the
        # occupied steps, packed. No sigma_fn: skipping by the field's density is left to
        # the renderer's weights.
        ray_indices, ts, te = self.estimator().sampling(
            rays.origins.float(), rays.directions.float(), near_plane=self.near, t_min=t_near.float(),
            t_max=t_far.float(), render_step_size=self.grid.step_size, stratified=False)
        seg_starts, seg_ends = packed_to_segments(ray_indices, ts, te, len(rays), t_far.float())
        return t_near, seg_starts.to(t_near), seg_ends.to(t_near)

    @torch.no_grad()
    def __call__(self, rays: RayBundle, field: FieldFn, train: bool,
                 generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``t_starts, t_ends`` ``(R, samples_per_ray)``, sorted, detached; ``field`` is not evaluated."""
        if rays.origins.device != self.device:
            raise ValueError(f"rays are on {rays.origins.device} but the occupancy grid is on {self.device}; "
                             f"call sampler.to(device) first")
        t_near, seg_starts, seg_ends = self.occupied_segments(rays)
        return samples_in_segments(seg_starts, seg_ends, t_near, self.samples_per_ray, train, generator)


# --------------------------------------------------------------------------------- benchmark
