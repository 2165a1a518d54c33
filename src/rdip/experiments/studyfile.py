"""The study file of ``rdip study``: named variants run on named image sets at several noise
levels and seeds, in TOML (read with :mod:`tomllib`).

A complete example (every key but ``title``, ``sets`` and ``variants`` is optional)::

    title = "Does reflect padding help the default preset?"
    seeds = [0]                     # default [0]
    reference = "default"           # paired differences against this variant
    scores = ["ssim_full", "ssim_centre", "psnr", "seconds", "iters"]   # the summary's columns

    [sets.cifar]
    images = "cifar:0-14"           # CIFAR-10 test images (0-14 are bundled with rdip)
    sigma = [0.1]                   # noise levels in [0, 1] units ...

    [sets.photos]
    images = ["photos/a.png", "photos/b.tif"]   # files, or a folder: "photos"
    crop = 64                       # the centre 64×64 of each image, cut before adding noise
    sigma_255 = [15, 25, 50]        # ... or in 0-255 units
    prefix = "p-"                   # names p-a, p-b (files of one name in two sets); the noise
                                    # stays seeded by the file stem, as rdip compare seeds it

    [variants.default]
    preset = "default"              # a preset and FitConfig fields ...
    iters = 400

    [variants.reflect]
    base = "default"                # ... or an earlier variant and the fields it changes
    padding = "reflect"

    [variants.nlmeans]
    method = "nlmeans"              # ... or a method of rdip.experiments.baselines.METHODS
    h_factor = 0.8                  # and its options

Top-level keys: ``title``, ``description`` (text for summary.md and report.html), ``data`` (the
folder that relative image paths start from, relative to the study file; the environment
variable ``RDIP_DATA``, when set, takes its place; without ``data`` paths start from the study
file's folder), ``output`` (the folder ``rdip study`` writes without ``-o``, relative to the study
file), ``seeds``, ``seeding`` (:data:`SEEDINGS`), ``reference``, ``scores`` (:data:`SCORES`),
``keep_images`` (save every result image, for report.html; default true), ``keep_history`` (keep
each fit's SSIM/PSNR every ``eval_every`` iterations in runs.jsonl; default false),
``report_images`` (images of each set shown in report.html, first seed, every σ; default 4).

Every variant may also set ``sigma`` (``"given"``: the true σ is passed to the method, the
default; ``"estimated"``: it is not), ``clip_noise`` (clip the noisy images to [0, 1]), ``sets``
(the sets it runs on; default all), ``reference`` (its own reference variant) and ``sweep``, a
table of keys and lists of values: one variant per combination, named ``NAME[key=value, …]``.
A variant's ``seed`` is the study's (``seeds``, ``seeding``). Names are free text (quote them in
TOML when they hold spaces or dots: ``[variants."adam 1e-3"]``).

Every key is checked: an unknown key or a bad value is refused naming the file, the line and the
key (:class:`StudyError`), before anything is run or written; so is an image path that does not
exist (with the folder it was looked for in). A study holds at most :data:`MAX_VARIANTS` variants
and :data:`MAX_RUNS` runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import itertools
import json
import math
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from ..config import MIN_SIZE, PRESETS, SEED_LIMIT, FitConfig, preset
from ..images.files import SUFFIXES, plain_name, read_image
from ..images.metrics import centre
from ..images.noise import check_sigma, unit_image
from .baselines import CHECKS, METHODS, check_device

#: The side of the centre square that SSIM centre scores (the paper's 16×16 of a 32×32 image).
CENTRE = 16
#: The scores of a run: name → label in tables. ``ssim_best`` / ``best_iter``: the best full-image
#: SSIM on the fit's trajectory (every ``eval_every`` iterations; an oracle that needs the clean
#: image) and where; ``loss_ratio``: the last loss over σ² in the fitting range's units (1: the
#: fit has reached the noise level). The last three are for rdip variants only.
SCORES = {"ssim_full": "SSIM full", "ssim_centre": "SSIM centre", "psnr": "PSNR dB",
          "seconds": "s / run", "iters": "iterations", "ssim_best": "best SSIM full",
          "best_iter": "best at iteration", "loss_ratio": "loss / σ²"}
DEFAULT_SCORES = ("ssim_full", "ssim_centre", "psnr", "seconds", "iters")
#: Scores where higher is better: the ones paired against the reference.
QUALITY = ("ssim_full", "ssim_centre", "psnr", "ssim_best")
#: How the noise (and a network's seed) follows from an image and a seed, as in ``rdip compare``
#: (noise seed :func:`rdip.experiments.study.noise_seed`, the network seeded ``seed``),
#: ``rdip reproduce`` (both seeded CIFAR index + 10000 × seed) or ``rdip denoise --add-noise``
#: (both seeded ``seed``, the same noise for every image of a size).
SEEDINGS = ("compare", "reproduce", "denoise")
TOP_KEYS = ("title", "description", "data", "output", "seeds", "seeding", "reference", "scores",
            "keep_images", "keep_history", "report_images", "sets", "variants")
SET_KEYS = ("images", "cifar_data", "crop", "sigma", "sigma_255", "prefix")
#: Keys every variant may have besides its configuration or its method's options.
COMMON_KEYS = ("sigma", "clip_noise", "sets", "reference", "sweep")
#: The most variants a study file may define (its sweeps expanded) and runs it may hold (variants
#: × images × σ × seeds): counted before any sweep is expanded or run planned, so that a file of
#: a million combinations is refused at once instead of checked for minutes.
MAX_VARIANTS = 10_000
MAX_RUNS = 100_000
_NOT_SWEPT = ("sweep", "base", "preset", "method", "sets", "reference")
_KEY = r'[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\''
_DOTTED = rf"(?:{_KEY})(?:\s*\.\s*(?:{_KEY}))*"


class StudyError(ValueError):
    """A study file that cannot be run: the message names the file, the line and the key."""


@dataclass
class ImageSet:
    """Clean images (``(name, image)``, cropped), the noise levels ([0, 1] units) and the units
    they were given in (1 or 255); ``indices``: CIFAR-10 index by name (``cifar:`` sets);
    ``stems``: by name, the name the noise is seeded by where it differs (a set's ``prefix``)."""

    name: str
    images: list[tuple[str, np.ndarray]]
    sigmas: tuple[float, ...]
    scale: float = 1.0
    crop: int | None = None
    indices: dict[str, int] = field(default_factory=dict)
    stems: dict[str, str] = field(default_factory=dict)


@dataclass
class Variant:
    """One way to denoise: an rdip configuration (``config``) or a baseline ``method`` with its
    checked ``options``; ``spec`` is what the file gave (after ``base`` and ``sweep``)."""

    name: str
    spec: dict
    config: FitConfig | None = None
    method: str | None = None
    options: dict = field(default_factory=dict)
    sigma_given: bool = True
    clip_noise: bool = False
    sets: tuple[str, ...] = ()
    reference: str | None = None
    table: str = ""  # the file's [variants.NAME] this variant comes from, and the keys its sweep
    swept: tuple[str, ...] = ()  # varies (one table, several variants)


@dataclass
class Study:
    """A checked study file with its images loaded (:func:`read_study`)."""

    path: Path
    text: str
    title: str
    sets: dict[str, ImageSet]
    variants: dict[str, Variant]
    description: str = ""
    output: Path | None = None
    seeds: tuple[int, ...] = (0,)
    seeding: str = "compare"
    scores: tuple[str, ...] = DEFAULT_SCORES
    keep_images: bool = True
    keep_history: bool = False
    report_images: int = 4


class Lines:
    """Where each key of a TOML text is: its line, found from the table headers and ``key =``
    lines (tomllib gives no positions). A key not found (inside an inline table, or not in the
    file) is placed at the nearest enclosing key that is."""

    def __init__(self, path: Path, text: str):
        self.path, self.lines = path, {}
        table: tuple = ()
        for number, line in enumerate(text.splitlines(), 1):
            if m := re.match(rf"\s*\[\s*({_DOTTED})\s*\]", line):
                table = _parts(m[1])
                self.lines.setdefault(table, number)
            elif m := re.match(rf"\s*({_DOTTED})\s*=", line):
                self.lines.setdefault(table + _parts(m[1]), number)

    def where(self, keys: tuple) -> str:
        """``FILE, line N, a.b.c``: the file, the key's line and the key."""
        for n in range(len(keys), 0, -1):
            if keys[:n] in self.lines:
                return f"{self.path}, line {self.lines[keys[:n]]}, {dotted(keys)}"
        return f"{self.path}, {dotted(keys)}" if keys else str(self.path)

    def error(self, keys: tuple, message: str) -> StudyError:
        return StudyError(f"{self.where(keys)}: {message}")


def _parts(text: str) -> tuple[str, ...]:
    """``a."b c".d`` → ``("a", "b c", "d")``."""
    out = []
    for m in re.finditer(_KEY, text):
        key = m[0]
        out.append(json.loads(key) if key[0] == '"' else key[1:-1] if key[0] == "'" else key)
    return tuple(out)


def dotted(keys: tuple) -> str:
    """A key path as TOML writes it: bare keys as they are, others quoted."""
    return ".".join(k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k) for k in keys)


def read_study(path: str | os.PathLike) -> Study:
    """Read, check and load the study file ``path`` (its images too); a :class:`StudyError` (or
    FileNotFoundError for the file itself) names what is wrong."""
    path = Path(path)
    if path.is_dir():
        raise StudyError(f"{path}: is a folder, not a study file (a TOML file)")
    try:  # stat'ed, not opened: reading a FIFO would wait forever
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise StudyError(f"{path}: is not a regular file (a FIFO, socket or device), so not a "
                             "study file (a TOML file)")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such study file") from None
    except OSError:
        pass  # (the read below says why)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such study file") from None
    except UnicodeDecodeError:
        raise StudyError(f"{path}: is not UTF-8 text, so not a study file (a TOML file)") from None
    except OSError as e:
        raise StudyError(f"{path}: cannot read the study file ({e})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        at = re.search(r"\s*\(at line (\d+), column \d+\)", str(e))
        where = f"{path}, line {at[1]}" if at else str(path)
        raise StudyError(f"{where}: not a valid TOML file: {str(e).replace(at[0], '') if at else e}") from None
    lines = Lines(path, text)
    _known(raw, TOP_KEYS, (), lines)
    for key in ("sets", "variants"):
        if not isinstance(raw.get(key), dict) or not raw[key] or \
                not all(isinstance(v, dict) for v in raw[key].values()):
            raise lines.error((key,), f"give at least one [{key}.NAME] table")
    top = _top(raw, lines, path)
    data_dir = top.pop("data_dir")
    sets = {name: _image_set(name, table, lines, data_dir) for name, table in raw["sets"].items()}
    variants = _variants(raw["variants"], lines, sets)
    study = Study(path=path, text=text, sets=sets, variants=variants, **top)
    _check_study(study, raw, lines)
    return study


def _known(table: dict, allowed, keys: tuple, lines: Lines) -> None:
    for key in table:
        if key not in allowed:
            raise lines.error(keys + (key,), f"unknown key; use one of {', '.join(allowed)}")


def _typed(table: dict, key: str, kind, keys: tuple, lines: Lines, what: str):
    value = table[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise lines.error(keys + (key,), f"must be {what}, got {value!r}")
    return value


def _top(raw: dict, lines: Lines, path: Path) -> dict:
    """The top-level settings, checked (``sets`` and ``variants`` aside), and the data folder."""
    out: dict = {"title": path.stem}
    for key, what in (("title", "text"), ("description", "text"), ("data", "a folder"),
                      ("output", "a folder")):
        if key in raw:
            out[key] = _typed(raw, key, str, (), lines, f"a string ({what})")
    here, data = path.parent, out.pop("data", None)
    lines.data_from = "data key" if data is not None else ""  # for the hint of a missing path
    if data is not None and os.environ.get("RDIP_DATA"):
        data = os.environ["RDIP_DATA"]  # the environment's copy of the data, not the file's
        lines.data_from = "RDIP_DATA"
    out["data_dir"] = here / Path(data).expanduser() if data else here
    if "output" in out:
        out["output"] = Path(os.path.normpath(here / Path(out["output"]).expanduser()))
    if "seeds" in raw:
        seeds = raw["seeds"]
        if not (isinstance(seeds, list) and seeds and all(type(s) is int and 0 <= s <= SEED_LIMIT for s in seeds)
                and len(set(seeds)) == len(seeds)):  # the command line's seeds (rdip compare's noise: seed × 2³² + …)
            raise lines.error(("seeds",), f"must be a list of distinct integers from 0 to {SEED_LIMIT} "
                                          f"(2**32 - 1), got {seeds!r}")
        out["seeds"] = tuple(seeds)
    if "seeding" in raw:
        if raw["seeding"] not in SEEDINGS:
            raise lines.error(("seeding",), f"must be one of {', '.join(SEEDINGS)}, got {raw['seeding']!r}")
        out["seeding"] = raw["seeding"]
    if "scores" in raw:
        scores = raw["scores"]
        if not (isinstance(scores, list) and scores and all(s in SCORES for s in scores)):
            raise lines.error(("scores",), f"must be a list of scores from {', '.join(SCORES)}, got {scores!r}")
        out["scores"] = tuple(dict.fromkeys(scores))
    for key in ("keep_images", "keep_history"):
        if key in raw:
            out[key] = _typed(raw, key, bool, (), lines, "true or false")
    if "report_images" in raw:
        out["report_images"] = _typed(raw, "report_images", int, (), lines, "an integer")
        if out["report_images"] < 0:
            raise lines.error(("report_images",), "must be >= 0")
    return out


def _sigmas(table: dict, keys: tuple, lines: Lines) -> tuple[tuple[float, ...], float]:
    """A set's noise levels in [0, 1] units (from ``sigma`` or ``sigma_255``) and their units."""
    given = [k for k in ("sigma", "sigma_255") if k in table]
    if len(given) != 1:
        raise lines.error(keys, "give the noise levels as either sigma ([0, 1] units) or "
                                "sigma_255 (0-255 units), not both" if given else
                                "give the noise levels: sigma = [0.1] ([0, 1] units) or sigma_255 = [25]")
    key, scale = given[0], 255.0 if given[0] == "sigma_255" else 1.0
    values = table[key] if isinstance(table[key], list) else [table[key]]
    out = []
    for v in values:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 < v < scale
        if not ok:
            raise lines.error(keys + (key,), f"each noise level must be a number in (0, {scale:g}) "
                                             f"({'0-255' if scale == 255 else '[0, 1]'} units), got {v!r}")
        out.append(check_sigma(v / scale))
    if not out or len(set(out)) < len(out):
        raise lines.error(keys + (key,), "give at least one noise level, each once")
    return tuple(out), scale


def _image_set(name: str, table: dict, lines: Lines, data_dir: Path) -> ImageSet:
    """Set ``name``: its images loaded (and cropped) and its noise levels."""
    keys = ("sets", name)
    _known(table, SET_KEYS, keys, lines)
    if "images" not in table:
        raise lines.error(keys, 'give images: "cifar:0-14", a folder, or a list of files')
    crop = None
    if "crop" in table:
        crop = _typed(table, "crop", int, keys, lines, "an integer (pixels)")
        if crop < CENTRE:
            raise lines.error(keys + ("crop",), f"must be at least {CENTRE} (the centre SSIM's square), got {crop}")
    sigmas, scale = _sigmas(table, keys, lines)
    spec, where = table["images"], keys + ("images",)
    if isinstance(spec, str) and spec.startswith("cifar:"):
        images, indices = _cifar(spec, table, keys, lines, data_dir)
    else:
        if "cifar_data" in table:
            raise lines.error(keys + ("cifar_data",), "applies only to images = \"cifar:INDICES\"")
        paths = [spec] if isinstance(spec, str) else spec
        if not (isinstance(paths, list) and paths and all(isinstance(p, str) and p for p in paths)):
            raise lines.error(where, f'must be "cifar:INDICES", a folder or a list of files, got {spec!r}')
        images, indices = [x for p in paths for x in _files(p, where, lines, data_dir)], {}
    names = [n for n, _ in images]
    if dup := sorted({n for n in names if names.count(n) > 1}):
        raise lines.error(where, f"image name {dup[0]!r} (a file stem) is given twice; names must be unique")
    try:
        images = [(n, clean_image(n, x, crop)) for n, x in images]
    except ValueError as e:
        raise lines.error(keys + ("crop",) if crop else where, str(e)) from None
    prefix = _typed(table, "prefix", str, keys, lines, "a string") if "prefix" in table else ""
    stems = {prefix + n: n for n, _ in images} if prefix else {}
    images = [(prefix + n, x) for n, x in images]
    for n, _ in images:  # a run's image is saved under its name: one plain file name
        if bad := plain_name(n):
            raise lines.error(keys + ("prefix",) if prefix else where, f"image name {n!r} {bad}; "
                              "an image's name (prefix + file stem) must be a plain file name")
    indices = {prefix + n: i for n, i in indices.items()}
    return ImageSet(name, images, sigmas, scale, crop, indices, stems)


def _cifar(spec: str, table: dict, keys: tuple, lines: Lines, data_dir: Path):
    from ..images.cifar10 import load_cifar10, parse_indices

    source = None
    if "cifar_data" in table:
        source = data_dir / Path(_typed(table, "cifar_data", str, keys, lines, "a path")).expanduser()
        if not source.exists():
            raise lines.error(keys + ("cifar_data",), f"{source}: no such file or folder{_data_hint(data_dir, lines)}")
    try:
        indices = parse_indices(spec[len("cifar:"):])
        images, _ = load_cifar10(indices, source=source)
    except (ValueError, OSError) as e:
        raise lines.error(keys + ("images",), str(e)) from None
    names = [f"cifar-{i:04d}" for i in indices]
    return ([(n, unit_image(x, n)) for n, x in zip(names, images)],
            dict(zip(names, indices)))


def _data_hint(data_dir: Path, lines: Lines) -> str:
    """Where relative paths start from, and where that folder came from (RDIP_DATA is read only
    in place of a ``data`` key)."""
    where = {"RDIP_DATA": "given by RDIP_DATA (in place of the study file's data key); set it to "
                          "the folder that holds the data",
             "data key": "given by the study file's data key; set RDIP_DATA to the folder that holds "
                         "the data to replace it"}.get(
        getattr(lines, "data_from", ""), "the study file's folder: it has no data key; add data = "
                                         '"FOLDER" (RDIP_DATA, when set, then replaces it)')
    return f" (relative paths start from {data_dir}, {where})"


def _files(spec: str, where: tuple, lines: Lines, data_dir: Path) -> list[tuple[str, np.ndarray]]:
    """``(file stem, image)`` of a file, or of every image file in a folder (sorted)."""
    path = data_dir / Path(spec).expanduser()
    if path.is_dir():
        paths = sorted(p for p in path.iterdir()
                       if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith("."))
        if not paths:
            raise lines.error(where, f"{path}: the folder holds no images ({', '.join(SUFFIXES)})")
    elif path.is_file():
        paths = [path]
    else:
        raise lines.error(where, f"{path}: no such file or folder{_data_hint(data_dir, lines)}")
    try:
        return [(p.stem, read_image(p)[0]) for p in paths]
    except (ValueError, OSError) as e:
        raise lines.error(where, str(e)) from None


def _expand(name: str, table: dict, lines: Lines, before: int = 0) -> list[tuple[str, dict]]:
    """A variant table as ``(name, table)`` pairs: itself, or one per combination of its sweep;
    ``before`` variants come before it (with its own, at most :data:`MAX_VARIANTS`)."""
    keys = ("variants", name)
    if re.search(r'[][/\\<>:"|?*\x00-\x1f]', name) or name.strip() in ("", ".", "..") or name != name.strip():
        raise lines.error(keys, "a variant's name (a folder name for its images) must be text without "
                                "spaces at either end, not . or .., and without any of / \\ [ ] < > : \" | ? *")
    if "sweep" not in table:
        if before >= MAX_VARIANTS:
            raise lines.error(keys, f"is variant {before + 1:,}, more than the {MAX_VARIANTS:,} a study "
                                    "may hold; split the study")
        return [(name, table)]
    sweep = table["sweep"]
    if not (isinstance(sweep, dict) and sweep and all(isinstance(v, list) and v for v in sweep.values())):
        raise lines.error(keys + ("sweep",), "must be a table of keys and non-empty lists of values, "
                                             "e.g. sweep = { lr = [1e-3, 1e-4] }")
    for key in sweep:
        if key in _NOT_SWEPT or key in table:
            raise lines.error(keys + ("sweep", key), "cannot be swept" if key in _NOT_SWEPT else
                              "is also set outside the sweep; set it in one place")
    if (count := math.prod(len(v) for v in sweep.values())) + before > MAX_VARIANTS:
        raise lines.error(keys + ("sweep",), f"makes {count:,} variants ({' × '.join(str(len(v)) for v in sweep.values())}"
                                             f"{f', after {before:,} above' if before else ''}), more than the "
                                             f"{MAX_VARIANTS:,} a study may hold; sweep fewer values, or split the study")
    for key in sweep:  # a swept key's errors point at the sweep's line
        if keys + ("sweep",) in lines.lines:
            lines.lines.setdefault(keys + (key,), lines.lines[keys + ("sweep",)])
    rest = {k: v for k, v in table.items() if k != "sweep"}
    out = []
    for values in itertools.product(*sweep.values()):
        label = ", ".join(f"{k}={_show(v)}" for k, v in zip(sweep, values))
        if bad := plain_name(f"{name}[{label}]"):  # the name of its images' folder
            raise lines.error(keys + ("sweep",), f"the variant name {name}[{label}] {bad}; sweep other values")
        out.append((f"{name}[{label}]", {**rest, **dict(zip(sweep, values))}))
    return out


def _show(value) -> str:
    return str(value).lower() if isinstance(value, bool) else f"{value:g}" if isinstance(value, float) else str(value)


def _variants(tables: dict, lines: Lines, sets: dict) -> dict[str, Variant]:
    """Every variant of the file, in its order (sweeps expanded), checked."""
    specs: dict[str, dict] = {}
    out: dict[str, Variant] = {}
    for name, table in tables.items():
        for full, own in _expand(name, table, lines, len(out)):
            if full in out:
                raise lines.error(("variants", name), f"variant {full!r} is defined twice")
            keys = ("variants", name)
            spec = _merged(own, keys, specs, lines)
            specs[full] = spec
            out[full] = _variant(full, spec, keys, lines, sets)
            out[full].table, out[full].swept = name, tuple(table.get("sweep", ()))
    return out


def _merged(own: dict, keys: tuple, specs: dict, lines: Lines) -> dict:
    """A variant's keys with those of its ``base`` (an earlier variant) under them."""
    if "base" not in own:
        if not ("preset" in own) ^ ("method" in own):
            raise lines.error(keys, "give preset = NAME (and FitConfig fields), method = NAME (and "
                                    "its options) or base = VARIANT (and the keys it changes)")
        return dict(own)
    base = own["base"]
    if "preset" in own or "method" in own:
        raise lines.error(keys + ("base",), "give either base or preset/method, not both")
    if base not in specs:
        raise lines.error(keys + ("base",), f"{base!r} is not a variant defined above; base names an "
                                            "earlier variant (not a sweep)")
    return {**specs[base], **{k: v for k, v in own.items() if k != "base"}}


def _variant(name: str, spec: dict, keys: tuple, lines: Lines, sets: dict) -> Variant:
    """One variant from its merged keys: the common keys, then its configuration or method."""
    v = Variant(name=name, spec=spec, sets=tuple(sets))
    if "sigma" in spec:
        if spec["sigma"] not in ("given", "estimated"):
            raise lines.error(keys + ("sigma",), f'must be "given" or "estimated", got {spec["sigma"]!r}')
        v.sigma_given = spec["sigma"] == "given"
    if "clip_noise" in spec:
        v.clip_noise = _typed(spec, "clip_noise", bool, keys, lines, "true or false")
    if "sets" in spec:
        chosen = spec["sets"]
        if not (isinstance(chosen, list) and chosen and all(s in sets for s in chosen)):
            raise lines.error(keys + ("sets",), f"must be a list of the study's sets ({', '.join(sets)}), "
                                                f"got {chosen!r}")
        v.sets = tuple(dict.fromkeys(chosen))
    if "reference" in spec:
        v.reference = _typed(spec, "reference", str, keys, lines, "a variant's name")
    own = {k: val for k, val in spec.items() if k not in COMMON_KEYS + ("preset", "method")}
    if "method" in spec:
        _method(v, spec["method"], own, keys, lines)
    else:
        v.config = _config(spec["preset"], own, keys, lines)
    return v


def _config(name, fields: dict, keys: tuple, lines: Lines) -> FitConfig:
    """The preset ``name`` with ``fields``; an unknown or bad field is refused at its line."""
    if name not in PRESETS:
        raise lines.error(keys + ("preset",), f"unknown preset {name!r}: use one of {', '.join(PRESETS)}")
    known = {f.name for f in dataclasses.fields(FitConfig)} - {"preset", "seed"}
    for key in fields:
        if key == "seed":
            raise lines.error(keys + (key,), "the seeds are the study's: set seeds = [...] at the top "
                                             "(and seeding)")
        if key not in known:
            raise lines.error(keys + (key,), f"unknown key: not a FitConfig field nor one of "
                                             f"{', '.join(COMMON_KEYS)}")
    try:
        config = PRESETS[name].replace(**fields)
        check_device(config.device)  # cuda on a machine without it: refused here, not at its run
        return config
    except (TypeError, ValueError) as e:
        message = str(e)
        blamed = [k for k in fields if re.search(rf"\b{k}\b", message)
                  or (k == "pad_width" and "pad width" in message)]
        blamed.sort(key=lambda k: re.search(rf"\b{k}\b", message.replace("pad width", "pad_width")).start())
        raise lines.error(keys + (blamed[0],) if blamed else keys, message) from None


def _method(v: Variant, method, options: dict, keys: tuple, lines: Lines) -> None:
    """A baseline method and its options, checked one by one (each at its line)."""
    choices = [m for m in METHODS if not m.startswith("rdip-")]
    if method not in choices:
        hint = f'; for rdip use preset = "{method[5:]}"' if str(method).startswith("rdip-") else ""
        raise lines.error(keys + ("method",), f"unknown method {method!r}: use one of "
                                              f"{', '.join(choices)}{hint}")
    if method == "bm3d" and find_spec("bm3d") is None:
        raise lines.error(keys + ("method",), "bm3d needs the optional extra: pip install 'rdip[bm3d]' "
                                              "(non-commercial licence)")
    if "seed" in options and "seed" not in known_options(method):
        raise lines.error(keys + ("seed",), "the seeds are the study's: set seeds = [...] at the top")
    checked = {}
    for key, value in options.items():
        try:
            checked.update(check_options(method, {key: value}))
        except ValueError as e:
            raise lines.error(keys + (key,), str(e)) from None
    v.method, v.options = method, checked


def _check_study(study: Study, raw: dict, lines: Lines) -> None:
    """What needs the whole file: references name variants, seeding fits the sets, rdip's
    variants get images it can fit."""
    reference = raw.get("reference")
    if reference is not None and (not isinstance(reference, str) or reference not in study.variants):
        raise lines.error(("reference",), f"{reference!r} is not one of the variants "
                                          f"({', '.join(study.variants)})")
    for v in study.variants.values():  # a variant is not paired against itself
        v.reference = reference if v.reference is None else v.reference
        if v.reference not in study.variants and v.reference is not None:
            raise lines.error(("variants", v.name.split("[")[0], "reference"),
                              f"{v.reference!r} is not one of the variants")
        v.reference = None if v.reference == v.name else v.reference
    _check_names(study, lines)
    runs = sum(len(study.sets[s].images) * len(study.sets[s].sigmas) for v in study.variants.values()
               for s in v.sets) * len(study.seeds)
    if runs > MAX_RUNS:
        raise StudyError(f"{study.path}: makes {runs:,} runs (variants × images × σ × seeds), more than "
                         f"the {MAX_RUNS:,} a study may hold; split it into several study files")
    if study.seeding == "reproduce" and (bad := [s for s in study.sets.values() if not s.indices]):
        raise lines.error(("seeding",), f'"reproduce" seeds by CIFAR-10 index: set {bad[0].name!r} '
                                        'is not images = "cifar:INDICES"')
    for v in study.variants.values():
        if v.config is not None:
            for s in v.sets:
                _check_fits(v, study.sets[s], lines)


def _check_fits(v: Variant, s: ImageSet, lines: Lines) -> None:
    """rdip's variant ``v`` can fit every image of set ``s``: large enough, not over-padded."""
    from ..method.inputs import check_padding

    for n, x in s.images:
        if min(x.shape[:2]) < MIN_SIZE:
            raise lines.error(("sets", s.name), f"image {n} is smaller than the {MIN_SIZE}×{MIN_SIZE} "
                                                f"pixels rdip fits (variant {v.name!r})")
        h, w = x.shape[:2]
        if v.config.tile and max(h, w) > v.config.tile:
            h = w = v.config.tile  # padded tile by tile
        try:
            check_padding(h, w, v.config, f"image {n} of set {s.name}")
        except ValueError as e:
            raise lines.error(("variants", v.name.split("[")[0], "pad_width"), str(e)) from None


def _check_names(study: Study, lines: Lines) -> None:
    """Runs are named by image (and crop), so sets that share a name must share the image."""
    seen: dict[tuple, tuple[str, str]] = {}
    for s in study.sets.values():
        for n, x in s.images:
            found = digest(x)
            first = seen.setdefault((n, s.crop), (s.name, found))
            if first[1] != found:
                raise lines.error(("sets", s.name, "images"), f"image {n!r} (crop {s.crop}) is another "
                                                              f"image than {n!r} of set {first[0]!r}; "
                                                              "rename one of the files")


def clean_image(name: str, image: np.ndarray, crop: int | None) -> np.ndarray:
    """``image`` as float64, or its centre ``crop``×``crop``; at least 16×16 for the centre SSIM."""
    image = np.asarray(image, np.float64)
    size = crop or CENTRE
    if min(image.shape[:2]) < size:
        raise ValueError(f"image {name} is {image.shape[0]}×{image.shape[1]}, smaller than "
                         f"{'the crop' if crop else 'the centre SSIM square'} {size}×{size}")
    return np.ascontiguousarray(centre(image, crop)) if crop else image


def run_name(variant: str, image: str, crop: int | None, sigma: float, seed: int) -> str:
    """The name of a run of a study: ``<variant>/<image>[-c<crop>]-s<σ>-r<seed>``, σ in [0, 1]
    units (here, below the runner and its report, which both name runs by it)."""
    return f"{variant}/{image}{f'-c{crop}' if crop else ''}-s{sigma:.6g}-r{seed}"


def digest(image: np.ndarray) -> str:
    """The SHA-1 of an image's shape and pixels: what tells two clean images apart."""
    return hashlib.sha1(str(image.shape).encode() + image.tobytes()).hexdigest()


def known_options(method: str) -> dict:
    """The options ``method`` takes, with their defaults: its keyword-only parameters, or the
    :class:`FitConfig` fields for the rdip presets."""
    params = inspect.signature(METHODS[method]).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return {f.name: f.default for f in dataclasses.fields(FitConfig) if f.name not in ("seed", "preset")}
    return {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY}


def check_options(method: str, options: dict) -> dict:
    """``options`` for ``method``, checked against the keywords it takes and their defaults' types
    (:class:`FitConfig` fields for the rdip presets); ints are accepted for floats."""
    known = known_options(method)
    checked = {}
    for key, value in options.items():
        if key not in known:
            raise ValueError(f"{method} has no option {key!r}; its options: {', '.join(known) or 'none'}")
        kind = type(known[key])
        value = float(value) if kind is float and type(value) is int else value
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise ValueError(f"{method}.{key} needs a {kind.__name__}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{method}.{key} must be a finite number, got {value}")
        checked[key] = value
    if method.startswith("rdip-"):
        try:  # the configuration's own checks, before any run
            preset(method[len("rdip-"):], **checked)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{method}: {e}") from None
        if "device" in checked:
            check_device(checked["device"], f"{method}.device")
    elif method in CHECKS:  # the method's own checks of its values (ranges, names, devices)
        CHECKS[method](**checked)
    return checked
