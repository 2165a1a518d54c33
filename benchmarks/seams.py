"""The seam check on photograph crops: does a tiled fit show its tile grid?

For every run of a comparison folder of Set12 or McMaster crops (``rdip compare`` with
``--crop``; the folder's name says which, the clean images are read from ``--data``), the mean absolute error
along the inner tile borders of a 32×32 grid divided by that in the tile interiors
(:func:`rdip.method.tiling.seam_ratio`). Above 1: lines of larger error along the grid. A method
without tiles (NL-means) gives the spread that image content alone causes. Prints one line per
method and grid: median, largest, and the share of crops at or below 1 and at or below the
NL-means ratio of the same crop + 0.05::

    python benchmarks/seams.py results/compare/set12-crop64-all results/compare/mcmaster-crop64-all \\
        --grid rdip-default=16 --grid nlmeans=16 --grid old=8
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rdip.experiments.compare import load_images
from rdip.experiments.studyfile import clean_image
from rdip.method.tiling import seam_ratio


def ratios(folder: Path, method: str, overlap: int, data: Path) -> dict[str, float]:
    """``{run name: seam ratio}`` of ``method``'s runs in ``folder`` on the 32/``overlap`` grid."""
    crop = json.loads((folder / "compare.json").read_text())["crop"]
    images = data / ("set12" if "set12" in folder.name else "mcmaster")
    cleans: dict[str, np.ndarray] = {}  # each image is read once, not once per σ
    out = {}
    for record in sorted((folder / "runs" / method).glob("*.json")):
        name = json.loads(record.read_text())["image"]
        if name not in cleans:
            cleans[name] = clean_image(name, load_images(str(next(images.glob(f"{name}.*"))))[0][1], crop)
        out[record.stem] = seam_ratio(np.load(record.with_suffix(".npy")), cleans[name], 32, overlap)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--grid", action="append", default=[], metavar="METHOD=OVERLAP",
                    help="a method of the folders and the overlap of the 32×32 grid to check")
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = ap.parse_args()
    for folder in args.folders:
        reference = {o: ratios(folder, "nlmeans", o, args.data) for o in {int(g.split("=")[1]) for g in args.grid}}
        for item in args.grid:
            method, overlap = item.split("=")
            mine = ratios(folder, method, int(overlap), args.data)
            if not mine:
                print(f"{folder.name} {method}: no runs")
                continue
            values = np.array(list(mine.values()))
            near = np.mean([mine[k] <= reference[int(overlap)][k] + 0.05 for k in mine])
            print(f"{folder.name} {method} (overlap {overlap}): {len(values)} crops, median "
                  f"{np.median(values):.2f}, largest {values.max():.2f} ({max(mine, key=mine.get)}), "
                  f"≤ 1 on {np.mean(values <= 1):.0%}, ≤ NL-means + 0.05 on {near:.0%}")


if __name__ == "__main__":
    main()
