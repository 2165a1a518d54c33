"""Where and how the networks run: the device, its free memory, and the engine's automatic
settings for it (slots per stack, how often the engine looks, stacks side by side).

Each automatic setting is a rule that can be stated, with what it was measured on:

- :func:`formulation_for` (``formulation = "auto"``): grouped convolutions on the CPU (``bmm``
  measured 0.37×, docs/performance.md) and, until measured there, on CUDA.
- :func:`auto_chunk`, the slots of a stack (``FitConfig.chunk = 0``): on the CPU 2 (measured
  fastest on 2 cores, docs/performance.md); on CUDA as many networks as :func:`network_bytes`
  says fit in :data:`MEMORY_SHARE` of the free memory, and no more than keep each stacked tensor
  under 2³¹ elements (:data:`MAX_ELEMENTS`).
- :func:`auto_sync` (``sync_every = 0``): every iteration on the CPU, every 10 on CUDA.
- :func:`shrink_floor`: a dry queue's stack shrinks down to 1 slot on the CPU, 16 on CUDA.
- :func:`lanes_for`: on the CPU one stack per torch thread.
- :func:`native_bf16`, :func:`check_dtype`: ``dtype = "bfloat16"`` is refused on a CPU without
  bf16 instructions (AVX512-BF16, AMX-BF16 or Arm's BF16), where it runs tens to hundreds of times
  slower than float32 (a 512² matrix product 46× on the AVX2-only development CPU, 2026-12-08).
"""

from __future__ import annotations

import functools
import math
import os

import torch

from ..config import FitConfig
from .hourglass import footprint as hourglass_footprint
from .model import footprint

#: Bytes kept per activation element: the output, the copy autograd saves for tanh's backward,
#: and its gradient during the backward pass, 4 bytes each in float32.
ACTIVATION_BYTES = 3 * 4
#: Bytes per parameter with Adam: the weight, its gradient, Adam's two moments and a fifth for
#: the temporaries of the update (the written-out one's denominator, or autocast's bfloat16 copy).
PARAMETER_BYTES = 5 * 4
#: Bytes per element of the patches of the ``bmm`` formulation: kept for the backward pass, and
#: their gradient.
PATCH_BYTES = 2 * 4
#: The share of the free memory a fit may plan to use: the estimate is rough (within ≈2× of
#: measurements, :func:`rdip.method.planning.estimate`) and the machine runs other things.
MEMORY_SHARE = 0.5
#: The most elements a stacked tensor may have: 32-bit indexing, which some GPU kernels need.
MAX_ELEMENTS = 2**31 - 1
#: Slots per stack on the CPU (2 cores: stacks of 2 were fastest, of 15 slower than one at a time).
CPU_CHUNK = 2


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without CUDA → an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("CUDA is not available on this machine: use device 'cpu' or 'auto'")
    return torch.device(name)


#: Set to ``1`` or ``0`` to say whether the CPU has native bf16 instead of asking it (tests, and a
#: user who wants a slow bf16 run anyway).
NATIVE_BF16_ENV = "RDIP_NATIVE_BF16"
#: CPU flags (``/proc/cpuinfo``) of native bf16 arithmetic: x86's AVX512-BF16 and AMX-BF16, Arm's BF16.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively: on CUDA ``torch.cuda.is_bf16_supported()``;
    on a CPU its flags (:data:`BF16_FLAGS`, read from ``/proc/cpuinfo``; where that file is
    missing, a 256² matrix product in bf16 at most 4× slower than in float32). The environment
    variable :data:`NATIVE_BF16_ENV` (``1``/``0``) overrides it."""
    told = os.environ.get(NATIVE_BF16_ENV, "").strip()
    if told in ("0", "1"):
        return told == "1"
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return True
    return _cpu_bf16()


@functools.cache
def _cpu_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = {word for line in f if line.lower().startswith(("flags", "features"))
                     for word in line.split(":", 1)[1].split()}
        return bool(flags & BF16_FLAGS)
    except (OSError, IndexError):
        pass
    import time

    def seconds(dtype):
        a = torch.ones(256, 256, dtype=dtype)
        a @ a
        started = time.perf_counter()
        for _ in range(3):
            a @ a
        return time.perf_counter() - started

    return seconds(torch.bfloat16) <= 4 * seconds(torch.float32)


def check_dtype(dtype: str, device: torch.device) -> None:
    """Refuse ``dtype = "bfloat16"`` (a :class:`FitConfig` dtype) on a device without native bf16
    (:func:`native_bf16`), with what to do."""
    if dtype == "bfloat16" and not native_bf16(device):
        where = "this CPU has no bf16 instructions (AVX512-BF16, AMX or Arm BF16)" if device.type == "cpu" \
            else f"{device} does not support bf16"
        raise ValueError(f"dtype bfloat16: {where}, so it would run tens to hundreds of times slower than "
                         f"float32; use dtype float32 (the default), or set {NATIVE_BF16_ENV}=1 to run it anyway")


def available_memory_mb(device: str | torch.device = "cpu") -> float:
    """Free memory in MB: the CUDA device's (``torch.cuda.mem_get_info``, plus what PyTorch's own
    cache holds unused) or the system's ``MemAvailable`` (``/proc/meminfo``)."""
    kind = resolve_device("auto") if device == "auto" else torch.device(device)
    if kind.type == "cuda":
        cached = torch.cuda.memory_reserved(kind) - torch.cuda.memory_allocated(kind)
        return (torch.cuda.mem_get_info(kind)[0] + cached) / 2**20
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20


def network_bytes(height: int, width: int, channels: int = 3, formulation: str = "grouped",
                  element_bytes: int = 4) -> float:
    """Memory one network of a stack needs while it trains on a ``height×width×channels``
    (padded) target: its activations × :data:`ACTIVATION_BYTES`, parameters ×
    :data:`PARAMETER_BYTES` and, for ``bmm``, patches × :data:`PATCH_BYTES` (each scaled by
    ``element_bytes``/4: 8 for float64). An estimate (docs/performance.md), not a measurement."""
    f = footprint(height, width, channels, formulation)
    total = f["activations"] * ACTIVATION_BYTES + f["parameters"] * PARAMETER_BYTES + f["patches"] * PATCH_BYTES
    return total * element_bytes / 4


def formulation_for(cfg: FitConfig, device: torch.device) -> str:
    """``cfg.formulation``, or for ``auto`` the one measured faster on the device's kind:
    grouped convolutions on the CPU (docs/performance.md) and, until measured there, on CUDA."""
    return "grouped" if cfg.formulation == "auto" else cfg.formulation


def chunk_for(cfg: FitConfig, device: torch.device, height: int, width: int, channels: int,
              available_mb: float | None = None) -> int:
    """Slots per stack for networks of ``cfg`` on ``height×width×channels`` (padded) targets:
    ``cfg.chunk``, or :func:`auto_chunk` with the configuration's formulation and dtype."""
    if cfg.chunk:
        return cfg.chunk
    if cfg.network == "hourglass":
        return hourglass_chunk(cfg, device, height, width, channels, available_mb)
    return auto_chunk(device, height, width, channels, formulation_for(cfg, device),
                      8 if cfg.dtype == "float64" else 4, available_mb)


def auto_chunk(device: torch.device, height: int = 32, width: int = 32, channels: int = 3,
               formulation: str = "grouped", element_bytes: int = 4,
               available_mb: float | None = None) -> int:
    """Slots per stack when ``chunk=0``, for networks on ``height×width×channels`` targets.

    CPU: :data:`CPU_CHUNK`. CUDA: as many networks as fit in :data:`MEMORY_SHARE` of
    ``available_mb`` (default: :func:`available_memory_mb`; ``math.inf``: unknown, memory no
    bound) by :func:`network_bytes`, capped so
    that no stacked tensor exceeds :data:`MAX_ELEMENTS`; at least 1. On a GPU a stack is
    launch-bound until it is large (docs/performance.md), so the largest that fits is taken
    (an H200 holds ≈1,400 networks of 32×32 tiles: a 768×512 photograph's in one stack).
    """
    if device.type != "cuda":
        return CPU_CHUNK
    if available_mb is None:
        available_mb = available_memory_mb(device)
    by_index = MAX_ELEMENTS // footprint(height, width, channels, formulation)["largest"]
    if not math.isfinite(available_mb):  # unknown
        return max(1, by_index)
    per = network_bytes(height, width, channels, formulation, element_bytes)
    return max(1, min(int(MEMORY_SHARE * available_mb * 2**20 // per), by_index))


def hourglass_bytes(cfg: FitConfig, height: int, width: int, channels: int = 3) -> float:
    """Memory one hourglass of ``cfg`` needs while it trains on a ``height×width×channels``
    target: its activations × :data:`ACTIVATION_BYTES` and parameters × :data:`PARAMETER_BYTES`
    (:func:`rdip.method.hourglass.footprint`), like :func:`network_bytes` for Table I."""
    f = hourglass_footprint(height, width, channels, cfg.net_depth, cfg.net_width, cfg.net_skip, cfg.net_input)
    return f["activations"] * ACTIVATION_BYTES + f["parameters"] * PARAMETER_BYTES


def hourglass_chunk(cfg: FitConfig, device: torch.device, height: int, width: int, channels: int,
                    available_mb: float | None = None) -> int:
    """Slots per stack of hourglass networks: on the CPU :data:`CPU_CHUNK`; on CUDA as many as
    :func:`hourglass_bytes` fit in :data:`MEMORY_SHARE` of the
    free memory (at most 64: one image's ensemble or a batch of same-shape images)."""
    if device.type != "cuda":
        return CPU_CHUNK
    per = hourglass_bytes(cfg, height, width, channels)
    if available_mb is None:
        available_mb = available_memory_mb(device)
    if not math.isfinite(available_mb):
        return 64
    return max(1, min(64, int(MEMORY_SHARE * available_mb * 2**20 // per)))


def auto_sync(device: torch.device) -> int:
    """Iterations between two looks at the slots when ``sync_every=0``: every iteration on the
    CPU (reading a value costs nothing there), every 10 on CUDA (a look waits for the device)."""
    return 10 if device.type == "cuda" else 1


def shrink_floor(device: torch.device) -> int:
    """The smallest size a dry queue's stack shrinks to: 1 on the CPU (time grows with the slots);
    16 on CUDA, where small stacks are launch-bound (on an H200 one 32×32 network took 3.2 ms an
    iteration, 15 stacked 6.2 ms, docs/performance.md) and every new size costs cuDNN's autotuning
    and, with ``capture="graph"``, a capture."""
    return 16 if device.type == "cuda" else 1


def lanes_for(device: torch.device, jobs: int, slots: int) -> int:
    """Stacks run side by side for a queue of ``jobs`` networks in stacks of ``slots``: on the CPU
    one per torch thread (each stack on one thread: the small convolutions divide badly between
    threads), as many as the queue fills; one on CUDA (a stack there holds what memory allows)."""
    if device.type != "cpu":
        return 1
    return max(1, min(torch.get_num_threads(), -(-jobs // slots)))
