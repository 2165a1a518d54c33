"""The ablation study of docs/reproduction.md: every open point of design.md §2, one variant each.

Each variant is ``rdip reproduce`` (images 0–4 by default, paddings none/edge/reflect, T = 2000,
one seed) with configuration overrides; the summary table gives, per variant and padding, the mean
SSIM (full, centre) at T, at its best iteration, and the paper's pattern.

    python benchmarks/ablation.py --out results/ablation [--indices 0-4] [--iters 2000] [--only NAME,…]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rdip.config import preset
from rdip.data import parse_indices
from rdip.reproduce import Experiment, run_reproduce
from rdip.results import markdown_table, write_csv

ADAM = {"optimizer": "adam", "loss_reduction": "mean", "z_noise_std": 0.1}
#: name → (FitConfig overrides of paper-literal, clip the noisy image?)
VARIANTS: dict[str, tuple[dict, bool]] = {
    "literal": ({}, False),
    "literal, noise clipped": ({}, True),
    "sgd, mean loss": ({"loss_reduction": "mean"}, False),
    "sgd momentum 0.9, mean loss": ({"loss_reduction": "mean", "momentum": 0.9}, False),
    "sgd, z_noise 0.1": ({"z_noise_std": 0.1}, False),
    "sgd lr 1e-4, sum": ({"lr": 1e-4}, False),
    "adam 1e-3": ({**ADAM, "lr": 1e-3}, False),
    "adam 1e-4": ({**ADAM, "lr": 1e-4}, False),
    "adam 3e-5": ({**ADAM, "lr": 3e-5}, False),
    "adam 1e-5": ({**ADAM, "lr": 1e-5}, False),
    "adam 1e-5, z_noise 1": ({**ADAM, "lr": 1e-5, "z_noise_std": 1.0}, False),
    "adam 1e-5, h mean": ({**ADAM, "lr": 1e-5, "h_mode": "mean"}, False),
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results/ablation"))
    ap.add_argument("--indices", default="0-4")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--only", default=None, help="variant names separated by |")
    args = ap.parse_args()
    names = args.only.split("|") if args.only else list(VARIANTS)
    summary = []
    for name in names:
        sets, clip = VARIANTS[name]
        config = preset("paper-literal", iters=args.iters, device=args.device, **sets)
        exp = Experiment(config=config, indices=tuple(parse_indices(args.indices)),
                         seeds=tuple(int(s) for s in args.seeds.split(",")), clip_noise=clip)
        out = args.out / slug(name)
        print(f"== {name}", flush=True)
        run_reproduce(exp, out, progress=False, log=lambda *_: None)
        summary += summarise(name, exp, out)
        write_csv(args.out / "summary.csv", summary)
        (args.out / "summary.md").write_text(markdown_table(summary))
    print(markdown_table(summary))


if __name__ == "__main__":
    main()
