"""NeRF methods by name: ``build_field("ngp", out_channels=4, ...)`` for per-scene fits.

Every entry of :data:`METHODS` builds a single-scene :class:`~igae.fields.base.Field` from the
same four arguments (``out_channels, aabb, output_activation, seed``) plus method-specific
hyper-parameters, which later come from ``params.yaml`` under ``nerf.methods.<name>``.
:func:`build_field` checks the names before building, so a typo in params fails with a message
that lists what the method accepts instead of a ``TypeError`` deep in a constructor.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from torch import Tensor

from igae.errors import InputError
from igae.fields.base import OUTPUT_ACTIVATIONS, Field
from igae.fields.kplanes import KPlanesField
from igae.fields.ngp import HashGridField
from igae.fields.triplane import TriplaneField
from igae.fields.vanilla import VanillaNeRF

COMMON_ARGS = ("out_channels", "aabb", "output_activation", "seed")
"""Arguments every method takes; the rest of a constructor's keywords are hyper-parameters."""


def single_scene_triplane(
    out_channels: int, aabb: Tensor | float, output_activation: str, seed: int, **hyper: Any
) -> TriplaneField:
    """A one-scene :class:`TriplaneField` (the IG-AE tri-plane representation as a NeRF method)."""
    return TriplaneField(num_scenes=1, out_channels=out_channels, aabb=aabb,
                         output_activation=output_activation, seed=seed, **hyper)


METHODS: dict[str, Callable[..., Field]] = {
    "vanilla": VanillaNeRF,
    "ngp": HashGridField,
    "kplanes": KPlanesField,
    "triplane": single_scene_triplane,
}
"""Method name -> ``builder(out_channels, aabb, output_activation, seed, **hyper) -> Field``."""

# Where each method's hyper-parameters (and their defaults) are declared, and names fixed by
# the builder itself (a one-scene triplane has no free ``num_scenes``).
_SIGNATURE_OF: dict[str, Callable[..., Any]] = {"triplane": TriplaneField}
_FIXED: dict[str, tuple[str, ...]] = {"triplane": ("num_scenes",)}


def hyperparameters(method: str) -> dict[str, Any]:
    """The hyper-parameters ``method`` accepts, with their defaults (sorted by declaration).

    Raises:
        InputError: unknown method.
    """
    _check_method(method)
    source = _SIGNATURE_OF.get(method, METHODS[method])
    skip = set(COMMON_ARGS) | set(_FIXED.get(method, ())) | {"self"}
    return {name: p.default for name, p in inspect.signature(source).parameters.items()
            if name not in skip and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def build_field(
    method: str, out_channels: int, aabb_half: float, output_activation: str, seed: int, **hyper: Any
) -> Field:
    """Build the single-scene field of ``method``.

    Args:
        method: a key of :data:`METHODS` (``"vanilla" | "ngp" | "kplanes" | "triplane"``).
        out_channels: ``C``, 3 for RGB or the autoencoder's latent channels.
        aabb_half: half-size of the scene cube centred at the origin.
        output_activation: ``"none" | "sigmoid" | "tanh"``.
        seed: initialisation seed.
        **hyper: method hyper-parameters (see :func:`hyperparameters`).

    Raises:
        InputError: unknown method, unknown hyper-parameter names, or a value the method
            rejects (the message names the method and, for names, the allowed keys).
    """
    check_hyperparameters(method, hyper)
    if output_activation not in OUTPUT_ACTIVATIONS:
        raise InputError(f"nerf method {method!r}: output_activation must be one of {OUTPUT_ACTIVATIONS}, "
                         f"got {output_activation!r}")
    try:
        return METHODS[method](out_channels=out_channels, aabb=float(aabb_half),
                               output_activation=output_activation, seed=seed, **hyper)
    except (ValueError, TypeError) as err:
        raise InputError(f"nerf method {method!r}: {err}") from err


def check_hyperparameters(method: str, hyper: dict[str, Any], where: str | None = None) -> None:
    """Raise :class:`InputError` naming the method (and ``where``, e.g. a params key) when
    ``hyper`` holds names the method does not accept."""
    unknown = sorted(set(hyper) - set(hyperparameters(method)))
    if unknown:
        prefix = f"{where}: " if where else ""
        raise InputError(f"{prefix}nerf method {method!r} has no hyper-parameter(s) {unknown}; "
                         f"allowed: {sorted(hyperparameters(method))}")


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise InputError(f"unknown nerf method {method!r}; known methods: {sorted(METHODS)}")
