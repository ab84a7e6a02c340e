"""Dataset stages: fetch packages, choose objects, render scene sets, build the photo set."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from igae.cli.common import log
from igae.config import (SCENE_SETS, AssetsParams, Params, effective_params_yaml, load_params, params_json_schema,
                         tuning_variants)
from igae.errors import InputError
from igae.io import write_json_atomic, write_text_atomic
from igae.provenance import provenance

if TYPE_CHECKING:  # the asset sources import trimesh (~0.5-1 s): only the stages that read meshes pay it
    from igae.assets.base import ObjectSource

CATALOGUE_PACKAGE = "sweethome3d-furniture"
PHOTO_PACKAGES = ("opencv-doc", "mate-backgrounds")


def _params(args: argparse.Namespace) -> Params:
    return load_params(args.params, preset=args.preset)


def debian_packages_needed(params: Params) -> list[str]:
    """Debian packages the data stages will read, given the params."""
    pkgs = [CATALOGUE_PACKAGE] if params.assets.source == "catalogue" else []
    return pkgs + [p for p in PHOTO_PACKAGES if p in params.photos.sources]


def object_source(assets: AssetsParams, needed: int, seed: int) -> ObjectSource:
    """The object source named by ``assets.source``, configured from params."""
    from igae.assets import make_source

    kwargs: dict[str, Any] = {
        "catalogue": lambda: dict(
            cache_dir=assets.cache_dir,
            min_thickness_ratio=assets.catalogue.min_thickness_ratio,
            exclude_categories=tuple(assets.catalogue.exclude_categories),
        ),
        "procedural": lambda: dict(count=needed, seed=seed),
        "folder": lambda: dict(path=assets.folder.path, up_axis=assets.folder.up_axis),
        "objaverse": lambda: dict(uids=list(assets.objaverse.uids), cache_dir=assets.cache_dir),
    }[assets.source]()
    return make_source(assets.source, **kwargs)


def objects_needed(params: Params) -> int:
    """Objects the scene sets draw: training, test (held-out) and validation scenes."""
    sc = params.scenes
    return sc.train.count + sc.heldout.count + sc.validation.count


def cmd_fetch_assets(args: argparse.Namespace) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from igae.assets.debian import fetch_debian_package

    params = _params(args)
    fetched = {}
    packages = debian_packages_needed(params)
    # In parallel: each is a download then an unpack into its own folder (about 14 s in turn, 7 s at once,
    # at the start of a run where nothing else can run yet).
    with ThreadPoolExecutor(max_workers=max(1, len(packages))) as pool:
        roots = list(pool.map(lambda pkg: fetch_debian_package(pkg, params.assets.cache_dir), packages))
    for pkg, root in zip(packages, roots):
        fetched[pkg] = (root / ".complete").read_text().strip()
        log(f"{pkg}: {fetched[pkg]} in {root}")
    write_json_atomic(args.out, {"debian_packages": fetched, "cache_dir": params.assets.cache_dir})


def cmd_select_objects(args: argparse.Namespace) -> None:
    from igae.assets.select import select_objects

    params = _params(args)
    source = object_source(params.assets, objects_needed(params), params.seed)
    records = source.list_objects()
    log(f"source {params.assets.source}: {len(records)} usable objects")
    sc = params.scenes
    chosen = select_objects(records, sc.train.count, sc.heldout.count, params.assets.heldout_categories, params.seed,
                            validation_count=sc.validation.count)
    write_json_atomic(args.out, {
        "source": params.assets.source,
        "candidates": len(records),
        "sets": {name: [r.to_dict() for r in recs] for name, recs in chosen.items()},
        "provenance": provenance(params.seed, params={"assets": params.assets.model_dump()}),
    })


def cmd_render_scenes(args: argparse.Namespace) -> None:
    from igae.assets.base import ObjectRecord
    from igae.render.scene_set import import_scene_set, render_scene_set

    params = _params(args)
    objects_file = Path(args.objects)
    try:
        chosen = json.loads(objects_file.read_text())
        records = [ObjectRecord(**r) for r in chosen["sets"][args.set]]
    except FileNotFoundError:
        raise InputError("not found: run 'igae select-objects' first", objects_file) from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"not an objects file of this version ({exc})", objects_file) from None
    sc = params.scenes
    set_params = getattr(sc, args.set)
    # What this set is made with: the rendering keys and its own section (not the other sets').
    scenes_read = {k: v for k, v in sc.model_dump().items() if k not in SCENE_SETS or k == args.set}
    if getattr(set_params, "source", "render") == "folder":  # the user's scenes: copied, never written
        import_scene_set(set_params.folder, args.out, args.set, params_snapshot={"preset": params.preset,
                         "scenes": scenes_read}, progress=log)
        return
    source = object_source(params.assets, objects_needed(params), params.seed)
    render_scene_set(
        records, source, args.out, args.set,
        views=set_params.views, test_views=set_params.test_views,
        resolution=sc.resolution, supersample=sc.supersample, background=sc.background,
        object_box=sc.object_box, radius=sc.radius, fov_deg=sc.fov_deg, elevation_deg=sc.elevation_deg,
        seed=params.seed,
        params_snapshot={"preset": params.preset, "scenes": scenes_read, "assets": params.assets.model_dump()},
        progress=log,
    )


def cmd_build_photos(args: argparse.Namespace) -> None:
    from igae.data.photos import build_photo_set

    params = _params(args)
    ph = params.photos
    manifest = build_photo_set(
        args.out, resolution=params.scenes.resolution, sources=list(ph.sources),
        crops_per_photo=ph.crops_per_photo, test_fraction=ph.test_fraction, seed=params.seed,
        cache_dir=params.assets.cache_dir, folder=ph.folder, min_crop_fraction=ph.min_crop_fraction,
    )
    log(f"photos: {json.dumps(manifest.get('totals', {}))}")


def cmd_schema(args: argparse.Namespace) -> None:
    text = json.dumps(params_json_schema(), indent=2, sort_keys=True) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        write_json_atomic(args.out, params_json_schema())


def cmd_check_params(args: argparse.Namespace) -> None:
    from igae.fields.registry import check_hyperparameters

    params = _params(args)
    for method, cfg in params.nerf.method_params.items():  # names only; values are checked when built
        check_hyperparameters(method, cfg.hyper, where=f"nerf.method_params.{method}.hyper")
    tuning_variants(params)  # tuning.param and each of tuning.values
    log(f"{args.params} (preset {params.preset}) is valid")
    if args.out:
        write_text_atomic(args.out, effective_params_yaml(params))


def register(sub: argparse._SubParsersAction, add_params_args: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the dataset subcommands to the ``igae`` parser."""

    def add(name: str, handler: Callable[[argparse.Namespace], None], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        add_params_args(p)
        p.set_defaults(handler=handler)
        return p

    p = add("fetch-assets", cmd_fetch_assets,
            "Download and unpack the Debian packages the data stages need (catalogue models, photos) "
            "into assets.cache_dir, without root.")
    p.add_argument("--out", required=True, help="JSON record of what was fetched")
    p = add("select-objects", cmd_select_objects,
            "List the objects of assets.source (filtered) and choose the training and held-out objects.")
    p.add_argument("--out", required=True, help="objects JSON file to write")
    p = add("render-scenes", cmd_render_scenes,
            "Render one scene set (train, validation or heldout) into scene folders (PNG + nerfstudio "
            "transforms.json) and a dataset manifest; a validation or heldout set whose source is 'folder' is "
            "copied from that folder instead.")
    p.add_argument("--objects", required=True, help="objects JSON from select-objects")
    p.add_argument("--set", required=True, choices=list(SCENE_SETS), help="which scene set")
    p.add_argument("--out", required=True, help="output folder of the scene set")
    p = add("build-photos", cmd_build_photos,
            "Build the real-photo set (random crops of packaged photos, split by photo) with a licence manifest.")
    p.add_argument("--out", required=True, help="output folder of the photo set")
    p = add("check-params", cmd_check_params, "Validate the params file (and preset) and exit.")
    p.add_argument("--out", default=None, help="also write the effective params (preset merged in) to this YAML file")
    p = sub.add_parser("schema", help="Print or write the JSON schema of params.yaml.",
                       description="Print or write the JSON schema of params.yaml (generated from igae/config.py).")
    p.add_argument("--out", default="-", help="file to write, '-' for stdout (default)")
    p.set_defaults(handler=cmd_schema)
