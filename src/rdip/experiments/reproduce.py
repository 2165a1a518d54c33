"""The paper's experiment: Table II and Fig. 3 (15 CIFAR-10 images, σ = 0.1, three paddings).

The noise N(0, σ²) is added in the range the network fits the image in (``FitConfig.range``): σ =
0.1 in [-1, 1] (``symmetric``) is σ = 0.05 in [0, 1] units. Scores are always SSIM and PSNR of
[0, 1] images with ``data_range`` 1.

Every fit is saved as it finishes (``fits/<padding>-<image>-s<seed>.json`` and ``.npy``), so a
rerun of the same command skips what is done. The noise of an image and the network's seed are
shared by its paddings, so paddings are compared on the same noisy image and the same initial
network (seed ``image + 10000·seed``).
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ..config import PADDINGS, RANGES, SEED_LIMIT, FitConfig, range_width
from ..images.files import atomic_write, write_json
from ..images.metrics import panel_scores, scores, ssim, ssim_centre
from ..images.noise import add_noise
from ..method.devices import resolve_device
from ..method.engine import fit_many
from ..method.planning import expected_iters
from ..method.inputs import check_image, check_padding
from ..method.padding import check_mode
from ..progress import progress_bar, progress_callback
from ..store import RunStore, same
from .figures import panel_grid
from .study import seeds_for
from .studyreport import ci95, paired
from .tables import markdown_table, write_csv

SIGMA = 0.1
COLUMNS = ("ssim_full_none", "ssim_full_edge", "ssim_full_reflect",
           "ssim_center_none", "ssim_center_edge", "ssim_center_reflect")
OUTPUTS = ("table2.csv", "table2.md", "fig3.png", "curves.png", "report.html", "config.json")


@dataclass(frozen=True)
class Experiment:
    """What ``rdip reproduce`` runs: one fit per image × seed × padding of ``config``."""

    config: FitConfig
    indices: tuple[int, ...] = tuple(range(15))
    paddings: tuple[str, ...] = ("none", "edge", "reflect")
    seeds: tuple[int, ...] = (0, 1, 2)
    sigma: float = SIGMA
    clip_noise: bool = False
    data: str | None = None

    def __post_init__(self):
        low, high = RANGES[self.config.range]
        if not (math.isfinite(self.sigma) and 0 < self.sigma < range_width(self.config.range)):
            raise ValueError(f"sigma must be a finite number in (0, {high - low:g}) in the units of the "
                             f"fitting range [{low:g}, {high:g}], got {self.sigma}")
        if bad := [s for s in self.seeds if isinstance(s, bool) or not isinstance(s, int)
                   or not 0 <= s <= SEED_LIMIT]:
            raise ValueError(f"seed {bad[0]!r} is not an integer from 0 to {SEED_LIMIT}")
        for p in self.paddings:
            check_mode(p)

    @property
    def unit_sigma(self) -> float:
        """σ in [0, 1] units: ``sigma`` is in the fitting range's (``config.range``)."""
        return self.sigma / range_width(self.config.range)

    def fit_seed(self, index: int, seed: int) -> int:
        """The seed of image ``index``'s noise and network for ``seed``: the study's seeding
        ``reproduce`` (:func:`rdip.experiments.study.seeds_for`)."""
        return seeds_for("reproduce", f"cifar-{index:04d}", index, self.unit_sigma, seed)[0]

    def noisy(self, clean: np.ndarray, index: int, seed: int) -> np.ndarray:
        """Image ``index``'s noisy version for ``seed``, in [0, 1] units: N(0, σ²) noise added in
        the fitting range (σ/2 in [0, 1] units for ``symmetric``), clipped if ``clip_noise``."""
        return add_noise(clean, self.unit_sigma, seed=self.fit_seed(index, seed), clip=self.clip_noise)

    def key(self) -> dict:
        """What must match for saved fits to be reused (not the lists of images, seeds, paddings):
        the configuration's settings shared by its fits (:meth:`FitConfig.settings`), σ, clipping."""
        return {"config": self.config.settings(per_network=False), "sigma": self.sigma,
                "clip_noise": self.clip_noise}

    def matches(self, saved: dict | None) -> bool:
        """Whether fits saved under the key ``saved`` may be reused (:func:`rdip.store.same`)."""
        return same(saved, self.key())


def paper_table() -> list[dict]:
    """The paper's Table II (images numbered 1–15, taken to be CIFAR-10 test images 0–14)."""
    with (resources.files("rdip") / "paper_table2.csv").open() as f:
        return [{k: (int(v) if k == "image" else float(v)) for k, v in row.items()} for row in csv.DictReader(f)]


def fit_name(padding: str, index: int, seed: int) -> str:
    """The name of a fit in the run store ``OUT/fits``: ``<padding>-<image>-s<seed>``."""
    return f"{padding}-{index:04d}-s{seed}"


#: Every name :func:`fit_name` gives: ``--force`` deletes these files of ``OUT/fits`` and no other.
FIT_NAME = rf"(?:{'|'.join(PADDINGS)})-\d{{4,}}-s\d+"


def run_reproduce(exp: Experiment, out: Path, *, force: bool = False, progress: bool = True,
                  environment: dict | None = None, log=print, download: bool = False) -> list[dict]:
    """Run (or resume) the experiment into ``out``; write the five outputs; return table2 rows.

    Everything is checked (the device, the data loaded and checked as the fits will check it,
    ``out`` and its saved key compared, the saved fits) before anything is written; a saved fit
    that cannot be used (damaged, of another shape) is fitted again. A folder holding files by the
    outputs' names but no ``experiment.json`` (written first) is someone else's: refused unless
    ``force``. Fits are saved as they finish in a :class:`rdip.store.RunStore` (``out/fits``);
    ``force`` deletes the saved fits and redoes them all, so a run that fails half-way never
    leaves fits of another configuration to be resumed (only rdip's fits, :data:`FIT_NAME`: a file
    of another name in ``out/fits`` is left alone). ``download``: fetch the official CIFAR-10
    archive into the cache when indices beyond the bundled 0–14 are asked for without ``exp.data``.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out}: exists and is not a folder; choose another --out")
    resolve_device(exp.config.device)  # no CUDA: refused before anything is written
    key_path, store = out / "experiment.json", RunStore(out / "fits")
    if key_path.exists() and not force and not exp.matches(RunStore(out).record("experiment")):
        raise FileExistsError(f"{out}: holds fits of another configuration; choose another --out "
                              "or use --force to replace them")
    if not key_path.exists() and not force and (theirs := [n for n in OUTPUTS if (out / n).exists()]):
        raise FileExistsError(f"{out}: holds {', '.join(theirs)} but no experiment.json, so not an "
                              "experiment of rdip's; choose another --out, or use --force to replace them")
    clean = _clean_images(exp, download)
    noisy = {(i, s): exp.noisy(clean[i], i, s) for i in exp.indices for s in exp.seeds}
    jobs = [(p, i, s) for s in exp.seeds for p in exp.paddings for i in exp.indices]
    mine = [key_path, *(out / n for n in OUTPUTS), store.folder]
    mine += [store.path(fit_name(*j), x) for j in jobs for x in (".json", ".npy")]
    if link := next((p for p in mine if p.is_symlink()), None):  # never written through, nor deleted
        raise ValueError(f"{link} is a symbolic link; nothing was written (remove it)")
    todo = [j for j in jobs if force or not store.done(fit_name(*j), shape=clean[j[1]].shape,
                                                       fields=("metrics", "history"))]

    out.mkdir(parents=True, exist_ok=True)  # the first write: everything above is checked
    if force:  # the key changes below: no fit of the old one may survive to be resumed
        store.clear(FIT_NAME)
    write_json(key_path, exp.key(), force=True)
    log(f"rdip reproduce: {len(jobs)} fits ({len(exp.indices)} images × {len(exp.paddings)} paddings × "
        f"{len(exp.seeds)} seeds), T = {exp.config.iters}, preset {exp.config.preset}; "
        f"{len(jobs) - len(todo)} already done in {out}/")
    _fit(exp, store, todo, clean, noisy, progress)
    rows = _summarise(exp, out, clean, noisy, environment or {})
    log(f"wrote {', '.join(str(out / n) for n in OUTPUTS)}")
    return rows


def _clean_images(exp: Experiment, download: bool) -> dict[int, np.ndarray]:
    """The experiment's clean images in [0, 1] by index, checked as the fits will check them (the
    one rule for sample values, the network's minimum size, the padding's width), so that a bad
    image in ``--data`` is refused before anything is written."""
    from ..images.cifar10 import load_cifar10

    images, _ = load_cifar10(exp.indices, exp.data, download=download)
    where = f"{exp.data}: " if exp.data else ""
    clean = {}
    for i, image in zip(exp.indices, images):
        x = check_image(image, f"{where}test image {i}")
        clean[i] = x[:, :, 0] if np.ndim(image) == 2 else x
        for p in exp.paddings:
            check_padding(x.shape[0], x.shape[1], exp.config.replace(padding=p), f"{where}test image {i}")
    return clean


def _fit(exp: Experiment, store: RunStore, todo, clean, noisy, progress: bool) -> None:
    """Fit the ``(padding, image, seed)`` jobs ``todo``, saving each chunk's fits as it ends."""
    with progress_bar(len(todo) * exp.config.iters, "fits", enabled=progress) as bar:
        callback = progress_callback(bar, networks=len(todo), typical=expected_iters(exp.config))
        chunk = exp.config.chunk or 64  # fits saved after each chunk: bounded loss on a crash
        by_shape = sorted(todo, key=lambda j: j[0] == "none")  # padded (40×40) and unpadded groups
        for start in range(0, len(by_shape), chunk):
            part = by_shape[start:start + chunk]
            configs = [exp.config.replace(padding=p, seed=exp.fit_seed(i, s)) for p, i, s in part]
            results = fit_many([noisy[(i, s)] for _, i, s in part], configs,
                               clean=[clean[i] for _, i, _ in part],
                               callback=callback)
            for (p, i, s), r in zip(part, results):
                store.save(fit_name(p, i, s), {"image": i, "seed": s, "padding": p, **r.to_dict()}, r.image)


def _summarise(exp: Experiment, out: Path, clean, noisy, environment: dict) -> list[dict]:
    fits = {(p, i, s): RunStore(out / "fits").load(fit_name(p, i, s))
            for p in exp.paddings for i in exp.indices for s in exp.seeds}
    per_fit: dict[tuple, dict] = {}
    for (p, i, s), (record, image) in fits.items():
        per_fit[(p, i, s)] = {**record["metrics"],
                              "ssim_full_dr2": ssim(image, clean[i], data_range=2),
                              "ssim_centre_dr2": ssim_centre(image, clean[i], data_range=2)}
    rows = []
    for i in exp.indices:
        row: dict = {"image": i}
        for kind, metric in (("full", "ssim_full"), ("center", "ssim_centre"), ("psnr", "psnr"),
                             ("full_dr2", "ssim_full_dr2"), ("center_dr2", "ssim_centre_dr2")):
            for p in exp.paddings:
                name = f"{kind}_{p}" if kind == "psnr" else f"ssim_{kind}_{p}"
                row[name] = float(np.mean([per_fit[(p, i, s)][metric] for s in exp.seeds]))
        noisy_scores = [scores(np.clip(noisy[(i, s)], 0, 1), clean[i]) for s in exp.seeds]
        row["ssim_full_noisy"] = float(np.mean([n["ssim_full"] for n in noisy_scores]))
        row["ssim_center_noisy"] = float(np.mean([n["ssim_centre"] for n in noisy_scores]))
        for p in exp.paddings:
            for s in exp.seeds:
                row[f"ssim_full_{p}_s{s}"] = per_fit[(p, i, s)]["ssim_full"]
                row[f"ssim_center_{p}_s{s}"] = per_fit[(p, i, s)]["ssim_centre"]
        rows.append(row)
    # the column order first, then everything else
    first = ["image"] + [c for c in COLUMNS if c in rows[0]]
    rows = [{**{k: r[k] for k in first}, **{k: v for k, v in r.items() if k not in first}} for r in rows]
    write_csv(out / "table2.csv", rows)
    text, means, pattern = _table_markdown(exp, rows, per_fit)
    atomic_write(out / "table2.md", lambda tmp: Path(tmp).write_text(text))
    _fig3(exp, out, fits, clean, noisy)
    _curves(exp, out, fits)
    _report(exp, out, fits, clean, noisy, means, pattern)
    write_json(out / "config.json", {"experiment": {**asdict(exp), "config": exp.config.to_dict()},
                                     "noise_seed": "image + 10000 * seed",
                                     "sigma_fitting_range": exp.sigma, "sigma_unit": exp.unit_sigma,
                                     "environment": environment}, force=True)
    return rows


def _table_markdown(exp: Experiment, rows: list[dict], per_fit: dict) -> tuple[str, list[dict], str]:
    """table2.md's text, its means (one row per column of Table II) and the pattern's lines."""
    paper = {r["image"] - 1: r for r in paper_table()}
    low, high = RANGES[exp.config.range]
    lines = [f"# Table II: ours (preset `{exp.config.preset}`, T = {exp.config.iters}, "
             f"seeds {list(exp.seeds)}) beside the paper's", "",
             f"Fitted in [{low:g}, {high:g}] (range `{exp.config.range}`); Gaussian noise σ = "
             f"{exp.sigma:g} added there, σ = {exp.unit_sigma:g} in [0, 1] units "
             f"({exp.unit_sigma * 255:.4g}/255), {'clipped' if exp.clip_noise else 'not clipped'}. "
             "Scores on [0, 1] images: "
             "SSIM with `data_range=1` (scikit-image, 7×7 window); centre = the 16×16 crop at rows and "
             "columns 8–23. Paper image k is taken to be CIFAR-10 test image k−1. Means over seeds "
             "per image; 95% confidence intervals (Student t) over images × seeds.", ""]
    cols = [c for c in COLUMNS if c in rows[0]]
    summary = []
    for c in cols:
        padding, kind = c.split("_")[-1], "ssim_full" if "_full_" in c else "ssim_centre"
        values = [per_fit[(padding, i, s)][kind] for i in exp.indices for s in exp.seeds]
        dr2 = [per_fit[(padding, i, s)][kind + "_dr2"] for i in exp.indices for s in exp.seeds]
        ours = float(np.mean(values))
        theirs = [paper[i][c] for i in exp.indices if i in paper]
        row = {"column": c, "ours": ours, "95% CI ±": ci95(values)}
        if theirs:
            row.update({"paper": float(np.mean(theirs)), "ours − paper": ours - float(np.mean(theirs))})
        row["ours, data_range=2"] = float(np.mean(dr2))
        summary.append(row)
    lines += ["## Means", "", markdown_table(summary)]
    if "ssim_full_none" in rows[0]:
        noisy = [r["ssim_full_noisy"] for r in rows]
        lines += [f"Noisy input: SSIM full {np.mean(noisy):.3f}, centre "
                  f"{np.mean([r['ssim_center_noisy'] for r in rows]):.3f}.", ""]
    pattern = _pattern(exp, summary, per_fit)
    if pattern:
        lines += ["## The paper's pattern", "", pattern, ""]
    per_image = []
    for r in rows:
        row = {"image": r["image"]}
        for c in cols:
            row[c] = r[c]
            if any(i in paper for i in exp.indices):  # "–" where the paper has no such image
                row[f"paper {c.replace('ssim_', '')}"] = paper[r["image"]][c] if r["image"] in paper else "–"
        per_image.append(row)
    lines += ["## Per image (ours, then the paper's)", "", markdown_table(per_image)]
    return "\n".join(lines), summary, pattern


def _pattern(exp: Experiment, summary: list[dict], per_fit: dict) -> str:
    """The paper's pattern, padding by padding: padding raises full-image SSIM and lowers the
    centre's. Differences are paired (same image, seed and noise; the study's
    :func:`~rdip.experiments.studyreport.paired`), with 95% confidence intervals over the image ×
    seed pairs; a half of the pattern holds when its interval lies above 0."""
    m = {r["column"]: r for r in summary}
    pairs = [(i, s) for i in exp.indices for s in exp.seeds]
    out = []
    for p in exp.paddings:
        if p == "none" or "none" not in exp.paddings:
            continue
        halves = []
        for kind, col, sign, what in (("ssim_full", "full", 1, f"{p} raises full SSIM"),
                                      ("ssim_centre", "center", -1, f"{p} lowers centre SSIM")):
            by = {q: {k: per_fit[(q, *k)][kind] for k in pairs} for q in (p, "none")}
            found = paired(by[p], by["none"])  # (image, seed) by (image, seed)
            mean, ci, more = sign * found["diff"], found["ci95"], found["wins" if sign > 0 else "losses"]
            paper = sign * (m.get(f"ssim_{col}_{p}", {}).get("paper", math.nan)
                            - m.get(f"ssim_{col}_none", {}).get("paper", math.nan))
            paper_text = "" if math.isnan(paper) else f"; paper {paper:+.3f}"
            holds = mean - ci > 0
            halves.append(holds)
            out.append(f"- {what} by {mean:+.4f} (95% CI ±{ci:.4f}, on {more} of "
                       f"{found['pairs']} pairs{paper_text}): {'significant' if holds else 'not significant'}.")
        verdict = ("holds" if all(halves) else "holds in the full image only" if halves[0]
                   else "holds in the centre only" if halves[1] else "does not hold")
        out.append(f"- With {p} padding the paper's pattern {verdict} here.")
    return "\n".join(out)


def _fig3(exp: Experiment, out: Path, fits, clean, noisy) -> None:
    s, shown = exp.seeds[0], exp.indices[:5]
    rows = [[(noisy[(i, s)], f"image {i}: noisy", scores(np.clip(noisy[(i, s)], 0, 1), clean[i]))
             for i in shown]]
    for p in exp.paddings:
        rows.append([(fits[(p, i, s)][1], p, fits[(p, i, s)][0]["metrics"]) for i in shown])
    rows.append([(clean[i], "ground truth", None) for i in shown])
    panel_grid(out / "fig3.png", rows)


#: How each padding is drawn in curves.png: edge and reflect lie close, so they differ by more
#: than colour.
STYLES = {"none": "-", "edge": "--", "reflect": ":", "zero": "-.", "circular": (0, (5, 1, 1, 1))}


def _curves(exp: Experiment, out: Path, fits) -> None:
    """SSIM against iteration per padding, mean over images × seeds with its 95% confidence band."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=False)
    for p in exp.paddings:
        histories = [fits[(p, i, s)][0]["history"] for i in exp.indices for s in exp.seeds]
        iters = [h["iter"] for h in histories[0]]
        for ax, metric in zip(axes, ("ssim_full", "ssim_centre")):
            values = np.array([[h[metric] for h in hist] for hist in histories])
            mean = values.mean(axis=0)
            half = np.array([ci95(col) for col in values.T]) if len(values) > 1 else 0 * mean
            line, = ax.plot(iters, mean, linestyle=STYLES.get(p, "-"), label=p, linewidth=1.4)
            ax.fill_between(iters, mean - half, mean + half, color=line.get_color(), alpha=0.15, linewidth=0)
    for ax, title in zip(axes, ("full image", "centre 16×16")):
        ax.set_xlabel("iteration")
        ax.set_ylabel(f"SSIM, {title}")
        ax.set_title(f"SSIM of the {title}", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(title="padding")
    fig.suptitle(f"mean over {len(exp.indices)} images × {len(exp.seeds)} seeds (bands: 95% CI), "
                 f"preset {exp.config.preset}", fontsize=9)
    fig.tight_layout()
    atomic_write(out / "curves.png", lambda tmp: fig.savefig(tmp, dpi=120))
    plt.close(fig)


def _report(exp: Experiment, out: Path, fits, clean, noisy, means: list[dict], pattern: str) -> None:
    """report.html: table2.md's means, Fig. 3 and the curves, and every image (first seed) noisy,
    each padding and clean side by side at full resolution."""
    from ..report import Comparison, Figure, Panel, Table, write_report

    s = exp.seeds[0]
    comparisons = []
    for i in exp.indices:
        panels = [Panel("noisy", noisy[(i, s)], panel_scores(scores(np.clip(noisy[(i, s)], 0, 1), clean[i])))]
        panels += [Panel(p, fits[(p, i, s)][1], panel_scores(fits[(p, i, s)][0]["metrics"])) for p in exp.paddings]
        comparisons.append(Comparison(f"image {i}, seed {s}", panels + [Panel("clean", clean[i])]))
    write_report(out / "report.html", f"Table II and Fig. 3: preset {exp.config.preset}",
                 intro=_intro(exp) + ("\n\nThe paper's pattern:\n" + pattern.replace("- ", "") if pattern else ""),
                 tables=[Table("Means over images × seeds, ours beside the paper's (table2.md)", means)],
                 figures=[Figure("Fig. 3 (first seed): SSIM_F full image, SSIM_C centre 16×16", out / "fig3.png"),
                          Figure("SSIM against iteration", out / "curves.png")],
                 comparisons=comparisons)


def _intro(exp: Experiment) -> str:
    low, high = RANGES[exp.config.range]
    return (f"CIFAR-10 test images {list(exp.indices)}, seeds {list(exp.seeds)}, paddings "
            f"{', '.join(exp.paddings)}; T = {exp.config.iters}; fitted in [{low:g}, {high:g}] with "
            f"noise σ = {exp.sigma:g} there ({exp.unit_sigma:g} in [0, 1] units). SSIM_F: the full "
            "image; SSIM_C: its centre 16×16 (scikit-image, data_range 1, on [0, 1] images).")
