"""The one rule for sample types, used wherever an image comes in (arrays, files, archives).

Integer samples are scaled by their type's range (scikit-image's ``img_as_float``): uint8 by
255, uint16 by 65535. Float samples are taken as they are, nominally in [0, 1]; whether values
outside [0, 1] are noise or another range is :func:`rdip.images.noise.check_range`'s to say.
Other types (int64, booleans, complex…) are refused with a hint.
"""

from __future__ import annotations

import numpy as np

#: Integer sample types and the value that stands for white.
INTEGER_WHITE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
#: The sample types an image may have.
SAMPLE_TYPES = ("uint8", "uint16", "float16", "float32", "float64")
HINT = ("give floats in [0, 1], or uint8 (0-255) or uint16 (0-65535), which are scaled by "
        "their type's range")


def unit_samples(image, name: str = "image") -> np.ndarray:
    """``image`` as float64 in [0, 1] units: uint8 and uint16 scaled by 255 and 65535, floats (up
    to float64) as they are; a ``TypeError`` naming ``name`` for any other sample type."""
    a = np.asarray(image)
    if a.dtype in INTEGER_WHITE:
        return a / INTEGER_WHITE[a.dtype]
    if not np.issubdtype(a.dtype, np.floating) or a.dtype.itemsize > 8:
        raise TypeError(f"{name} has samples of type {a.dtype}: {HINT}")
    return a.astype(np.float64)
