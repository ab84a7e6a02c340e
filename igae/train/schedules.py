"""Learning-rate schedules expressed in the reference's units, converted to optimisation steps.

The reference IG-AE code (k-kassab/igae) multiplies every learning rate by ``gamma = 0.988032``
once per *epoch*, an epoch being one pass of its data loader over all training views of all
training scenes (``ceil(views / batch)`` steps), and in the tri-plane warm-up it sets the shared
MLP's learning rate to 0 for the last epochs (45 of 50: the last 10 %). Batches here are seeded
draws per step rather than epoch permutations, so an epoch is that many steps, and the schedule
is a function of the step: the learning rate used by step ``i`` is
``lr * gamma ** (i // steps_per_epoch)`` (0 for a frozen group from its freeze step on). The
schedulers are :class:`torch.optim.lr_scheduler.LambdaLR` over module-level closures: their
state (``last_epoch``, ``base_lrs``) is what a checkpoint stores, so a resumed run continues the
same schedule bit for bit.

latent-nerfstudio decays the per-scene decoder copy's learning rate by ``0.99969`` per step over
its 15000 RGB-alignment steps (an end factor of ``0.99969 ** 15000 = 0.0095``); with fewer steps
here the same *end factor* is reached by :func:`decay_to`.
"""

from __future__ import annotations

import math
from typing import Callable

import torch


def steps_per_epoch(items: int, batch: int) -> int:
    """Steps of one pass over ``items`` training views at ``batch`` views per step (the reference's
    ``len(DataLoader(..., batch_size=batch))``, last partial batch included)."""
    if items < 1 or batch < 1:
        raise ValueError(f"an epoch needs items >= 1 and batch >= 1, got {items} and {batch}")
    return math.ceil(items / batch)


def epoch_factor(gamma: float, steps_in_epoch: int, frozen_from: int | None = None) -> Callable[[int], float]:
    """``step -> gamma ** (step // steps_in_epoch)``, or 0 from step ``frozen_from`` on."""

    def factor(step: int) -> float:
        if frozen_from is not None and step >= frozen_from:
            return 0.0
        return gamma ** (step // steps_in_epoch)

    return factor


def epoch_decay(
    optimizer: torch.optim.Optimizer,
    gamma: float,
    steps_in_epoch: int,
    frozen_from: dict[str, int] | None = None,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-epoch exponential decay of every parameter group of ``optimizer``.

    Args:
        gamma: factor per epoch (reference: 0.988032).
        steps_in_epoch: from :func:`steps_per_epoch`.
        frozen_from: ``{group name: step}``: that group's learning rate is 0 from that step of the
            phase on (the reference's MLP freeze at the end of the warm-up). Groups are named by
            their ``"name"`` entry.

    Returns:
        A scheduler to step once after every optimiser step.
    """
    frozen_from = dict(frozen_from or {})
    names = [group.get("name") for group in optimizer.param_groups]
    unknown = sorted(set(frozen_from) - set(names))
    if unknown:
        raise ValueError(f"frozen_from names groups {unknown} the optimizer does not have (it has {names})")
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, [epoch_factor(gamma, steps_in_epoch, frozen_from.get(name)) for name in names])


def freeze_start(steps: int, fraction: float) -> int | None:
    """First step of the last ``fraction`` of a ``steps``-step phase (``None``: no freeze)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"freeze fraction must be in [0, 1], got {fraction}")
    frozen = round(steps * fraction)
    return steps - frozen if frozen > 0 else None


def decay_to(optimizer: torch.optim.Optimizer, end_factor: float, steps: int) -> torch.optim.lr_scheduler.ExponentialLR:
    """Per-step exponential decay reaching ``lr * end_factor`` after ``steps`` steps."""
    if not 0.0 < end_factor <= 1.0:
        raise ValueError(f"end factor must be in (0, 1], got {end_factor}")
    gamma = end_factor ** (1.0 / steps) if steps > 0 else 1.0
    return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=gamma)
