"""Write dvc.yaml from the stage table (workflow/stages.py): `python workflow/scripts/make_dvc_yaml.py`.

`--check` exits 1 when the committed dvc.yaml differs from what the table gives.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow"))

from stages import EFFECTIVE_PARAMS, STAGES, TOP_LEVEL_PLOTS, Stage, dvc_text  # noqa: E402

HEADER = """\
# GENERATED from workflow/stages.py by workflow/scripts/make_dvc_yaml.py: edit the table, not this file.
# The same stages and commands as the Snakefile, for `dvc repro` (CI GPU runners);
# ${preset} comes from params.yaml (`dvc exp run -S preset=smoke`); each stage's params are keys of
# data/effective_params.yaml (params.yaml with that preset merged in), written by the stage effective_params.
"""


def _paths(items: list[Any], stage: Stage) -> list[Any]:
    out = []
    for item in items:
        if isinstance(item, dict):
            out.append({dvc_text(k, stage): dict(v) for k, v in item.items()})  # copies: no YAML anchors
        else:
            out.append(dvc_text(item, stage))
    return out


def stage_dict(stage: Stage) -> dict[str, Any]:
    body: dict[str, Any] = {"cmd": dvc_text(stage.cmd, stage)}
    if stage.deps:
        body["deps"] = _paths(stage.deps, stage)
    if stage.params:  # the effective values (preset merged in), which the stage effective_params writes
        body["params"] = [{EFFECTIVE_PARAMS: [dvc_text(k, stage) for k in stage.params]}]
    body["outs"] = _paths(stage.outs, stage)
    if stage.metrics:
        body["metrics"] = [{p: {"cache": False}} for p in _paths(stage.metrics, stage)]
    if stage.plots:
        body["plots"] = _paths(stage.plots, stage)
    if stage.foreach is not None:
        return {"foreach": stage.foreach if isinstance(stage.foreach, str) else list(stage.foreach), "do": body}
    if stage.matrix is not None:
        return {"matrix": dict(stage.matrix), **body}
    return body


def render() -> str:
    doc = {"stages": {name: stage_dict(stage) for name, stage in STAGES.items() if "dvc" in stage.executors},
           "plots": TOP_LEVEL_PLOTS}
    return HEADER + yaml.safe_dump(doc, sort_keys=False, width=10_000, allow_unicode=True)


def main(argv: list[str]) -> int:
    text = render()
    target = REPO / "dvc.yaml"
    if "--check" in argv:
        if target.read_text() != text:
            print("dvc.yaml is out of date with workflow/stages.py: run python workflow/scripts/make_dvc_yaml.py",
                  file=sys.stderr)
            return 1
        return 0
    tmp = target.with_name(".dvc.yaml.tmp")
    tmp.write_text(text)
    tmp.replace(target)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
