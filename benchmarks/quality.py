"""The quality study: which levers make rdip's own denoising better, at what CPU cost.

Each variant is the ``default`` preset as it was before the study (:data:`BASE`) with some
fields changed (``key=value,key=value``, any
:class:`rdip.FitConfig` field, e.g. ``range=symmetric``, ``ensemble=2``, ``stop_ratio=1.5``);
``name:`` before the changes names it. Every variant denoises the same noisy images as
``rdip compare`` (same crops, same noise seeds: ``rdip.experiments.compare.noise_seed``), given
the true σ, and is scored against the clean image. Image sets (``--images``):

- ``cifar``: CIFAR-10 test images 0–14, σ = 0.1 (the table of docs/comparison.md §2);
- ``set12``: Set12 01–04, centre 64×64 crops, σ = 15, 25, 50 (/255);
- ``mcmaster``: McMaster 1–4, centre 64×64 crops, σ = 15, 25, 50 (/255).

Each fit is appended to ``OUT/<images>/<variant>.jsonl`` as it ends (a rerun skips what is
there), and ``OUT/<images>/summary.md`` tabulates every variant found there with the classical
methods' scores on the same noisy images (read from ``--baselines``, the comparison folders,
which hold them for these exact images and noise). The study of docs/comparison.md §4 ran, one
torch thread each, two processes at a time on the 2-core development CPU (the exact lines are
in results/quality/README.md)::

    python benchmarks/quality.py --images cifar default sym:range=symmetric sym-e4:range=symmetric,ensemble=4
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import rdip
from rdip.cli import _parse_value
from rdip.experiments.compare import CENTRE, _clean, load_images, noise_seed, sigma_label
from rdip.images.metrics import scores
from rdip.images.noise import add_noise

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SETS = {
    "cifar": ("cifar:0-14", None, (0.1,)),
    "set12": (",".join(str(DATA / "set12" / f"{i:02d}.png") for i in range(1, 5)), 64,
              (15 / 255, 25 / 255, 50 / 255)),
    "mcmaster": (",".join(str(DATA / "mcmaster" / f"{i}.tif") for i in range(1, 5)), 64,
                 (15 / 255, 25 / 255, 50 / 255)),
}
BASELINES = {"cifar": "results/compare/cifar10-sigma0.1", "set12": "results/compare/set12-crop64-all",
             "mcmaster": "results/compare/mcmaster-crop64-all"}
CLASSICAL = ("bm3d", "nlmeans", "tv", "wavelet")
#: What every variant changes: the ``default`` preset as it was before the study (its ``default``
#: row), fixed here so that the study's rows do not move when the preset does.
BASE = rdip.FitConfig(iters=800, optimizer="adam", lr=1e-3, loss_reduction="mean", z_noise_std=0.1,
                      h_mode="sum", stop="noise", tile=32, tile_overlap=8, range="unit",
                      preset="default")


def parse_variant(text: str) -> tuple[str, dict]:
    """``[name:]key=value,...`` → (name, changes); ``default`` alone = no changes."""
    name, _, body = text.rpartition(":")
    changes = {}
    if body != "default":
        for item in body.split(","):
            key, _, value = item.partition("=")
            changes[key.strip()] = _parse_value(value.strip())
    return name or body, changes


def run(images: str, variants: list[str], out: Path, data: Path | None, first: int | None = None) -> None:
    spec, crop, sigmas = SETS[images]
    loaded = load_images(spec, data=data if spec.startswith("cifar:") else None)[:first]
    clean = {n: _clean(n, x, crop) for n, x in loaded}
    folder = out / images
    folder.mkdir(parents=True, exist_ok=True)
    for text in variants:
        name, changes = parse_variant(text)
        config = BASE.replace(**changes)  # checked before any fit
        path = folder / f"{name}.jsonl"
        done = set()
        if path.exists():
            for line in path.read_text().splitlines():
                row = json.loads(line)
                if row["changes"] == changes:
                    done.add((row["image"], row["sigma"]))
        for n, x in clean.items():
            for s in sigmas:
                if (n, s) in done:
                    continue
                noisy = add_noise(x, s, seed=noise_seed(n, s, 0))
                started = time.perf_counter()
                result = rdip.fit(noisy, config, sigma=s)
                seconds = time.perf_counter() - started
                row = {"variant": name, "changes": changes, "image": n, "sigma": s,
                       **scores(result.image, x, CENTRE), "seconds": seconds,
                       "iters_run": result.iters_run, "stopped_at": result.stopped_at,
                       "config": config.to_dict()}
                with path.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"{images} {name} {n} {sigma_label(s, _scale(images))}: SSIM {row['ssim_full']:.3f} "
                      f"PSNR {row['psnr']:.2f} {seconds:.1f} s", flush=True)
    summarise(images, folder)


def _scale(images: str) -> float:
    """The units σ is given in for an image set: [0, 1] for CIFAR-10, 0-255 for the crops."""
    return 1.0 if images == "cifar" else 255.0


def summarise(images: str, folder: Path) -> None:
    """summary.md: per variant and σ, mean SSIM full (PSNR); per variant, the mean SSIM, seconds
    per fit and the number of fits; the classical methods' runs on the same noisy images beside."""
    import csv

    rows = [json.loads(line) for p in sorted(folder.glob("*.jsonl")) for line in p.read_text().splitlines()]
    _, _, sigmas = SETS[images]
    pairs = {(r["image"], r["sigma"]) for r in rows}
    base = Path(__file__).resolve().parents[1] / BASELINES[images] / "compare.csv"
    classical = []
    if base.exists():
        with base.open() as f:
            for r in csv.DictReader(f):
                if r["method"] in CLASSICAL and (r["image"], float(r["sigma"])) in pairs:
                    classical.append({"variant": r["method"] + " (compare)", "image": r["image"],
                                      "sigma": float(r["sigma"]), "seconds": float(r["seconds"]),
                                      **{k: float(r[k]) for k in ("ssim_full", "ssim_centre", "psnr")}})
    header = " | ".join(sigma_label(s, _scale(images)) for s in sigmas)
    lines = [f"| variant | {header} | mean SSIM | s / image | images |",
             "|---" * (len(sigmas) + 4) + "|"]
    table = []
    for name in sorted({r["variant"] for r in rows + classical}):
        mine = [r for r in rows + classical if r["variant"] == name]
        cells = []
        for s in sigmas:
            sel = [r for r in mine if abs(r["sigma"] - s) < 1e-9]
            cells.append(f"{np.mean([r['ssim_full'] for r in sel]):.3f} ({np.mean([r['psnr'] for r in sel]):.2f})"
                         if sel else "")
        table.append((float(np.mean([r["ssim_full"] for r in mine])), name, cells,
                      float(np.mean([r["seconds"] for r in mine])), len(mine)))
    for mean, name, cells, seconds, n in sorted(table, reverse=True):
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {mean:.3f} | {seconds:.2f} | {n} |")
    changes = {r["variant"]: r["changes"] for r in rows}
    text = (f"# Quality study: {images}\n\nSSIM full (PSNR dB), means over the images and σ done; "
            "`(compare)` rows are the comparison folder's runs on the same noisy images.\n\n"
            + "\n".join(lines) + "\n\nVariants (changes to `default`):\n\n"
            + "\n".join(f"- `{k}`: {json.dumps(v)}" for k, v in sorted(changes.items())) + "\n")
    (folder / "summary.md").write_text(text)
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", choices=sorted(SETS), required=True)
    parser.add_argument("--out", type=Path, default=Path("results/quality"))
    parser.add_argument("--data", type=Path, default=None, help="CIFAR-10 folder or npz (default: cache)")
    parser.add_argument("--first", type=int, default=None, help="only the set's first N images")
    parser.add_argument("variants", nargs="*", help="[name:]key=value,... changes to the default preset")
    args = parser.parse_args()
    if args.variants:
        run(args.images, args.variants, args.out, args.data, args.first)
    else:
        summarise(args.images, args.out / args.images)


if __name__ == "__main__":
    main()
