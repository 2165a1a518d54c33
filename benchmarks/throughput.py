"""Images per minute of ``rdip batch``, local against Ray on this machine (docs/scaling.md).

Writes noisy copies (σ = 0.1) of CIFAR-10 test images (32×32) and of the 256×256 images of Set12
into a scratch folder, then times ``rdip batch`` on each folder with ``--backend local`` and
``--backend ray`` (a new local Ray; its start-up is part of the wall time), each into an empty
output folder. Prints a Markdown table and writes it with the configuration as JSON.

    python benchmarks/throughput.py --out results/scaling/cpu-2cores.json
    python benchmarks/throughput.py --n32 64 --n256 4 --iters256 20 --out ...   # the defaults
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rdip import add_noise
from rdip.images.cifar10 import load_cifar10
from rdip.images.files import read_image, write_image

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
SET12, CIFAR = DATA / "set12", DATA / "cifar10" / "cifar10_test_0000-0749.npz"


def run(folder: Path, out: Path, backend: str, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "rdip", "batch", str(folder), "-o", str(out), "--quiet",
           "--backend", backend, *extra]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    iters = float(np.mean([r["iters_run"] for r in rows]))
    return {"backend": backend, "images": len(rows), "seconds": seconds,
            "images_per_min": 60 * len(rows) / seconds, "mean_iters_run": iters,
            "command": " ".join(cmd[1:])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n32", type=int, default=64, help="CIFAR-10 images (32×32)")
    ap.add_argument("--n256", type=int, default=4, help="Set12 256×256 images")
    ap.add_argument("--iters256", type=int, default=20, help="iterations for the 256×256 images")
    ap.add_argument("--backends", default="local,ray")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="rdip-throughput-"))
    try:
        small = scratch / "cifar32"
        small.mkdir()
        images, _ = load_cifar10(range(args.n32), source=CIFAR if args.n32 > 15 else None)
        for i, im in enumerate(images):
            write_image(small / f"c{i:03d}.png", add_noise(im / 255.0, 0.1, seed=i, clip=True))
        large = scratch / "set12-256"
        large.mkdir()
        picked = [p for p in sorted(SET12.glob("*.png")) if read_image(p)[0].shape == (256, 256)]
        for i, p in enumerate(picked[:args.n256]):
            write_image(large / p.name, add_noise(read_image(p)[0], 0.1, seed=i, clip=True))
        cases = [("32×32 CIFAR-10, preset default (noise rule)", small, []),
                 (f"256×256 Set12, preset default cut to T = {args.iters256}, whole (--tile none)",
                  large, ["--iters", str(args.iters256), "--tile", "none"])]
        table = []
        for label, folder, extra in cases:
            for backend in args.backends.split(","):
                out = scratch / f"out-{folder.name}-{backend}"
                ray_extra = ["--num-cpus", str(os.cpu_count())] if backend == "ray" else []
                row = {"case": label, **run(folder, out, backend, extra + ray_extra)}
                table.append(row)
                print(f"{label}, {backend}: {row['images']} images in {row['seconds']:.1f} s = "
                      f"{row['images_per_min']:.2f} images/min (mean {row['mean_iters_run']:.0f} "
                      "iterations)", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print("\n| images | backend | n | seconds | images / min | iterations (mean) |")
    print("|---|---|---|---|---|---|")
    for r in table:
        print(f"| {r['case']} | {r['backend']} | {r['images']} | {r['seconds']:.1f} | "
              f"{r['images_per_min']:.2f} | {r['mean_iters_run']:.0f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": table, "cpus": os.cpu_count(),
                                    "machine": platform.processor() or platform.machine(),
                                    "args": {k: str(v) for k, v in vars(args).items()}}, indent=1))


if __name__ == "__main__":
    main()
