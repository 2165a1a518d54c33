"""Large images: what a fit will cost, and fitting an image as overlapping tiles.

The network has no down-sampling, so one iteration costs ≈14 MFLOP per pixel and its activations
grow with the pixel count too (docs/performance.md). :func:`estimate` says what a fit of one image
will cost before it starts, and :func:`plan` decides whether to fit it whole or as tiles (the
preset's own tiles, or tiles small enough for the memory). Tiles are cut and blended by
:mod:`rdip.tiling` inside the engine; :func:`fit_tiled` is its one-image form.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from ..config import FitConfig
from .engine import Callback, FitResult, auto_chunk, fit_many, resolve_device
from .inputs import check_padding
from .model import (
    DECODER_LAYERS,
    ENCODER_LAYERS,
    _with_channels,
    flops_per_iteration,
)
from .tiling import positions

#: Assumed sustained rates in FLOP/s, from docs/performance.md and docs/scaling.md: 2 CPU cores
#: ran the model at 30–72 GFLOP/s on 32×32 and 40×40 images but 13 GFLOP/s on 256×256 (its
#: activations outgrow the caches), so 30 GFLOP/s is within ≈2× of all three; an H200 ran a
#: 512×512 image at ≈125 TFLOP/s (T = 2000 in 55.6 s) but small images at 9.3 TFLOP/s (kernel-launch
#: bound), so GPU times are optimistic for small images.
RATES = {"cpu": 30e9, "cuda": 100e12}
#: Bytes kept per activation element: the output, the copy autograd saves for tanh's backward,
#: and its gradient during the backward pass, 4 bytes each in float32.
ACTIVATION_BYTES = 3 * 4
#: Bytes per parameter with Adam: the weight, its gradient and Adam's two moments.
PARAMETER_BYTES = 4 * 4


def estimate(height: int, width: int, channels: int, config: FitConfig,
             device: str | torch.device = "cpu") -> dict:
    """What fitting one ``height×width×channels`` image with ``config`` will cost, roughly.

    Counts the padded target when ``config.padding`` pads. Returns ``gflop_per_iter``,
    ``gflop_total`` (for ``config.iters`` iterations), ``seconds`` (at :data:`RATES`) and
    ``memory_mb`` for one network: the ten layers' output activations × :data:`ACTIVATION_BYTES`
    plus parameters × :data:`PARAMETER_BYTES`. A fit of ``n`` stacked networks needs ``n`` times
    the memory; the time is the same per network. Order-of-magnitude figures, not measurements:
    on 2 CPU cores the peak resident memory of one fit grew by 23 MB (64×64 RGB) and 93 MB
    (128×128) against 54 and 138 MB estimated; on the H200 the Table II workload peaked at 2.6 GB
    (docs/performance.md) against 1.2 GB estimated for its largest group (30 × 40×40, cuDNN
    workspaces come on top).
    """
    if config.padding != "none":
        height, width = height + 2 * config.pad_width, width + 2 * config.pad_width
    flop = flops_per_iteration(height, width, channels)
    activations, parameters = 0, 0
    h, w = height, width
    for cin, cout, k in _with_channels(ENCODER_LAYERS, channels, first=True):
        h, w = h - k + 1, w - k + 1
        activations += cout * h * w
        parameters += cin * cout * k * k + cout
    for cin, cout, k in _with_channels(DECODER_LAYERS, channels, first=False):
        h, w = h + k - 1, w + k - 1
        activations += cout * h * w
        parameters += cin * cout * k * k + cout
    kind = resolve_device("auto").type if device == "auto" else torch.device(device).type
    memory = activations * ACTIVATION_BYTES + parameters * PARAMETER_BYTES
    return {"gflop_per_iter": flop / 1e9, "gflop_total": flop * config.iters / 1e9,
            "seconds": flop * config.iters / RATES.get(kind, RATES["cpu"]),
            "memory_mb": memory / 2**20}


#: Tile size and overlap of automatic tiling and the CLI's defaults (see :func:`fit_tiled`).
TILE, OVERLAP = 64, 16
#: The share of the free memory a fit may plan to use: the estimate is rough (within ≈2× of
#: measurements, :func:`estimate`) and the machine runs other things.
MEMORY_SHARE = 0.5


def available_memory_mb(device: str | torch.device = "cpu") -> float:
    """Free memory in MB: the CUDA device's (``torch.cuda.mem_get_info``) or the system's
    ``MemAvailable`` (``/proc/meminfo``; the physical pages available elsewhere)."""
    kind = resolve_device("auto") if device == "auto" else torch.device(device)
    if kind.type == "cuda":
        return torch.cuda.mem_get_info(kind)[0] / 2**20
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20


def plan(height: int, width: int, channels: int, config: FitConfig, tile: int | str | None = "auto",
         overlap: int | None = None, available_mb: float | None = None) -> dict:
    """Decide how to fit one ``height×width×channels`` image, before fitting it.

    ``tile``: ``"auto"`` follows the configuration, tiles of ``config.tile`` when it is set (the
    ``default`` preset's 32×32), else the whole image when its :func:`estimate` needs at most
    :data:`MEMORY_SHARE` of ``available_mb`` (default: :func:`available_memory_mb`), else tiles of
    :data:`TILE`; an int always tiles with that size; None never tiles and raises
    ``MemoryError`` (with the estimate and the option to use) when the image would not fit.
    ``available_mb=math.inf`` (free memory unknown, e.g. on a remote GPU) never tiles for memory.
    ``overlap`` (None: ``config.tile_overlap`` for the configuration's tiles, else
    :data:`OVERLAP`). Returns ``tile`` (None: whole image), ``overlap``, ``tiles``, ``seconds``,
    ``memory_mb`` (the networks of one pass), ``available_mb``, ``config`` (the configuration
    that fits the image this way: pass it to :func:`rdip.fit.fit`) and a one-line ``message``.
    """
    device = resolve_device("auto") if config.device == "auto" else torch.device(config.device)
    if available_mb is None:
        available_mb = available_memory_mb(device)
    budget = MEMORY_SHARE * available_mb
    whole = estimate(height, width, channels, config, device)
    chosen = tile
    if tile == "auto" and config.tile:
        chosen = config.tile
        overlap = config.tile_overlap if overlap is None else overlap
    elif tile == "auto":
        chosen = None if whole["memory_mb"] <= budget else TILE
    elif tile is None and whole["memory_mb"] > budget:
        raise MemoryError(
            f"a {height}×{width} image needs ≈{whole['memory_mb']:.0f} MB on {device.type}, "
            f"{available_mb:.0f} MB are free: fit it as tiles (--tile {TILE}, or tile={TILE})")
    overlap = OVERLAP if overlap is None else overlap
    if chosen is not None and max(height, width) <= chosen:
        chosen = None  # one tile: the whole image
    if chosen is not None and not 0 <= overlap < chosen:
        raise ValueError(f"the tile overlap ({overlap}) must be smaller than the tile ({chosen})")
    check_padding(min(chosen or height, height), min(chosen or width, width), config,
                  f"a {height}×{width} image" + (f" as {chosen}×{chosen} tiles" if chosen else ""))
    if chosen is None:
        count, memory, seconds = 1, whole["memory_mb"], whole["seconds"]
    else:
        count = len(positions(height, width, chosen, overlap))
        part = estimate(min(chosen, height), min(chosen, width), channels, config, device)
        per_pass = min(count, config.chunk or auto_chunk(device))
        memory, seconds = per_pass * part["memory_mb"], count * part["seconds"]
    how = "whole" if chosen is None else f"as {count} tiles of {chosen} (overlap {overlap})"
    free = "free memory unknown" if math.isinf(available_mb) else f"{available_mb:.0f} MB free"
    message = (f"{height}×{width}×{channels}, {how}: estimated ≈{seconds:.0f} s and "
               f"≈{memory:.0f} MB on {device.type} ({free})")
    fit_config = config.replace(tile=chosen or 0, tile_overlap=overlap if chosen else config.tile_overlap)
    return {"tile": chosen, "overlap": overlap, "tiles": count, "seconds": seconds,
            "memory_mb": memory, "available_mb": available_mb, "config": fit_config,
            "message": message}


def fit_tiled(noisy: np.ndarray, config: FitConfig, *, tile: int = TILE, overlap: int = OVERLAP,
              clean: np.ndarray | None = None, sigma: float | None = None,
              callback: Callback | None = None) -> FitResult:
    """Denoise ``noisy`` as overlapping ``tile×tile`` tiles fitted together, then blended: the
    engine's tiling (:func:`~rdip.fit.fit_many` with ``config.tile = tile``) under the memory
    tiles' defaults.

    Tile ``k`` is fitted with seed ``config.seed + k``: with one shared seed every tile would
    start from the same weights and the same ``z_noise`` pattern, and any artefact of that start
    would repeat with the tile period; distinct seeds make the tiles' errors independent, so the
    overlaps average them down. An image no larger than ``tile`` is one tile, fitted exactly as
    :func:`~rdip.fit.fit` would. The result holds the blended image, the tiles' mean loss per
    iteration (while all ran; with ``config.stop`` each tile stops on its own), ``metrics`` of
    the blend against ``clean`` (no ``history``: tiles are not scored one by one) and the tiles'
    summed fitting time in ``seconds``.

    Defaults, tile 64 and overlap 16: a 64×64 network costs ≈25 GFLOP per iteration and ≈54 MB
    (:func:`estimate`). Unpadded fits are worse within ≈4 pixels of their borders (mean absolute
    error 0.13 at the border against 0.07 inside, untiled run below), and with overlap 16 every
    pixel of an overlap is at least 8 pixels from the border of one of the two tiles.
    Measured (2 busy CPU cores, preset ``default`` cut to T = 200, 96×96 crop rows/columns 80–175 of
    Set12 image 01, σ = 0.1, seed 0; noisy input SSIM 0.586, PSNR 20.92 dB): untiled SSIM 0.578,
    PSNR 19.28; tile 64/overlap 16 (4 tiles, 32 pixels of overlap as the last tiles sit flush)
    0.600, 20.54; tile 48/overlap 16 (9 tiles) 0.609, 21.00; no seam visible. At T = 200 none of
    them has denoised yet (all at or below the noisy input), so this shows only that tiling cost no
    quality here (smaller tiles fit sooner); the comparison at the preset's own stopping point and on
    larger images is not yet measured.
    """
    config = config.replace(tile=tile, tile_overlap=overlap)
    return fit_many([noisy], config, clean=None if clean is None else [clean], sigma=sigma,
                    callback=callback)[0]
