"""Planning a fit: what it will cost, and whether to fit an image whole or as tiles.

The network has no down-sampling, so one iteration costs ≈14 MFLOP per pixel and its activations
grow with the pixel count too (docs/performance.md). :func:`estimate` says what a fit of one image
will cost before it starts, and :func:`plan` decides whether to fit it whole or as tiles (the
preset's own tiles, or tiles small enough for the memory). Tiles are cut and blended by
:mod:`rdip.method.tiling` inside the engine.
"""

from __future__ import annotations

import math

import torch

from ..config import MEMORY_TILE, FitConfig
from . import hourglass
from .devices import (
    MEMORY_SHARE,
    available_memory_mb,
    chunk_for,
    hourglass_bytes,
    lanes_for,
    network_bytes,
    resolve_device,
)
from .inputs import check_padding
from .model import flops_per_iteration
from .tiling import grids

#: Sustained rates in FLOP/s, calibrated by measured fits (benchmarks/cost.py, results/cost/). On
#: 2 CPU cores (AMD EPYC with AVX-512, SGEMM ≈220 GFLOP/s, idle; 2026-12-01) the slot engine's
#: two lanes of 2 slots ran the default preset at ≈140 GFLOP/s: with the noise rule, 64×64 and
#: 128×128 colour crops took 15.8 and 72 s against 14.6 and 80 s estimated; a single network
#: (32×32: 2.4 s against 1.6 s) runs slower than the stacked rate. On the earlier machine (SGEMM
#: ≈110 GFLOP/s, the engine before the slots) the same crops ran at ≈60 GFLOP/s: on a slower
#: CPU expect up to twice the estimate. The GPU figure is an H200's on a 512×512 image
#: (T = 2000 in 55.6 s, docs/performance.md); small images ran at 9.3 TFLOP/s there
#: (kernel-launch bound), so GPU times are optimistic for small images.
RATES = {"cpu": 140e9, "cuda": 100e12}
#: Iterations a network runs, typically, under an early-stopping rule (``FitConfig.stop``; with
#: the slots each network runs only its own), with :data:`RATES`: calibrated on the same runs (the
#: default preset on photograph crops with σ = 25/255, σ estimated: the tiles stopped after a
#: median of 171 and 211 iterations, the last of a pair after ≈180–230). Per fitting range:
#: in [-1, 1] (the ``default`` preset since 2026-11-26) calibrated the same way on its 64×64 and
#: 128×128 runs (results/cost/cpu-2cores-default-symmetric.json: 36 s and 168 s measured, 34 s
#: and 186 s estimated with 150; σ estimated from clipped PNGs, so the tiles stop late; with σ
#: given they stop about twice as early, docs/comparison.md §4); inside [-0.9, 0.9] (2026-12-01)
#: the same crops' tiles stopped after a median of 131 and 126 iterations.
TYPICAL_STOP = {"unit": 215, "symmetric": 150}
#: The hourglass (``network = "hourglass"``, one network per image) on 2 CPU cores: ≈48 and ≈64
#: GFLOP/s by :func:`rdip.method.hourglass.flops_per_iteration` (preset ``hourglass``, scikit-image's
#: astronaut, 64×64 and 128×128 colour crops, σ = 25/255 estimated: 5.4 s / 135 iterations and
#: 43.5 s / 364 iterations; AVX2-only AMD EPYC, 2026-12-08). Its noise-rule stop grows with the
#: image: :data:`HOURGLASS_STOP` iterations at 64×64, times (pixels / 64²) ** :data:`HOURGLASS_STOP_POWER`
#: (fitted to those two runs: 135 → 357 at 128×128), and later at a lower ``stop_ratio``: times
#: stop_ratio ** -:data:`HOURGLASS_RATIO_POWER` (the screen's 8 crops of 64×64, σ given: a mean of
#: 157, 232 and 320 iterations at 1, 0.8 and 0.6). An estimate, not a law.
HOURGLASS_RATES = {"cpu": 55e9, "cuda": 100e12}
HOURGLASS_STOP = 150
HOURGLASS_STOP_POWER = 0.7
HOURGLASS_RATIO_POWER = 1.5


def estimate(height: int, width: int, channels: int, config: FitConfig,
             device: str | torch.device = "cpu") -> dict:
    """What fitting one ``height×width×channels`` image with ``config`` will cost, roughly.

    Counts the padded target when ``config.padding`` pads. Returns ``gflop_per_iter``,
    ``gflop_total`` (for ``config.iters`` iterations), ``iters`` (:func:`expected_iters`: what a
    network typically runs), ``seconds`` (at :data:`RATES`, for those ``iters``), ``seconds_max`` (for all ``config.iters``) and ``memory_mb`` for one
    network (:func:`rdip.method.devices.network_bytes`: its activations and parameters). A fit
    of ``n`` stacked networks needs ``n`` times the memory; the time is the same per network.
    Order-of-magnitude figures, not measurements: on 2 CPU cores the peak resident memory of one fit grew by 23 MB (64×64 RGB) and 93 MB
    (128×128) against 54 and 138 MB estimated; on the H200 the Table II workload peaked at 2.6 GB
    (docs/performance.md) against 1.2 GB estimated for its largest group (30 × 40×40, cuDNN
    workspaces come on top).
    """
    height, width = _padded(height, width, config)
    kind = resolve_device("auto").type if device == "auto" else torch.device(device).type
    if config.network == "hourglass":
        shape = {"depth": config.net_depth, "width_ch": config.net_width, "skip": config.net_skip,
                 "input_channels": config.net_input}
        flop = hourglass.flops_per_iteration(height, width, channels, **shape)
        memory = hourglass_bytes(config, height, width, channels)
        rate = HOURGLASS_RATES.get(kind, HOURGLASS_RATES["cpu"])
    else:
        flop = flops_per_iteration(height, width, channels)
        memory = network_bytes(height, width, channels)
        rate = RATES.get(kind, RATES["cpu"])
    iters = expected_iters(config, height * width)
    return {"gflop_per_iter": flop / 1e9, "gflop_total": flop * config.iters / 1e9, "iters": iters,
            "seconds": flop * iters / rate, "seconds_max": flop * config.iters / rate, "memory_mb": memory / 2**20}


def _padded(height: int, width: int, config: FitConfig) -> tuple[int, int]:
    """The size of the target a ``height×width`` image is fitted as: with its padding."""
    pads = 2 * config.pad_width if config.padding != "none" else 0
    return height + pads, width + pads


def expected_iters(config: FitConfig, pixels: int = 32 * 32) -> int:
    """The iterations a fit with ``config`` of a target of ``pixels`` typically runs: all ``iters``
    without early stopping, else at most :data:`TYPICAL_STOP` for its fitting range (Table I) or
    the hourglass's stop for its size (:data:`HOURGLASS_STOP`)."""
    if config.stop == "none":
        return config.iters
    if config.network == "hourglass":
        return min(config.iters, round(HOURGLASS_STOP * (pixels / 64**2) ** HOURGLASS_STOP_POWER
                                       * config.stop_ratio ** -HOURGLASS_RATIO_POWER))
    return min(config.iters, TYPICAL_STOP[config.range])


def plan(height: int, width: int, channels: int, config: FitConfig, *, auto: bool = True,
         available_mb: float | None = None) -> dict:
    """Decide how to fit one ``height×width×channels`` image, before fitting it.

    The configuration's tiles (``config.tile``, ``config.tile_overlap``; the ``default`` preset's
    32×32) are used when it has them, the whole image otherwise. Without tiles of its own and with
    ``auto``, an image whose :func:`estimate` needs more than :data:`MEMORY_SHARE` of
    ``available_mb`` (default: :func:`available_memory_mb`; ``math.inf``: unknown, never tile)
    is fitted as :data:`rdip.config.MEMORY_TILE` tiles with the configuration's overlap; without
    ``auto`` it is a ``MemoryError`` (with the estimate and the option to use). Returns ``tile``
    (None: whole image), ``overlap``, ``tiles`` (the networks: tiles of every ensemble fit),
    ``iters`` (what each typically runs, :func:`expected_iters`),
    ``seconds``, ``memory_mb`` (the networks of one
    pass), ``available_mb``, ``config`` (the configuration that fits the image this way: pass it
    to :func:`rdip.fit`), a one-line ``message``, and a ``warning`` (None unless the fit is
    estimated over :data:`SLOW_SECONDS`). ``seconds`` is the typical time, ``seconds_max`` the
    time if no network stops before ``config.iters``.
    """
    device = resolve_device("auto") if config.device == "auto" else torch.device(config.device)
    if available_mb is None:
        available_mb = available_memory_mb(device)
    whole = estimate(height, width, channels, config, device)
    if not config.tile and whole["memory_mb"] > MEMORY_SHARE * available_mb:
        if not auto:
            raise MemoryError(
                f"a {height}×{width} image needs ≈{whole['memory_mb']:.0f} MB on {device.type}, "
                f"{available_mb:.0f} MB are free: fit it as tiles (--tile {MEMORY_TILE}, or "
                f"tile={MEMORY_TILE})")
        config = config.replace(tile=MEMORY_TILE)
    if config.tile and max(height, width) <= config.tile:
        config = config.replace(tile=0)  # one tile: the whole image
    tile, overlap = config.tile or None, config.tile_overlap
    check_padding(min(tile or height, height), min(tile or width, width), config,
                  f"a {height}×{width} image" + (f" as {tile}×{tile} tiles" if tile else ""))
    part = whole if tile is None else estimate(min(tile, height), min(tile, width), channels, config, device)
    count = (config.ensemble if tile is None else
             sum(len(g) for g in grids(height, width, tile, overlap, config.ensemble)))
    side = _padded(min(tile or height, height), min(tile or width, width), config)
    slots = chunk_for(config, device, *side, channels, available_mb=available_mb)
    memory = min(count, slots * lanes_for(device, count, slots)) * part["memory_mb"]  # the networks in memory
    seconds, most = count * part["seconds"], count * part["seconds_max"]
    how = "whole" if tile is None else f"as {count} tiles of {tile} (overlap {overlap})"
    if config.ensemble > 1:
        how += f", {config.ensemble} fits averaged"
    free = "free memory unknown" if math.isinf(available_mb) else f"{available_mb:.0f} MB free"
    cap = f", at most ≈{_duration(most)} if no network stops early" if most > 1.5 * seconds else ""
    message = (f"{height}×{width}×{channels}, {how}: estimated ≈{_duration(seconds)}{cap}, "
               f"≈{memory:.0f} MB on {device.type} ({free})")
    return {"tile": tile, "overlap": overlap, "tiles": count, "iters": part["iters"], "seconds": seconds,
            "seconds_max": most,
            "memory_mb": memory, "available_mb": available_mb, "config": config,
            "message": message, "warning": _slow(seconds, device)}


#: Runs estimated longer than this get a warning that says how to make them faster.
SLOW_SECONDS = 600


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200 \
        else f"{seconds / 3600:.1f} h"


def _slow(seconds: float, device: torch.device) -> str | None:
    """A warning for a fit estimated over :data:`SLOW_SECONDS`, with the ways to make it faster."""
    if seconds <= SLOW_SECONDS:
        return None
    faster = [] if device.type == "cuda" else ["on a GPU (--device cuda), ~100× faster"]
    faster += ["spread over machines (rdip batch --backend ray)", "or denoise a smaller crop first"]
    return f"this will take ≈{_duration(seconds)} on {device.type}; to make it faster: {', '.join(faster)}"
