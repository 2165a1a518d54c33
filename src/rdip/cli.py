"""The ``rdip`` command: a thin layer over the Python API (click for parsing, tqdm for progress).

One naming scheme across commands: ``-o/--output`` is where a command writes (a file for
``denoise``, a folder for the others; ``--out`` is accepted too), ``-q/--quiet`` silences progress
and messages, ``--device`` takes ``auto``, ``cpu``, ``cuda`` or ``cuda:N``, σ is in [0, 1] units
with a ``-255`` twin in 0-255 units. Every error a user can cause ends in one line
``rdip: error: …`` and exit code 2, with nothing written; ``--debug``, wherever it is typed, shows
the traceback instead.
"""

from __future__ import annotations

import platform
import re
import sys
import warnings
from pathlib import Path

import click
import numpy as np

from . import __version__
from .config import (
    MAX_ENSEMBLE,
    PRESETS,
    RANGES,
    SEED_LIMIT,
    FitConfig,
    preset,
    range_width,
)
from .method.padding import MODES
from .scale.batch import BACKENDS, CHUNK


class UserError(click.ClickException):
    """A one-line error caused by the user's input (exit code 2)."""

    exit_code = 2


class PathType(click.Path):
    """A path (``pathlib.Path``); an empty one is refused (it would mean the current folder)."""

    def __init__(self, **kwargs):
        super().__init__(path_type=Path, **kwargs)

    def convert(self, value, param, ctx):
        if isinstance(value, str) and not value.strip():
            self.fail("an empty path; give a name (. for the current folder)", param, ctx)
        return super().convert(value, param, ctx)


#: ``--seed``: a seed the command line takes.
SEED = click.IntRange(min=0, max=SEED_LIMIT)


class TileType(click.ParamType):
    """``auto``, ``none`` (→ 0) or a tile size in pixels (checked by :class:`FitConfig`)."""

    name = "auto|none|SIZE"

    def convert(self, value, param, ctx):
        if value in ("auto", "none") or isinstance(value, int):
            return 0 if value == "none" else value
        try:
            return int(value)
        except ValueError:
            self.fail(f"{value!r} is not auto, none or a tile size in pixels", param, ctx)


class Device(click.ParamType):
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""

    name = "auto|cpu|cuda[:N]"

    def convert(self, value, param, ctx):
        if value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit()):
            return value
        self.fail(f"{value!r} is not auto, cpu, cuda or cuda:N", param, ctx)


class Sigma(click.ParamType):
    """A noise level: a number in (0, 1) in [0, 1] units, or in (0, 255) with ``scale=255``;
    converted to [0, 1] units."""

    name = "SIGMA"

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def convert(self, value, param, ctx):
        from .images.noise import check_sigma

        if isinstance(value, float):
            return value
        try:
            number = float(value)
        except ValueError:
            self.fail(f"{value!r} is not a number", param, ctx)
        try:
            return check_sigma(number / self.scale)
        except ValueError:
            hint = ("" if self.scale != 1 or not 1 <= number < 255 else
                    f"; for 0-255 units use {param.opts[0]}-255 {value}" if param else "")
            self.fail(f"{value} is not a noise level in {'0-255' if self.scale != 1 else '[0, 1]'} "
                      f"units (a finite number in (0, {self.scale:g})){hint}", param, ctx)


def _options(*decorators):
    """Several click options as one decorator."""
    def apply(command):
        for decorator in reversed(decorators):
            command = decorator(command)
        return command
    return apply


def output_option(kind: str, default=None, help_text: str = ""):
    """``-o/--output`` (``--out`` too): a file (``kind="file"``) or a folder; required when it has
    no ``default``."""
    extra = {"required": True} if default is None else {"default": default, "show_default": True}
    return click.option("-o", "--output", "--out", "output", type=PathType(),
                        metavar="FILE" if kind == "file" else "DIR", help=help_text, **extra)


def preset_option(default: str):
    return click.option("--preset", "preset_name", default=default, show_default=True,
                        type=click.Choice(list(PRESETS)),
                        help="Named configuration (README, 'Presets').")


def run_options(default_preset: str, seed_help: str = "Seeds the networks and z_noise."):
    """``--preset``, ``--iters``, ``--seed``, ``--device``: the fit's configuration."""
    return _options(
        preset_option(default_preset),
        click.option("--iters", type=click.IntRange(min=1), default=None,
                     help="Iterations T (the preset's maximum by default)."),
        click.option("--seed", type=SEED, default=0, show_default=True, help=seed_help),
        click.option("--device", type=Device(), default="auto", show_default=True,
                     help="Where to fit: auto (a CUDA GPU when there is one), cpu, cuda, cuda:N."))


def range_option(command):
    """``--range`` and ``--margin``: where the network fits the image (``FitConfig.range``,
    ``FitConfig.margin``)."""
    return _options(
        click.option("--range", "fit_range", type=click.Choice(list(RANGES)), default=None,
                     help="Fit the image in [0, 1] (unit) or in tanh's [-1, 1] (symmetric); "
                          "images in and out stay in [0, 1]. [default: the preset's]"),
        click.option("--margin", type=click.FloatRange(0, 1, max_open=True), default=None,
                     help="Fit inside the range, moved inwards by this fraction of its half-width "
                          "at each end (0.1 in [-1, 1]: [-0.9, 0.9]), so that saturated pixels "
                          "can be reached. [default: the preset's, 0.1 for default and quality]"))(command)


def fitting_options(command):
    """``--range``, ``--margin``, ``--tile``, ``--overlap`` and ``--ensemble``: where the network
    fits an image, in what pieces and how many times (mapped into the configuration by
    :func:`_config`)."""
    return _options(
        range_option,
        click.option("--tile", type=TileType(), default="auto", show_default=True,
                     help="Fit images as overlapping tiles of this size; 'auto' follows the preset "
                          "(default: 32×32 tiles) or, without preset tiles, tiles only images too "
                          "large for the memory; 'none' never tiles."),
        click.option("--overlap", type=click.IntRange(min=0), default=None,
                     help="Tile overlap in pixels. [default: the preset's]"),
        click.option("--ensemble", type=click.IntRange(min=1, max=MAX_ENSEMBLE), default=None,
                     help="Fit each image this many times (shifted tile grids, other seeds) and "
                          "average: better, and this many times slower. [default: the preset's]"))(command)


def workers_option(one: str):
    """``--workers``: processes of one torch thread each that share the runs left to do (1: ``one``)."""
    return click.option("--workers", type=click.IntRange(1, 256), default=1, show_default=True,
                        help=f"Processes, one torch thread each, that share the runs left to do (1: {one}).")


def quiet_option(command):
    return click.option("-q", "--quiet", is_flag=True, help="No progress and no messages.")(command)


def _warn(message: str) -> None:
    click.echo(f"rdip: warning: {message}", err=True)


#: Warnings about the settings, printed with the command's first message (after its checks), so
#: that a command that fails its checks prints one line only.
_PENDING: list[str] = []


def _config(preset_name: str, tile="auto", overlap: int | None = None, /, **changes) -> tuple[FitConfig, bool]:
    """The preset with ``changes`` (None values left out) and the tiling options applied, and
    whether to tile for memory: ``--tile auto`` keeps the preset's tiles and may tile for memory;
    ``--tile none`` (0) or a size fixes the tiles; ``--overlap`` sets ``tile_overlap``; ``tile``
    and ``tile_overlap`` in ``changes`` (``--set``) win over them. Warns when ``iters`` is far
    below the preset's."""
    changes = {k: v for k, v in changes.items() if v is not None}
    if tile != "auto":
        changes.setdefault("tile", tile)
    if overlap is not None:
        changes.setdefault("tile_overlap", overlap)
    meant = PRESETS[preset_name].iters
    if changes.get("iters", meant) < meant / 4:
        _PENDING.append(f"preset {preset_name} is meant for up to {meant} iterations; --iters "
                        f"{changes['iters']} is far below that, so the result will be under-fitted (blurry)")
    return preset(preset_name, **changes), tile == "auto" and "tile" not in changes


def _environment() -> dict:
    import torch

    return {"rdip": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "machine": platform.machine(),
            "command": sys.argv}


def _either(first, second, names: str):
    """The one of two alternative options given (or None); both given is an error."""
    if first is not None and second is not None:
        raise click.UsageError(f"give either {names}, not both")
    return first if first is not None else second


def _log(quiet: bool, err: bool = False):
    """The command's ``log``: its lines on stdout (stderr with ``err``), after any pending
    warnings; nothing with ``quiet``."""
    def log(line: str) -> None:
        while _PENDING:
            _warn(_PENDING.pop(0))
        click.echo(line, err=err)
    return (lambda *_: None) if quiet else log


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="rdip")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
def main(debug: bool) -> None:
    """Zero-shot image denoising with a recurrent deep image prior."""


@main.command("denoise", short_help="Denoise one image file into another.")
@click.argument("input_path", metavar="INPUT", type=PathType())
@output_option("file", help_text="Output image (.png, .jpg, .tif, .npy); written in the input's "
                                 "bit depth, with OUTPUT's record (.json) beside it.")
@run_options("default", seed_help="Seeds the network, z_noise and --add-noise.")
@click.option("--sigma", type=Sigma(), default=None,
              help="Noise level of INPUT in [0, 1] units, if known. [default: estimated]")
@click.option("--sigma-255", type=Sigma(255), default=None, help="The same in 0-255 units (e.g. 25).")
@click.option("--add-noise", type=Sigma(), default=None,
              help="Treat INPUT as clean: add Gaussian noise of this sigma ([0, 1] units) first "
                   "and score against INPUT.")
@click.option("--add-noise-255", type=Sigma(255), default=None, help="The same in 0-255 units.")
@click.option("--clean", "clean_path", type=PathType(), default=None,
              help="Clean reference image: report SSIM/PSNR during and after the fit.")
@click.option("--padding", type=click.Choice(list(MODES)), default=None,
              help="Pad the target first (the paper's edge, reflect). [default: the preset's, none]")
@click.option("--pad-width", type=click.IntRange(min=0), default=None,
              help="Padding width in pixels. [default: the preset's, 4]")
@click.option("--stop", type=click.Choice(["none", "wmv", "noise"]), default=None,
              help="Early stopping without a clean image. [default: the preset's]")
@fitting_options
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override any configuration field, applied last, e.g. --set capture=graph "
                   "(repeatable).")
@click.option("--report", is_flag=True,
              help="Also write OUTPUT's report (.html): noisy, denoised and clean side by side.")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT, its record and report if they exist.")
@quiet_option
def denoise_command(input_path, output, preset_name, iters, seed, device, sigma, sigma_255, add_noise,
                    add_noise_255, clean_path, padding, pad_width, stop, fit_range, margin, tile, overlap,
                    ensemble, sets, report, force, quiet):
    """Denoise INPUT into OUTPUT; write OUTPUT's configuration and scores beside it (.json).

    Prints the estimated time and memory first; an image too large for the memory is fitted as
    overlapping tiles (--tile).
    """
    from .jobs import denoise_file

    sigma = _either(sigma, sigma_255, "--sigma or --sigma-255")
    add_noise = _either(add_noise, add_noise_255, "--add-noise or --add-noise-255")
    if add_noise is not None and clean_path is not None:
        raise UserError("give either --add-noise or --clean, not both")
    options = {"seed": seed, "device": device, "padding": padding, "pad_width": pad_width, "iters": iters,
               "stop": stop, "range": fit_range, "margin": margin, "ensemble": ensemble}
    config, auto = _config(preset_name, tile, overlap, **{**options, **_parse_sets(sets)})
    record = denoise_file(input_path, output, config, sigma=sigma, add_noise=add_noise,
                          clean_path=clean_path, auto_tile=auto, force=force, progress=not quiet,
                          log=_log(quiet, err=True), environment=_environment(), report=report)
    msg = (f"wrote {output} and {Path(output).with_suffix('.json')}"
           f"{' and ' + str(Path(output).with_suffix('.html')) if report else ''} "
           f"({record['iters_run']} iterations, {record['seconds']:.1f} s)")
    if record["noisy_metrics"]:
        before, after = record["noisy_metrics"], record["metrics"]
        msg += (f"; SSIM {before['ssim_full']:.3f} → {after['ssim_full']:.3f}, "
                f"PSNR {before['psnr']:.2f} → {after['psnr']:.2f} dB")
    _log(quiet)(msg)


def _suffix_option(ctx, param, value: str) -> str:
    """``--suffix``, checked by :func:`rdip.scale.batch.check_suffix` (a usage error, exit code 2)."""
    from .scale.batch import check_suffix

    try:
        return check_suffix(value)
    except ValueError as e:
        raise click.BadParameter(str(e), ctx, param) from None


@main.command("batch", short_help="Denoise many image files into a folder, resumably.")
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True)
@click.option("-o", "--output", "--out", "--output-dir", "output", required=True, metavar="DIR",
              type=PathType(),
              help="Folder for the outputs and manifest.jsonl (created if its parent exists).")
@run_options("default")
@fitting_options
@click.option("--suffix", default="_denoised", show_default=True, callback=_suffix_option,
              help="Output name: input stem + SUFFIX + input extension (no '/', '\\' or '..').")
@click.option("--clean-dir", type=PathType(file_okay=False), default=None,
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
                   "[default: $RAY_ADDRESS, else a Ray started by 'ray start' on this machine, "
                   "else a new Ray here]")
@click.option("--num-cpus", type=click.IntRange(min=1), default=None,
              help="CPUs of the new Ray that --backend ray starts without --address. [default: all]")
@click.option("--force", is_flag=True,
              help="Replace files at the outputs' names that rdip batch did not write (no manifest "
                   "row names them); without it such a run is refused.")
@quiet_option
def batch_command(inputs, output, preset_name, iters, seed, device, fit_range, margin, tile, overlap, ensemble, suffix,
                  clean_dir, chunk, backend, address, num_cpus, force, quiet):
    """Denoise every INPUT (files, folders, globs) into the folder OUTPUT, resumably.

    Appends one line per image to OUTPUT/manifest.jsonl; rerunning the same command skips the
    finished images and retries the failed ones. A file at an output's name that rdip batch did
    not write is replaced only with --force. Exits with 1 if any image failed.
    """
    from .scale.batch import run_batch
    from .scale.ray import import_ray

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
    config, auto = _config(preset_name, tile, overlap, seed=seed, device=device, iters=iters,
                           range=fit_range, margin=margin, ensemble=ensemble)
    rows = run_batch(list(inputs), output, config, auto_tile=auto, suffix=suffix,
                     clean_dir=clean_dir, chunk=chunk, backend=backend, address=address,
                     num_cpus=num_cpus, force=force, progress=not quiet, log=_log(quiet))
    if any(r["status"] == "error" for r in rows):
        raise click.exceptions.Exit(1)


@main.command("demo", short_help="A quick look: one bundled CIFAR-10 image, three paddings.")
@output_option("folder", default=Path("rdip-demo"), help_text="Folder for the figure, table and configuration.")
@run_options("default")
@range_option
@click.option("--force", is_flag=True, help="Overwrite an earlier demo in the same folder.")
@quiet_option
def demo_command(output, preset_name, iters, seed, device, fit_range, margin, force, quiet):
    """The paper's experiment on one bundled CIFAR-10 image: unpadded, edge and reflect padding
    (preset default: about a minute on 2 CPU cores; --preset paper: T = 2000, several minutes)."""
    from .experiments.demo import run_demo

    config, _ = _config(preset_name, iters=iters, seed=seed, device=device, range=fit_range,
                        margin=margin)
    run_demo(output, config, force=force, progress=not quiet, environment=_environment(),
             log=_log(quiet))


def _parse_sets(values: tuple[str, ...]) -> dict:
    """``("lr=1e-5", "optimizer=sgd")`` → ``{"lr": 1e-05, "optimizer": "sgd"}``, typed by FitConfig."""
    import dataclasses

    types = {f.name: f.type for f in dataclasses.fields(FitConfig)}
    out = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or name not in types or name == "preset":
            raise UserError(f"--set {item!r}: give KEY=VALUE with KEY one of "
                            f"{', '.join(k for k in types if k != 'preset')}")
        kind = types[name]
        try:
            out[name] = int(value) if kind == "int" else float(value) if kind == "float" else value
        except ValueError:
            raise UserError(f"--set {item!r}: {name} needs a {kind}") from None
        if name == "seed" and not 0 <= out[name] <= SEED_LIMIT:  # as --seed: the command line's seeds
            raise UserError(f"--set {item!r}: seed must be an integer from 0 to {SEED_LIMIT} (2**32 - 1)")
    return out


def _integers(text: str, option: str, top: int = SEED_LIMIT) -> tuple[int, ...]:
    """``"0,1,2"`` → ``(0, 1, 2)``: integers from 0 to ``top`` (ASCII digits) separated by commas."""
    items = _split(text)
    if bad := [x for x in items if not (re.fullmatch("[0-9]+", x) and len(x.lstrip("0")) <= len(str(top))
                                        and int(x) <= top)]:
        raise UserError(f"{option} {text!r}: {bad[0]!r} is not an integer from 0 to {top}; "
                        "give integers separated by commas, e.g. 0,1,2")
    return tuple(int(x) for x in items)


def _split(text: str, choices=None) -> tuple:
    items = tuple(x.strip() for x in text.split(",") if x.strip())
    if not items:
        raise UserError(f"empty list {text!r}")
    if choices is not None:
        bad = [x for x in items if x not in choices]
        if bad:
            raise UserError(f"unknown value {bad[0]!r}: use one of {', '.join(choices)}")
    return items


DATA_HELP = "CIFAR-10 .npz, official archive or folder. [default: bundled images 0-14, else the cache]"
DOWNLOAD_HELP = ("Download the official CIFAR-10 archive into the cache when images beyond the bundled "
                 "0-14 are asked for without --data.")


@main.command("reproduce", short_help="The paper's Table II and Fig. 3, resumably.")
@preset_option("paper")
@click.option("--indices", default="0-14", show_default=True,
              help="CIFAR-10 test images, e.g. 0-14 or 0,3,5-7.")
@click.option("--data", type=PathType(), default=None, help=DATA_HELP)
@click.option("--download", is_flag=True, help=DOWNLOAD_HELP)
@click.option("--paddings", default="none,edge,reflect", show_default=True,
              help="Paddings compared, separated by commas.")
@click.option("--seeds", default="0,1,2", show_default=True,
              help="Seeds (noise and networks), separated by commas.")
@click.option("--iters", type=click.IntRange(min=1), default=None, help="T. [default: the preset's]")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override any configuration field, e.g. --set lr=1e-5 (repeatable).")
@click.option("--sigma", type=float, default=None,
              help="Noise level in the units of the range the preset fits in (--set range=…), "
                   "where the noise is added: 0.1 in [-1, 1] is 0.05 in [0, 1]. [default: 0.1]")
@click.option("--sigma-255", type=Sigma(255), default=None,
              help="The noise level in 0-255 units of the image instead (25 = 0.098 in [0, 1]).")
@click.option("--clip-noise", is_flag=True, help="Clip the noisy images to [0, 1].")
@click.option("--device", type=Device(), default="auto", show_default=True,
              help="Where to fit: auto, cpu, cuda, cuda:N.")
@output_option("folder", default=Path("rdip-reproduce"),
               help_text="Folder for the fits, tables, figures and report.html.")
@click.option("--force", is_flag=True, help="Redo every fit, deleting the saved ones first.")
@quiet_option
def reproduce_command(preset_name, indices, data, download, paddings, seeds, iters, sets, sigma,
                      sigma_255, clip_noise, device, output, force, quiet):
    """The paper's Table II and Fig. 3: table2.csv, table2.md, fig3.png, curves.png, config.json
    and report.html.

    Resumable: rerunning the same command skips the fits already saved in OUTPUT/fits.
    """
    from .experiments.reproduce import Experiment, run_reproduce
    from .images.cifar10 import parse_indices

    config, _ = _config(preset_name, **{"device": device, "iters": iters, **_parse_sets(sets)})
    if sigma_255 is not None:  # [0, 1] units → the fitting range's
        sigma = _either(sigma, sigma_255 * range_width(config.range), "--sigma or --sigma-255")
    exp = Experiment(config=config, indices=tuple(parse_indices(indices)),
                     paddings=_split(paddings, list(MODES)),
                     seeds=_integers(seeds, "--seeds"), sigma=0.1 if sigma is None else sigma,
                     clip_noise=clip_noise, data=str(data) if data else None)
    run_reproduce(exp, output, force=force, progress=not quiet, environment=_environment(),
                  log=_log(quiet), download=download)


@main.command("bench", short_help="Time the engine: the Table II workload, a photograph.")
@click.option("--workload", type=click.Choice(["table2", "photo", "all"]), default="table2",
              show_default=True, help="table2: the naive loop against the batched engine on the paper's "
                                      "45 fits; photo: preset default on a 256×256 colour photograph, "
                                      "alone and with ensemble=4.")
@click.option("--quick", is_flag=True, help="A short run (each workload under a minute on 2 CPU cores).")
@click.option("--device", type=Device(), default="auto", show_default=True,
              help="Where to time: auto, cpu, cuda, cuda:N.")
@click.option("--iters", type=click.IntRange(min=1), default=None,
              help="Iterations per Table II fit timed [default: 30, 6 with --quick]; the most per "
                   "photograph fit [default: the preset's 800].")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16"]), default="float32", show_default=True,
              help="Arithmetic of the network (bfloat16: autocast).")
@click.option("--stop", type=click.Choice(["none", "noise"]), default="none", show_default=True,
              help="table2: run all iterations, or stop each network by the noise rule (σ given).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="A configuration field for every fit, e.g. --set capture=graph (repeatable).")
@click.option("--tf32/--no-tf32", default=None,
              help="On CUDA: TF32 in convolutions and matrix products, or in neither (full fp32). "
                   "[default: PyTorch's: in cuDNN's convolutions only]")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object and nothing else.")
@quiet_option
def bench_command(workload, quick, device, iters, dtype, stop, sets, tf32, as_json, quiet):
    """Time the engine on the Table II workload (the naive one-image loop against the batched
    engine) and on a photograph (fit-iterations per second, FLOP rate against SGEMM, work computed
    / needed, seconds)."""
    from .experiments.bench import run_bench
    from .images.files import json_text

    record = run_bench(quick=quick, device=device, iters=iters, dtype=dtype, workload=workload,
                       stop=stop, changes=_parse_sets(sets), tf32=tf32, log=_log(quiet or as_json))
    if as_json:
        click.echo(json_text(record, indent=None))
    elif not quiet:
        for k, v in record.items():
            click.echo(f"{k:>26}: {v:.4g}" if isinstance(v, float) else f"{k:>26}: {v}")


def _parse_value(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _parse_method_sets(values: tuple[str, ...], methods: tuple[str, ...]) -> dict[str, dict]:
    """``("dip.iters=500", "tv.weight=0.1")`` → ``{"dip": {"iters": 500}, "tv": {"weight": 0.1}}``
    (values as int, else float, else string; checked against each method by rdip.experiments.compare)."""
    options: dict[str, dict] = {}
    for item in values:
        target, sep, value = item.partition("=")
        method, dot, key = target.partition(".")
        if not (sep and dot and key):
            raise UserError(f"--set {item!r}: give METHOD.KEY=VALUE, e.g. dip.iters=500")
        if method not in methods:
            raise UserError(f"--set {item!r}: {method!r} is not among the methods compared "
                            f"({', '.join(methods)})")
        options.setdefault(method, {})[key] = _parse_value(value)
    return options


def _parse_sigmas(sigma: str | None, sigma_255: str | None) -> tuple[list[float], float]:
    """The noise levels in [0, 1] units, and the scale the user gave them in (1 or 255)."""
    if sigma is not None and sigma_255 is not None:
        raise UserError("give either --sigma or --sigma-255, not both")
    from .images.noise import check_sigma

    text, scale, option = ((sigma_255, 255.0, "--sigma-255") if sigma_255 is not None
                           else (sigma or "0.1", 1.0, "--sigma"))
    try:
        values = [float(s) for s in _split(text)]
    except ValueError:
        raise UserError(f"{option} {text!r}: give numbers separated by commas, e.g. 0.1,0.2") from None
    try:
        return [check_sigma(v / scale) for v in values], scale
    except ValueError:
        raise UserError(f"{option} {text!r}: each noise level must be a finite number in "
                        f"(0, {scale:g}) ({'0-255' if scale != 1 else '[0, 1]'} units)"
                        + ("; for 0-255 units use --sigma-255" if scale == 1 else "")) from None


@main.command("compare", short_help="Compare denoisers on the same noisy images, resumably.")
@click.option("--methods", default=None,
              help="Comma-separated methods. [default: all but the rdip presets other than rdip-default]")
@click.option("--images", default="cifar:0-14", show_default=True,
              help="cifar:INDICES (CIFAR-10 test images), a folder, or image files separated by commas.")
@click.option("--sigma", default=None, help="Noise levels in [0, 1] units, e.g. 0.1,0.2. [default: 0.1]")
@click.option("--sigma-255", "sigma_255", default=None, help="Noise levels in 0-255 units, e.g. 15,25,50.")
@click.option("--crop", type=click.IntRange(min=16), default=None,
              help="Use the centre N×N of each clean image (cut before adding noise). [default: whole]")
@click.option("--data", type=PathType(), default=None, help=DATA_HELP)
@click.option("--download", is_flag=True, help=DOWNLOAD_HELP)
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Seeds the methods' networks and the noise.")
@click.option("--set", "sets", multiple=True, metavar="METHOD.KEY=VALUE",
              help="An option of one method, e.g. --set dip.iters=500 (repeatable).")
@output_option("folder", default=Path("rdip-compare"),
               help_text="Folder for the runs, tables, figures and report.html.")
@workers_option("this process, with its torch threads")
@click.option("--force", is_flag=True, help="Redo every run, replacing saved ones and other settings.")
@quiet_option
def compare_command(methods, images, sigma, sigma_255, crop, data, download, seed, sets, output, workers,
                    force, quiet):
    """Compare denoisers on the same noisy images: compare.csv, summary.csv, summary.md, crops.png,
    compare.json and report.html.

    Resumable: rerunning the same command skips the runs already saved in OUTPUT/runs.
    """
    from importlib.util import find_spec

    from .experiments.baselines import METHODS
    from .experiments.compare import DEFAULT_METHODS, load_images, run_compare

    log = _log(quiet)
    if methods is None:
        chosen = tuple(m for m in DEFAULT_METHODS if m != "bm3d" or find_spec("bm3d") is not None)
        if len(chosen) < len(DEFAULT_METHODS):
            log("rdip compare: leaving out bm3d (not installed: pip install 'rdip[bm3d]')")
    else:
        chosen = _split(methods, list(METHODS))
    options = _parse_method_sets(sets, chosen)
    sigmas, scale = _parse_sigmas(sigma, sigma_255)
    run_compare(list(chosen), load_images(images, data, download), sigmas, output, seed=seed, crop=crop,
                options=options, environment=_environment(), progress=not quiet, log=log,
                force=force, sigma_scale=scale, workers=workers)


# --- rdip study (a self-contained block: the other commands do not depend on it) ---

@main.command("study", short_help="Run a study file: variants × image sets × σ × seeds, resumably.")
@click.argument("study_file", metavar="FILE", type=PathType())
@click.option("-o", "--output", "--out", "output", type=PathType(), default=None,
              metavar="DIR", help="Folder for runs.jsonl, summary.csv, summary.md, report.html and a "
                                  "copy of FILE. [default: FILE's output key, else ./FILE-stem]")
@workers_option("this process, one torch thread; the results do not depend on it")
@click.option("--check", "check_only", is_flag=True,
              help="Check FILE and its images, say what would run, and write nothing.")
@quiet_option
def study_command(study_file, output, workers, check_only, quiet):
    """Run the study FILE (TOML: named variants, image sets, noise levels, seeds; see README,
    'Run your own study'): every variant on every image × σ × seed, saved as it finishes in
    DIR/runs.jsonl, then summary.csv, summary.md (means, 95% CIs, paired differences against the
    reference) and report.html.

    Resumable: a rerun computes only the runs that are missing or whose variant changed.
    """
    from .experiments.study import run_study
    from .experiments.studyfile import StudyError, read_study

    try:
        study = read_study(study_file)
    except StudyError as e:
        raise UserError(str(e)) from None
    out = output or study.output or Path(study.path.stem)
    run_study(study, out, workers=workers, progress=not quiet, log=_log(quiet), check_only=check_only)


def run() -> None:
    """Console entry point: one-line errors with exit code 2 (tracebacks with ``--debug``,
    wherever it is typed); warnings (rdip's own) as one line each. The one place where an
    exception becomes a message: an error rdip does not explain itself gets its type named."""
    args = sys.argv[1:]
    debug = "--debug" in args
    if debug:  # the group's option, also where it is typed after the command
        args = ["--debug", *(a for a in args if a != "--debug")]
    _PENDING.clear()
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            code = main.main(args=args, standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("rdip: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        if debug:
            raise
        click.echo(f"rdip: error: {_one_line(e.format_message())}", err=True)
        sys.exit(2)
    except MemoryError:
        if debug:
            raise
        click.echo("rdip: error: out of memory; use a smaller image, tiles (--tile 64) or a machine "
                   "with more memory (run with --debug for details)", err=True)
        sys.exit(2)
    except Exception as e:  # every error ends in one line
        if debug:
            raise
        text = _one_line(str(e)) or type(e).__name__
        if not isinstance(e, (ValueError, TypeError, OSError, RuntimeError, ArithmeticError, ImportError)):
            text = f"{type(e).__name__} {text}: an error rdip does not explain; please report it"
        click.echo(f"rdip: error: {text} (run with --debug for details)", err=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """rdip's own warnings as one line each; other libraries' only with --debug."""
    if Path(filename).resolve().is_relative_to(Path(__file__).resolve().parent) or "--debug" in sys.argv:
        _warn(_one_line(str(message)))


def _one_line(message: str) -> str:
    return " ".join(message.split())
