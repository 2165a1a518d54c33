"""Where a denoised smooth image departs from its clean one, by scale (studies/smooth.toml).

For every run of the smooth study (its runs.jsonl and images/), the error (result − clean) is
split into three bands with Gaussian blurs: ``fine`` (error − blur₂: single pixels), ``blotch``
(blur₂ − blur₈: structures of about 4–16 pixels, the size of a tile's texture) and ``broad``
(blur₈: a tile's offset and larger); each band's standard deviation is given in 0-255 units and
as the share of the noise's own power in that band that the result kept (1: the noise passed as
it was; 0: removed). Means over the images, per variant and σ::

    python studies/smooth/analyse.py results/smooth
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from rdip import add_noise
from rdip.images.files import read_image

IMAGES = Path(__file__).parent / "images"
BANDS = ("fine", "blotch", "broad")


def bands(error: np.ndarray) -> dict[str, np.ndarray]:
    """``error`` (H, W, C) split into the three bands (blurred per channel, edges mirrored)."""
    two, eight = (gaussian_filter(error, (s, s, 0), mode="reflect") for s in (2, 8))
    return {"fine": error - two, "blotch": two - eight, "broad": eight}


def analyse(folder: Path) -> list[dict]:
    rows = [json.loads(line) for line in (folder / "runs.jsonl").read_text().splitlines() if line.strip()]
    table: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        clean, _ = read_image(IMAGES / f"{r['image']}.png")
        noise = add_noise(clean, r["sigma"], seed=r["noise_seed"]) - clean
        result = np.load(folder / "images" / f"{r['name']}.npy").astype(np.float64)
        error, made = bands(result - clean), bands(noise)
        row = {"ssim": r["scores"]["ssim_full"]}
        for b in BANDS:
            row[b] = 255 * float(error[b].std())
            row[f"{b} kept"] = float((error[b] ** 2).mean() / (made[b] ** 2).mean())
        table[(r["variant"], round(r["sigma"] * 255))].append(row)
    out = []
    for (variant, sigma), cells in sorted(table.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        out.append({"variant": variant, "σ (/255)": sigma, "images": len(cells),
                    **{k: float(np.mean([c[k] for c in cells])) for k in cells[0]}})
    return out


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "results/smooth")
    rows = analyse(folder)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r.values()) + " |")


if __name__ == "__main__":
    main()
