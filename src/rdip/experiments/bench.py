"""``rdip bench``: the naive one-image loop against the batched engine, on the Table II workload.

The workload is the paper's experiment at one seed: 15 unpadded 32×32 fits and 30 padded 40×40
fits (edge and reflect). Both sides run the same fits through :func:`rdip.method.engine.fit_many`: the naive
side one image per call (a stack of one network: plain convolutions), the batched side all 45 in
one call (two groups: 15 × 32² and 30 × 40²). The figure of merit is fit-iterations per second:
one iteration of one network. The machine's SGEMM rate (large fp32 ``torch.matmul``) is measured
in the same run, and the model's arithmetic rate comes from the analytic FLOP count
:func:`rdip.method.model.flops_per_iteration`.
"""

from __future__ import annotations

import platform
import resource
import time

import numpy as np
import torch

from ..config import preset
from ..method.engine import fit_many, resolve_device
from ..method.model import flops_per_iteration


def workload(rng: np.random.Generator):
    """The Table II workload at one seed: (images, paddings), 15 × (none, edge, reflect)."""
    images = [np.clip(rng.random((32, 32, 3)), 0, 1) for _ in range(15)]
    paddings = ["none"] * 15 + ["edge"] * 15 + ["reflect"] * 15
    return images * 3, paddings


def sgemm_gflops(device: torch.device, size: int = 4096, repeats: int = 5) -> float:
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    for _ in range(2):
        a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(images, configs, device) -> float:
    """Seconds spent in iterations 2…T of every group (set-up and the first iteration excluded,
    so both sides are compared per iteration)."""
    marks: dict[tuple, float] = {}

    def clock(p) -> None:
        if p.t in (1, p.iters):
            _sync(device)
            marks[(tuple(p.indices), p.t)] = time.perf_counter()

    fit_many(images, configs, callback=clock)
    starts = {k[0]: v for k, v in marks.items() if k[1] == 1}
    return sum(v - starts[k[0]] for k, v in marks.items() if k[1] != 1)


def run_bench(quick: bool = False, device: str = "auto", iters: int | None = None,
              dtype: str = "float32", log=print) -> dict:
    """Time both sides; return the JSON-ready record (see ``docs/performance.md``)."""
    dev = resolve_device(device)
    iters = max(2, iters or (6 if quick else 30))
    rng = np.random.default_rng(0)
    images, paddings = workload(rng)
    base = preset("paper", iters=iters, device=str(dev), dtype=dtype)
    configs = [base.replace(padding=p, seed=k) for k, p in enumerate(paddings)]
    flops = sum(flops_per_iteration(40, 40) if p != "none" else flops_per_iteration(32, 32)
                for p in paddings)
    # warm-up: one short fit of each shape (allocator, kernels, cuDNN autotuning)
    fit_many(images[:1] + images[15:16], [base.replace(iters=2), base.replace(iters=2, padding="edge")])
    fit_many(images[:15], [c.replace(iters=2) for c in configs[:15]])
    log(f"naive: {len(images)} fits one at a time, T = {iters} …")
    naive = sum(_timed([img], [cfg], dev) for img, cfg in zip(images, configs))
    log(f"batched: {len(images)} fits in one call, T = {iters} …")
    batched = _timed(images, configs, dev)
    sgemm = sgemm_gflops(dev, 2048 if quick else 4096)
    fit_its = len(images) * (iters - 1)  # timed iterations
    model_rate = flops * (iters - 1) / batched / 1e9
    record = {
        "naive_it_per_s": fit_its / naive, "batched_it_per_s": fit_its / batched,
        "speedup": naive / batched, "model_gflops_per_s": model_rate,
        "naive_model_gflops_per_s": flops * (iters - 1) / naive / 1e9,
        "sgemm_gflops_per_s": sgemm, "sgemm_fraction": model_rate / sgemm,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "device": str(dev) if dev.type != "cuda" else f"cuda ({torch.cuda.get_device_name(dev)})",
        "fits": len(images), "iters": iters, "dtype": dtype, "threads": torch.get_num_threads(),
        "table2_seconds_estimate": 45 * 2000 / (fit_its / batched),
        "gflop_per_iteration_32": flops_per_iteration(32, 32) / 1e9,
        "gflop_per_iteration_40": flops_per_iteration(40, 40) / 1e9,
        "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
    }
    if dev.type == "cuda":
        record["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
    return record
