"""The photo workload of ``rdip bench`` for any version of rdip: the engine before the slots and after.

Runs preset ``default`` (σ = 25/255 given) on the centre ``--size`` pixels of scikit-image's
astronaut with whichever ``rdip`` Python imports, and prints one JSON line: seconds, SSIM, and the
work in network-iterations, counted by a callback so that it works with the engine before the
slots (3154c21: a stack runs until its last network stops) and after (``FitResult.work``). Before
and after are measured in one session by alternating the two source trees::

    git worktree add /tmp/rdip-before 3154c21
    for i in 1 2 3; do
      PYTHONPATH=/tmp/rdip-before/src python benchmarks/engine_before_after.py --size 96 --label before
      PYTHONPATH=src python benchmarks/engine_before_after.py --size 96 --label after
    done
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--ensemble", type=int, default=1)
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    sigma = 25 / 255
    clean, noisy = photo(args.size, sigma)
    cfg = rdip.preset("default", device="cpu", ensemble=args.ensemble)
    work = Work()
    started = time.perf_counter()
    result = rdip.fit(noisy, cfg, sigma=sigma, callback=work)
    seconds = time.perf_counter() - started
    if hasattr(result, "work"):
        computed, needed = result.work["computed"], result.work["needed"]
    else:  # before the slots: a stack that ended before iters ended where its last network stopped
        computed, needed = work.computed, sum(v for v in work.stops.values() if v is not None)
    print(json.dumps({"label": args.label, "size": args.size, "ensemble": args.ensemble,
                      "seconds": seconds, "computed": computed, "needed": needed,
                      "work_ratio": computed / needed, "ssim": rdip.ssim(result.image, clean),
                      "threads": torch.get_num_threads(), "rdip": rdip.__file__}), flush=True)


if __name__ == "__main__":
    main()
