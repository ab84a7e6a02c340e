"""AE / IG-AE training on a tiny in-memory config: gradient flow per phase, resume,
NaN handling, data parallelism."""

from __future__ import annotations

import copy
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

import igae.train.loop as loop_module
from igae.autoencoder.model import AEArchitecture, Autoencoder
from igae.config import load_params
from igae.errors import NumericalError
from igae.render.cameras import sample_cameras
from igae.train.data import ViewBank
from igae.train.igae_trainer import decoded_renders, make_triplane_field, train_igae
from igae.train.standard_ae import finetune_ae, train_standard_ae

REPO = Path(__file__).resolve().parents[1]
ARCH = AEArchitecture((8, 16, 16), 1, 4, 4)


def _params(**overrides):
    base = {"igae.warmup.steps": 3, "igae.joint.steps": 3, "igae.checkpoint_every": 2,
            "igae.joint.views_per_batch": 2, "igae.joint.photos_per_batch": 2, "igae.warmup.views_per_batch": 2,
            "train_ae.steps": 4, "train_ae.batch_size": 4, "train_ae.checkpoint_every": 2,
            "igae.snapshots": []}  # the smoke preset's snapshot would not fit every joint.steps below
    base.update(overrides)
    return load_params(REPO / "params.yaml", preset="smoke", overrides=base)


def _bank(n_scenes: int = 2, views: int = 4, size: int = 16) -> ViewBank:
    g = torch.Generator().manual_seed(0)
    c2w = torch.cat([sample_cameras(views, 2.6, (-20.0, 70.0), seed=s) for s in range(n_scenes)])
    focal = size / (2 * torch.tan(torch.deg2rad(torch.tensor(20.0))))
    intr = torch.tensor([focal, focal, size / 2, size / 2]).expand(len(c2w), 4).clone()
    return ViewBank(
        images=_smooth_images(len(c2w), size, g), camera_to_world=c2w, intrinsics=intr,
        scene_index=torch.arange(n_scenes).repeat_interleave(views), scene_names=[f"s{i}" for i in range(n_scenes)],
        background=(1.0, 1.0, 1.0),
    )


def _smooth_images(n: int, size: int, g: torch.Generator) -> torch.Tensor:
    """Low-frequency images (an AE can learn them, unlike white noise)."""
    coarse = torch.rand(n, 3, 4, 4, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def _photos(n: int = 6, size: int = 16) -> torch.Tensor:
    return _smooth_images(n, size, torch.Generator().manual_seed(1))


def _models(params, bank):
    ae = Autoencoder.from_architecture(ARCH, seed=0)
    field = make_triplane_field(bank.num_scenes, params.igae.triplane, ARCH.latent_channels, 1.0, seed=0)
    return ae, field


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before: dict, module: torch.nn.Module, names) -> bool:
    after = module.state_dict()  # ``before`` may be a CPU snapshot of a module trained on the GPU since
    return any(not torch.equal(before[n].to(after[n].device), after[n]) for n in names)


def _group_names(module: torch.nn.Module, params) -> list[str]:
    ids = {id(p) for p in params}
    return [n for n, p in module.named_parameters() if id(p) in ids]


def test_warmup_freezes_ae_and_trains_field(tmp_path: Path) -> None:
    params = _params(**{"igae.joint.steps": 0})
    bank = _bank()
    ae, field = _models(params, bank)
    ae_before, field_before = _snapshot(ae), _snapshot(field)
    train_igae(ae, field, bank, _photos(), params.igae, None, 0, tmp_path)
    assert all(torch.equal(v, ae.state_dict()[k]) for k, v in ae_before.items()), "AE changed in warm-up"
    groups = field.param_groups()
    assert _changed(field_before, field, _group_names(field, groups["triplanes"]))
    assert _changed(field_before, field, _group_names(field, groups["mlp"]))


def test_joint_phase_updates_all_four_groups(tmp_path: Path) -> None:
    params = _params(**{"igae.warmup.steps": 0, "igae.joint.steps": 2})
    bank = _bank()
    ae, field = _models(params, bank)
    ae_before, field_before = _snapshot(ae), _snapshot(field)
    train_igae(ae, field, bank, _photos(), params.igae, None, 0, tmp_path)
    groups = field.param_groups()
    assert _changed(ae_before, ae, _group_names(ae, ae.encoder_parameters())), "encoder did not update"
    assert _changed(ae_before, ae, _group_names(ae, ae.decoder_parameters())), "decoder did not update"
    assert _changed(field_before, field, _group_names(field, groups["triplanes"])), "tri-planes did not update"
    assert _changed(field_before, field, _group_names(field, groups["mlp"])), "MLP did not update"


def test_joint_step_terms_equal_the_reference_formulas(tmp_path: Path) -> None:
    """Step 0 of the joint phase recomputed with the reference's formulas (k-kassab/igae,
    ae/trainers.py): z = latent_dist.sample(), image MSEs on [-1, 1] images, TV summed over the
    batch's views / (H + W). The finetune ablation sees the same batch and samples."""
    from igae.autoencoder.latents import background_latent
    from igae.seeding import derive_seed
    from igae.train.data import draw, step_generator
    from igae.train.igae_trainer import LatentRenderer

    params = _params(**{"igae.warmup.steps": 0, "igae.joint.steps": 1, "igae.joint.views_per_batch": 3})
    bank, photos = _bank(), _photos()
    ae, field = _models(params, bank)
    ae0, field0 = copy.deepcopy(ae), copy.deepcopy(field)
    row = train_igae(ae, field, bank, photos, params.igae, None, 0, tmp_path / "igae").history[0]
    j = params.igae.joint
    assert j.posterior == "sample"
    g = step_generator(0, "joint", 0)  # the documented draw order: views, photos, then the two eps
    views, photo_ids = draw(len(bank), j.views_per_batch, g), draw(len(photos), j.photos_per_batch, g)
    eps_v, eps_p = torch.randn(len(views), 4, 4, 4, generator=g), torch.randn(len(photo_ids), 4, 4, 4, generator=g)
    s = ae0.normalizer.scale
    with torch.no_grad():
        x, p = bank.images[views] * 2 - 1, photos[photo_ids] * 2 - 1  # the reference's [-1, 1] images
        dist = ae0.vae.encode(x).latent_dist
        z = dist.mean + dist.std * eps_v
        background = torch.tanh(s * background_latent(ae0, bank.background, size=16))
        render = LatentRenderer(field0, bank, 4, params.igae.triplane)(views, background,
                                                                      derive_seed(0, "joint/jitter", 0))
        photo_dist = ae0.vae.encode(p).latent_dist
        stack = torch.stack([field0.triplanes[int(i)] for i in bank.scene_index[views]])
        tv = ((stack[..., 1:, :] - stack[..., :-1, :]).norm() ** 2
              + (stack[..., :, 1:] - stack[..., :, :-1]).norm() ** 2) / (stack.shape[-2] + stack.shape[-1])
        expected = {
            "latent": j.latent * (torch.tanh(s * z) - render).square().mean(),
            "rgb": j.rgb * (ae0.vae.decode(torch.atanh(render) / s).sample - x).square().mean(),
            "ae_synthetic": j.ae_synthetic * (ae0.vae.decode(z).sample - x).square().mean(),
            "ae_real_mse": j.ae_real_mse * (ae0.vae.decode(photo_dist.mean + photo_dist.std * eps_p).sample - p)
            .square().mean(),
            "tv": j.tv * tv,
        }
    for key, value in expected.items():
        assert row[key] == pytest.approx(float(value), rel=1e-4), key
    # The ablation: same views, photos and samples, hence the same AE terms at step 0.
    ablation = finetune_ae(ae0, bank.images, photos, j, None, 0, tmp_path / "ft", 10).history[0]
    for key in ("ae_synthetic", "ae_real_mse"):
        assert ablation[key] == pytest.approx(row[key], rel=1e-6), key


def test_warmup_lr_decays_per_epoch_and_freezes_the_mlp_at_the_end(tmp_path: Path) -> None:
    """8 views at 4 per step: 2 steps per epoch. After 6 warm-up steps (3 epochs) the tri-plane lr
    is lr x 0.988032^3 and the MLP's is 0 (frozen for the last half here)."""
    from igae.train.checkpoint import load_latest_checkpoint

    params = _params(**{"igae.warmup.steps": 6, "igae.warmup.views_per_batch": 4, "igae.joint.steps": 0,
                        "igae.warmup.freeze_mlp_fraction": 0.5})
    bank = _bank()
    ae, field = _models(params, bank)
    train_igae(ae, field, bank, _photos(), params.igae, None, 0, tmp_path)
    groups = {g["name"]: g["lr"] for g in load_latest_checkpoint(tmp_path / "checkpoints")["optimizers"]["field"]
              ["param_groups"]}
    assert groups["triplanes"] == pytest.approx(params.igae.warmup.lr * 0.988032 ** 3, rel=1e-12)
    assert groups["mlp"] == 0.0


def test_losses_csv_has_every_step_and_term(tmp_path: Path) -> None:
    params = _params()
    bank = _bank()
    ae, field = _models(params, bank)
    train_igae(ae, field, bank, _photos(), params.igae, None, 0, tmp_path)
    lines = (tmp_path / "losses.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert {"step", "phase", "latent", "rgb", "ae_synthetic", "ae_real_mse", "tv", "total"} <= set(header)
    assert len(lines) == 1 + 6 and lines[-1].startswith("5,joint")


class _Crash(RuntimeError):
    pass


_EPOCHS_AND_FREEZE = {"igae.warmup.steps": 6, "igae.warmup.views_per_batch": 4, "igae.warmup.freeze_mlp_fraction": 0.5,
                      "igae.joint.steps": 2, "igae.joint.views_per_batch": 4}


@pytest.mark.parametrize("crash_at_save, resumed_step, overrides", [
    (2, 3, {}), (3, 4, {}),  # end of warm-up; mid-joint
    (2, 4, _EPOCHS_AND_FREEZE),  # mid-warm-up, after an epoch boundary and the MLP freeze (step 3)
])
def test_igae_resume_after_crash_is_bit_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash_at_save: int, resumed_step: int, overrides: dict
) -> None:
    """A run that dies right after a checkpoint, rerun, equals an uninterrupted run (CPU: bit-exact).

    Checkpoints fall at steps 2 and 4 (checkpoint_every 2) and 3 (end of warm-up)."""
    params = _params(**overrides)
    total = params.igae.warmup.steps + params.igae.joint.steps
    bank, photos = _bank(), _photos()
    ae_a, field_a = _models(params, bank)
    train_igae(ae_a, field_a, bank, photos, params.igae, None, 0, tmp_path / "a")

    real_save = loop_module.save_checkpoint
    saves = []

    def crash_after_save(*args, **kwargs):
        path = real_save(*args, **kwargs)
        saves.append(path)
        if len(saves) == crash_at_save:
            raise _Crash("simulated kill")
        return path

    monkeypatch.setattr(loop_module, "save_checkpoint", crash_after_save)
    ae_b, field_b = _models(params, bank)
    with pytest.raises(_Crash):
        train_igae(ae_b, field_b, bank, photos, params.igae, None, 0, tmp_path / "b")
    monkeypatch.setattr(loop_module, "save_checkpoint", real_save)
    ae_c, field_c = _models(params, bank)  # a fresh process: fresh modules
    result = train_igae(ae_c, field_c, bank, photos, params.igae, None, 0, tmp_path / "b")
    assert result.resumed_from == resumed_step and result.steps_run == total - resumed_step
    for a, c in ((ae_a, ae_c), (field_a, field_c)):
        sa, sc = a.state_dict(), c.state_dict()
        assert all(torch.equal(sa[k], sc[k]) for k in sa)
    assert (tmp_path / "a/losses.csv").read_text() == (tmp_path / "b/losses.csv").read_text()


@pytest.mark.parametrize("change", ["params", "data", "starting weights"])
def test_checkpoints_of_a_run_with_other_params_or_inputs_are_discarded_not_resumed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], change: str) -> None:
    """Work folders outlive params edits (Snakemake and DVC keep them): a rerun with another
    lr, other images or another starting AE must train afresh, not return the old weights."""
    params = _params()
    bank, photos = _bank(), _photos()
    train_standard_ae(Autoencoder.from_architecture(ARCH, seed=0), bank.images, photos, params.train_ae, None, 0,
                      tmp_path / "work")  # finished: its last checkpoint is at the final step
    cfg, images, seed = params.train_ae, bank.images, 0
    if change == "params":
        cfg = _params(**{"train_ae.lr": params.train_ae.lr * 2}).train_ae
    elif change == "data":
        images = images.flip(-1)
    else:
        seed = 1
    capsys.readouterr()
    rerun = Autoencoder.from_architecture(ARCH, seed=seed)
    result = train_standard_ae(rerun, images, photos, cfg, None, 0, tmp_path / "work")
    err = capsys.readouterr().err
    assert result.resumed_from is None and result.steps_run == cfg.steps, err
    expected = {"params": "train_ae.lr", "data": "data_sha256", "starting weights": "start_state_sha256"}[change]
    assert "discarding them" in err and expected in err, err
    fresh = Autoencoder.from_architecture(ARCH, seed=seed)
    train_standard_ae(fresh, images, photos, cfg, None, 0, tmp_path / "fresh")
    a, b = rerun.state_dict(), fresh.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # and the same run again resumes from its own final checkpoint without training
    again = train_standard_ae(Autoencoder.from_architecture(ARCH, seed=seed), images, photos, cfg, None, 0,
                              tmp_path / "work")
    assert again.resumed_from == cfg.steps and again.steps_run == 0


def _inject_nan(monkeypatch: pytest.MonkeyPatch, on_call: int) -> None:
    """Make the ``on_call``-th MSE computed by the IG-AE trainer NaN."""
    import igae.train.igae_trainer as trainer

    real_mse = trainer.F.mse_loss
    calls = {"n": 0}

    def mse(a, b, *args, **kwargs):
        calls["n"] += 1
        out = real_mse(a, b, *args, **kwargs)
        return out * float("nan") if calls["n"] == on_call else out

    monkeypatch.setattr(trainer.F, "mse_loss", mse)


def test_nan_stops_with_step_and_term(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = _params(**{"igae.warmup.steps": 4})
    bank = _bank()
    ae, field = _models(params, bank)
    _inject_nan(monkeypatch, on_call=3)
    with pytest.raises(NumericalError, match=r"loss term 'latent' at step 2 \(phase 'warmup'"):
        train_igae(ae, field, bank, _photos(), params.igae, None, 0, tmp_path)
    # the last good checkpoint (step 2) is kept
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("*.pt")) == ["step_0000002.pt"]


def test_nan_skip_policy_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = _params(**{"igae.joint.steps": 0})
    bank = _bank()
    ae, field = _models(params, bank)
    _inject_nan(monkeypatch, on_call=2)
    result = train_igae(ae, field, bank, _photos(), params.igae, None, 0, tmp_path, nan_policy="skip")
    assert result.skipped_steps == 1 and [r["skipped"] for r in result.history] == [0, 1, 0]
    assert all(torch.isfinite(p).all() for p in field.parameters())


def test_standard_ae_and_finetune_reduce_loss(tmp_path: Path) -> None:
    params = _params(**{"train_ae.steps": 30, "igae.joint.steps": 1})
    bank = _bank(views=8)
    ae = Autoencoder.from_architecture(ARCH, seed=0)
    result = train_standard_ae(ae, bank.images, _photos(), params.train_ae, None, 0, tmp_path / "std")
    first, last = result.history[0]["mse"], result.history[-1]["mse"]
    assert last < 0.7 * first, (first, last)
    frozen = _snapshot(ae)
    finetune_ae(ae, bank.images, _photos(), params.igae.joint, None, 0, tmp_path / "ft", 5)
    assert any(not torch.equal(frozen[k], v) for k, v in ae.state_dict().items())


def test_finetune_reads_only_the_joint_keys_its_stage_depends_on(tmp_path: Path) -> None:
    """The ablation's weights do not change with the joint keys it does not list (so its stage need not
    rerun on them) and do change with one it lists."""
    from igae.config import FINETUNE_JOINT_KEYS, JointParams

    assert set(JointParams.model_fields) - set(FINETUNE_JOINT_KEYS) == {"latent", "rgb", "tv", "lr_triplane"}

    def run(tag: str, **joint: float) -> dict[str, torch.Tensor]:
        params = _params(**{"igae.joint.steps": 2, **{f"igae.joint.{k}": v for k, v in joint.items()}})
        ae = Autoencoder.from_architecture(ARCH, seed=0)
        finetune_ae(ae, _bank().images, _photos(), params.igae.joint, None, 0, tmp_path / tag, 5)
        return ae.state_dict()

    base = run("base")
    unread = run("unread", latent=7.0, rgb=9.0, tv=0.5, lr_triplane=0.3)
    assert all(torch.equal(base[k], unread[k]) for k in base)
    read = run("read", ae_synthetic=5.0)
    assert any(not torch.equal(base[k], read[k]) for k in base)


def test_decoded_renders_shape_and_range(tmp_path: Path) -> None:
    params = _params()
    bank = _bank()
    ae, field = _models(params, bank)
    out = decoded_renders(ae, field, bank, torch.tensor([0, 5]), params.igae.triplane)
    assert out.shape == (2, 3, 16, 16) and out.min() >= 0 and out.max() <= 1


# ---------------------------------------------------------------- data parallel (gloo, 2 CPU processes)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dp_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    from igae.train.distributed import init_distributed, shutdown_distributed

    ctx = init_distributed(torch.device("cpu"))
    params = _params(**{"igae.warmup.views_per_batch": 4, "igae.joint.views_per_batch": 4,
                        "igae.joint.photos_per_batch": 2})
    bank = _bank()
    ae, field = _models(params, bank)
    train_igae(ae, field, bank, _photos(), params.igae, None, 0, Path(out_dir) / "work", ctx=ctx)
    if ctx.is_main:
        torch.save({"ae": ae.state_dict(), "field": field.state_dict()}, Path(out_dir) / "final.pt")
    shutdown_distributed()


def test_two_processes_match_one_process(tmp_path: Path) -> None:
    """Same global batch on 1 and 2 gloo processes: final weights agree to float tolerance.

    Differences come only from the order of floating-point sums (the all-reduce averages
    two half-batch gradients instead of one full-batch gradient), so they stay ~1e-6
    relative after a few Adam steps.
    """
    torch.set_num_threads(1)
    params = _params(**{"igae.warmup.views_per_batch": 4, "igae.joint.views_per_batch": 4,
                        "igae.joint.photos_per_batch": 2})
    bank = _bank()
    ae, field = _models(params, bank)
    train_igae(ae, field, bank, _photos(), params.igae, None, 0, tmp_path / "single")
    mp.spawn(_dp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    multi = torch.load(tmp_path / "final.pt")
    for name, module in (("ae", ae), ("field", field)):
        single = module.state_dict()
        for key, value in single.items():
            torch.testing.assert_close(multi[name][key], value, rtol=1e-4, atol=1e-5, msg=f"{name}.{key}")


def test_a_non_finite_gradient_with_a_finite_loss_stops_naming_the_parameter_group(tmp_path: Path) -> None:
    """sqrt(|w|) at w = 0 has a finite value and an infinite/NaN gradient."""
    from igae.train.loop import Phase, run_phases

    def run(policy: str, work: Path):
        w = torch.nn.Parameter(torch.ones(1))
        module = torch.nn.Module()
        module.w = w
        opt = torch.optim.SGD([{"params": [w], "name": "weights"}], lr=0.5)

        def step(i: int) -> dict[str, torch.Tensor]:
            if i == 2:
                return {"root": torch.sqrt((w - w.detach()).abs()).sum()}
            return {"square": (w ** 2).sum()}

        phase = Phase("toy", 4, step, {"opt": opt}, {}, [w])
        return w, run_phases([phase], {"m": module}, work, None, checkpoint_every=1, nan_policy=policy,
                             progress=False)

    with pytest.raises(NumericalError, match=r"gradient of 'weights' at step 2 \(phase 'toy'"):
        run("stop", tmp_path / "stop")
    assert sorted(p.name for p in (tmp_path / "stop").glob("*.pt")) == ["step_0000001.pt", "step_0000002.pt"]
    w, result = run("skip", tmp_path / "skip")
    assert result.skipped_steps == 1 and [r["skipped"] for r in result.history] == [0, 0, 1, 0]
    assert torch.isfinite(w.detach()).all()  # the skipped step did not apply its NaN gradient


def test_an_igae_rerun_with_another_latent_normalizer_scale_is_not_resumed(tmp_path: Path, capsys) -> None:
    """The scale is not in the AE's state_dict but changes IG-AE's losses."""
    params = _params()
    bank, photos = _bank(), _photos()
    ae, field = _models(params, bank)
    train_igae(ae, field, bank, photos, params.igae, None, 0, tmp_path)
    ae, field = _models(params, bank)
    ae.normalizer.scale *= 2
    capsys.readouterr()
    result = train_igae(ae, field, bank, photos, params.igae, None, 0, tmp_path)
    assert result.resumed_from is None and "normalizer" in capsys.readouterr().err


def test_a_second_trainer_on_a_busy_work_folder_stops_with_a_clear_error(tmp_path: Path) -> None:
    from igae.errors import BusyError
    from igae.train.checkpoint import work_folder_lock

    params = _params()
    bank = _bank()
    with work_folder_lock(tmp_path / "checkpoints"):  # as a still-running trainer would hold it
        with pytest.raises(BusyError, match=rf"{tmp_path / 'checkpoints'}: another process \(pid \d+ on "):
            train_standard_ae(Autoencoder.from_architecture(ARCH, seed=0), bank.images, _photos(), params.train_ae,
                              None, 0, tmp_path)
        assert not list((tmp_path / "checkpoints").glob("step_*"))
    result = train_standard_ae(Autoencoder.from_architecture(ARCH, seed=0), bank.images, _photos(), params.train_ae,
                               None, 0, tmp_path)
    assert result.steps_run == params.train_ae.steps  # the lock went with its holder


def test_a_snapshot_after_k_joint_steps_equals_a_run_of_k_joint_steps(tmp_path: Path) -> None:
    """igae.snapshots: the AE saved after k joint steps of a longer run is, bit for bit, the AE of a
    run with joint.steps = k (the schedule does not depend on the total), also across a resume."""
    from igae.train.igae_trainer import snapshot_files

    bank, photos = _bank(), _photos()
    long = _params(**{"igae.joint.steps": 5, "igae.snapshots": [2, 4]})
    ae, field = _models(long, bank)
    train_igae(ae, field, bank, photos, long.igae, None, seed=0, work_dir=tmp_path / "long")
    files = snapshot_files(tmp_path / "long", [2, 4])
    assert all(f.is_file() for f in files.values())
    for k in (2, 4):
        short = _params(**{"igae.joint.steps": k})
        ae_k, field_k = _models(short, bank)
        train_igae(ae_k, field_k, bank, photos, short.igae, None, seed=0, work_dir=tmp_path / f"short{k}")
        saved = torch.load(files[k], weights_only=True)
        assert all(torch.equal(saved[name], value) for name, value in ae_k.state_dict().items())
    # Snapshots do not change the run: same final weights as a run without them.
    plain = _params(**{"igae.joint.steps": 5})
    ae_p, field_p = _models(plain, bank)
    train_igae(ae_p, field_p, bank, photos, plain.igae, None, seed=0, work_dir=tmp_path / "plain")
    assert all(torch.equal(v, ae.state_dict()[n]) for n, v in ae_p.state_dict().items())


def test_snapshot_steps_outside_the_joint_phase_are_rejected() -> None:
    from igae.errors import InputError

    with pytest.raises(InputError, match="igae.snapshots"):
        _params(**{"igae.joint.steps": 3, "igae.snapshots": [4]})
