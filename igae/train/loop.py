"""One training loop for every stage: phases, checkpoints, resume, loss CSV, NaN guard.

A stage is a list of :class:`Phase` (IG-AE: warm-up then joint; the standard AE: one).
Steps are numbered globally across phases. Every ``checkpoint_every`` global steps and
at the end of each phase, rank 0 writes a checkpoint (modules, the running phase's
optimizers and schedulers, RNG states, the loss history). A rerun of the same command
loads the newest valid checkpoint and continues; because each step draws its batch from
a generator seeded by (seed, phase, step), the resumed run computes the same steps an
uninterrupted run would. A checkpoint is only resumed from when it was written by the same
run: the caller's ``config`` (params and data digests) and the digest of the modules'
starting state must equal those stored in it; otherwise the old checkpoints are discarded
with a warning and training starts from step 0 (work folders outlive changes of params).
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from igae.errors import NumericalError
from igae.io import write_text_atomic
from igae.train.checkpoint import (discard_checkpoints, load_latest_checkpoint, modules_digest, rng_state,
                                   save_checkpoint, set_rng_state, work_folder_lock)
from igae.train.distributed import DistContext
from igae.train.precision import autocast, grad_scaler

StepFn = Callable[[int], dict[str, torch.Tensor]]


@dataclass
class Phase:
    """A run of ``steps`` optimisation steps with its own optimizers.

    ``step_fn(step_in_phase)`` returns named, already-weighted loss terms; their sum is
    minimised. ``params`` are all parameters this phase trains (averaged across ranks).
    """

    name: str
    steps: int
    step_fn: StepFn
    optimizers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = field(default_factory=dict)
    params: list[torch.nn.Parameter] = field(default_factory=list)
    after_step: Callable[[int], None] | None = None
    """Called on every process with the number of steps this phase has done, after each step's
    update (e.g. to save a snapshot); a resumed run calls it again for the steps it redoes."""


@dataclass
class LoopResult:
    steps_run: int
    skipped_steps: int
    resumed_from: int | None
    history: list[dict[str, Any]]


def run_phases(
    phases: list[Phase],
    modules: dict[str, torch.nn.Module],
    checkpoint_dir: str | Path,
    losses_csv: str | Path | None,
    checkpoint_every: int,
    nan_policy: str = "stop",
    ctx: DistContext = DistContext(),
    config: dict[str, Any] | None = None,
    progress: bool = True,
) -> LoopResult:
    """Run ``phases`` in order, resuming from the newest checkpoint in ``checkpoint_dir``.

    ``config`` identifies the run (params, digests of the data): together with the digest
    of ``modules``' state at call time it decides whether a checkpoint may be resumed.

    Raises:
        NumericalError: a NaN/inf loss term or gradient with ``nan_policy="stop"``; the
            last checkpoint on disk is the last good state.
    """
    identity = {**(config or {}), "start_state_sha256": modules_digest(modules)}
    if ctx.precision != "fp32":  # fp32 runs keep the identity they had before precision existed
        identity["precision"] = ctx.precision
    with work_folder_lock(checkpoint_dir) if ctx.is_main else contextlib.nullcontext():
        return _run_phases(phases, modules, checkpoint_dir, losses_csv, checkpoint_every, nan_policy, ctx,
                           identity, progress)


def _run_phases(phases, modules, checkpoint_dir, losses_csv, checkpoint_every, nan_policy, ctx, identity,
                progress) -> LoopResult:
    state = load_latest_checkpoint(checkpoint_dir)
    stale = state is not None and state.get("config") != identity
    if not ctx.all_true(not stale):  # decided together: no rank deletes while another still reads
        differing = _differing_keys(state.get("config") or {}, identity) if stale else ["(seen by another rank)"]
        _log(ctx, f"warning: the checkpoints in {checkpoint_dir} were written by a run with other params or "
                  f"inputs (differs in: {', '.join(differing[:6])}); discarding them and starting from step 0")
        if ctx.is_main:
            discard_checkpoints(checkpoint_dir)
        state = None
    ctx.barrier()
    history: list[dict[str, Any]] = []
    resume_phase, resume_step, skipped, resumed_from = 0, 0, 0, None
    if state is not None:
        for name, module in modules.items():
            module.load_state_dict(state["modules"][name])
        resume_phase, resume_step = state["phase_index"], state["phase_step"]
        history, skipped = state["history"], state["skipped_steps"]
        resumed_from = state["step"]
        set_rng_state(state["rng"])
        _log(ctx, f"resuming from step {resumed_from} ({checkpoint_dir})")

    offset, steps_run = 0, 0
    scaler = grad_scaler(ctx.precision, ctx.device)  # fp16 on CUDA only
    for index, phase in enumerate(phases):
        if index < resume_phase:
            offset += phase.steps
            continue
        start = resume_step if index == resume_phase else 0
        if index == resume_phase and state is not None:
            # Also when the phase is complete: a caller may continue with this phase's optimisers
            # (igae.nerf.fit's equal-time continuation of stage 2) and must find their state restored.
            for name, opt in phase.optimizers.items():
                opt.load_state_dict(state["optimizers"][name])
            for name, sched in phase.schedulers.items():
                sched.load_state_dict(state["schedulers"][name])
        bar = _progress_bar(ctx, progress, phase, start)
        for step in range(start, phase.steps):
            global_step = offset + step
            for opt in phase.optimizers.values():
                opt.zero_grad(set_to_none=True)
            with autocast(ctx.precision, ctx.device):
                terms = phase.step_fn(step)
            values = _term_values(terms)  # one device sync for all terms
            bad_term = next((k for k, v in values.items() if not math.isfinite(v)), None)
            total = sum(terms.values()) if bad_term is None else None
            if total is not None:
                (total if scaler is None else scaler.scale(total)).backward()
                ctx.average_gradients(phase.params)
                for opt in phase.optimizers.values() if scaler is not None else ():
                    scaler.unscale_(opt)
            bad_grad = None if total is None else _first_nonfinite_grad(phase)
            if scaler is not None and bad_term is None and bad_grad is not None:
                # fp16 overflow: the scaler skips this step and lowers its scale; not a divergence.
                bad_grad = None
            ok = ctx.all_true(bad_term is None and bad_grad is None)
            if not ok:
                what = f"loss term {bad_term!r}" if bad_term else (
                    f"gradient of {bad_grad!r}" if bad_grad else "a value on another process")
                if nan_policy == "stop":
                    raise NumericalError(
                        f"non-finite {what} at step {global_step} (phase {phase.name!r}, step {step}); "
                        f"stopped. The last good checkpoint is in {checkpoint_dir}; set "
                        f"training.nan_policy: skip to skip such steps instead."
                    )
                skipped += 1
                _log(ctx, f"step {global_step}: non-finite {what}, step skipped ({skipped} so far)")
                for opt in phase.optimizers.values():
                    opt.zero_grad(set_to_none=True)
            elif scaler is not None:
                for opt in phase.optimizers.values():
                    scaler.step(opt)
                scaler.update()
            else:
                for opt in phase.optimizers.values():
                    opt.step()
            for sched in phase.schedulers.values():
                sched.step()
            row = {"step": global_step, "phase": phase.name, "skipped": int(not ok)}
            row.update(values)
            row["total"] = float(sum(row[k] for k in terms)) if ok else math.nan
            history.append(row)
            steps_run += 1
            if phase.after_step is not None:
                phase.after_step(step + 1)
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k: f"{row[k]:.4g}" for k in list(terms)[:4]}, refresh=False)
            end_of_phase = step + 1 == phase.steps
            if (global_step + 1) % checkpoint_every == 0 or end_of_phase:
                _save(checkpoint_dir, ctx, global_step + 1, index, step + 1, phase, modules,
                      history, skipped, identity, losses_csv)
        if bar is not None:
            bar.close()
        offset += phase.steps
    if losses_csv is not None and ctx.is_main:
        write_losses_csv(losses_csv, history)
    return LoopResult(steps_run, skipped, resumed_from, history)


def _term_values(terms: dict[str, torch.Tensor]) -> dict[str, float]:
    """The loss terms as Python floats, read from the device in one transfer (not one per term)."""
    if not terms:
        return {}
    device = next(iter(terms.values())).device
    stacked = torch.stack([v.detach().reshape(()).to(device=device, dtype=torch.float64) for v in terms.values()])
    return dict(zip(terms, stacked.tolist()))  # float32 -> float64 is exact: the same floats as float(v)


def _first_nonfinite_grad(phase: Phase) -> str | None:
    """Name of the first parameter group holding a NaN/inf gradient; one device sync per step."""
    names, flags = [], []
    for opt_name, opt in phase.optimizers.items():
        for group in opt.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    names.append(group.get("name", opt_name))
                    flags.append(torch.isfinite(p.grad).all())
    if not flags:
        return None
    finite = torch.stack([f.to(flags[0].device) for f in flags]).tolist()
    return next((name for name, ok in zip(names, finite) if not ok), None)


def _differing_keys(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    keys: list[str] = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += _differing_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            keys.append(f"{prefix}{key}")
    return keys


def _save(checkpoint_dir, ctx, global_step, phase_index, phase_step, phase, modules, history, skipped, identity,
          csv_path):
    if ctx.is_main:
        save_checkpoint(checkpoint_dir, global_step, {
            "modules": {k: m.state_dict() for k, m in modules.items()},
            "optimizers": {k: o.state_dict() for k, o in phase.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in phase.schedulers.items()},
            "phase_index": phase_index,
            "phase_step": phase_step,
            "history": history,
            "skipped_steps": skipped,
            "rng": rng_state(),
            "config": identity,
        })
        if csv_path is not None:
            write_losses_csv(csv_path, history)
    ctx.barrier()


def write_losses_csv(path: str | Path, history: list[dict[str, Any]]) -> None:
    """Per-step losses as CSV (one column per term seen in any phase), for ``dvc plots``."""
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{v:.8g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text_atomic(path, buffer.getvalue())


def _progress_bar(ctx: DistContext, enabled: bool, phase: Phase, start: int):
    if not (enabled and ctx.is_main) or phase.steps == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=phase.steps, initial=start, desc=phase.name, file=sys.stderr,
                mininterval=2.0, dynamic_ncols=True)


def _log(ctx: DistContext, message: str) -> None:
    if ctx.is_main:
        print(f"[igae] {message}", file=sys.stderr, flush=True)
