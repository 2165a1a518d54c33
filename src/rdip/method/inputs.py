"""What the engine takes in: image arrays checked and brought to [0, 1] units, the fitting range,
and the padding a target can take."""

from __future__ import annotations

import numpy as np

from ..config import FitConfig, range_interval
from .model import MIN_SIZE

#: Integer sample types and the value that stands for white (scikit-image's ``img_as_float``).
INTEGER_WHITE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
#: Float images may stray this far outside [0, 1] (noise does: 3σ of σ = 0.3) in all but 0.1% of
#: their values; 0-255 data lies far beyond.
FLOAT_MARGIN = 1.0


def check_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Validate an image array and return it as float64 ``(H, W, C)`` in [0, 1] units, C in {1, 3}.

    ``uint8`` and ``uint16`` arrays are scaled by their type's range (255, 65535); floats are
    taken as they are and must lie in [0, 1] but for noise: a float image whose values run more
    than :data:`FLOAT_MARGIN` outside [0, 1] (beyond its 0.1% and 99.9% quantiles) is refused,
    as are other integer types, booleans, NaN and infinity.
    """
    a = np.asarray(image)
    if a.dtype in INTEGER_WHITE:
        a = a / INTEGER_WHITE[a.dtype]
    elif not np.issubdtype(a.dtype, np.floating) or a.dtype.itemsize > 8:
        raise TypeError(f"{name} has samples of type {a.dtype}: give floats in [0, 1], or uint8 "
                        "(0-255) or uint16 (0-65535), which are scaled by their type's range")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3):
        raise ValueError(f"{name} must be (H, W) grey or (H, W, 3) colour, got shape {np.shape(image)}")
    if min(a.shape[:2]) < MIN_SIZE:
        raise ValueError(f"{name} is {a.shape[0]}×{a.shape[1]}: the network needs at least "
                         f"{MIN_SIZE}×{MIN_SIZE} pixels")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if a.min() < -FLOAT_MARGIN or a.max() > 1 + FLOAT_MARGIN:
        low, high = np.quantile(a, [0.001, 0.999])
        if low < -FLOAT_MARGIN or high > 1 + FLOAT_MARGIN:
            raise ValueError(f"{name} has values from {a.min():.4g} to {a.max():.4g}: rdip expects "
                             "floats in [0, 1] (noise may take a few outside); divide 0-255 data by "
                             "255, or pass uint8/uint16 arrays, which are scaled by their type's range")
    return a


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
