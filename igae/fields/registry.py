"""NeRF methods by name: the one list of them, and ``build_field("ngp", out_channels=4, ...)``.

Every entry of :data:`METHODS` names a builder of a single-scene :class:`~igae.fields.base.Field`
taking the same four arguments (``out_channels, aabb, output_activation, seed``) plus
method-specific hyper-parameters, which come from ``params.yaml`` under
``nerf.method_params.<name>.hyper``. :func:`build_field` checks the names before building, so a typo
in params fails with a message that lists what the method accepts instead of a ``TypeError`` deep in
a constructor.

Everything else that lists methods (params validation, the workflow's ``method`` wildcard, the
report's labels and order) reads :data:`METHODS`. Builders are named as ``"module:attribute"`` and
imported only when used, so reading the names (the Snakefile, params validation) needs no torch.

Adding a method: a ``Field`` file in ``igae/fields/``, one line in :data:`METHODS`, and its entry
under ``nerf.method_params`` (plus its name in ``nerf.methods``) in ``params.yaml``.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from igae.errors import InputError

if TYPE_CHECKING:
    from torch import Tensor

    from igae.fields.base import Field
    from igae.fields.triplane import TriplaneField

COMMON_ARGS = ("out_channels", "aabb", "output_activation", "seed")
"""Arguments every method takes; the rest of a constructor's keywords are hyper-parameters."""


@dataclass(frozen=True)
class Method:
    """One NeRF method.

    Attributes:
        builder: ``"module:attribute"`` of ``builder(out_channels, aabb, output_activation, seed, **hyper) -> Field``.
        label: its name in tables and figures.
        signature: ``"module:attribute"`` whose signature declares the hyper-parameters, when the
            builder only forwards them (default: the builder's own).
        fixed: constructor arguments the builder sets itself (not hyper-parameters).
    """

    builder: str
    label: str
    signature: str | None = None
    fixed: tuple[str, ...] = ()


def single_scene_triplane(
    out_channels: int, aabb: "Tensor | float", output_activation: str, seed: int, **hyper: Any
) -> "TriplaneField":
    """A one-scene :class:`TriplaneField` (the IG-AE tri-plane representation as a NeRF method)."""
    from igae.fields.triplane import TriplaneField

    return TriplaneField(num_scenes=1, out_channels=out_channels, aabb=aabb,
                         output_activation=output_activation, seed=seed, **hyper)


METHODS: dict[str, Method] = {
    "vanilla": Method("igae.fields.vanilla:VanillaNeRF", "NeRF (vanilla)"),
    "ngp": Method("igae.fields.ngp:HashGridField", "Instant-NGP"),
    "kplanes": Method("igae.fields.kplanes:KPlanesField", "K-Planes"),
    "triplane": Method("igae.fields.registry:single_scene_triplane", "Tri-planes",
                       signature="igae.fields.triplane:TriplaneField", fixed=("num_scenes",)),
}
"""Method name -> :class:`Method`, in the order tables and figures list them."""

METHOD_NAMES = tuple(METHODS)
METHOD_LABELS = {name: m.label for name, m in METHODS.items()}


def _resolve(target: str) -> Callable[..., Any]:
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def builder(method: str) -> Callable[..., "Field"]:
    """The builder of ``method`` (imports its module)."""
    _check_method(method)
    return _resolve(METHODS[method].builder)


def hyperparameters(method: str) -> dict[str, Any]:
    """The hyper-parameters ``method`` accepts, with their defaults (sorted by declaration).

    Raises:
        InputError: unknown method.
    """
    _check_method(method)
    entry = METHODS[method]
    source = _resolve(entry.signature or entry.builder)
    skip = set(COMMON_ARGS) | set(entry.fixed) | {"self"}
    return {name: p.default for name, p in inspect.signature(source).parameters.items()
            if name not in skip and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def build_field(
    method: str, out_channels: int, aabb_half: float, output_activation: str, seed: int, **hyper: Any
) -> "Field":
    """Build the single-scene field of ``method``.

    Args:
        method: a key of :data:`METHODS`.
        out_channels: ``C``, 3 for RGB or the autoencoder's latent channels.
        aabb_half: half-size of the scene cube centred at the origin.
        output_activation: ``"none" | "sigmoid" | "tanh"``.
        seed: initialisation seed.
        **hyper: method hyper-parameters (see :func:`hyperparameters`).

    Raises:
        InputError: unknown method, unknown hyper-parameter names, or a value the method
            rejects (the message names the method and, for names, the allowed keys).
    """
    from igae.fields.base import OUTPUT_ACTIVATIONS

    check_hyperparameters(method, hyper)
    if output_activation not in OUTPUT_ACTIVATIONS:
        raise InputError(f"nerf method {method!r}: output_activation must be one of {OUTPUT_ACTIVATIONS}, "
                         f"got {output_activation!r}")
    try:
        return builder(method)(out_channels=out_channels, aabb=float(aabb_half),
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
