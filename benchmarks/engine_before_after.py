"""The workloads of ``rdip bench`` for any version of rdip: the engine before the slots and after.

``--workload photo``: preset ``default`` (σ = 25/255 given) on the centre ``--size`` pixels of
scikit-image's astronaut. ``--workload table2``: the Table II workload at one seed (45 fits,
preset ``paper`` for ``--iters`` iterations; ``--stop noise`` stops each where its error reaches
σ² for σ = 0.05 given). With whichever ``rdip`` Python imports, one JSON line: seconds of the
whole call, SSIM (photo), and the work in network-iterations, counted by a callback so that it
works with the engine before the slots (3154c21: a stack runs until its last network stops) and
after (``FitResult.work``). Before and after are measured in one session by alternating the two
source trees::

    git worktree add /tmp/rdip-before 3154c21
    for i in 1 2 3; do
      PYTHONPATH=/tmp/rdip-before/src python benchmarks/engine_before_after.py --size 96 --label before
      PYTHONPATH=src python benchmarks/engine_before_after.py --size 96 --label after
    done
    ... --workload table2 --iters 30            # and --stop noise --iters 300
    ... --size 96 --margin 0 --label after      # the preset as before 2026-12-01, on the slots
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from skimage import data

import rdip


def photo(size: int, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    image = data.astronaut() / 255.0
    top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    clean = image[top:top + size, left:left + size]
    return clean, rdip.add_noise(clean, sigma, seed=0)


class Work:
    """Network-iterations computed and needed, from the callbacks of either engine."""

    def __init__(self):
        self.computed, self.stops, self.seen = 0, {}, 0

    def __call__(self, p) -> None:
        if hasattr(p, "advanced"):  # the slot engine: FitResult.work says it all
            return
        self.computed += len(p.indices)  # one iteration of every network of the stack
        if p.t == 1:
            self.seen += 1
        for slot, stopped in enumerate(p.stopped or []):
            self.stops.setdefault((self.seen, slot), None)
            if stopped and self.stops[(self.seen, slot)] is None:
                self.stops[(self.seen, slot)] = p.t
        if p.t == p.iters:  # networks that never stopped needed every iteration
            for key, value in self.stops.items():
                if value is None and key[0] == self.seen:
                    self.stops[key] = p.iters


def table2(iters: int, stop: str) -> tuple[list, list]:
    """The Table II workload at one seed (as ``rdip bench``'s): 45 images and configurations."""
    rng = np.random.default_rng(0)
    images = [np.clip(rng.random((32, 32, 3)), 0, 1) for _ in range(15)] * 3
    base = rdip.preset("paper", iters=iters, device="cpu", stop=stop)
    return images, [base.replace(padding=p, seed=k) for k, p in enumerate(["none"] * 15 + ["edge"] * 15 + ["reflect"] * 15)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", choices=["photo", "table2"], default="photo")
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--ensemble", type=int, default=1)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--stop", choices=["none", "noise"], default="none")
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    ap.add_argument("--margin", type=float, default=None,
                    help="photo: the default preset's margin instead of its own (0: as before 2026-12-01; "
                         "the engine before the slots has no such field)")
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    work = Work()
    if args.workload == "photo":
        sigma = 25 / 255
        clean, noisy = photo(args.size, sigma)
        config = rdip.preset("default", device="cpu", ensemble=args.ensemble, dtype=args.dtype)
        images, configs = [noisy], [config if args.margin is None else config.replace(margin=args.margin)]
    else:
        sigma, clean = (0.05 if args.stop == "noise" else None), None
        images, configs = table2(args.iters, args.stop)
        configs = [c.replace(dtype=args.dtype) for c in configs]
    started = time.perf_counter()
    results = rdip.fit_many(images, configs, sigma=sigma, callback=work)
    seconds = time.perf_counter() - started
    if hasattr(results[0], "work"):
        computed = sum(r.work["computed"] for r in results)
        needed = sum(r.work["needed"] for r in results)
    else:  # before the slots: a stack that ended before iters ended where its last network stopped
        computed, needed = work.computed, sum(v for v in work.stops.values() if v is not None)
    print(json.dumps({"label": args.label, "workload": args.workload, "size": args.size,
                      "ensemble": args.ensemble, "margin": args.margin, "iters": args.iters, "stop": args.stop, "dtype": args.dtype,
                      "seconds": seconds, "computed": computed, "needed": needed,
                      "work_ratio": computed / needed,
                      "ssim": rdip.ssim(results[0].image, clean) if clean is not None else None,
                      "threads": torch.get_num_threads(), "rdip": rdip.__file__}), flush=True)


if __name__ == "__main__":
    main()
