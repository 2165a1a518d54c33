"""When to stop without a clean image: record the trajectories that stopping rules are judged on.

Fits rdip (preset ``default``, no output average, the given learning rate) to CIFAR-10 test
images with the noise of ``rdip compare`` (σ = 0.1, seed 0), for ``--iters`` iterations, and
records per network and iteration: the loss (mean squared error to the noisy target), the
windowed moving variance (ES-WMV, Wang et al. 2021) of the raw outputs for several windows, and
every ``--every`` iterations the SSIM/PSNR of the raw output and of its exponential averages.
``benchmarks/stopping_rules.py`` then replays stopping rules on the saved trajectories.

    python benchmarks/stopping_study.py --lr 1e-3 --iters 800 --out results/stopping/adam-1e-3.npz
    python benchmarks/stopping_study.py --lr 1e-4 --iters 1200 --out results/stopping/adam-1e-4.npz
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from rdip import add_noise, fit_many, preset, psnr, ssim
from rdip.experiments.compare import load_images, noise_seed

WINDOWS = (10, 25, 50, 100)
EMAS = (0.9, 0.99)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--iters", type=int, required=True)
    ap.add_argument("--images", default="cifar:0-14")
    ap.add_argument("--sigma", type=float, default=0.1)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    images = load_images(args.images)
    names = [n for n, _ in images]
    clean = [np.asarray(x, np.float64) for _, x in images]
    noisy = [add_noise(c, args.sigma, seed=noise_seed(n, args.sigma, 0)) for n, c in zip(names, clean)]
    config = preset("default", lr=args.lr, iters=args.iters, ema=0.0, device="cpu")
    n_img, T, every = len(images), args.iters, args.every
    loss = np.zeros((n_img, T))
    var = np.full((len(WINDOWS), n_img, T), np.nan)
    evals = T // every
    quality = np.zeros((1 + len(EMAS), 2, n_img, evals))  # (raw, emas…) × (ssim, psnr)
    state: dict[tuple, dict] = {}

    def callback(p) -> None:
        key = tuple(p.indices)
        out = p.output.detach().reshape(len(key), -1, *p.output.shape[2:]).double()
        s = state.setdefault(key, {"ring": torch.zeros((max(WINDOWS),) + out.shape, dtype=torch.float64),
                                   "ema": [torch.zeros_like(out) for _ in EMAS]})
        t = p.t
        loss[list(key), t - 1] = p.loss.double().numpy()
        s["ring"][(t - 1) % max(WINDOWS)] = out
        for w_i, w in enumerate(WINDOWS):
            if t >= w:
                last = torch.stack([s["ring"][(t - 1 - k) % max(WINDOWS)] for k in range(w)])
                v = last.var(0, unbiased=False).flatten(1).mean(1)
                var[w_i, list(key), t - 1] = v.numpy()
        for e, decay in zip(s["ema"], EMAS):
            e.mul_(decay).add_(out, alpha=1 - decay)
        if t % every == 0:
            estimates = [out] + [e / (1 - d ** t) for e, d in zip(s["ema"], EMAS)]
            for k, est in enumerate(estimates):
                for j, i in enumerate(key):
                    img = np.clip(est[j].numpy().transpose(1, 2, 0), 0, 1)
                    quality[k, 0, i, t // every - 1] = ssim(img, clean[i])
                    quality[k, 1, i, t // every - 1] = psnr(img, clean[i])

    start = time.time()
    fit_many(noisy, config, callback=callback)
    seconds = time.time() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    noisy_ssim = [ssim(np.clip(x, 0, 1), c) for x, c in zip(noisy, clean)]
    np.savez_compressed(args.out, loss=loss, var=var, quality=quality, windows=WINDOWS, emas=EMAS,
                        every=every, noisy_ssim=noisy_ssim, names=names,
                        sigma_true=args.sigma, seconds=seconds,
                        config=json.dumps(config.to_dict()))
    print(f"{n_img} images × {T} iterations in {seconds:.0f} s → {args.out}")


if __name__ == "__main__":
    main()
