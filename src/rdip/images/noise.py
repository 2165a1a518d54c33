"""Noise: synthetic noise for experiments (paper §IV: additive Gaussian, σ = 0.1) and its estimate."""

from __future__ import annotations

import math
import warnings

import numpy as np
from skimage import restoration

from .metrics import channel_axis


def check_sigma(sigma: float, name: str = "sigma", zero: bool = False) -> float:
    """A noise level in [0, 1] units: a finite number in (0, 1) (``zero``: [0, 1)), with a hint
    when it looks like a level in 0-255 units."""
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float, np.number)):
        raise TypeError(f"{name} must be a number, got {sigma!r} ({type(sigma).__name__})")
    if not (math.isfinite(sigma) and (0 <= sigma if zero else 0 < sigma) and sigma < 1):
        hint = f"; in 0-255 units that is {sigma / 255:.4g}" if 1 <= sigma < 255 else ""
        raise ValueError(f"{name} must be a finite number in {'[0' if zero else '(0'}, 1), in [0, 1] "
                         f"units, got {sigma}{hint}")
    return float(sigma)


def add_noise(image: np.ndarray, sigma: float, seed: int = 0, clip: bool = False) -> np.ndarray:
    """Return ``image + N(0, sigma²)`` noise drawn from ``numpy.random.default_rng(seed)``.

    ``image`` is a float array in [0, 1] of any shape. The result is not clipped unless ``clip``
    (then to [0, 1]). ``sigma`` is in the image's units (0.1 = 25.5/255), in [0, 1).
    """
    sigma = check_sigma(sigma, zero=True)
    rng = np.random.default_rng(seed)
    noisy = np.asarray(image, np.float64) + rng.normal(0.0, sigma, size=np.shape(image))
    return np.clip(noisy, 0.0, 1.0) if clip else noisy


def noise_sigma(noisy: np.ndarray, sigma: float | None = None) -> float:
    """``sigma`` if given, else scikit-image's wavelet estimate (Donoho & Johnstone 1994) of the
    Gaussian noise's standard deviation, averaged over channels. ``noisy``: ``(H, W)``,
    ``(H, W, 1)`` or ``(H, W, 3)``."""
    if sigma is not None:
        return float(sigma)
    a = np.asarray(noisy, np.float64)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):  # a flat image gives NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        estimate = float(restoration.estimate_sigma(a, channel_axis=channel_axis(a), average_sigmas=True))
    if not math.isfinite(estimate):
        raise ValueError("the noise level cannot be estimated: the image is flat; give sigma "
                         "(--sigma on the command line)")
    return estimate
