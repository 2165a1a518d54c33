"""The ablation study of docs/reproduction.md: every open point of design.md §2, one variant each.

Each variant is ``rdip reproduce`` (paddings, images and seeds as given, T = 2000 by default) with
overrides of the ``paper-literal`` preset, fitted in ``--range`` with noise σ added there; the
summary gives, per variant and padding, the mean SSIM (full, centre) at T and at the best
iteration, whether the paper's pattern holds (every padding raises full SSIM and lowers centre
SSIM), and the mean absolute distance of the available Table II column means to the paper's.
``choice.json`` names the variant the rule picks: the closest to Table II among those that show
the pattern (the closest of all when none does).

    # the study in tanh's range (docs/reproduction.md), one seed, unpadded and edge-padded
    python benchmarks/ablation.py --out results/ablation-symmetric --range symmetric \\
        --indices 0-14 --paddings none,edge --only "adam 1e-5, h mean|sgd, mean loss|…"
    # the first study, in [0, 1] (results/ablation)
    python benchmarks/ablation.py --out results/ablation --range unit --indices 0-4

``--summary-only`` fits nothing: it summarises the variants whose fits are all saved (several
processes can each fit some variants into one ``--out``, then one call summarises them).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rdip.config import RANGES, preset
from rdip.experiments.reproduce import Experiment, paper_table, run_reproduce
from rdip.experiments.tables import markdown_table, write_csv
from rdip.images.cifar10 import parse_indices

ADAM = {"optimizer": "adam", "loss_reduction": "mean", "z_noise_std": 0.1}
SGD_MEAN = {"loss_reduction": "mean"}
#: name → (FitConfig overrides of paper-literal, clip the noisy image?)
VARIANTS: dict[str, tuple[dict, bool]] = {
    "literal": ({}, False),
    "literal, noise clipped": ({}, True),
    "sgd, mean loss": (SGD_MEAN, False),
    "sgd lr 3e-3, mean loss": ({**SGD_MEAN, "lr": 3e-3}, False),
    "sgd lr 1e-2, mean loss": ({**SGD_MEAN, "lr": 1e-2}, False),
    "sgd momentum 0.9, mean loss": ({**SGD_MEAN, "momentum": 0.9}, False),
    "sgd momentum 0.9, mean loss, h mean": ({**SGD_MEAN, "momentum": 0.9, "h_mode": "mean"}, False),
    "sgd momentum 0.9, mean loss, z_noise 0.1": ({**SGD_MEAN, "momentum": 0.9, "z_noise_std": 0.1}, False),
    "sgd, z_noise 0.1": ({"z_noise_std": 0.1}, False),
    "sgd lr 1e-4, sum": ({"lr": 1e-4}, False),
    "sgd lr 1e-5, sum": ({"lr": 1e-5}, False),
    "sgd lr 1e-6, sum": ({"lr": 1e-6}, False),
    "adam 1e-3": ({**ADAM, "lr": 1e-3}, False),
    "adam 1e-4": ({**ADAM, "lr": 1e-4}, False),
    "adam 3e-5": ({**ADAM, "lr": 3e-5}, False),
    "adam 1e-5": ({**ADAM, "lr": 1e-5}, False),
    "adam 1e-5, z_noise 1": ({**ADAM, "lr": 1e-5, "z_noise_std": 1.0}, False),
    "adam 1e-5, h mean": ({**ADAM, "lr": 1e-5, "h_mode": "mean"}, False),
    "adam 3e-6, h mean": ({**ADAM, "lr": 3e-6, "h_mode": "mean"}, False),
    "adam 1e-6, h mean": ({**ADAM, "lr": 1e-6, "h_mode": "mean"}, False),
    "adam 1e-5, h leaky 0.9": ({**ADAM, "lr": 1e-5, "h_mode": "leaky"}, False),
    "adam 1e-5, no h recurrence": ({**ADAM, "lr": 1e-5, "h_mode": "none"}, False),
    "adam 1e-5, eps 0": ({**ADAM, "lr": 1e-5, "epsilon": 0.0}, False),
    "adam 1e-5, eps 0.5": ({**ADAM, "lr": 1e-5, "epsilon": 0.5}, False),
    "adam 1e-5, noise clipped": ({**ADAM, "lr": 1e-5}, True),
    "adam 1e-5, output EMA 0.99": ({**ADAM, "lr": 1e-5, "ema": 0.99}, False),
    "adam 1e-4, output EMA 0.99": ({**ADAM, "lr": 1e-4, "ema": 0.99}, False),
}


def slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in name).strip("_")


def experiment(name: str, args) -> Experiment:
    """Variant ``name`` as the experiment the command line asks for."""
    sets, clip = VARIANTS[name]
    extra = dict(item.split("=", 1) for item in args.set)
    config = preset("paper-literal", iters=args.iters, device=args.device, range=args.range,
                    **sets, **{k: int(v) for k, v in extra.items()})
    return Experiment(config=config, indices=tuple(parse_indices(args.indices)),
                      paddings=tuple(args.paddings.split(",")),
                      seeds=tuple(int(s) for s in args.seeds.split(",")), sigma=args.sigma,
                      clip_noise=clip)


def complete(exp: Experiment, out: Path) -> bool:
    return all((out / "fits" / f"{p}-{i:04d}-s{s}.json").exists()
               for p in exp.paddings for i in exp.indices for s in exp.seeds)


def summarise(name: str, exp: Experiment, out: Path) -> list[dict]:
    rows = []
    for p in exp.paddings:
        records = [json.loads((out / "fits" / f"{p}-{i:04d}-s{s}.json").read_text())
                   for i in exp.indices for s in exp.seeds]
        iters = [h["iter"] for h in records[0]["history"]]
        full = np.mean([[h["ssim_full"] for h in r["history"]] for r in records], axis=0)
        centre = np.mean([[h["ssim_centre"] for h in r["history"]] for r in records], axis=0)
        best = int(np.argmax(full))
        rows.append({"variant": name, "padding": p, "full at T": float(full[-1]),
                     "centre at T": float(centre[-1]), "best full": float(full[best]),
                     "at iter": iters[best], "centre there": float(centre[best]),
                     "full at 500": float(full[iters.index(500)]) if 500 in iters else float("nan")})
    return rows


def verdicts(rows: list[dict], indices) -> list[dict]:
    """Per variant: its pattern and its distance to the paper's column means (over ``indices``,
    the paper's image k taken as test image k−1)."""
    paper = [r for r in paper_table() if r["image"] - 1 in set(indices)]
    out = []
    for name in dict.fromkeys(r["variant"] for r in rows):
        mine = {r["padding"]: r for r in rows if r["variant"] == name}
        padded = [p for p in mine if p != "none"]
        pattern = "none" in mine and bool(padded) and all(
            mine[p]["full at T"] > mine["none"]["full at T"]
            and mine[p]["centre at T"] < mine["none"]["centre at T"] for p in padded)
        gaps = [abs(mine[p][f"{kind} at T"] - np.mean([r[f"ssim_{col}_{p}"] for r in paper]))
                for p in mine for kind, col in (("full", "full"), ("centre", "center"))]
        out.append({"variant": name, "pattern": "yes" if pattern else "no",
                    "distance to paper": float(np.mean(gaps)),
                    **{f"{kind} {p}": mine[p][f"{kind} at T"] for kind in ("full", "centre") for p in mine}})
    return out


def choose(table: list[dict]) -> dict:
    """The rule of docs/reproduction.md: the variant closest to the paper's Table II means among
    those that show its pattern; the closest of all when none shows it."""
    showing = [r for r in table if r["pattern"] == "yes"]
    return min(showing or table, key=lambda r: r["distance to paper"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results/ablation-symmetric"))
    ap.add_argument("--range", choices=list(RANGES), default="symmetric")
    ap.add_argument("--sigma", type=float, default=0.1, help="in the fitting range's units")
    ap.add_argument("--indices", default="0-14")
    ap.add_argument("--paddings", default="none,edge,reflect")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=INT",
                    help="an integer FitConfig field for every variant, e.g. chunk=256")
    ap.add_argument("--only", default=None, help="variant names separated by |")
    ap.add_argument("--summary-only", action="store_true",
                    help="fit nothing; summarise the variants whose fits are all saved")
    args = ap.parse_args()
    names = args.only.split("|") if args.only else list(VARIANTS)
    rows = []
    for name in names:
        exp, out = experiment(name, args), args.out / slug(name)
        if args.summary_only and not complete(exp, out):
            print(f"== {name}: not complete, left out", flush=True)
            continue
        print(f"== {name}", flush=True)
        run_reproduce(exp, out, progress=False, log=lambda *_: None)
        rows += summarise(name, exp, out)
        write_csv(args.out / "summary.csv", rows)
        (args.out / "summary.md").write_text(markdown_table(rows))
    if not rows:
        return
    table = verdicts(rows, parse_indices(args.indices))
    write_csv(args.out / "verdicts.csv", table)
    best = choose(table)
    sets, clip = VARIANTS[best["variant"]]
    (args.out / "choice.json").write_text(json.dumps({
        "rule": "closest to the paper's Table II column means (mean absolute difference over the "
                "columns fitted) among the variants that show its pattern; the closest of all "
                "when none does", "variant": best["variant"], "overrides_of_paper_literal": sets,
        "clip_noise": clip, "range": args.range, "sigma": args.sigma, **best}, indent=2) + "\n")
    print(markdown_table(table))
    print(f"choice: {best['variant']}")


if __name__ == "__main__":
    main()
