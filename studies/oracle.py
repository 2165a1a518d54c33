"""How far the noise rule stops from the best stop (issue 23, item 5): an oracle that knows the clean image.

Every tile of a crop is fitted with a configuration's network (``--margin``, ``--padding`` …:
the candidate ``default``), without stopping, for ``--iters`` iterations; every ``--every``
iterations each tile's output is kept. Then, against the clean image:

- ``rule``: each tile's output where the noise rule stops it (the preset as it is);
- ``oracle, one stop``: all tiles at the one iteration whose blend has the best SSIM;
- ``oracle, per tile``: each tile at its own iteration of least squared error to its clean tile,
  then blended (the best a per-tile stopping rule could do, by squared error);
- ``oracle, per tile, best SSIM``: as above but choosing by each tile's SSIM.

The images and noise are those of ``rdip compare`` and ``rdip study`` (same crops, same seeds)::

    python studies/oracle.py --images set12/01.png,set12/02.png,set12/03.png,set12/04.png \\
        --images mcmaster/1.tif,mcmaster/2.tif,mcmaster/3.tif,mcmaster/4.tif --sigma-255 25 \\
        > results/oracle/oracle.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import rdip
from rdip.experiments.study import noise_seed
from rdip.experiments.studyfile import clean_image
from rdip.images.files import read_image
from rdip.images.metrics import ssim
from rdip.method.inputs import from_range
from rdip.method.tiling import blend, split

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def trajectory(noisy: np.ndarray, cfg: rdip.FitConfig, every: int) -> list[dict[int, np.ndarray]]:
    """Per tile (in :func:`split`'s order), its output every ``every`` iterations, ``{t: image in
    [0, 1]}``: tile ``k`` fitted alone with seed ``cfg.seed + k``, as the tiled fit fits it."""
    tiles, _ = split(noisy, cfg.tile, cfg.tile_overlap)
    kept: list[dict[int, np.ndarray]] = []
    for k, tile in enumerate(tiles):
        mine: dict[int, np.ndarray] = {}

        def grab(p, mine=mine) -> None:
            if p.t % every == 0:
                out = p.output.detach().double().numpy()[0].transpose(1, 2, 0)
                image = np.clip(from_range(out, cfg.range, cfg.margin), 0, 1)
                mine[p.t] = image[:, :, 0] if tile.ndim == 2 else image

        rdip.fit(tile, cfg.replace(tile=0, seed=cfg.seed + k, stop="none", sync_every=1), callback=grab)
        kept.append(mine)
    return kept


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", action="append", required=True, help="files under ../shared/data, comma-separated")
    ap.add_argument("--sigma-255", default="15,25,50")
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--iters", type=int, default=400)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--margin", type=float, default=None, help="[default: the default preset's]")
    args = ap.parse_args()
    cfg = rdip.preset("default", iters=args.iters, device="cpu")
    cfg = cfg if args.margin is None else cfg.replace(margin=args.margin)
    print("| image | σ (/255) | rule | its | oracle, one stop | its | oracle, per tile | oracle, per tile, best SSIM |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for path in (p for group in args.images for p in group.split(",")):
        name = Path(path).stem
        clean = clean_image(name, read_image(DATA / path)[0], args.crop)
        for s255 in map(int, args.sigma_255.split(",")):
            sigma = s255 / 255
            noisy = rdip.add_noise(clean, sigma, seed=noise_seed(name, sigma, 0))
            rule = rdip.fit(noisy, cfg, sigma=sigma)
            kept = trajectory(noisy, cfg, args.every)
            clean_tiles, where = split(clean, cfg.tile, cfg.tile_overlap)
            steps = sorted(set.intersection(*(set(k) for k in kept)))

            def blended(pick):
                return blend([k[pick(i)] for i, k in enumerate(kept)], where, clean.shape, cfg.tile_overlap)

            one = max(steps, key=lambda t: ssim(blended(lambda i: t), clean))
            mse = blended(lambda i: min(steps, key=lambda t: ((kept[i][t] - clean_tiles[i]) ** 2).mean()))
            best = blended(lambda i: max(steps, key=lambda t: ssim(kept[i][t], clean_tiles[i])))
            row = (ssim(rule.image, clean), ssim(blended(lambda i: one), clean), ssim(mse, clean), ssim(best, clean))
            rows.append(row)
            its = f"{rule.stopped_at['median']:.0f}" if rule.stopped_at else f"{cfg.iters} (none stopped)"
            print(f"| {name} | {s255} | {row[0]:.3f} | {its} | {row[1]:.3f} | {one} | "
                  f"{row[2]:.3f} | {row[3]:.3f} |", flush=True)
    means = np.mean(rows, axis=0)
    print(f"| mean | | {means[0]:.3f} | | {means[1]:.3f} | | {means[2]:.3f} | {means[3]:.3f} |")


if __name__ == "__main__":
    main()
