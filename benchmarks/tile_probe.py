"""Why the `default` preset fits photographs as 32×32 tiles: whole-crop fits against tiled fits.

Noisy centre crop (seed 0) of one test image; for each variant of the `default` preset given,
either the whole crop without stopping, with SSIM and loss/σ² every 100 iterations, or (``tile=N``
in the variant) the crop as N×N tiles stopped by the noise rule (σ estimated), with the final SSIM.
The runs of docs/comparison.md §1 (one thread each, 2026-11-26):

    D=../shared/data
    python benchmarks/tile_probe.py $D/mcmaster/1.tif --sigma 25 --iters 400 \\
        lr=1e-4 lr=3e-4 lr=1e-3 lr=1e-3,h_mode=mean z_noise_std=1.0 z_noise_std=1.0,lr=3e-4 \\
        h_mode=none epsilon=0.0
    python benchmarks/tile_probe.py $D/mcmaster/1.tif --sigma 25 --iters 400 --crop 32 lr=1e-4
    python benchmarks/tile_probe.py $D/set12/01.png --sigma 25 --iters 400 lr=1e-4 z_noise_std=1.0
    python benchmarks/tile_probe.py $D/mcmaster/1.tif --sigma 25 tile=32,tile_overlap=8
    python benchmarks/tile_probe.py $D/set12/01.png --sigma 25 tile=32,tile_overlap=8

and the earlier learning-rate probe behind docs/comparison.md §1 (whole crop, σ = 15):

    python benchmarks/tile_probe.py $D/set12/01.png --sigma 15 --iters 300 lr=1e-3 lr=1e-4

and whole crops fitted in tanh's range [-1, 1] (docs/comparison.md §1, the range issue):

    python benchmarks/tile_probe.py $D/mcmaster/1.tif --sigma 25 --iters 400 \
        lr=1e-3 lr=1e-3,range=symmetric lr=1e-4,range=symmetric
    python benchmarks/tile_probe.py $D/set12/01.png --sigma 25 --iters 400 \
        lr=1e-3 lr=1e-3,range=symmetric
"""

import argparse
import time
from pathlib import Path

import numpy as np

import rdip
from rdip.cli import _parse_value
from rdip.config import range_width
from rdip.images.files import read_image
from rdip.images.metrics import centre

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("image", type=Path)
ap.add_argument("--sigma", type=float, default=25, help="noise σ in /255 units")
ap.add_argument("--crop", type=int, default=64)
ap.add_argument("--iters", type=int, default=800, help="iterations of whole-crop fits; tiled fits "
                "keep the preset's cap and stopping rule")
ap.add_argument("variants", nargs="+", help="KEY=VALUE[,KEY=VALUE…] changes to the default preset")
args = ap.parse_args()

clean = np.ascontiguousarray(centre(read_image(args.image)[0], args.crop))
sigma = args.sigma / 255
noisy = rdip.add_noise(clean, sigma, seed=0)
print(f"{args.image.name}, {args.crop}×{args.crop} crop, σ = {args.sigma}/255: noisy SSIM "
      f"{rdip.ssim(np.clip(noisy, 0, 1), clean):.3f}, PSNR {rdip.psnr(np.clip(noisy, 0, 1), clean):.2f}")
for variant in args.variants:
    changes = {k: _parse_value(v) for k, v in (kv.split("=", 1) for kv in variant.split(","))}
    started = time.perf_counter()
    if changes.get("tile"):
        result = rdip.fit(noisy, rdip.preset("default", device="cpu", **changes), clean=clean)
        print(f"{variant}: SSIM {result.metrics['ssim_full']:.3f}, PSNR {result.metrics['psnr']:.2f}, "
              f"{result.iters_run} iterations at most, {time.perf_counter() - started:.0f} s")
        continue
    config = rdip.preset("default", **{"stop": "none", "tile": 0, "iters": args.iters,
                                       "eval_every": 100, "device": "cpu", **changes})
    result = rdip.fit(noisy, config, clean=clean)
    width = range_width(config.range)  # the loss is in the fitting range's units
    print(f"{variant}: " + ", ".join(f"{h['iter']}: SSIM {h['ssim_full']:.3f} loss/σ² "
                                     f"{result.loss[h['iter'] - 1] / (sigma * width)**2:.2f}"
                                     for h in result.history)
          + f" ({time.perf_counter() - started:.0f} s)")
