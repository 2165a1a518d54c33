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
from .images.metrics import panel_scores, scores
from .images.noise import add_noise as corrupt
from .images.noise import noise_sigma
from .method.devices import resolve_device
from .method.engine import fit
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
                 report: str | None = None, force: bool = False, allow_symlink: bool = False,
                 made=None) -> None:
    """Write ``result.image`` to ``output`` in the input's sample type (``info``) and, with a
    ``record``, ``output``'s ``.json`` beside it (with a ``report``, its HTML as ``.html``); all
    complete before any replaces a file. ``made``: see :func:`rdip.images.files.atomic_write_all`."""
    items = [image_writer(output, result.image, dtype=info.dtype, force=force, allow_symlink=allow_symlink)]
    if record is not None:
        items.append(json_writer(Path(output).with_suffix(".json"), record, force=force))
    if report is not None:
        html = check_target(Path(output).with_suffix(".html"), force)
        items.append((html, lambda tmp: Path(tmp).write_text(report, encoding="utf-8")))
    atomic_write_all(items, made=made)


def check_outputs(input_path: Path, output: Path, force: bool, report: bool = False) -> None:
    """Check that ``output``, its record ``.json`` (and its ``.html`` report) can be written,
    before any work, and that none of them is the input."""
    check_output(output, force)
    for suffix in (".json", ".html") if report else (".json",):
        extra = check_target(Path(output).with_suffix(suffix), force)
        if Path(input_path).resolve() == extra.resolve():
            raise ValueError(f"{input_path}: the input would be overwritten by the output's "
                             f"{suffix[1:].upper()} {extra}; choose another output name")


def denoise_file(input_path: Path, output: Path, config: FitConfig, *, sigma: float | None = None,
                 add_noise: float | None = None, clean_path: Path | None = None, auto_tile: bool = True,
                 force: bool = False, progress: bool = True, log=print,
                 environment: dict | None = None, report: bool = False) -> dict:
    """Denoise the image file ``input_path`` into ``output`` and write ``output``'s record (.json:
    configuration, σ and where it came from, the plan, scores, timings); return the record.

    ``sigma``: the noise level in [0, 1] units (None: estimated). ``add_noise``: treat the input as
    clean, add Gaussian noise of this σ (seeded ``config.seed``) and score against it;
    ``clean_path``: a clean reference to score against. ``auto_tile``: tile for memory where the
    configuration has no tiles (:func:`rdip.method.planning.plan`). ``log`` gets the plan's line.
    ``report``: also write ``output``'s ``.html`` (:func:`rdip.report.render_report`: the images
    side by side at full resolution, the scores and the record). Nothing is written unless the
    whole fit succeeds.
    """
    if add_noise is not None and clean_path is not None:
        raise ValueError("give either add_noise or clean_path, not both")
    check_outputs(input_path, output, force, report)
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
        except ValueError:  # a flat image or a pattern: only the noise rule needs σ
            if config.stop == "noise":
                raise
            sigma_source = "not estimated: the image is flat, noise-free or a pattern"
    read_s = time.perf_counter() - started
    how = plan(*image.shape[:2], 1 if image.ndim == 2 else image.shape[2], config, auto=auto_tile)
    log(how["message"])
    if how["warning"]:
        log(f"rdip: warning: {how['warning']}")
    with progress_bar(config.iters * how["tiles"], "denoise", enabled=progress) as bar:
        result = fit(image, how["config"], clean=clean, sigma=sigma, callback=progress_callback(
            bar, networks=how["tiles"], typical=how["iters"]))
    record = {
        "input": str(input_path), "output": str(output), "input_dtype": source.info.dtype,
        "input_orientation": source.info.orientation,
        "shape": list(image.shape), "sigma": sigma, "sigma_source": sigma_source,
        "tile": {"tile": how["tile"], "overlap": how["overlap"]} if how["tile"] else None,
        "estimate": {k: how[k] for k in ("seconds", "seconds_max", "memory_mb", "available_mb")},
        "add_noise": add_noise, "clean": str(clean_path) if clean_path else None,
        **result.to_dict(),
        "noisy_metrics": scores(np.clip(image, 0, 1), clean) if clean is not None else {},
        "timings": {"read_s": read_s, "fit_s": result.seconds, "total_s": time.perf_counter() - started},
        "environment": environment or {},
    }
    html = _report(input_path, image, clean, result, record) if report else None
    write_output(output, result, source.info, record, report=html, force=force)
    return record


def _report(input_path: Path, noisy: np.ndarray, clean, result: FitResult, record: dict) -> str:
    """The HTML report of one denoised file: noisy, denoised (and clean) side by side, the record."""
    from .report import Comparison, Panel, Table, render_report

    panels = [Panel("noisy input", noisy, panel_scores(record["noisy_metrics"])),
              Panel(f"rdip {result.config.preset}", result.image, panel_scores(result.metrics))]
    if clean is not None:
        panels.append(Panel("clean", clean))
    facts = [{"": k, "value": v} for k, v in (
        ("input", record["input"]), ("σ", f"{record['sigma']:.4g} = {record['sigma'] * 255:.3g}/255 "
                                          f"({record['sigma_source']})" if record["sigma"] else "—"),
        ("tiles", record["tile"] or "none (whole image)"), ("iterations", record["iters_run"]),
        ("stopped at", record["stopped_at"]), ("seconds", record["seconds"]),
        ("device", record["device"]))]
    config = [{"field": k, "value": v} for k, v in result.config.to_dict().items()]
    return render_report(f"rdip denoise: {Path(input_path).name}",
                         intro="Drag the divider to compare; zoom with the buttons. The full record "
                               "is in the .json beside this file.",
                         tables=[Table("The fit", facts), Table("Configuration", config)],
                         comparisons=[Comparison(Path(input_path).name, panels)], images_first=True)
