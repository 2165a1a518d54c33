"""Denoise many image files into a folder, resumably: ``rdip batch``.

Images of one shape are fitted together (one :func:`~rdip.fit.fit_many` call per chunk of at most
``chunk`` images, :data:`CHUNK` by default), each output is written atomically in its input's bit depth, and then one JSON line
per image is appended to ``OUT/manifest.jsonl`` and synced to disk. The manifest is the record of
what is finished: a rerun skips every input whose latest row is ``done`` and whose output exists,
and redoes the rest (error rows included). A run killed at any moment (even ``kill -9``) loses only
the chunks in flight; a half-written manifest line is ignored and stale temporary files are removed.
The chunks are fitted in this process (backend ``local``) or as Ray tasks on one machine or a
cluster (backend ``ray``, :mod:`rdip.distributed`); either way this process reads the images and
writes the outputs and the manifest, so both backends write the same rows.
Run one batch per output folder at a time (two runs on one manifest would redo each other's work).
Outputs are named ``stem + suffix + extension`` of their input. Every image gets the same seed, so
an output does not depend on which other images shared its batch.
"""

from __future__ import annotations

import glob
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from functools import partial
from pathlib import Path

import click

from .config import PRESETS, FitConfig, preset
from .distributed import import_ray, ray_runner
from .fit import check_image, fit_many, resolve_device
from .io import SUFFIXES, read_image, write_image
from .progress import progress_bar
from .tiles import OVERLAP, plan

#: Images per fit_many call (local) or Ray task at most: what a kill can lose, per chunk in flight.
CHUNK = 16
MANIFEST = "manifest.jsonl"
BACKENDS = ("local", "ray")


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files, folders (their image files, sorted, hidden ones skipped) and glob patterns → paths."""
    paths: list[Path] = []
    for item in inputs:
        if any(c in item for c in "*?["):
            found = [Path(p) for p in sorted(glob.glob(item)) if Path(p).is_file()]
        elif Path(item).is_dir():
            found = sorted(p for p in Path(item).iterdir() if p.is_file())
        elif Path(item).exists():
            paths.append(Path(item))  # named explicitly: a bad format becomes an error row
            continue
        else:
            raise FileNotFoundError(f"{item}: no such file or folder")
        paths += [p for p in found if p.suffix.lower() in SUFFIXES and not p.name.startswith(".")]
    unique = {p.resolve(): None for p in paths}
    if not unique:
        raise ValueError(f"no image files ({', '.join(SUFFIXES)}) found in {' '.join(inputs)}")
    return list(unique)


def read_manifest(path: Path) -> dict[str, dict]:
    """The latest row per input of a manifest; lines cut short by a kill are ignored."""
    rows: dict[str, dict] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
                rows[row["input"]] = row
            except (ValueError, KeyError, TypeError):
                continue
    return rows


def _append(path: Path, row: dict) -> None:
    """Append one JSON line and sync it to disk (after a line cut short, start a new line)."""
    with open(path, "a+b") as f:
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")
        f.write((json.dumps(row) + "\n").encode())
        f.flush()
        os.fsync(f.fileno())


def _sync(path: Path) -> None:
    """Force a written output to disk before its manifest row claims it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _load(path: Path, clean_dir: Path | None):
    """``(image, info, clean)`` for one input; ``clean`` when ``clean_dir`` holds its name."""
    image, info = read_image(path)
    check_image(image, str(path))
    clean = None
    if clean_dir is not None and (Path(clean_dir) / path.name).is_file():
        clean, _ = read_image(Path(clean_dir) / path.name)
        if clean.shape != image.shape:
            raise ValueError(f"{Path(clean_dir) / path.name}: shape {clean.shape}, the input {image.shape}")
    return image, info, clean


def _fit(images: list, cleans: list, configs: dict) -> list:
    """Fit one chunk of same-shape images in one :func:`~rdip.fit.fit_many` call with their
    shape's configuration (:func:`rdip.tiles.plan`: whole, or as tiles); one result per image."""
    return fit_many(images, configs[images[0].shape], clean=cleans)


class _InProcess:
    """The local backend: each chunk fitted in this process in turn (the interface of
    :class:`rdip.distributed.RayRunner`)."""

    slots = 1
    memory_mb = None  # this machine's free memory, measured by rdip.tiles.plan

    def __init__(self, device: str):
        self.device = device

    @staticmethod
    def run(fit: Callable, jobs: Iterable[tuple]) -> Iterator[tuple]:
        """``(key, fit(images, cleans))`` for each ``(key, images, cleans)``, or ``(key, exception)``."""
        for key, images, cleans in jobs:
            try:
                outcome = fit(images, cleans)
            except Exception as e:  # noqa: BLE001  (one failed fit must not stop the others)
                outcome = e
            yield key, outcome


def run_batch(inputs: list[str], out_dir: Path, config: FitConfig, *, tile: int | str | None = "auto",
              overlap: int | None = None, suffix: str = "_denoised", clean_dir: Path | None = None,
              chunk: int = CHUNK, backend: str = "local", address: str | None = None,
              num_cpus: int | None = None, progress: bool = True, log=print) -> list[dict]:
    """Denoise ``inputs`` (files, folders, globs) into ``out_dir``; return this run's manifest rows.

    ``tile`` (:func:`rdip.tiles.plan`, per image shape): ``"auto"`` follows the configuration
    (``config.tile``; without it, images are tiled only when the whole image would not fit in
    memory), an int always tiles, None never (images that would not fit get error rows); an image
    fitted as tiles is one call of its own, otherwise same-shape images are stacked, at most
    ``chunk`` per call. ``overlap``: None = the configuration's for its own tiles, else
    :data:`rdip.tiles.OVERLAP`. With
    ``clean_dir``, an image whose file name also exists there is scored against it. Outputs whose
    input has no ``done`` row (a kill between the write and the row) are redone and replaced.

    ``backend="ray"`` fits each chunk as a Ray task (:func:`rdip.distributed.ray_runner`: Ray at
    ``address``, else Ray's default, else a new one on ``num_cpus`` CPUs), and splits a shape's
    images into at least as many chunks as the cluster runs tasks at a time; the rows are
    appended as the tasks finish. Ray is not started when no image is left to fit.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    out_dir = Path(out_dir)
    if not out_dir.parent.is_dir():
        raise FileNotFoundError(f"{out_dir}: the folder {out_dir.parent} does not exist; create it first")
    if backend == "local":
        resolve_device(config.device)  # no CUDA for --device cuda: one error now, not one per image
    out_dir.mkdir(exist_ok=True)
    manifest = out_dir / MANIFEST
    previous = read_manifest(manifest)
    produced = {Path(r["output"]) for r in previous.values() if r.get("output")}
    paths = [p for p in expand_inputs(inputs) if p not in produced]  # not our own outputs
    outputs = {p: (out_dir / f"{p.stem}{suffix}{p.suffix}").resolve() for p in paths}
    owner: dict[Path, Path] = {}
    for p, out in outputs.items():
        if out == p or out in owner:
            raise ValueError(f"{p}: its output {out} would overwrite "
                             f"{'the input' if out == p else owner[out]}; use another --suffix")
        owner[out] = p
        for stale in out_dir.glob(f".{glob.escape(out.name)}.*{out.suffix}"):
            stale.unlink()  # the temporary file of a write killed half-way
    todo = [p for p in paths if not (previous.get(str(p), {}).get("status") == "done"
                                     and outputs[p].exists())]
    log(f"{len(paths)} images, {len(paths) - len(todo)} already done, {len(todo)} to do → {out_dir}")
    rows: list[dict] = []
    configs: dict[tuple, FitConfig] = {}  # image shape → the configuration its images are fitted with

    def tiles_of(shape) -> dict | None:
        """``{"tile", "overlap"}`` for a shape fitted as tiles, else None."""
        cfg = configs.get(tuple(shape or ()))
        return {"tile": cfg.tile, "overlap": cfg.tile_overlap} if cfg is not None and cfg.tile else None

    def record(path: Path, status: str, error: str | None = None, result=None, shape=None) -> None:
        row = {"input": str(path), "output": str(outputs[path]) if status == "done" else None,
               "status": status, "error": error, "config": config.to_dict(),
               "tile": tiles_of(shape),
               "metrics": result.metrics if result else {}, "seconds": result.seconds if result else 0.0,
               "iters_run": result.iters_run if result else 0, "shape": shape,
               "device": result.device if result else None, "backend": backend, "time": time.time()}
        _append(manifest, row)
        rows.append(row)
        bar.update(1)

    def jobs(groups: dict[tuple, list[Path]], step: int, slots: int) -> Iterator[tuple]:
        """``((paths, shape, infos), images, cleans)`` per chunk of at most ``step`` images (one
        where the shape is tiled), each group in at least ``slots`` chunks where it can be; read
        when the runner asks for it."""
        for shape, group in groups.items():
            size = 1 if tiles_of(shape) else min(step, math.ceil(len(group) / slots))
            for start in range(0, len(group), size):
                part = group[start:start + size]
                try:
                    loaded = [_load(p, clean_dir) for p in part]
                except Exception as e:  # noqa: BLE001  (changed since it was grouped)
                    for p in part:
                        record(p, "error", f"{type(e).__name__}: {e}", shape=list(shape))
                    continue
                yield (part, shape, [x[1] for x in loaded]), [x[0] for x in loaded], [x[2] for x in loaded]

    bar = progress_bar(len(todo), "batch", enabled=progress, unit="image")
    with bar, ExitStack() as stack:
        groups: dict[tuple, list[Path]] = {}
        for path in todo:  # read once to check and group, again when fitted (bounded memory)
            try:
                groups.setdefault(_load(path, clean_dir)[0].shape, []).append(path)
            except Exception as e:  # noqa: BLE001  (one bad file must not stop the others)
                record(path, "error", f"{type(e).__name__}: {e}")
        if backend == "ray" and groups:
            runner = stack.enter_context(ray_runner(address, num_cpus, config.device))
            log(runner.summary)
        else:
            runner = _InProcess(config.device)
        task_config = config.replace(device=runner.device)
        plans = {}
        for shape, group in list(groups.items()):
            try:
                plans[shape] = plan(shape[0], shape[1], shape[2] if len(shape) == 3 else 1,
                                    task_config, tile, overlap, available_mb=runner.memory_mb)
            except (MemoryError, ValueError) as e:
                for p in groups.pop(shape):
                    record(p, "error", f"{type(e).__name__}: {e}", shape=list(shape))
        configs.update({shape: p["config"] for shape, p in plans.items()})
        if plans:
            seconds = sum(plans[s]["seconds"] * len(g) for s, g in groups.items()) / runner.slots
            log(f"estimated ≈{seconds:.0f} s, ≤{max(p['memory_mb'] for p in plans.values()):.0f} MB "
                f"per fit, {sum(p['tile'] is not None for p in plans.values())} of {len(plans)} "
                "image shapes as tiles "
                "(rdip.tiles.plan: rates of docs/performance.md)")
        fit = partial(_fit, configs=configs)
        chunks = jobs(groups, chunk, runner.slots)
        for (part, shape, infos), outcome in runner.run(fit, chunks):
            if isinstance(outcome, Exception):
                for p in part:
                    record(p, "error", f"{type(outcome).__name__}: {outcome}", shape=list(shape))
                continue
            for p, info, result in zip(part, infos, outcome):
                write_image(outputs[p], result.image, dtype=info.dtype, force=True)
                _sync(outputs[p])
                record(p, "done", result=result, shape=list(shape))
    errors = sum(r["status"] == "error" for r in rows)
    log(f"done {len(rows) - errors}, errors {errors}; manifest: {manifest}")
    return rows


class TileType(click.ParamType):
    """``auto``, ``none`` or a tile size of at least 25 pixels."""

    name = "auto|none|SIZE"

    def convert(self, value, param, ctx):
        if value in ("auto", "none", None) or isinstance(value, int):
            return None if value == "none" else value
        try:
            size = int(value)
        except ValueError:
            self.fail(f"{value!r} is not auto, none or a tile size in pixels", param, ctx)
        if size < 25:
            self.fail(f"tile {size} is below the network's minimum of 25 pixels", param, ctx)
        return size


@click.command("batch")
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True)
@click.option("-o", "--output-dir", required=True, type=click.Path(path_type=Path),
              help="Folder for the outputs and manifest.jsonl (created if its parent exists).")
@click.option("--preset", "preset_name", default="default", show_default=True,
              type=click.Choice(list(PRESETS)))
@click.option("--iters", type=click.IntRange(min=1), default=None, help="Iterations T.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--range", "fit_range", type=click.Choice(["unit", "symmetric"]), default=None,
              help="Fit in [0, 1] (unit) or in tanh's [-1, 1] (symmetric); default: the preset's.")
@click.option("--tile", type=TileType(), default="auto", show_default=True,
              help="Fit images as overlapping tiles of this size; 'auto' follows the preset "
                   "(default: 32×32 tiles) or, without preset tiles, tiles only the images too "
                   "large for the memory; 'none' never tiles.")
@click.option("--overlap", type=click.IntRange(min=0), default=None,
              help=f"Tile overlap in pixels (default: the preset's, else {OVERLAP}).")
@click.option("--suffix", default="_denoised", show_default=True,
              help="Output name: input stem + SUFFIX + input extension.")
@click.option("--clean-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder of clean references with the inputs' file names: score each output.")
@click.option("--chunk", type=click.IntRange(min=1), default=CHUNK, show_default=True,
              help="Images of one shape per fit (local) or per Ray task, at most: what a kill can lose "
                   "per chunk in flight. On GPUs, more (e.g. 256) fills the GPU better.")
@click.option("--backend", type=click.Choice(list(BACKENDS)), default="local", show_default=True,
              help="local: fit in this process. ray: fit each chunk as a Ray task (one CPU and one "
                   "torch thread each, or one GPU each where the cluster has GPUs); this process "
                   "reads the images and writes the outputs. Needs pip install 'rdip[ray]'.")
@click.option("--address", default=None,
              help="Ray cluster to join (ray.init(address=...)), e.g. auto or ray://HEAD:10001. "
                   "Default: $RAY_ADDRESS, else a Ray started by 'ray start' on this machine, "
                   "else a new Ray here.")
@click.option("--num-cpus", type=click.IntRange(min=1), default=None,
              help="CPUs of the new Ray that --backend ray starts without --address (default: all).")
@click.option("--quiet", is_flag=True, help="No progress bar and no messages.")
def batch_command(inputs, output_dir, preset_name, iters, seed, device, fit_range, tile, overlap, suffix,
                  clean_dir, chunk, backend, address, num_cpus, quiet):
    """Denoise every INPUT (files, folders, globs) into OUTPUT_DIR, resumably.

    Appends one line per image to OUTPUT_DIR/manifest.jsonl; rerunning the same command skips the
    finished images and retries the failed ones. Exits with 1 if any image failed.
    """
    if backend == "local" and (address is not None or num_cpus is not None):
        raise click.UsageError("--address and --num-cpus are for --backend ray")
    if address is not None and num_cpus is not None:
        raise click.UsageError("--num-cpus is for a new Ray on this machine; "
                               "the cluster at --address has its own CPUs")
    if backend == "ray":
        try:
            import_ray()
        except ImportError as e:
            raise click.UsageError(str(e)) from None
    if isinstance(tile, int) and overlap is not None and overlap >= tile:
        raise click.UsageError(f"--overlap {overlap} must be smaller than --tile {tile}")
    changes = {k: v for k, v in {"iters": iters, "range": fit_range}.items() if v is not None}
    config = preset(preset_name, seed=seed, device=device, **changes)
    rows = run_batch(list(inputs), output_dir, config, tile=tile, overlap=overlap, suffix=suffix,
                     clean_dir=clean_dir, chunk=chunk, backend=backend, address=address,
                     num_cpus=num_cpus, progress=not quiet,
                     log=(lambda *_: None) if quiet else click.echo)
    if any(r["status"] == "error" for r in rows):
        raise click.exceptions.Exit(1)
