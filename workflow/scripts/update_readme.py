"""Refresh the README's figure and main table from a finished run (`make readme`).

Copies two pipeline figures into docs/ and replaces the block between the README's
`<!-- results:start -->` / `<!-- results:end -->` markers with results/tables/novel_view_synthesis.md.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

FIGURES = ["qualitative_scene_000.png", "psnr_vs_time.png"]
START, END = "<!-- results:start -->", "<!-- results:end -->"


def main(repo: Path) -> int:
    results = repo / "results"
    table = results / "tables" / "novel_view_synthesis.md"
    sources = [results / "figures" / f for f in FIGURES] + [table]
    missing = [str(p) for p in sources if not p.is_file()]
    if missing:
        print(f"error: run the pipeline first; missing {missing}", file=sys.stderr)
        return 2
    (repo / "docs").mkdir(exist_ok=True)
    for name in FIGURES:
        shutil.copyfile(results / "figures" / name, repo / "docs" / name)
    readme = (repo / "README.md").read_text()
    if START not in readme or END not in readme:
        print(f"error: README.md lacks the {START} / {END} markers", file=sys.stderr)
        return 2
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    block = (f"{START}\n{table.read_text().strip()}\n\n"
             + "".join(f"![{n}](docs/{n})\n" for n in FIGURES) + END)
    tmp = repo / ".README.md.tmp"
    tmp.write_text(head + block + tail)
    tmp.replace(repo / "README.md")
    print("README.md and docs/ updated from results/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(__file__).resolve().parents[2]))
