"""Noise: synthetic noise for experiments (paper §IV: additive Gaussian, σ = 0.1), its estimate,
and the rule that tells noise outside [0, 1] from an image in another range."""

from __future__ import annotations

import math
import warnings

import numpy as np
from skimage import restoration

from .metrics import channel_axis
from .values import unit_samples

#: The smallest estimate taken as a noise level: one step of a 16-bit image. Below it the image
#: is flat or noise-free (a flat mid-grey image estimates 2e-33), and the noise rule would never stop.
MIN_ESTIMATE = 1 / 65535
#: Values outside [0, 1] are noise when few of them lie beyond ``NOISE_REACH`` σ (plus
#: ``TOLERANCE``) of it: an image is in another range when, of its values outside [0, 1], more
#: than ``DEEP_SHARE`` lie beyond that reach, and they are more than ``DEEP_MIN`` of all its
#: values. Of the values Gaussian noise takes below 0 from a black pixel, 4.6% go beyond 2σ (fewer
#: from pixels inside), 15% only when σ is underestimated by 28%; an image in [-1, 1] has most of
#: its dark half there. Measured on seven scikit-image crops × σ 0.01–0.3 × 3 seeds: no image in
#: [0, 1] with noise refused; in [-1, 1], [0, 2] or zero-mean refused but where σ ≥ 0.2 (or the
#: image, as it is, also lies in [0, 1]).
NOISE_REACH, TOLERANCE = 2.0, 0.02
DEEP_SHARE, DEEP_MIN = 0.15, 0.001
#: An estimate above this is no noise level of an image in [0, 1]: the range rule uses at most it
#: (0-255 data estimates about 25).
ESTIMATE_CAP = 0.5


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
    """Return ``image + N(0, sigma²)`` noise drawn from ``numpy.random.default_rng(seed)``, float64.

    ``image``: any shape, floats in [0, 1] or integers scaled by their type's range as everywhere
    in rdip (uint8 by 255, uint16 by 65535: :func:`rdip.images.values.unit_samples`). The result
    is not clipped unless ``clip`` (then to [0, 1]). ``sigma`` is in [0, 1] units (0.1 = 25.5/255),
    in [0, 1).
    """
    sigma = check_sigma(sigma, zero=True)
    clean = unit_samples(image)
    rng = np.random.default_rng(seed)
    noisy = clean + rng.normal(0.0, sigma, size=clean.shape)
    return np.clip(noisy, 0.0, 1.0) if clip else noisy


def estimate_noise(image: np.ndarray) -> float:
    """scikit-image's wavelet estimate (Donoho & Johnstone 1994) of the Gaussian noise's standard
    deviation, averaged over channels, as it comes: NaN for a flat image, and anything for images
    that are not noisy photographs. ``image``: ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``."""
    a = np.asarray(image, np.float64)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):  # flat: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(restoration.estimate_sigma(a, channel_axis=channel_axis(a), average_sigmas=True))


def noise_sigma(noisy: np.ndarray, sigma: float | None = None) -> float:
    """``sigma`` if given, else :func:`estimate_noise`; a ``ValueError`` that says to give sigma
    where the estimate is no noise level: a flat or noise-free image (below :data:`MIN_ESTIMATE`)
    or a pattern (1 or more, e.g. 1.48 for a checkerboard)."""
    if sigma is not None:
        return float(sigma)
    estimate = estimate_noise(noisy)
    if not (math.isfinite(estimate) and estimate >= MIN_ESTIMATE):
        raise ValueError("the noise level cannot be estimated: the image is flat or holds no noise "
                         f"(estimate {estimate:.3g}); give sigma (--sigma on the command line)")
    if estimate >= 1:
        raise ValueError(f"the noise level cannot be estimated: the estimate, {estimate:.3g}, is no "
                         "noise level in (0, 1) (the image looks like a pattern, e.g. a checkerboard, "
                         "not a noisy photograph); give sigma (--sigma on the command line)")
    return estimate


def check_range(image: np.ndarray, name: str = "image", sigma: float | None = None) -> np.ndarray:
    """``image`` (floats, ``(H, W)`` or ``(H, W, C)``) if its values are in [0, 1] but for noise,
    else a ``ValueError`` naming ``name`` that says how to bring it to [0, 1].

    Values outside [0, 1] are taken as noise unless too many of them lie too far out for it (see
    :data:`NOISE_REACH`, :data:`DEEP_SHARE`), σ being ``sigma`` or, if larger, the image's own
    estimate (at most :data:`ESTIMATE_CAP`): so an image in [-1, 1], [0, 2], zero-mean or 0-255 is
    refused, and [0, 1] with noise, even σ = 0.5, is not.
    """
    a = np.asarray(image, np.float64)
    if a.size == 0 or (a.min() >= 0 and a.max() <= 1):
        return a
    estimate = estimate_noise(a) if a.ndim in (2, 3) and min(a.shape[:2]) > 1 else math.nan
    s = max(sigma or 0.0, min(estimate, ESTIMATE_CAP) if math.isfinite(estimate) else 0.0)
    reach = NOISE_REACH * s + TOLERANCE
    outside = np.count_nonzero(a < 0) + np.count_nonzero(a > 1)
    deep = np.count_nonzero(a < -reach) + np.count_nonzero(a > 1 + reach)
    if deep <= DEEP_MIN * a.size or deep <= DEEP_SHARE * outside:
        return a
    if np.quantile(a, 0.99) > 2 + reach:
        hint = ("divide 0-255 data by 255 (0-65535 data by 65535), or pass uint8/uint16 arrays, "
                "which are scaled by their type's range")
    else:
        hint = ("an image in [-1, 1] (as PyTorch code often normalises images) becomes [0, 1] with "
                "(x + 1) / 2; otherwise rescale it to [0, 1] first, or, if it is in [0, 1] with "
                "stronger noise, give sigma (--sigma)")
    raise ValueError(f"{name} has values from {a.min():.4g} to {a.max():.4g}, {deep / a.size:.1%} of "
                     f"them farther outside [0, 1] than noise of σ ≈ {s:.3g} goes: rdip expects floats "
                     f"in [0, 1] (noise may take a few outside); {hint}")


def unit_image(image, name: str = "image", sigma: float | None = None) -> np.ndarray:
    """The one rule for an image's values, wherever it comes from (an array, a file, an archive):
    float64 in [0, 1] units (:func:`rdip.images.values.unit_samples`), finite, and in [0, 1] but
    for noise (:func:`check_range`); a ``ValueError`` or ``TypeError`` naming ``name`` otherwise."""
    a = unit_samples(image, name)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values; replace them first")
    return check_range(a, name, sigma)
