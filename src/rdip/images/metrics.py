"""Image quality: SSIM of the full image and of its centre, PSNR (paper §IV, Table II).

scikit-image's ``structural_similarity`` (Wang et al. 2004, 7×7 window) is the reference and is
what we call (docs/design-notes.md, "Data and scores"). Images are ``(H, W)`` or ``(H, W, C)``
floats: NumPy arrays or anything NumPy turns into one (lists of lists).
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def channel_axis(image: np.ndarray) -> int | None:
    """scikit-image's ``channel_axis`` for an ``(H, W)`` or ``(H, W, C)`` image."""
    return -1 if image.ndim == 3 else None


def ssim(result: np.ndarray, clean: np.ndarray, data_range: float = 1.0) -> float:
    """SSIM between ``result`` and ``clean`` (same shape), channels averaged.

    ``data_range=1`` is our reference; ``data_range=2`` reproduces what scikit-image < 0.19 did
    for float images given no range (docs/design-notes.md).
    """
    result, clean = np.asarray(result, np.float64), np.asarray(clean, np.float64)
    if result.shape != clean.shape:
        raise ValueError(f"shapes differ: {result.shape} vs {clean.shape}")
    return float(structural_similarity(result, clean, data_range=data_range,
                                       channel_axis=channel_axis(clean)))


def centre(image: np.ndarray, size: int = 16) -> np.ndarray:
    """The centre ``size×size`` crop (rows and columns 8…23 for a 32×32 image and size 16)."""
    image = np.asarray(image)
    h, w = image.shape[:2]
    if size > min(h, w):
        raise ValueError(f"centre size {size} exceeds the image ({h}×{w})")
    top, left = (h - size) // 2, (w - size) // 2
    return image[top:top + size, left:left + size]


def ssim_centre(result: np.ndarray, clean: np.ndarray, size: int = 16,
                data_range: float = 1.0) -> float:
    """SSIM of the centre ``size×size`` crops of ``result`` and ``clean`` (Table II, right)."""
    return ssim(centre(result, size), centre(clean, size), data_range)


def psnr(result: np.ndarray, clean: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB (∞ where ``result`` equals ``clean``)."""
    result, clean = np.asarray(result, np.float64), np.asarray(clean, np.float64)
    if result.shape != clean.shape:
        raise ValueError(f"shapes differ: {result.shape} vs {clean.shape}")
    with np.errstate(divide="ignore"):
        return float(peak_signal_noise_ratio(clean, result, data_range=data_range))


def panel_scores(metrics: dict | None) -> dict | None:
    """:func:`scores` as shown under an image in figures and reports: ``SSIM_F`` (full image),
    ``SSIM_C`` (centre), ``PSNR dB``; None for no scores."""
    if not metrics:
        return None
    return {"SSIM_F": metrics["ssim_full"], "SSIM_C": metrics["ssim_centre"], "PSNR dB": metrics["psnr"]}


def scores(result: np.ndarray, clean: np.ndarray, centre_size: int = 16) -> dict[str, float]:
    """``ssim_full``, ``ssim_centre`` (``centre_size`` square) and ``psnr`` against ``clean``."""
    return {"ssim_full": ssim(result, clean), "ssim_centre": ssim_centre(result, clean, centre_size),
            "psnr": psnr(result, clean)}
