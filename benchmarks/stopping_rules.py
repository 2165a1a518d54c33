"""Replay stopping rules on the trajectories of ``benchmarks/stopping_study.py``; print Markdown.

For every rule: the mean full-image SSIM of the output it keeps (raw output and its exponential
averages), and the mean number of iterations it runs (what it costs). Rules: a fixed T; the
clean-image oracle (the best SSIM on the trajectory, unreachable in practice); the noise rule
(stop when the MSE to the noisy image reaches σ², σ true or estimated by scikit-image); ES-WMV
(windowed moving variance of the outputs, window W, patience P). SSIM was recorded every
``every`` iterations, so a stop at iteration t is scored at the next recorded iteration.

    python benchmarks/stopping_rules.py results/stopping/adam-1e-3.npz results/stopping/adam-1e-4.npz
"""

from __future__ import annotations

import json
import sys

import numpy as np

from rdip import add_noise
from rdip.experiments.compare import load_images, noise_seed
from rdip.images.noise import noise_sigma

PATIENCES = (50, 100, 200)


def replay(path: str) -> None:
    d = np.load(path)
    loss, var, quality = d["loss"], d["var"], d["quality"]
    windows, emas, every = list(d["windows"]), list(d["emas"]), int(d["every"])
    names, sigma = [str(n) for n in d["names"]], float(d["sigma_true"])
    n_img, T = loss.shape
    config = json.loads(str(d["config"]))
    per_iter = float(d["seconds"]) / (n_img * T)
    estimates = ["raw"] + [f"EMA {e:g}" for e in emas]
    ssim = quality[:, 0]  # (estimate, image, evaluation)

    def score(stops: np.ndarray) -> list[float]:
        """Mean SSIM per estimate when image i keeps its output of iteration stops[i]."""
        idx = np.clip(np.ceil(stops / every).astype(int) - 1, 0, ssim.shape[2] - 1)
        return [float(ssim[k, np.arange(n_img), idx].mean()) for k in range(len(estimates))]

    rows = []
    for t in [x for x in (100, 200, 300, 400, 600, 800, 1200) if x <= T]:
        stops = np.full(n_img, t)
        rows.append((f"fixed T = {t}", score(stops), t))
    best = ssim.max(2).mean(1)
    at = (ssim.argmax(2) + 1) * every
    rows.append(("oracle (clean image)", list(map(float, best)), float(at[0].mean())))
    clean = dict(load_images("cifar:" + ",".join(str(int(n.split("-")[1])) for n in names)))
    estimated = np.array([noise_sigma(add_noise(clean[n], sigma, seed=noise_seed(n, sigma, 0)))
                          for n in names])
    for label, s in (("true σ", np.full(n_img, sigma)), ("estimated σ", estimated)):
        for factor in (1.0, 1.1):
            below = loss <= (factor * s[:, None]) ** 2
            stops = np.where(below.any(1), below.argmax(1) + 1, T)
            name = f"noise rule, {label}" + ("" if factor == 1 else f", {factor:g}·σ")
            rows.append((name, score(stops), float(stops.mean())))
    for w_i, w in enumerate(windows):
        for p in PATIENCES:
            chosen, ran = np.full(n_img, T), np.full(n_img, T)
            for i in range(n_img):
                best_v, best_t = np.inf, 0
                for t in range(w, T + 1):
                    v = var[w_i, i, t - 1]
                    if v < best_v:
                        best_v, best_t = v, t
                    if t - best_t >= p:
                        chosen[i], ran[i] = best_t, t
                        break
            rows.append((f"ES-WMV, W = {w}, P = {p}", score(chosen), float(ran.mean())))

    print(f"### {path}: Adam lr {config['lr']:g}, T = {T}, {n_img} images, "
          f"σ = {sigma:g} (estimated: mean {estimated.mean():.3f}, "
          f"range {estimated.min():.3f}–{estimated.max():.3f}); "
          f"{per_iter * 1e3:.0f} ms per fit-iteration\n")
    print("| rule | " + " | ".join(f"SSIM {e}" for e in estimates) + " | iterations run |")
    print("|---|" + "---|" * (len(estimates) + 1))
    for name, s, its in rows:
        print(f"| {name} | " + " | ".join(f"{x:.3f}" for x in s) + f" | {its:.0f} |")
    print(f"\nnoisy input: SSIM {np.mean(d['noisy_ssim']):.3f}\n")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        replay(arg)
