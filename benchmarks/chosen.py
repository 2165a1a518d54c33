"""Run the variant an ablation study chose (its ``choice.json``) as preset ``paper``.

    python benchmarks/chosen.py results/ablation-symmetric/choice.json --out results/paper \\
        --indices 0-14 --seeds 0,1,2 [--data CIFAR.npz] [--chunk 64]

The study's own fits of the same images, seeds and paddings are copied in first (their records
relabelled ``paper``, with ``copied_from`` naming the study's folder), so only the rest is
fitted; ``rdip reproduce --preset paper`` resumes from the result once the preset is the choice.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

from ablation import slug

from rdip.config import preset
from rdip.experiments.reproduce import Experiment, run_reproduce
from rdip.images.cifar10 import parse_indices


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("choice", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--indices", default="0-14")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--paddings", default="none,edge,reflect")
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--data", default=None)
    ap.add_argument("--chunk", type=int, default=64, help="fits per pass and per save")
    args = ap.parse_args()
    choice = json.loads(args.choice.read_text())
    config = preset("paper-literal", iters=args.iters, device=args.device, chunk=args.chunk,
                    range=choice["range"], **choice["overrides_of_paper_literal"])
    exp = Experiment(config=dataclasses.replace(config, preset="paper"),
                     indices=tuple(parse_indices(args.indices)),
                     paddings=tuple(args.paddings.split(",")),
                     seeds=tuple(int(s) for s in args.seeds.split(",")), sigma=choice["sigma"],
                     clip_noise=choice["clip_noise"], data=args.data)
    study = args.choice.parent / slug(choice["variant"])
    (args.out / "fits").mkdir(parents=True, exist_ok=True)
    copied = 0
    for record in sorted((study / "fits").glob("*.json")):
        fit = json.loads(record.read_text())
        target = args.out / "fits" / record.name
        if (fit["image"] in exp.indices and fit["seed"] in exp.seeds and fit["padding"] in exp.paddings
                and record.with_suffix(".npy").exists() and not target.exists()):
            fit["config"]["preset"] = "paper"
            fit["copied_from"] = str(study)
            shutil.copyfile(record.with_suffix(".npy"), target.with_suffix(".npy"))
            target.write_text(json.dumps(fit, indent=2) + "\n")
            copied += 1
    print(f"chosen: {choice['variant']} ({copied} fits copied from {study})", flush=True)
    run_reproduce(exp, args.out, progress=False)
    print((args.out / "table2.md").read_text().split("## Per image")[0])


if __name__ == "__main__":
    main()
