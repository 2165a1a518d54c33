"""Experiments: the demo (the paper's Experiment 1 and 2 on one bundled image)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import FitConfig
from ..images.files import atomic_write, write_json
from ..images.metrics import scores
from ..images.values import unit_samples
from ..method.devices import resolve_device
from ..method.engine import fit_many
from ..method.planning import expected_iters
from ..progress import progress_bar, progress_callback
from .figures import panel_grid
from .reproduce import Experiment
from .tables import check_out_dir, markdown_table, write_csv

PAPER_PADDINGS = ("none", "edge", "reflect")


def run_demo(out_dir: Path, config: FitConfig, *, force: bool = False, progress: bool = True,
             environment: dict | None = None, log=print) -> list[dict]:
    """Denoise bundled CIFAR-10 test image 0 with ``config``, unpadded, edge- and reflect-padded,
    with the paper's noise (σ = 0.1 added in the range ``config`` fits in, as ``rdip reproduce``
    adds it; seeded by ``config.seed``; the noise rule is given σ).

    Writes ``demo.png`` (noisy | three results | clean, SSIM full and centre under each),
    ``demo.csv`` and ``demo.md`` (the scores) and ``config.json`` to ``out_dir``; returns the rows.
    """
    from ..images.cifar10 import load_cifar10

    names = ["demo.png", "demo.csv", "demo.md", "config.json"]
    out_dir = check_out_dir(out_dir, names, force)
    resolve_device(config.device)  # no CUDA: refused before anything is written
    images, _ = load_cifar10([0])  # bundled with the package
    clean = unit_samples(images[0])
    exp = Experiment(config=config, indices=(0,), seeds=(config.seed,))
    noisy = exp.noisy(clean, 0, config.seed)
    configs = [config.replace(padding=p) for p in PAPER_PADDINGS]
    log(f"rdip demo: CIFAR-10 test image 0, sigma {exp.sigma} in the fitting range ({exp.unit_sigma:g} "
        f"in [0, 1]), preset {config.preset}, T = {config.iters}, paddings {', '.join(PAPER_PADDINGS)}; "
        f"writing to {out_dir}/")
    bar = progress_bar(config.iters * len(configs), "demo", enabled=progress)
    with bar:  # two stacks, one after the other: 32×32 unpadded, then 40×40 edge and reflect
        results = fit_many([noisy] * 3, configs, clean=[clean] * 3, sigma=exp.unit_sigma,
                           callback=progress_callback(bar, networks=len(configs),
                                                            typical=expected_iters(config)))
    rows = [{"method": "noisy input", **scores(np.clip(noisy, 0, 1), clean), "seconds": 0.0}]
    rows += [{"method": f"rdip {config.preset}, padding {c.padding}", **r.metrics, "seconds": r.seconds,
              "iterations": r.iters_run} for c, r in zip(configs, results)]
    panels = [(noisy, "noisy", rows[0])]
    panels += [(r.image, f"{c.padding}", r.metrics) for c, r in zip(configs, results)]
    panels.append((clean, "clean", None))
    out_dir.mkdir(parents=True, exist_ok=True)  # the first write: after the fits
    panel_grid(out_dir / "demo.png", [panels])
    write_csv(out_dir / "demo.csv", rows)
    atomic_write(out_dir / "demo.md", lambda tmp: Path(tmp).write_text(markdown_table(rows)))
    write_json(out_dir / "config.json", {
        "image": "CIFAR-10 test image 0 (bundled)", "sigma_fitting_range": exp.sigma,
        "sigma_unit": exp.unit_sigma, "noise_seed": exp.fit_seed(0, config.seed),
        "configs": [c.to_dict() for c in configs], "results": [r.to_dict() for r in results],
        "environment": environment or {}}, force=True)
    log(markdown_table(rows).rstrip())
    log(f"wrote {', '.join(str(out_dir / n) for n in names)}")
    return rows
