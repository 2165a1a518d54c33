"""Does a learning rate fit a photograph? SSIM and loss every 50 iterations on a Set12 crop.

The probe behind the `default` preset's learning rate (docs/comparison.md): the 64×64 centre crop
of Set12 image 01 with σ = 15/255 noise (seed 0), preset `default` without its stopping rule.

    python benchmarks/lr_probe.py 1e-3 1e-4
"""

import sys
from pathlib import Path

import numpy as np

import rdip
from rdip.io import read_image
from rdip.metrics import centre

SET12 = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "set12"

image, _ = read_image(SET12 / "01.png")
clean = np.ascontiguousarray(centre(image, 64))
noisy = rdip.add_noise(clean, 15 / 255, seed=0)
print(f"noisy SSIM {rdip.ssim(np.clip(noisy, 0, 1), clean):.3f}, σ² = {(15 / 255) ** 2:.4f}")
for lr in map(float, sys.argv[1:] or ["1e-3", "1e-4"]):
    config = rdip.preset("default", lr=lr, stop="none", iters=300, eval_every=50, device="cpu")
    result = rdip.fit(noisy, config, clean=clean)
    print(f"lr {lr:g}: " + ", ".join(f"{h['iter']}: SSIM {h['ssim_full']:.3f} loss "
                                     f"{result.loss[h['iter'] - 1]:.4f}" for h in result.history))
