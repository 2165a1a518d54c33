"""Denoise many image files into a folder, resumably: ``rdip batch``.

Images of one shape are fitted together (one :func:`~rdip.fit.fit_many` call per chunk of
:data:`CHUNK`), each output is written atomically in its input's bit depth, and then one JSON line
per image is appended to ``OUT/manifest.jsonl`` and synced to disk. The manifest is the record of
what is finished: a rerun skips every input whose latest row is ``done`` and whose output exists,
and redoes the rest (error rows included). A run killed at any moment (even ``kill -9``) loses only
the chunk in flight; a half-written manifest line is ignored and stale temporary files are removed.
Run one batch per output folder at a time (two runs on one manifest would redo each other's work).
Outputs are named ``stem + suffix + extension`` of their input. Every image gets the same seed, so
an output does not depend on which other images shared its batch.
"""

from __future__ import annotations

import glob
import json
import os
import time
from pathlib import Path

import click

from .config import PRESETS, FitConfig, preset
from .fit import check_image, fit_many, resolve_device
from .io import SUFFIXES, read_image, write_image
from .progress import progress_bar
from .tiles import estimate, fit_tiled, positions

#: Images per fit_many call: the most work a kill can lose, and the images held in memory at once.
CHUNK = 16
MANIFEST = "manifest.jsonl"


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


def _cost(shape: tuple, config: FitConfig, tile: int | None, overlap: int) -> tuple[float, float]:
    """Estimated seconds and memory (MB, per network) of one image (:func:`rdip.tiles.estimate`)."""
    height, width = shape[:2]
    channels = shape[2] if len(shape) == 3 else 1
    count = len(positions(height, width, tile, overlap)) if tile else 1
    if tile:
        height, width = min(tile, height), min(tile, width)
    cost = estimate(height, width, channels, config, config.device)
    return cost["seconds"] * count, cost["memory_mb"]


def run_batch(inputs: list[str], out_dir: Path, config: FitConfig, *, tile: int | None = None,
              overlap: int = 16, suffix: str = "_denoised", clean_dir: Path | None = None,
              progress: bool = True, log=print) -> list[dict]:
    """Denoise ``inputs`` (files, folders, globs) into ``out_dir``; return this run's manifest rows.

    With ``tile``, each image is fitted as overlapping tiles (:func:`rdip.tiles.fit_tiled`), one
    image at a time; otherwise same-shape images are stacked, :data:`CHUNK` per call. With
    ``clean_dir``, an image whose file name also exists there is scored against it. Outputs whose
    input has no ``done`` row (a kill between the write and the row) are redone and replaced.
    """
    out_dir = Path(out_dir)
    if not out_dir.parent.is_dir():
        raise FileNotFoundError(f"{out_dir}: the folder {out_dir.parent} does not exist; create it first")
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

    def record(path: Path, status: str, error: str | None = None, result=None, shape=None) -> None:
        row = {"input": str(path), "output": str(outputs[path]) if status == "done" else None,
               "status": status, "error": error, "config": config.to_dict(),
               "tile": {"tile": tile, "overlap": overlap} if tile else None,
               "metrics": result.metrics if result else {}, "seconds": result.seconds if result else 0.0,
               "iters_run": result.iters_run if result else 0, "shape": shape,
               "device": result.device if result else None, "time": time.time()}
        _append(manifest, row)
        rows.append(row)
        bar.update(1)

    bar = progress_bar(len(todo), "batch", enabled=progress, unit="image")
    with bar:
        groups: dict[tuple, list[Path]] = {}
        for path in todo:  # read once to check and group, again when fitted (bounded memory)
            try:
                groups.setdefault(_load(path, clean_dir)[0].shape, []).append(path)
            except Exception as e:  # noqa: BLE001: one bad file must not stop the others
                record(path, "error", f"{type(e).__name__}: {e}")
        costs = {shape: _cost(shape, config, tile, overlap) for shape in groups}
        if costs:
            seconds = sum(costs[s][0] * len(g) for s, g in groups.items())
            log(f"estimated ≈{seconds:.0f} s, ≤{max(c[1] for c in costs.values()):.0f} MB per network "
                "(rdip.tiles.estimate: rates of docs/performance.md)")
        step = 1 if tile else CHUNK
        for shape, group in groups.items():
            for start in range(0, len(group), step):
                part = group[start:start + step]
                try:
                    loaded = [_load(p, clean_dir) for p in part]
                    if tile:
                        results = [fit_tiled(loaded[0][0], config, tile=tile, overlap=overlap,
                                             clean=loaded[0][2])]
                    else:
                        results = fit_many([x[0] for x in loaded], config, clean=[x[2] for x in loaded])
                except Exception as e:  # noqa: BLE001
                    for p in part:
                        record(p, "error", f"{type(e).__name__}: {e}", shape=list(shape))
                    continue
                for p, (_, info, _), result in zip(part, loaded, results):
                    write_image(outputs[p], result.image, dtype=info.dtype, force=True)
                    _sync(outputs[p])
                    record(p, "done", result=result, shape=list(shape))
    errors = sum(r["status"] == "error" for r in rows)
    log(f"done {len(rows) - errors}, errors {errors}; manifest: {manifest}")
    return rows


@click.command("batch")
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True)
@click.option("-o", "--output-dir", required=True, type=click.Path(path_type=Path),
              help="Folder for the outputs and manifest.jsonl (created if its parent exists).")
@click.option("--preset", "preset_name", default="default", show_default=True,
              type=click.Choice(list(PRESETS)))
@click.option("--iters", type=click.IntRange(min=1), default=None, help="Iterations T.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--tile", type=click.IntRange(min=25), default=None,
              help="Fit each image as overlapping tiles of this size (bounds memory).")
@click.option("--overlap", type=click.IntRange(min=0), default=16, show_default=True,
              help="Tile overlap in pixels (with --tile).")
@click.option("--suffix", default="_denoised", show_default=True,
              help="Output name: input stem + SUFFIX + input extension.")
@click.option("--clean-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder of clean references with the inputs' file names: score each output.")
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--address", default=None, help="Ray cluster address (with --backend ray).")
@click.option("--quiet", is_flag=True, help="No progress bar and no messages.")
def batch_command(inputs, output_dir, preset_name, iters, seed, device, tile, overlap, suffix,
                  clean_dir, backend, address, quiet):
    """Denoise every INPUT (files, folders, globs) into OUTPUT_DIR, resumably.

    Appends one line per image to OUTPUT_DIR/manifest.jsonl; rerunning the same command skips the
    finished images and retries the failed ones. Exits with 1 if any image failed.
    """
    if backend == "ray":
        raise click.UsageError("--backend ray is not implemented yet; use --backend local")
    if address is not None:
        raise click.UsageError("--address is for --backend ray")
    if tile is not None and overlap >= tile:
        raise click.UsageError(f"--overlap {overlap} must be smaller than --tile {tile}")
    changes = {"iters": iters} if iters is not None else {}
    config = preset(preset_name, seed=seed, device=device, **changes)
    rows = run_batch(list(inputs), output_dir, config, tile=tile, overlap=overlap, suffix=suffix,
                     clean_dir=clean_dir, progress=not quiet,
                     log=(lambda *_: None) if quiet else click.echo)
    if any(r["status"] == "error" for r in rows):
        raise click.exceptions.Exit(1)
