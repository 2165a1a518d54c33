"""Denoisers side by side on the same noisy images (``rdip compare``): a study on the runner of
``rdip study`` (:mod:`rdip.experiments.study`) with one image set and one variant per method, in
its own folder layout and tables.

For every image × σ the clean image (or its centre crop, taken before any noise) gets Gaussian
noise, not clipped, from seed :data:`NOISE_SEED` (the study's default seeding), so an image's noise
does not depend on which other images or σ are compared. Every method denoises that noisy image,
given σ and ``seed``, one image a call; the call is timed and scored against the clean image (SSIM
full, SSIM of the centre 16×16, PSNR). Each run is saved as it finishes
(``runs/<method>/<image>-s<σ>.json`` and ``.npy``), so a rerun skips what is done; a saved run is
reused only if it matches the run's key in the study (:func:`_reused`: σ, seeds, options or
configuration, crop and clean image; the ``device`` option aside: each run records the device it
ran on). A folder whose ``compare.json`` records another seed, crop or options of a method
compared again is refused unless ``force`` (which also redoes every run), and so is one that holds
files by the outputs' names but no runs of rdip compare (they are someone else's).
"""

from __future__ import annotations

import json
import os
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from ..config import preset
from ..images.files import SUFFIXES, atomic_write, read_image, write_json
from ..images.metrics import panel_scores, scores
from ..images.noise import check_sigma, unit_image
from ..method.model import MIN_SIZE
from ..progress import progress_bar
from ..store import RunStore, regular
from .baselines import METHODS
from .figures import panel_grid
from .study import Plan, batches, identity, run_batches
from .studyfile import CENTRE, ImageSet, Study, Variant, check_options, clean_image
from .studyreport import sigma_label
from .tables import markdown_table, write_csv

OUTPUTS = ("compare.csv", "summary.csv", "summary.md", "crops.png", "report.html", "compare.json")
DEFAULT_METHODS = tuple(m for m in METHODS if not m.startswith("rdip-") or m == "rdip-default")
NOISE_SEED = "seed * 2**32 + crc32('<image>-s<sigma:g>')"
#: The fields of a study's run key that every run of a comparison has alike (its variant is its
#: method, named in the run's name; its network is seeded with ``seed``; σ is given; the noise is
#: not clipped): not in the saved runs' records, which keep the form they had before the runner.
ALIKE = ("variant", "net_seed", "sigma_given", "clip_noise")
SET = "images"
METRICS = ("ssim_full", "ssim_centre", "psnr")


def load_images(spec: str, data: Path | None = None,
                download: bool = False) -> list[tuple[str, np.ndarray]]:
    """``(name, clean float image in [0, 1])`` for ``cifar:INDICES`` (names ``cifar-0000``…),
    a folder (its image files, sorted; names = file stems) or comma-separated image files."""
    from ..images.cifar10 import load_cifar10, parse_indices

    if spec.startswith("cifar:"):
        indices = parse_indices(spec[len("cifar:"):])
        images, _ = load_cifar10(indices, source=data, download=download)
        where = f"{data}: " if data else ""
        return [(f"cifar-{i:04d}", unit_image(im, f"{where}test image {i}")) for i, im in zip(indices, images)]
    if data is not None:
        raise ValueError("--data applies only to cifar:INDICES images")
    if not spec.strip():
        raise ValueError("--images is empty; give a folder, image files separated by commas, or cifar:INDICES")
    path = Path(spec).expanduser()
    if "," in spec and not path.exists():  # a path that exists is that path, commas and all
        paths = [Path(p.strip()).expanduser() for p in spec.split(",") if p.strip()]
    elif path.is_dir():
        paths = sorted(p for p in path.iterdir()
                       if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith("."))
        if not paths:
            raise ValueError(f"{path}: the folder holds no images ({', '.join(SUFFIXES)})")
    elif path.exists():
        paths = [path]
    else:
        raise FileNotFoundError(f"{spec}: no such file or folder; give a folder, image files "
                                "separated by commas, or cifar:INDICES")
    return [(p.stem, read_image(p)[0]) for p in paths]


def _validate(methods: list[str], images: list[tuple[str, np.ndarray]], sigmas: list[float],
              crop: int | None, options: dict[str, dict]) -> dict[str, dict]:
    """Check the arguments of :func:`run_compare`; return the checked options of every method."""
    if not methods or not images or not sigmas:
        raise ValueError("give at least one method, one image and one sigma")
    if bad := [m for m in methods if m not in METHODS]:
        raise ValueError(f"unknown method {bad[0]!r}: use one of {', '.join(METHODS)}")
    if "bm3d" in methods and find_spec("bm3d") is None:
        raise ValueError("bm3d needs the optional extra: pip install 'rdip[bm3d]' (non-commercial "
                         "licence), or leave bm3d out of the methods")
    if extra := set(options) - set(methods):
        raise ValueError(f"options for {sorted(extra)[0]!r}, which is not among the methods compared")
    for what, items in (("method", methods), ("image name (file stem)", [n for n, _ in images])):
        if dup := sorted({x for x in items if items.count(x) > 1}):
            raise ValueError(f"{what} {dup[0]!r} is given twice; names must be unique")
    for s in sigmas:
        check_sigma(s)
    if crop is not None and crop < CENTRE:
        raise ValueError(f"crop must be at least {CENTRE} (the centre SSIM's square), got {crop}")
    longest = max((f"{n}-s{s:g}.json" for n, _ in images for s in sigmas), key=lambda x: len(os.fsencode(x)))
    if len(os.fsencode(longest)) > 255:  # a run's file name (run_name): refused before any run
        raise ValueError(f"image name {longest[:40]}… makes a saved run's file name of "
                         f"{len(os.fsencode(longest))} bytes, more than file systems allow (255); "
                         "give the image a shorter file name")
    return {m: check_options(m, options.get(m, {})) for m in methods}


def run_compare(methods: list[str], images: list[tuple[str, np.ndarray]], sigmas: list[float],
                out: Path, *, seed: int = 0, crop: int | None = None,
                options: dict[str, dict] | None = None, environment: dict | None = None,
                progress: bool = True, log=print, force: bool = False,
                sigma_scale: float = 1.0, workers: int = 1) -> list[dict]:
    """Run (or resume) every method on every image × sigma into ``out``; write :data:`OUTPUTS`.

    ``options[method]`` are keyword options of that method. ``force`` redoes every run and
    replaces a ``compare.json`` of another seed, crop or options. ``sigma_scale``: the units the
    user gave σ in (255: 0-255), for the figures' and report's labels. ``workers``: processes of
    one torch thread each that share the runs (1: this process, with its torch threads). Returns
    the compare.csv rows.
    """
    from .. import __version__

    options = _validate(methods, images, sigmas, crop, options or {})
    clean = {name: clean_image(name, image, crop) for name, image in images}
    _check_sizes(methods, clean, crop)
    out = Path(out)
    _check_folder(out, methods, seed, crop, options, force)
    plan = Plan(_study(options, clean, sigmas, seed, crop))
    mine = {name: run_name(r.variant, r.image, r.sigma) for name, r in plan.runs.items()}  # in OUT/runs
    keys = {name: {k: v for k, v in plan.key(r).items() if k not in ALIKE} for name, r in plan.runs.items()}
    store = RunStore(out / "runs")
    todo = [n for n, r in plan.runs.items() if force or not store.done(
        mine[n], _reused(keys[n]), shape=plan.clean_of(r).shape, fields=("metrics", "seconds"))]
    log(f"rdip compare: {len(plan.runs)} runs ({len(methods)} methods × {len(clean)} images × "
        f"{len(sigmas)} sigmas); {len(plan.runs) - len(todo)} already done in {out}/")

    def save(name: str, fields: dict, image: np.ndarray) -> None:  # a run's record as before the runner
        m, found = plan.runs[name].variant, fields["scores"]
        store.save(mine[name], {"method": m, "image": plan.runs[name].image, "options": identity(options[m]),
                                **keys[name], "metrics": {k: found[k] for k in METRICS},
                                "seconds": found["seconds"], "device": fields["device"].split(":")[0]}, image)

    with progress_bar(len(todo), "compare", enabled=progress, unit="run") as bar:
        run_batches(batches(plan, todo), save, workers, bar, threads=None)
    noisy = {(n, s): plan.noisy(plan.plain(SET, n, s, seed)) for n in clean for s in sigmas}
    rows, table = _write_outputs(out, methods, sigmas, clean, noisy, seed, crop, options, sigma_scale)
    write_json(out / "compare.json", {  # last: a failed or interrupted run leaves no settings to refuse
        "methods": methods, "options": options, "sigmas": sigmas, "seed": seed, "crop": crop,
        "crop_note": f"centre {crop}×{crop} of the clean image, before noise" if crop else "none",
        "images": list(clean), "noise_seed": NOISE_SEED, "noise_clipped": False,
        "centre_size": CENTRE, "environment": environment or {}, "rdip_version": __version__},
        force=True)
    log(table.rstrip())
    log(f"wrote {', '.join(str(out / name) for name in OUTPUTS)}")
    return rows


def _study(options: dict[str, dict], clean: dict, sigmas: list[float], seed: int, crop: int | None) -> Study:
    """The comparison as a study: one image set, one variant per method (an rdip preset as its
    configuration, fitted one image a call so that its seconds are a call's, as every method's
    are), seeded as rdip compare seeds (the study's default), every method given σ."""
    variants = {m: Variant(m, {}, config=preset(m[len("rdip-"):], **o).replace(chunk=1), sets=(SET,))
                if m.startswith("rdip-") else Variant(m, {}, method=m, options=o, sets=(SET,))
                for m, o in options.items()}
    images = ImageSet(SET, list(clean.items()), tuple(sigmas), crop=crop)
    return Study(Path("compare.json"), "", "rdip compare", {SET: images}, variants, seeds=(seed,))


def _reused(key: dict) -> dict:
    """What a saved run must match to be reused for a run of ``key``: ``key``, an rdip configuration
    without its seed (the key's ``seed`` seeds the network; runs saved before the runner hold the
    preset's 0 there)."""
    if "config" not in key:
        return key
    return {**key, "config": {k: v for k, v in key["config"].items() if k != "seed"}}


def _check_folder(out: Path, methods: list[str], seed: int, crop: int | None, options: dict,
                  force: bool) -> None:
    """Refuse an ``out`` that is a file, that holds someone else's files by the outputs' names, or
    (unless ``force``) a comparison of another seed, crop or options of a method compared again."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out}: exists and is not a folder; choose another --out")
    if link := next((out / n for n in (*OUTPUTS, "runs") if (out / n).is_symlink()), None):
        raise ValueError(f"{link} is a symbolic link; nothing was written (remove it)")  # even with force
    settings_path = out / "compare.json"
    ours = settings_path.exists() or (out / "runs").is_dir()  # runs are saved first, settings last
    if not ours and not force and (theirs := [n for n in OUTPUTS if (out / n).exists()]):
        raise FileExistsError(f"{out}: holds {', '.join(theirs)} but no runs of rdip compare; choose "
                              "another --out, or use --force to replace them")
    if settings_path.exists() and not force:
        saved = _saved_settings(settings_path)
        shared = [m for m in methods if m in saved["options"]]
        if (saved.get("seed"), saved.get("crop")) != (seed, crop) or \
                any(identity(saved["options"][m]) != identity(options[m]) for m in shared):
            raise FileExistsError(f"{out}: holds a comparison with another seed, crop or options; "
                                  "choose another --out or use --force to replace it")


def _check_sizes(methods: list[str], clean: dict, crop: int | None) -> None:
    """Refuse images smaller than the rdip presets' network takes before any method runs."""
    small = [(n, x.shape) for n, x in clean.items() if min(x.shape[:2]) < MIN_SIZE]
    if small and (rdip := [m for m in methods if m.startswith("rdip-")]):
        name, shape = small[0]
        raise ValueError(f"image {name} is {shape[0]}×{shape[1]}{' (--crop)' if crop else ''}: "
                         f"{rdip[0]} needs at least {MIN_SIZE}×{MIN_SIZE} pixels; use larger images "
                         "(--crop 25 or more) or leave the rdip methods out")


def _saved_settings(path: Path) -> dict:
    """A folder's ``compare.json``, or a ``ValueError`` that names it when it is not one."""
    if not regular(path):  # (stat'ed, not opened: reading a FIFO would wait forever)
        raise ValueError(f"{path}: is not a regular file (a FIFO, socket, device or folder); choose another "
                         "--out or move it away")
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"{path}: cannot be read as JSON ({e}); choose another --out or use --force "
                         "to replace it") from None
    if not (isinstance(saved, dict) and isinstance(saved.get("options", {}), dict)
            and all(isinstance(o, dict) for o in saved.get("options", {}).values())):
        raise ValueError(f"{path}: is not the settings of a comparison (a JSON object with its "
                         "options); choose another --out or use --force to replace it")
    return {**saved, "options": saved.get("options", {})}


def run_name(method: str, name: str, sigma: float) -> str:
    """The name of a run in the run store ``OUT/runs``: ``<method>/<image>-s<sigma>``."""
    return f"{method}/{name}-s{sigma:g}"


def _write_outputs(out: Path, methods: list[str], sigmas: list[float], clean: dict, noisy: dict,
                   seed: int, crop: int | None, options: dict, scale: float = 1.0) -> tuple[list[dict], str]:
    """Write compare.csv, summary.csv, summary.md, crops.png and report.html from the saved runs;
    return the rows of compare.csv and the summary as a Markdown table."""
    store = RunStore(out / "runs")
    records = {(m, n, s): store.record(run_name(m, n, s)) for s in sigmas for n in clean for m in methods}
    rows = [{"method": m, "image": n, "sigma": s, **r["metrics"], "seconds": r["seconds"],
             "device": r.get("device", "cpu")}  # runs saved before devices were recorded: CPU
            for (m, n, s), r in records.items()]
    write_csv(out / "compare.csv", rows)
    summary = _summary(rows, methods, sigmas, clean, noisy)
    write_csv(out / "summary.csv", summary)
    table = markdown_table([{**r, "sigma": sigma_label(r["sigma"], scale)} for r in summary])
    set_options = "; ".join(f"{m}: {o}" for m, o in options.items() if o) or "none (defaults)"
    notes = (f"Images: {', '.join(clean)}. Crop: "
             f"{f'centre {crop}×{crop} of each clean image, taken before adding noise' if crop else 'none'}. "
             f"Noise: Gaussian, not clipped, seed `{NOISE_SEED}` with seed {seed}; every method is given "
             "sigma. The noisy row scores the noisy input clipped to [0, 1]. "
             f"Options: {set_options}. SSIM: scikit-image, data_range 1, 7×7 window; centre = the central "
             f"{CENTRE}×{CENTRE}. Seconds: mean wall-clock time of one call per image on the device "
             "it ran on (`device`; environment of the last run in compare.json). Means over images; "
             "sorted by sigma, then full SSIM.")
    title = (f"Comparison: {len(methods)} methods, {len(clean)} images, "
             f"{', '.join(sigma_label(s, scale) for s in sigmas)}")
    atomic_write(out / "summary.md", lambda tmp: Path(tmp).write_text(f"# {title}\n\n{notes}\n\n{table}"))
    results = {(m, n, s): store.load(run_name(m, n, s))[1] for (m, n, s) in records}
    grid = []
    for n in list(clean)[:4]:  # every sigma of the first four images
        for s in sigmas:
            row = [(noisy[(n, s)], f"{n} {sigma_label(s, scale)}",
                    scores(np.clip(noisy[(n, s)], 0, 1), clean[n], CENTRE))]
            row += [(results[(m, n, s)], m, records[(m, n, s)]["metrics"]) for m in methods]
            grid.append(row + [(clean[n], "clean", None)])
    panel_grid(out / "crops.png", grid)
    _report(out, title, notes, summary, methods, sigmas, clean, noisy, results, records, scale)
    return rows, table


def _summary(rows: list[dict], methods, sigmas, clean, noisy) -> list[dict]:
    """Per σ, the noisy input's and each method's mean scores and seconds, best SSIM first."""
    def mean(sel: list[dict], key: str) -> float:
        return float(np.mean([r[key] for r in sel]))

    summary = []
    for s in sigmas:
        noisy_scores = [scores(np.clip(noisy[(n, s)], 0, 1), clean[n], CENTRE) for n in clean]
        summary.append({"method": "noisy", "sigma": s, **{k: mean(noisy_scores, k) for k in noisy_scores[0]},
                        "seconds": "", "count": len(clean), "device": ""})
        for m in methods:
            sel = [r for r in rows if r["method"] == m and r["sigma"] == s]
            summary.append({"method": m, "sigma": s, **{k: mean(sel, k) for k in
                                                      ("ssim_full", "ssim_centre", "psnr", "seconds")},
                            "count": len(sel), "device": "+".join(sorted({r["device"] for r in sel}))})
    summary.sort(key=lambda r: (r["sigma"], -r["ssim_full"]))
    return summary


def _report(out: Path, title: str, notes: str, summary, methods, sigmas, clean, noisy, results,
            records, scale: float) -> None:
    """report.html: the summary, crops.png, and every image × σ side by side at full resolution."""
    from ..report import Comparison, Figure, Panel, Table, write_report

    comparisons = []
    for n in clean:
        for s in sigmas:
            panels = [Panel("noisy", noisy[(n, s)], panel_scores(scores(np.clip(noisy[(n, s)], 0, 1), clean[n], CENTRE)))]
            panels += [Panel(m, results[(m, n, s)], panel_scores(records[(m, n, s)]["metrics"])) for m in methods]
            comparisons.append(Comparison(f"{n} {sigma_label(s, scale)}", panels + [Panel("clean", clean[n])]))
    table = [{**r, "sigma": sigma_label(r["sigma"], scale)} for r in summary]
    write_report(out / "report.html", title, intro=notes, tables=[Table("Means over images", table)],
                 figures=[Figure("The first images, every method (crops.png)", out / "crops.png")],
                 comparisons=comparisons)
