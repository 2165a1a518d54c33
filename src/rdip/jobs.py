"""Denoising image files: the use case behind ``rdip denoise`` (:func:`denoise_file`) and the
pieces ``rdip batch`` shares with it (:func:`load_input`, :func:`write_output`).

Inputs are read with :func:`rdip.images.files.read_image` and checked as the engine checks arrays;
outputs are written in the input's bit depth, together with their JSON record where there is one
(both complete before either replaces a file, :func:`rdip.images.files.atomic_write_all`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import FitConfig
from .images.files import (
    ImageInfo,
    atomic_write_all,
    check_output,
    check_target,
    image_writer,
    json_writer,
    read_image,
)
from .images.metrics import scores
from .images.noise import add_noise as corrupt
from .images.noise import noise_sigma
from .method.engine import auto_chunk, fit, resolve_device
from .method.inputs import check_image
from .method.outcome import FitResult
from .method.planning import plan
from .progress import progress_bar, progress_callback


@dataclass
class Input:
    """An image file read for denoising: ``image`` (``(H, W)`` or ``(H, W, 3)`` floats in [0, 1]),
    where it came from (``info``: path and sample type) and its clean reference, if any."""

    image: np.ndarray
    info: ImageInfo
    clean: np.ndarray | None = None


def load_input(path: str | Path, clean_path: str | Path | None = None) -> Input:
    """Read and check ``path`` (and its clean reference ``clean_path``, which must have its shape)."""
    image, info = read_image(path)
    check_image(image, str(path))
    clean = None
    if clean_path is not None:
        clean, _ = read_image(clean_path)
        if clean.shape != image.shape:
            raise ValueError(f"{clean_path}: the clean reference is {clean.shape}, {path} is "
                             f"{image.shape}: give the clean version of the same image")
        check_image(clean, str(clean_path))
    return Input(image, info, clean)


def write_output(output: Path, result: FitResult, info: ImageInfo, record: dict | None = None, *,
                 force: bool = False, allow_symlink: bool = True) -> None:
    """Write ``result.image`` to ``output`` in the input's sample type (``info``) and, with a
    ``record``, ``output``'s ``.json`` beside it; both complete before either replaces a file."""
    items = [image_writer(output, result.image, dtype=info.dtype, force=force, allow_symlink=allow_symlink)]
    if record is not None:
        items.append(json_writer(Path(output).with_suffix(".json"), record, force=force))
    atomic_write_all(items)


def check_outputs(input_path: Path, output: Path, force: bool) -> Path:
    """Check that ``output`` and its record ``.json`` can be written (before any work); return the
    record's path."""
    check_output(output, force)
    record = check_target(Path(output).with_suffix(".json"), force)
    if Path(input_path).resolve() == record.resolve():
        raise ValueError(f"{input_path}: the input would be overwritten by the output's record "
                         f"{record}; choose another output name")
    return record


def denoise_file(input_path: Path, output: Path, config: FitConfig, *, sigma: float | None = None,
                 add_noise: float | None = None, clean_path: Path | None = None, auto_tile: bool = True,
                 force: bool = False, progress: bool = True, log=print,
                 environment: dict | None = None) -> dict:
    """Denoise the image file ``input_path`` into ``output`` and write ``output``'s record (.json:
    configuration, σ and where it came from, the plan, scores, timings); return the record.

    ``sigma``: the noise level in [0, 1] units (None: estimated). ``add_noise``: treat the input as
    clean, add Gaussian noise of this σ (seeded ``config.seed``) and score against it;
    ``clean_path``: a clean reference to score against. ``auto_tile``: tile for memory where the
    configuration has no tiles (:func:`rdip.method.planning.plan`). ``log`` gets the plan's line.
    Nothing is written unless the whole fit succeeds.
    """
    if add_noise is not None and clean_path is not None:
        raise ValueError("give either add_noise or clean_path, not both")
    check_outputs(input_path, output, force)
    resolve_device(config.device)  # no CUDA: an error before reading anything
    started = time.perf_counter()
    source = load_input(input_path, clean_path)
    image, clean = source.image, source.clean
    if add_noise is not None:
        clean, image = image, corrupt(image, add_noise, seed=config.seed)
        sigma = add_noise if sigma is None else sigma
    sigma_source = "given"
    if sigma is None:
        sigma_source = "estimated (skimage.restoration.estimate_sigma)"
        try:
            sigma = noise_sigma(image)
        except ValueError:  # a flat image: only the noise rule needs σ
            if config.stop == "noise":
                raise
            sigma_source = "not estimated: the image is flat"
    read_s = time.perf_counter() - started
    how = plan(*image.shape[:2], 1 if image.ndim == 2 else image.shape[2], config, auto=auto_tile)
    log(how["message"])
    passes = -(-how["tiles"] // (config.chunk or auto_chunk(resolve_device(config.device))))
    with progress_bar(config.iters * passes, "denoise", enabled=progress) as bar:
        result = fit(image, how["config"], clean=clean, sigma=sigma, callback=progress_callback(bar))
    record = {
        "input": str(input_path), "output": str(output), "input_dtype": source.info.dtype,
        "shape": list(image.shape), "sigma": sigma, "sigma_source": sigma_source,
        "tile": {"tile": how["tile"], "overlap": how["overlap"]} if how["tile"] else None,
        "estimate": {k: how[k] for k in ("seconds", "memory_mb", "available_mb")},
        "add_noise": add_noise, "clean": str(clean_path) if clean_path else None,
        **result.to_dict(),
        "noisy_metrics": scores(np.clip(image, 0, 1), clean) if clean is not None else {},
        "timings": {"read_s": read_s, "fit_s": result.seconds, "total_s": time.perf_counter() - started},
        "environment": environment or {},
    }
    write_output(output, result, source.info, record, force=force)
    return record
