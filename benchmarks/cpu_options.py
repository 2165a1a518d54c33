"""The CPU formulations of the engine's step, measured: which one the CPU should run (issue 21, item 5).

One iteration of a stack of slots (``rdip.method.slots.Slots.step``: Eq. 1, squared error,
backward, Adam; preset ``default``), on 32×32 targets (the default preset's tiles) and 40×40
(Table II's padded ones), for each formulation, timed in turns in one run (the median of
``--repeats`` rounds of ``--iters`` iterations after a warm-up):

- ``grouped``: one grouped convolution per layer (oneDNN), the engine's default on the CPU;
- ``bmm``: the slots' patches times their weights as one batched matrix product (``unfold``);
- ``no-mkldnn``: grouped convolutions with oneDNN switched off (PyTorch's own kernels);
- ``grouped, N slots``: other stack sizes (``chunk``);
- ``grouped, bf16 autocast``: the network in bf16 (``dtype="bfloat16"``; fast only on CPUs with
  bf16 instructions, e.g. AVX512-BF16), its FLOP rate against the fp32 SGEMM.

Each is given as network-iterations per second and as its arithmetic rate (the analytic FLOP
count) against the machine's fp32 SGEMM rate measured in the same run with the same threads::

    python benchmarks/cpu_options.py                            # PyTorch's threads (2 here)
    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/cpu_options.py
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import numpy as np
import torch

from rdip import preset
from rdip.experiments.bench import sgemm_gflops
from rdip.method.model import flops_per_iteration
from rdip.method.slots import Slots


def slots(size: int, n: int, formulation: str, dtype: str = "float32") -> Slots:
    rng = np.random.default_rng(0)
    cfg = preset("default", device="cpu", stop="none", formulation=formulation, dtype=dtype)
    targets = [rng.random((size, size, 3)) * 2 - 1 for _ in range(n)]
    return Slots(cfg, torch.device("cpu"), list(range(n)), targets, [None] * n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    sgemm = sgemm_gflops(torch.device("cpu"), 2048)
    print(f"threads {torch.get_num_threads()}, SGEMM {sgemm:.1f} GFLOP/s (2048², fp32)")
    modes = {"grouped": ("grouped", 2, True), "bmm": ("bmm", 2, True), "no-mkldnn": ("grouped", 2, False),
             "grouped, 1 slot": ("grouped", 1, True), "grouped, 4 slots": ("grouped", 4, True),
             "grouped, bf16 autocast": ("grouped", 2, True)}
    for size in (32, 40):
        stacks = {m: slots(size, n, f, "bfloat16" if "bf16" in m else "float32") for m, (f, n, _) in modes.items()}
        times = {m: [] for m in modes}
        for r in range(args.warmup + args.repeats):
            for m, (_, n, mkldnn) in modes.items():
                flags = contextlib.nullcontext() if mkldnn else torch.backends.mkldnn.flags(enabled=False)
                with flags:
                    started = time.perf_counter()
                    for _ in range(args.iters):
                        stacks[m].step()
                    if r >= args.warmup:
                        times[m].append((time.perf_counter() - started) / args.iters / n)
        for m, (_, n, _) in modes.items():
            per_net = statistics.median(times[m])
            rate = flops_per_iteration(size, size) / per_net / 1e9
            print(f"{size}×{size}, {m}: {1 / per_net:.1f} network-iterations/s, {rate:.1f} GFLOP/s, "
                  f"{rate / sgemm:.2f} of SGEMM", flush=True)


if __name__ == "__main__":
    main()
