"""The default preset's SSIM gain on CIFAR-10 test images 0-4 (σ = 0.1, noise seed = image index).

    python benchmarks/default_gain.py
"""

import time

import numpy as np

from rdip import add_noise, fit_many, preset, ssim
from rdip.data import load_cifar10

images, _ = load_cifar10(range(5))
clean = [x / 255.0 for x in images]
noisy = [add_noise(c, 0.1, seed=i) for i, c in enumerate(clean)]
start = time.time()
results = fit_many(noisy, preset("default", device="cpu"), clean=clean)
before = [ssim(np.clip(n, 0, 1), c) for n, c in zip(noisy, clean)]
print("| image | noisy SSIM | default SSIM | gain | PSNR dB |")
print("|---|---|---|---|---|")
for i, (b, r) in enumerate(zip(before, results)):
    print(f"| {i} | {b:.3f} | {r.metrics['ssim_full']:.3f} | {r.metrics['ssim_full'] - b:+.3f} | {r.metrics['psnr']:.2f} |")
after = np.mean([r.metrics["ssim_full"] for r in results])
print(f"| mean | {np.mean(before):.3f} | {after:.3f} | {after - np.mean(before):+.3f} | |")
print(f"{time.time() - start:.0f} s for 5 images on the CPU")
