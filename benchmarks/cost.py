"""What denoising an image costs, by size: the README's cost table and the estimate's calibration.

Centre crops of scikit-image's astronaut (colour, bundled with scikit-image) with Gaussian noise
σ = 25/255 (seed 0) saved as PNG, denoised as `rdip denoise noisy.png -o out.png --clean
clean.png` does (preset `default`, σ estimated from the noisy image, as a user who does not know
it), one size after the other in this process; each row gives the wall time, the iterations the
networks ran, the estimate printed before the fit and the SSIM/PSNR gain. Writes a JSON list.

    python benchmarks/cost.py --sizes 32,64,128,256 --out results/cost/cpu-2cores.json
    python benchmarks/cost.py --sizes 32,64,256,512 --device cuda --out results/cost/gpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from skimage import data

from rdip.config import preset
from rdip.images.files import write_image
from rdip.images.noise import add_noise
from rdip.jobs import denoise_file


def crop(size: int) -> np.ndarray:
    image = data.astronaut().astype(np.float64) / 255.0  # 512×512×3
    top = (image.shape[0] - size) // 2
    return image[top:top + size, top:top + size]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="32,64,128,256")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            clean, src, dst = (Path(tmp) / name for name in ("clean.png", "noisy.png", "out.png"))
            write_image(clean, crop(size))
            write_image(src, np.clip(add_noise(crop(size), 25 / 255, seed=0), 0, 1))
            lines = []
            started = time.perf_counter()
            record = denoise_file(src, dst, preset(args.preset, device=args.device), clean_path=clean,
                                  progress=False, log=lines.append)
            wall = time.perf_counter() - started
        row = {"size": size, "preset": args.preset, "device": args.device, "wall_s": wall,
               "sigma_estimated": record["sigma"], "sigma": 25 / 255,
               "estimate_s": record["estimate"]["seconds"], "tiles": (record["tile"] or {}).get("tile"),
               "iters_run": record["iters_run"], "stopped_at": record["stopped_at"],
               "ssim_noisy": record["noisy_metrics"]["ssim_full"], "ssim": record["metrics"]["ssim_full"],
               "psnr_noisy": record["noisy_metrics"]["psnr"], "psnr": record["metrics"]["psnr"],
               "plan": lines[0], "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine()}
        rows.append(row)
        print(json.dumps(row), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
