"""Figures: image panels with their SSIM values (the layout of the paper's Fig. 3)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..images.files import atomic_write  # noqa: E402


def _show(ax, image: np.ndarray, title: str, caption: str | None) -> None:
    image = np.clip(image, 0, 1)
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8)
    if caption:
        ax.set_xlabel(caption, fontsize=7)


def caption(metrics: dict | None) -> str | None:
    """``SSIM_F 0.812 / SSIM_C 0.790`` as under the paper's Fig. 3 panels."""
    if not metrics:
        return None
    return f"SSIM_F {metrics['ssim_full']:.3f}\nSSIM_C {metrics['ssim_centre']:.3f}"


#: The note under every panel grid: what the captions' abbreviations mean.
LEGEND = "SSIM_F: SSIM of the full image; SSIM_C: SSIM of its centre 16×16 (scikit-image, data_range 1)"


def panel_grid(path: str | os.PathLike, rows: list[list[tuple[np.ndarray, str, dict | None]]],
               scale: float = 1.6) -> None:
    """Save a grid of panels; each cell is ``(image, title, metrics or None)``, with
    :data:`LEGEND` under the grid. Atomic write."""
    nrows, ncols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(nrows, ncols, figsize=(scale * ncols, (scale + 0.45) * nrows + 0.3),
                             squeeze=False)
    fig.text(0.5, 0.005, LEGEND, ha="center", va="bottom", fontsize=7)
    for r, row in enumerate(rows):
        for c in range(ncols):
            if c < len(row):
                _show(axes[r][c], row[c][0], row[c][1], caption(row[c][2]))
            else:
                axes[r][c].axis("off")
    fig.tight_layout(rect=(0, 0.3 / fig.get_figheight(), 1, 1))
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=150))
    plt.close(fig)
