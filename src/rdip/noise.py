"""Synthetic noise for experiments (paper §IV: additive Gaussian noise, σ = 0.1)."""

from __future__ import annotations

import numpy as np


def add_noise(image: np.ndarray, sigma: float, seed: int = 0, clip: bool = False) -> np.ndarray:
    """Return ``image + N(0, sigma²)`` noise drawn from ``numpy.random.default_rng(seed)``.

    ``image`` is a float array in [0, 1] of any shape. The result is not clipped unless ``clip``
    (then to [0, 1]). ``sigma`` is in the image's units (0.1 = 25.5/255).
    """
    if not sigma >= 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    rng = np.random.default_rng(seed)
    noisy = np.asarray(image, np.float64) + rng.normal(0.0, sigma, size=np.shape(image))
    return np.clip(noisy, 0.0, 1.0) if clip else noisy
