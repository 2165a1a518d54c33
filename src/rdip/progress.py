"""Progress bars (tqdm) for long fits: iterations, loss, and SSIM/PSNR when a clean image is known."""

from __future__ import annotations

import sys


def progress_bar(total: float, desc: str, enabled: bool = True, unit: str = "it"):
    """A tqdm bar on stderr; shown only when enabled and stderr is a terminal."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=None if enabled else True, leave=False,
                file=sys.stderr, dynamic_ncols=True)


def progress_callback(bar, every: int = 10, step: float = 1.0):
    """A fit callback that advances ``bar`` by ``step`` per iteration and shows the loss (and
    SSIM/PSNR of the group's first image when they were computed)."""

    def callback(p) -> None:
        if p.t % every == 0 or p.t == p.iters or p.metrics:
            post = {"loss": f"{float(p.loss.mean()):.3g}"}
            if p.metrics and p.metrics[0]:
                post.update(ssim=f"{p.metrics[0]['ssim_full']:.3f}", psnr=f"{p.metrics[0]['psnr']:.2f}")
            bar.set_postfix(post, refresh=False)
        bar.update(step)
    return callback
