"""A probe for the next lever (docs/comparison.md §5): fitting in [-0.9, 0.9] instead of [-1, 1].

The `default` preset fits in [-1, 1], where saturated pixels (0 or 1) sit on tanh's asymptotes:
on McMaster 6 and 15 (40% of the pixels within 0.02 of 0 or 1) some tiles never reach σ² and
the fit copies the noise. This probe adds a range ``inner`` = (-0.9, 0.9) to
``rdip.config.RANGES`` for this process only and fits the default preset in it, on those two
crops (``photos``: 64×64 centre crops, σ = 15, 25, 50 /255, the noise of ``rdip compare``) or on
CIFAR-10 0–14 at σ = 0.1 (``cifar``). Not a preset: measured once (results in the session note
and docs/comparison.md §5), to be studied on every image set before it is adopted::

    OMP_NUM_THREADS=1 python benchmarks/range_margin.py photos
    OMP_NUM_THREADS=1 python benchmarks/range_margin.py cifar
"""

import sys
import time
from pathlib import Path

import numpy as np

import rdip
from rdip import config
from rdip.experiments.compare import _clean, load_images, noise_seed
from rdip.images.noise import add_noise

config.RANGES["inner"] = (-0.9, 0.9)
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main(part: str) -> None:
    if part == "photos":
        for name in ("6", "15"):
            x = _clean(name, load_images(str(DATA / "mcmaster" / f"{name}.tif"))[0][1], 64)
            for s in (15, 25, 50):
                sigma = s / 255
                noisy = add_noise(x, sigma, seed=noise_seed(name, sigma, 0))
                started = time.perf_counter()
                r = rdip.fit(noisy, rdip.preset("default", range="inner"), clean=x, sigma=sigma)
                print(f"McMaster {name} σ={s}/255: SSIM {r.metrics['ssim_full']:.3f} PSNR "
                      f"{r.metrics['psnr']:.2f}, tiles stopped {r.stopped_at['stopped']}/9, last at "
                      f"{r.stopped_at['max']}, {time.perf_counter() - started:.0f} s", flush=True)
    else:
        images = load_images("cifar:0-14", data=DATA / "cifar10" / "cifar10_test_0000-0749.npz")
        ssims = []
        for name, x in images:
            noisy = add_noise(x, 0.1, seed=noise_seed(name, 0.1, 0))
            ssims.append(rdip.fit(noisy, rdip.preset("default", range="inner"), clean=x, sigma=0.1)
                         .metrics["ssim_full"])
            print(f"{name}: SSIM {ssims[-1]:.3f}", flush=True)
        print(f"CIFAR-10 0-14 in [-0.9, 0.9]: mean SSIM {np.mean(ssims):.4f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "photos")
