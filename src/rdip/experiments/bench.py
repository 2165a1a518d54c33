"""``rdip bench``: how fast the engine fits, on two workloads, on whichever device it runs.

- ``table2``: the paper's experiment at one seed, 15 unpadded 32×32 fits and 30 padded 40×40
  fits (edge and reflect), preset ``paper`` cut to ``iters`` iterations. Both sides run the same
  fits through :func:`rdip.method.engine.fit_many`: the naive side one image per call (a stack of
  one network: plain convolutions), the batched side all 45 in one call (two queues: 15 × 32² and
  30 × 40², in stacks of ``chunk`` slots). With ``stop="noise"`` (``--stop noise``, σ given) the
  networks stop on their own and the work ratio says what the slots saved.
- ``photo``: preset ``default`` on a noisy colour photograph (the centre of scikit-image's
  astronaut, σ = 25/255 given): 256×256 (225 tiles of 32×32), ``--quick`` 48×48 (4 tiles); once as
  it is and once with ``ensemble=4``.

Figures of merit: fit-iterations per second (one iteration of one network) over the iterations
the networks needed and over those computed; the model's arithmetic rate from the analytic FLOP
count (:func:`rdip.method.model.flops_per_iteration`) of the computed iterations, against the
machine's SGEMM rate (large fp32 ``torch.matmul``) measured in the same run; the work ratio
(network-iterations computed / needed, :attr:`rdip.method.outcome.FitResult.work`); seconds.
"""

from __future__ import annotations

import platform
import resource
import time

import numpy as np
import torch

from ..config import preset
from ..images.metrics import ssim
from ..images.noise import add_noise
from ..method.devices import resolve_device
from ..method.engine import fit_many
from ..method.model import flops_per_iteration
from ..method.outcome import LANES_PER_QUEUE
from ..method.tiling import grids

WORKLOADS = ("table2", "photo")
PHOTO_SIGMA = 25 / 255


def table2_workload(rng: np.random.Generator):
    """The Table II workload at one seed: (images, paddings), 15 × (none, edge, reflect)."""
    images = [np.clip(rng.random((32, 32, 3)), 0, 1) for _ in range(15)]
    paddings = ["none"] * 15 + ["edge"] * 15 + ["reflect"] * 15
    return images * 3, paddings


def photo(size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(clean, noisy)``: the centre ``size×size`` of scikit-image's astronaut (colour, [0, 1])
    and it with N(0, (25/255)²) noise, seed 0, not clipped."""
    from skimage import data

    image = data.astronaut() / 255.0
    top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    clean = image[top:top + size, left:left + size]
    return clean, add_noise(clean, PHOTO_SIGMA, seed=0)


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


def timed(images, configs, device, **kwargs) -> dict:
    """One :func:`fit_many` call, timed: ``seconds`` (all of it), ``steady_seconds`` (the set-up
    and first iterations of each queue left out: from the latest first look at its stacks, which
    run side by side, to its last look) and the network-iterations ``computed`` and ``needed`` in
    all and in the steady part."""
    marks: list[tuple[float, int, int, int]] = []  # per look: (time, stack, the stack's t, its slots)

    def clock(p) -> None:
        _sync(device)
        marks.append((time.perf_counter(), p.stack, p.t, len(p.indices)))

    _sync(device)
    started = time.perf_counter()
    results = fit_many(images, configs, callback=clock, **kwargs)
    _sync(device)
    ended = time.perf_counter()
    computed = sum(r.work["computed"] for r in results)
    needed = sum(r.work["needed"] for r in results)
    skip_s, skip_its, begin = 0.0, 0, started
    for queue in sorted({m[1] // LANES_PER_QUEUE for m in marks}):
        mine = [m for m in marks if m[1] // LANES_PER_QUEUE == queue]
        firsts = {}
        for m in mine:
            firsts.setdefault(m[1], m)
        skip_s += max(m[0] for m in firsts.values()) - begin
        skip_its += sum(m[2] * m[3] for m in firsts.values())
        begin = max(m[0] for m in mine)
    return {"results": results, "seconds": ended - started, "steady_seconds": ended - started - skip_s,
            "computed": computed, "needed": needed, "steady_computed": computed - skip_its}


def run_table2(iters: int, dev: torch.device, stop: str, log, changes: dict) -> dict:
    """The Table II workload: the naive loop against the batched engine."""
    rng = np.random.default_rng(0)
    images, paddings = table2_workload(rng)
    base = preset("paper", **{"iters": iters, "device": str(dev), "stop": stop, **changes})
    configs = [base.replace(padding=p, seed=k) for k, p in enumerate(paddings)]
    sigma = 0.05 if stop == "noise" else None  # [0, 1] units: some networks stop, at their own time
    flop = {"none": flops_per_iteration(32, 32), "edge": flops_per_iteration(40, 40)}
    per_net = [flop["none" if p == "none" else "edge"] for p in paddings]
    fit_many(images[:1] + images[15:16], [base.replace(iters=2), base.replace(iters=2, padding="edge")])
    log(f"table2, naive: {len(images)} fits one at a time, T = {iters} …")
    naive = [timed([img], [cfg], dev, sigma=sigma) for img, cfg in zip(images, configs)]
    log(f"table2, batched: {len(images)} fits in one call, T = {iters} …")
    batched = timed(images, configs, dev, sigma=sigma)
    naive_s = sum(n["steady_seconds"] for n in naive)
    naive_its = sum(n["steady_computed"] for n in naive)
    flop_done = sum(f * r.work["computed"] for f, r in zip(per_net, batched["results"]))
    rate = flop_done * batched["steady_computed"] / batched["computed"] / batched["steady_seconds"] / 1e9
    return {"naive_it_per_s": naive_its / naive_s,
            "batched_it_per_s": batched["steady_computed"] / batched["steady_seconds"],
            "speedup": (batched["steady_computed"] / batched["steady_seconds"]) / (naive_its / naive_s),
            "model_gflops_per_s": rate,
            "naive_model_gflops_per_s": sum(f * n["steady_computed"] for f, n in zip(per_net, naive)) / naive_s / 1e9,
            "batched_seconds": batched["seconds"], "work_ratio": batched["computed"] / batched["needed"],
            "fits": len(images), "iters": iters, "stop": stop,
            "table2_seconds_estimate": 45 * 2000 / (batched["steady_computed"] / batched["steady_seconds"]),
            "gflop_per_iteration_32": flops_per_iteration(32, 32) / 1e9,
            "gflop_per_iteration_40": flops_per_iteration(40, 40) / 1e9}


def run_photo(size: int, dev: torch.device, log, iters: int | None, changes: dict) -> dict:
    """The photograph workload: preset ``default`` (at most ``iters`` iterations: default the
    preset's), σ given, as it is and with ``ensemble=4``."""
    clean, noisy = photo(size)
    out = {"photo_size": size, "photo_sigma_255": 25, "photo_iters": iters or preset("default").iters}
    for name, ensemble in (("default", 1), ("ensemble4", 4)):
        cfg = preset("default", **{"device": str(dev), "ensemble": ensemble, **changes})
        cfg = cfg.replace(iters=iters) if iters else cfg
        flop = network_flops(size, size, cfg)
        out["photo_gflop_per_iteration"] = flop / 1e9
        log(f"photo, {name}: {size}×{size}, σ = 25/255 given …")
        run = timed([noisy], [cfg], dev, sigma=PHOTO_SIGMA)
        result = run["results"][0]
        networks = (sum(len(g) for g in grids(size, size, cfg.tile, cfg.tile_overlap, cfg.ensemble))
                    if cfg.tile and size > cfg.tile else cfg.ensemble)
        out.update({f"{name}_seconds": run["seconds"], f"{name}_networks": networks,
                    f"{name}_needed_it_per_s": run["needed"] / run["seconds"],
                    f"{name}_computed_it_per_s": run["computed"] / run["seconds"],
                    f"{name}_model_gflops_per_s": flop * run["computed"] / run["seconds"] / 1e9,
                    f"{name}_work_ratio": run["computed"] / run["needed"],
                    f"{name}_ssim": ssim(result.image, clean)})
    return out


def network_flops(height: int, width: int, cfg, channels: int = 3) -> float:
    """FLOP of one iteration of one network fitting a ``height×width`` image with ``cfg``: of its
    tile (``cfg.tile``; the whole image when no larger) with its padding, as the engine fits it."""
    tiled = bool(cfg.tile) and max(height, width) > cfg.tile
    h, w = (min(cfg.tile, height), min(cfg.tile, width)) if tiled else (height, width)
    pads = 2 * cfg.pad_width if cfg.padding != "none" else 0
    return flops_per_iteration(h + pads, w + pads, channels)


def run_bench(quick: bool = False, device: str = "auto", iters: int | None = None,
              dtype: str = "float32", workload: str = "table2", stop: str = "none",
              changes: dict | None = None, tf32: bool | None = None, log=print) -> dict:
    """Time ``workload`` (``table2``, ``photo`` or ``all``); return the JSON-ready record
    (docs/performance.md). ``iters``: the Table II fits' iterations (default 30, 6 with
    ``quick``); a cap on the photograph's (default the preset's 800). ``changes``: fields of
    :class:`rdip.FitConfig` set on every fit (e.g. ``capture``, ``formulation``, ``chunk``).
    ``tf32``: on CUDA, True lets convolutions and matrix products use TF32, False neither; None
    leaves PyTorch's defaults (TF32 in cuDNN's convolutions, not in matrix products).
    ``device``, ``iters`` and ``stop`` in ``changes`` win over the arguments."""
    changes = dict(changes or {})
    device, iters = changes.pop("device", device), changes.pop("iters", iters)
    stop = changes.get("stop", stop)
    dev = resolve_device(device)
    changes = {"dtype": dtype, **changes}
    if dev.type == "cuda" and tf32 is not None:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = tf32
    record: dict = {"changes": changes, "tf32": "default" if tf32 is None else tf32}
    if workload in ("table2", "all"):
        record.update(run_table2(max(2, iters or (6 if quick else 30)), dev, stop, log, changes))
    if workload in ("photo", "all"):
        record.update(run_photo(48 if quick else 256, dev, log, iters, changes))
    sgemm = sgemm_gflops(dev, 2048 if quick else 4096)
    record["sgemm_gflops_per_s"] = sgemm
    for key in [k for k in record if k.endswith("model_gflops_per_s")]:
        record[key.replace("model_gflops_per_s", "sgemm_fraction")] = record[key] / sgemm
    record.update({
        "workload": workload, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "device": str(dev) if dev.type != "cuda" else f"cuda ({torch.cuda.get_device_name(dev)})",
        "dtype": changes["dtype"], "threads": torch.get_num_threads(), "torch": torch.__version__,
        "machine": platform.processor() or platform.machine()})
    if dev.type == "cuda":
        record["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
    return record
