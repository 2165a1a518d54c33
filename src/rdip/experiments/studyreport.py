"""What ``rdip study`` writes from its saved runs: summary.csv, summary.md and report.html.

Per image set and σ, every variant that has all its runs there: the mean of each score over the
images (each image's own mean over the seeds first), with the half-width of its 95% confidence
interval (Student t over the images); and, against its reference variant, the paired difference
(variant − reference, image by image on the same noisy images) with its 95% CI and the count of
images where each scores higher (:func:`paired`). A score a run lacks (a run converted from an
older study that did not record it) is left out of that score's mean.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..images.files import atomic_write
from ..images.metrics import panel_scores, scores
from .studyfile import CENTRE, QUALITY, SCORES, Study, run_name
from .tables import markdown_table, write_csv

#: Decimals of each score in summary.md (None: about 3 significant digits).
DIGITS = {"ssim_full": 3, "ssim_centre": 3, "psnr": 2, "seconds": None, "iters": 0, "ssim_best": 3,
          "best_iter": 0, "loss_ratio": 2}
NOISY = "noisy input"


def sigma_label(sigma: float, scale: float = 1.0) -> str:
    """σ as the user gave it: ``σ=15/255`` for 0-255 units, ``σ=0.1`` for [0, 1] units."""
    return f"σ={sigma * scale:.4g}/255" if scale == 255 else f"σ={sigma:.4g}"


def ci95(values) -> float:
    """Half-width of the 95% confidence interval of the mean of ``values`` (Student t); NaN for
    fewer than two values."""
    from scipy.stats import t

    values = np.asarray(values, np.float64)
    n = len(values)
    return float(t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan


def paired(mine: dict, theirs: dict) -> dict:
    """The paired difference of two variants' scores by image (``{image: score}``, the images both
    have): ``diff`` (mean of mine − theirs), ``ci95``, ``wins`` (images where mine is higher),
    ``losses`` (where theirs is) and ``pairs``."""
    common = [k for k in mine if k in theirs]
    d = np.array([mine[k] - theirs[k] for k in common], np.float64)
    return {"diff": float(d.mean()) if len(d) else math.nan, "ci95": ci95(d), "wins": int((d > 0).sum()),
            "losses": int((d < 0).sum()), "pairs": len(d)}


def per_image(records: list[dict], score: str) -> dict[str, float]:
    """``{image: mean over its seeds}`` of ``score`` (runs without it left out)."""
    values: dict[str, list[float]] = {}
    for r in records:
        v = r.get("scores", {}).get(score)
        if v is not None and math.isfinite(v):
            values.setdefault(r["image"], []).append(float(v))
    return {k: float(np.mean(v)) for k, v in values.items()}


def tables(study: Study, plan, store) -> list[dict]:
    """One dict per set × σ: ``set``, ``sigma``, ``images``, ``rows`` (variant → ``{score: (mean,
    ci95, n)}``, the noisy input first), ``pairs`` (variant → reference, ``{score: paired}``)."""
    out = []
    for s in study.sets.values():
        for sigma in s.sigmas:
            runs = {}
            for v in study.variants.values():
                names = [run_name(v.name, n, s.crop, sigma, seed) for n, _ in s.images for seed in study.seeds]
                if all(n in plan.runs and store.done(n, plan.key(plan.runs[n])) for n in names):
                    runs[v.name] = [store.record(n) for n in names]
            noisy = [{"image": n, "scores": _noisy_scores(plan, s, n, sigma, seed)}
                     for n, _ in s.images for seed in study.seeds]
            rows = {NOISY: _means(noisy, ("ssim_full", "ssim_centre", "psnr"))}
            rows.update({v: _means(r, study.scores) for v, r in runs.items()})
            pairs = {}
            for v, records in runs.items():
                ref = study.variants[v].reference
                if ref in runs:
                    pairs[v] = (ref, {k: paired(per_image(records, k), per_image(runs[ref], k))
                                      for k in study.scores if k in QUALITY})
            out.append({"set": s.name, "sigma": sigma, "scale": s.scale, "images": len(s.images),
                        "rows": rows, "pairs": pairs})
    return out


def _noisy_scores(plan, s, image: str, sigma: float, seed: int) -> dict:
    run = plan.plain(s.name, image, sigma, seed)
    return scores(np.clip(plan.noisy(run), 0, 1), plan.clean_of(run), CENTRE)


def _means(records: list[dict], names) -> dict:
    out = {}
    for k in names:
        values = list(per_image(records, k).values())
        if values:
            out[k] = (float(np.mean(values)), ci95(values), len(values))
    return out


def _cell(value: tuple | None, score: str) -> str:
    """A mean as text, ``± half-width`` after it for the quality scores."""
    if value is None:
        return ""
    mean, half, _ = value
    text = _num(mean, DIGITS[score])
    return text + (f" ± {_num(half, DIGITS[score])}" if score in QUALITY and math.isfinite(half) else "")


def _num(x: float, digits: int | None, sign: str = "") -> str:
    if digits is None:  # about 3 significant digits, never an exponent above 1
        return f"{x:{sign}.0f}" if abs(x) >= 100 else f"{x:{sign}.3g}"
    return f"{x:{sign}.{digits}f}"


def _heading(table: dict, seeds) -> str:
    n = table["images"]
    return (f"{table['set']}, {sigma_label(table['sigma'], table['scale'])} ({n} image{'s' if n > 1 else ''} × "
            f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''})")


def markdown(study: Study, found: list[dict]) -> str:
    """summary.md: the notes, then per set × σ the means and the paired differences."""
    lines = [f"# {study.title}", ""]
    if study.description:
        lines += [study.description.strip(), ""]
    lines += [notes(study), "", "Variants:", ""]
    lines += [f"- `{name}`: {text}" for name, text in describe(study).items()] + [""]
    for table in found:
        lines += [f"## {_heading(table, study.seeds)}", "", markdown_table(
            [{"variant": v, **{SCORES[k]: _cell(cells.get(k), k) for k in study.scores}, "runs":
              max((c[2] for c in cells.values()), default=0)} for v, cells in table["rows"].items()])]
        if table["pairs"]:
            lines += ["Paired against the reference (Δ = variant − reference on the same noisy images, "
                      "mean over the images ± 95% CI; wins: images where the variant / the reference "
                      "scores higher):", "", markdown_table(_pair_rows(table, study.scores))]
    return "\n".join(lines)


def _pair_rows(table: dict, names) -> list[dict]:
    rows = []
    for v, (ref, found) in table["pairs"].items():
        row = {"variant": v, "reference": ref}
        for k, p in found.items():
            if not p["pairs"]:
                continue
            row[f"Δ {SCORES[k]}"] = (_num(p["diff"], DIGITS[k], "+") +
                                     (f" ± {_num(p['ci95'], DIGITS[k])}" if math.isfinite(p["ci95"]) else ""))
            row[f"wins ({SCORES[k]})"] = f"{p['wins']} / {p['losses']}"
        rows.append(row)
    return rows


def notes(study: Study) -> str:
    seeding = {"compare": "as `rdip compare` (seed × 2³² + crc32 of `<image>-s<σ>`; networks seeded with the seed)",
               "reproduce": "as `rdip reproduce` (noise and network seeded CIFAR index + 10000 × seed)",
               "denoise": "as `rdip denoise --add-noise` (noise and network seeded with the seed)"}[study.seeding]
    return (f"Seeds {list(study.seeds)}. Noise: Gaussian, not clipped unless a variant says so, seeded "
            f"{seeding}; every variant denoises the same noisy images, given the true σ unless it says "
            "σ is estimated. Crops are the centre of each clean image, cut before adding noise. SSIM: "
            f"scikit-image, data_range 1, 7×7 window; centre = the central {CENTRE}×{CENTRE}. Seconds: "
            "wall-clock time per run (an rdip run's share of its stack). Means over the images (each "
            "image's mean over the seeds); ± is the 95% confidence interval (Student t over the images). "
            "The noisy input row scores the noisy image clipped to [0, 1].")


def describe(study: Study) -> dict[str, str]:
    """Each variant table of the file in words (a sweep once, with its values): what it sets,
    the sets it runs on when not all, its reference."""
    out = {}
    for v in study.variants.values():
        if v.table in out:
            continue
        members = [m for m in study.variants.values() if m.table == v.table]
        spec = {k: x for k, x in v.spec.items() if k not in ("sets", "reference") + v.swept}
        what = ", ".join(f"{k} = {json.dumps(x)}" for k, x in spec.items())
        what += "".join(f", {k} ∈ {{{', '.join(dict.fromkeys(json.dumps(m.spec[k]) for m in members))}}}"
                        for k in v.swept)
        extra = [f"sets {', '.join(v.sets)}"] if len(v.sets) < len(study.sets) else []
        refs = sorted({m.reference for m in members if m.reference})
        extra += [f"reference `{refs[0]}`"] if len(refs) == 1 else []
        out[v.table + (f"[{', '.join(v.swept)}]" if v.swept else "")] = what + (f" ({'; '.join(extra)})" if extra else "")
    return out


def csv_rows(found: list[dict]) -> list[dict]:
    """summary.csv: one row per set × σ × variant × score, with its paired difference."""
    rows = []
    for table in found:
        for v, cells in table["rows"].items():
            ref, pairs = table["pairs"].get(v, (None, {}))
            for k, (mean, half, n) in cells.items():
                p = pairs.get(k, {})
                rows.append({"set": table["set"], "sigma": table["sigma"], "sigma_255": table["sigma"] * 255,
                             "variant": v, "score": k, "mean": mean, "ci95": half, "images": n,
                             "reference": ref or "", "diff": p.get("diff", ""), "diff_ci95": p.get("ci95", ""),
                             "wins": p.get("wins", ""), "losses": p.get("losses", "")})
    return rows


def write_outputs(study: Study, plan, store, out: Path) -> list[dict]:
    """Write summary.csv, summary.md and report.html; return summary.csv's rows."""
    found = tables(study, plan, store)
    rows = csv_rows(found)
    write_csv(out / "summary.csv", rows)
    text = markdown(study, found)
    atomic_write(out / "summary.md", lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    _report(study, plan, store, found, out)
    return rows


def _report(study: Study, plan, store, found: list[dict], out: Path) -> None:
    """report.html: the summary's tables and, for the first ``report_images`` images of each set
    (first seed, every σ), the noisy image, every variant's result that was kept, and the clean one."""
    from ..report import Comparison, Panel, Table, write_report

    tabs = []
    for table in found:
        heading = _heading(table, study.seeds)
        tabs.append(Table(heading, [{"variant": v, **{SCORES[k]: _cell(c.get(k), k) for k in study.scores}}
                                    for v, c in table["rows"].items()]))
        if table["pairs"]:
            tabs.append(Table(f"{heading}: paired against the reference", _pair_rows(table, study.scores)))
    comparisons, seed = [], study.seeds[0]
    for s in study.sets.values():
        for n, clean in s.images[:study.report_images]:
            for sigma in s.sigmas:
                panels = []
                for v in study.variants:
                    name = run_name(v, n, s.crop, sigma, seed)
                    record, image = store.load(name) if store.record(name) else (None, None)
                    if image is not None:
                        panels.append(Panel(v, image, panel_scores(record["scores"])))
                if panels:
                    noisy = np.clip(plan.noisy(plan.plain(s.name, n, sigma, seed)), 0, 1)
                    comparisons.append(Comparison(f"{s.name}: {n} {sigma_label(sigma, s.scale)}", [
                        Panel("noisy", noisy, panel_scores(scores(noisy, clean, CENTRE))), *panels,
                        Panel("clean", clean)]))
    write_report(out / "report.html", study.title, intro=f"{study.description}\n\n{notes(study)}",
                 tables=tabs, comparisons=comparisons)
