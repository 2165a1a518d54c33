"""What the engine takes in: image arrays checked and brought to [0, 1] units, the fitting range,
and the padding a target can take."""

from __future__ import annotations

import numpy as np

from ..config import FitConfig, range_interval
from ..images.noise import unit_image
from ..images.values import unit_samples
from .model import MIN_SIZE


def check_image(image: np.ndarray, name: str = "image", sigma: float | None = None) -> np.ndarray:
    """Validate an image array and return it as float64 ``(H, W, C)`` in [0, 1] units, C in {1, 3}.

    The one rule for sample values (:func:`rdip.images.noise.unit_image`): ``uint8`` and
    ``uint16`` arrays are scaled by their type's range (255, 65535); floats are taken as they are
    and must lie in [0, 1] but for noise (:func:`rdip.images.noise.check_range`, with the noise
    level ``sigma`` where it is known): an image in [-1, 1], [0, 2] or 0-255 is refused, as are
    other sample types, booleans, NaN and infinity.
    """
    a = unit_samples(image, name)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3):
        raise ValueError(f"{name} must be (H, W) grey or (H, W, 3) colour, got shape {np.shape(image)}")
    if min(a.shape[:2]) < MIN_SIZE:
        raise ValueError(f"{name} is {a.shape[0]}×{a.shape[1]}: the network needs at least "
                         f"{MIN_SIZE}×{MIN_SIZE} pixels")
    return unit_image(a, name, sigma)


def check_padding(height: int, width: int, config: FitConfig, name: str = "the image") -> None:
    """Refuse a pad width larger than the ``height×width`` target it pads (it would only cost)."""
    if config.padding != "none" and config.pad_width > max(height, width):
        raise ValueError(f"{name}: pad width {config.pad_width} exceeds its {height}×{width} pixels; "
                         f"pad by at most {max(height, width)} (the paper pads 32×32 images by 4)")


def to_range(image: np.ndarray, name: str, margin: float = 0.0) -> np.ndarray:
    """An image in [0, 1] moved to the fitting range ``name`` (:data:`rdip.config.RANGES`), inset
    by ``margin`` (:func:`rdip.config.range_interval`)."""
    low, high = range_interval(name, margin)
    return image * (high - low) + low


def from_range(image: np.ndarray, name: str, margin: float = 0.0) -> np.ndarray:
    """Undo :func:`to_range`: an image in the fitting range ``name`` back to [0, 1] units."""
    low, high = range_interval(name, margin)
    return (image - low) / (high - low)
