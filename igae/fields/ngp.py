"""Instant-NGP field (Müller et al., SIGGRAPH 2022): multi-resolution hash encoding + tiny MLP, in torch.

Encoding. ``L`` levels with grid resolutions growing geometrically from ``N_min`` to ``N_max``:

    b = exp((ln N_max - ln N_min) / (L - 1)),      N_l = floor(N_min * b^l)

A point normalised to ``u in [0, 1]^3`` sits in the cell ``floor(u N_l)`` of level ``l``; its
8 corner vertices (integer coordinates in ``[0, N_l]``) each index a row of that level's table
of ``F``-vectors, and the trilinear interpolation of the 8 rows is the level's feature. The
``L`` features are concatenated (``L * F`` numbers) and decoded by a small ReLU MLP to
``1 + C`` raw outputs.

Vertex -> row. A level whose ``(N_l + 1)^3`` vertices fit in ``T = 2^log2_hashmap_size`` rows
gets a dense table with one row per vertex (``x + y V + z V^2``, ``V = N_l + 1``): coarse levels
have no collisions. Finer levels share ``T`` rows through the paper's spatial hash

    h(x, y, z) = (x * 1  XOR  y * 2654435761  XOR  z * 805459861)  mod  T

whose collisions the MLP and the multi-resolution structure resolve (gradients of colliding
vertices average, dominated by the visible surfaces). All tables are stacked into one
``(sum_l rows_l, F)`` parameter; a level's indices are offset into its block.

Vectorisation: no Python loop over points or levels (only over the 3 axes and 8 corners, on
whole ``(P, L)`` tensors). Levels are split into the dense prefix and the hashed suffix
(resolutions increase, so dense levels come first); each group computes its ``(P, L_g, 8)``
corner rows, and one weighted gather (``embedding_bag`` with per-corner weights, and a
column-wise scatter-add backward, :class:`_HashGather`) serves all levels. Hash products are
computed in 64 bits and masked to ``T - 1`` *before* the XOR (exact: the mask keeps low bits
and XOR is bitwise), so the corner combinations run on 32-bit integers; on a 2-core CPU this
and per-corner contiguous tensors made a training step (32k samples, 12 levels) ~2x faster
than broadcasting over ``(2, 2, 2)`` corner dimensions in 64 bits.

Choices (and why):

- Table init ``U(-1e-4, 1e-4)`` (the paper): near-zero features, so the field starts as what the
  MLP biases say; Adam's scale invariance still moves the tiny entries at the table's
  learning rate (the paper uses ``lr = 1e-2``, ``eps = 1e-15``; the caller sets both).
- The paper's two MLPs (density: 1 hidden layer; colour: 2 hidden layers on the density MLP's
  features and the encoded direction) are merged into one MLP of ``hidden_layers`` layers to
  ``1 + C``: latent NeRFs of IG-AE are view-independent (see :mod:`igae.fields.vanilla`), so
  the colour MLP's direction input is gone and a separate branch buys nothing.
- Density ``softplus(raw - 1)`` by default as for every field here (smooth, cannot overflow);
  ``density_activation="trunc_exp"`` gives the paper's exponential (with clamped backward).
- No regulariser: the paper's only one is a small L2 weight decay on the MLP (``1e-6``),
  which is an optimiser setting (``weight_decay`` on the ``"mlp"`` group; the hash table is
  deliberately excluded, which is why the groups are separate), not a loss term.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from igae.fields.base import EncodedField, SceneIndex
from igae.fields.base import output_activation as make_output_activation
from igae.fields.triplane import make_aabb
from igae.fields.base import apply_density, check_density_activation, check_single_scene

PRIMES = (1, 2654435761, 805459861)
"""The spatial hash's per-axis multipliers (Instant-NGP; the first is 1 for cache coherence)."""


def level_resolutions(levels: int, base_resolution: int, max_resolution: int) -> list[int]:
    """``N_l = floor(N_min * b^l)`` for ``l < L`` with ``b`` such that ``N_{L-1} = N_max``."""
    if levels == 1:
        return [base_resolution]
    growth = math.exp((math.log(max_resolution) - math.log(base_resolution)) / (levels - 1))
    # The small epsilon keeps exact powers (e.g. 16 * 2^l) from flooring one below.
    return [int(math.floor(base_resolution * growth**level + 1e-6)) for level in range(levels)]


class HashGridField(EncodedField):
    """Multi-resolution hash grid and a tiny MLP, for one scene.

    Args:
        out_channels: ``C`` (3 for RGB, the latent channels for latent NeRFs).
        aabb: ``(2, 3)`` scene box or a float half-size of a cube centred at the origin.
        output_activation: ``"none" | "sigmoid" | "tanh"`` (see :mod:`igae.fields.base`).
        seed: seeds the initialisation (the global RNG is left untouched).
        levels: ``L`` (paper: 16).
        features_per_level: ``F`` (paper: 2).
        log2_hashmap_size: ``log2 T``, rows per hashed level (paper: 14-24).
        base_resolution: ``N_min`` (paper: 16).
        max_resolution: ``N_max`` (paper: 512-524288 depending on the scene size).
        hidden: MLP width (paper: 64).
        hidden_layers: MLP hidden layers (see the module docstring).
        density_activation: ``"softplus"`` (default) or ``"trunc_exp"``.
        density_bias: added to the raw density before the activation.

    Parameter groups: ``{"encoding": [hash tables], "mlp": [MLP weights and biases]}``.
    """

    def __init__(
        self,
        out_channels: int = 3,
        aabb: Tensor | float = 1.0,
        output_activation: str = "sigmoid",
        seed: int = 0,
        levels: int = 12,
        features_per_level: int = 2,
        log2_hashmap_size: int = 15,
        base_resolution: int = 16,
        max_resolution: int = 512,
        hidden: int = 64,
        hidden_layers: int = 2,
        density_activation: str = "softplus",
        density_bias: float = -1.0,
    ) -> None:
        super().__init__()
        for name, value in (("out_channels", out_channels), ("levels", levels),
                            ("features_per_level", features_per_level), ("hidden", hidden),
                            ("hidden_layers", hidden_layers), ("base_resolution", base_resolution)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if not 4 <= log2_hashmap_size <= 30:
            raise ValueError(f"log2_hashmap_size must be in [4, 30], got {log2_hashmap_size}")
        if max_resolution < base_resolution:
            raise ValueError(f"max_resolution ({max_resolution}) must be >= base_resolution ({base_resolution})")
        check_density_activation(density_activation)
        self.out_channels = out_channels
        self.output_activation_name = output_activation
        self._out_act = make_output_activation(output_activation)
        self.levels, self.features_per_level = levels, features_per_level
        self.hashmap_size = 2**log2_hashmap_size
        self.density_activation = density_activation
        self.density_bias = float(density_bias)
        self.register_buffer("aabb", make_aabb(aabb))

        self.resolutions = level_resolutions(levels, base_resolution, max_resolution)
        rows = [min((n + 1) ** 3, self.hashmap_size) for n in self.resolutions]
        # Resolutions never decrease, so the dense levels are a prefix.
        self.num_dense = sum((n + 1) ** 3 <= self.hashmap_size for n in self.resolutions)
        offsets = [0]
        for r in rows[:-1]:
            offsets.append(offsets[-1] + r)
        if sum(rows) >= 2**31:
            raise ValueError(f"the hash tables would have {sum(rows)} rows; 32-bit indices need < 2^31 "
                             "(lower levels or log2_hashmap_size)")
        # Index arithmetic after hashing is 32-bit (see :meth:`encode`), so these buffers are too.
        self.register_buffer("offsets", torch.tensor(offsets, dtype=torch.int32), persistent=False)
        self.register_buffer("res", torch.tensor(self.resolutions, dtype=torch.long), persistent=False)
        # Dense levels: per-axis strides (1, V, V^2) and the 8 corners' row offsets from the cell's
        # row, in the (x, y, z) bit order of the interpolation weights.
        v = torch.tensor(self.resolutions[: self.num_dense], dtype=torch.long) + 1
        strides = torch.stack([torch.ones_like(v), v, v * v], dim=-1)  # (L_dense, 3)
        bits = torch.tensor([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], dtype=torch.long)  # (8, 3)
        self.register_buffer("dense_strides", strides, persistent=False)
        self.register_buffer("dense_corners", (strides @ bits.T).int(), persistent=False)  # (L_dense, 8)

        gen = torch.Generator().manual_seed(seed)
        self.table = torch.nn.Parameter((torch.rand(sum(rows), features_per_level, generator=gen) * 2 - 1) * 1e-4)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            layers: list[torch.nn.Module] = []
            width = levels * features_per_level
            for _ in range(hidden_layers):
                layers += [torch.nn.Linear(width, hidden), torch.nn.ReLU(inplace=True)]
                width = hidden
            layers.append(torch.nn.Linear(width, 1 + out_channels))
            self.mlp = torch.nn.Sequential(*layers)

    # ----------------------------------------------------------------- encoding
    def encode(self, unit: Tensor) -> Tensor:
        """``(P, L * F)`` hash-grid features of ``(P, 3)`` points in ``[0, 1]^3`` (level-major).

        Works on contiguous ``(P, L)`` tensors per axis and per corner, stacked once at the end:
        on CPU, broadcasting over small trailing dimensions (the 2 x 2 x 2 corners) runs an
        order of magnitude slower than the same arithmetic on contiguous vectors, and 64-bit
        integer ops are not vectorised, so indices are 32-bit except in the hash products.
        """
        p = unit.shape[0]
        res = self.res.to(unit.dtype)  # (L,)
        weights: list[list[Tensor]] = []  # per axis: [low-corner weight, high-corner weight], (P, L)
        cells: list[Tensor] = []  # per axis: (P, L) int64 low-corner vertex coordinate
        for axis in range(3):
            pos = unit[:, axis, None] * res  # (P, L) continuous vertex coordinate
            # The last cell includes its far face, so u = 1 interpolates real vertices.
            cell = torch.minimum(pos.detach().floor(), res - 1)
            frac = pos - cell
            weights.append([1.0 - frac, frac])
            cells.append(cell.long())
        # Corner j = 4a + 2b + c takes offset (a, b, c) along (x, y, z).
        wxy = [weights[0][a] * weights[1][b] for a in (0, 1) for b in (0, 1)]
        weight = torch.stack([wxy[ab] * weights[2][c] for ab in range(4) for c in (0, 1)], dim=-1)  # (P, L, 8)

        k = self.num_dense
        mask = self.hashmap_size - 1
        groups = []
        if k > 0:  # dense levels: row = x + y V + z V^2, so a corner is the cell's row plus a constant
            strides = self.dense_strides  # (k, 3)
            base = (cells[0][:, :k] + cells[1][:, :k] * strides[:, 1] + cells[2][:, :k] * strides[:, 2]).int()
            groups.append(base[..., None] + self.dense_corners)  # (P, k, 8)
        if k < self.levels:  # hashed levels: XOR of the per-axis products, mod T (a power of two)
            # (x + 1) * pi = x * pi + pi. Masking before the XOR is exact (the mask keeps low
            # bits, and XOR acts bitwise), and leaves numbers that fit 32 bits.
            per_axis = []
            for axis in range(3):
                h = cells[axis][:, k:] * PRIMES[axis]
                per_axis.append([(h & mask).int(), ((h + PRIMES[axis]) & mask).int()])
            hxy = [per_axis[0][a] ^ per_axis[1][b] for a in (0, 1) for b in (0, 1)]
            groups.append(torch.stack([hxy[ab] ^ per_axis[2][c] for ab in range(4) for c in (0, 1)], dim=-1))
        index = torch.cat(groups, dim=1) if len(groups) > 1 else groups[0]
        index = (index + self.offsets[:, None]).reshape(p * self.levels, 8)  # rows in the stacked table
        weight = weight.reshape(p * self.levels, 8)
        if weight.requires_grad:  # gradients to the points are wanted: the native op gives them
            feats = F.embedding_bag(index, self.table, mode="sum", per_sample_weights=weight)
        else:
            feats = _HashGather.apply(self.table, index, weight)
        return feats.reshape(p, self.levels * self.features_per_level)

    # ----------------------------------------------------------------- evaluation
    def _raw(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """``(..., 1 + C)`` MLP outputs before activations and the ``(...)`` inside-box mask."""
        if points.shape[-1] != 3:
            raise ValueError(f"points must have shape (..., 3), got {tuple(points.shape)}")
        lead = points.shape[:-1]
        lo, hi = self.aabb[0], self.aabb[1]
        unit = ((points - lo) / (hi - lo)).reshape(-1, 3)
        inside = ((unit >= 0.0) & (unit <= 1.0)).all(dim=-1).reshape(lead)
        raw = self.mlp(self.encode(unit.clamp(0.0, 1.0)))
        return raw.reshape(*lead, 1 + self.out_channels), inside

    def param_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        """``{"encoding": [table], "mlp": [...]}``: the paper's weight decay applies to the MLP only."""
        return {"encoding": [self.table], "mlp": list(self.mlp.parameters())}

    def regularizers(self) -> dict[str, Tensor]:
        """None (the paper's MLP weight decay is an optimiser setting; see the module docstring)."""
        return {}

    def extra_repr(self) -> str:
        return (f"out_channels={self.out_channels}, levels={self.levels}, F={self.features_per_level}, "
                f"T={self.hashmap_size}, resolutions={self.resolutions[0]}..{self.resolutions[-1]} "
                f"({self.num_dense} dense), output_activation={self.output_activation_name!r}")


class _HashGather(torch.autograd.Function):
    """``out[n] = sum_j weight[n, j] * table[index[n, j]]`` (``j < 8`` corners) with a one-call backward.

    With the few features per row of a hash grid (``F = 2``), one 1D ``index_add_`` of all
    ``N * 8`` weighted values per feature column is faster than one call per corner (the
    tri-plane field's gather, tuned for ``F = 32``) and than ``embedding_bag``'s own sorting
    backward (measured on CPU, 16k points x 12 levels: 4-5x faster than the latter).
    ``index``/``weight`` get no gradient.
    """

    @staticmethod
    def forward(ctx, table: Tensor, index: Tensor, weight: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(index, weight)
        ctx.rows = table.shape[0]
        return F.embedding_bag(index, table, mode="sum", per_sample_weights=weight)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, None, None]:  # type: ignore[override]
        if not ctx.needs_input_grad[0]:
            return None, None, None
        index, weight = ctx.saved_tensors
        flat = index.reshape(-1).long()  # int64: index_add_'s int32 path is 10x slower on CPU
        # One feature column at a time: (N, 8) weights times a (N, 1) column is a contiguous
        # product, where (N, 8, 1) x (N, 1, F) broadcasting over F = 2 is several times slower.
        out = grad.new_zeros(grad.shape[1], ctx.rows)
        for f in range(grad.shape[1]):
            out[f].index_add_(0, flat, (weight * grad[:, f, None]).reshape(-1))
        return out.t(), None, None
