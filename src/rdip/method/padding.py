"""Padding of the target image before fitting, and the exact crop back (paper §V, Experiment 2).

Arrays are NumPy ``(H, W)`` or ``(H, W, C)``; only the two spatial axes are padded.
"""

from __future__ import annotations

import numpy as np

from ..config import PADDINGS

#: Padding modes (:data:`rdip.config.PADDINGS`): our name → ``numpy.pad`` mode.
#: ``context`` pads a tile with the image around it (rdip.method.engine); an image, whole, it reflects.
MODES = dict(zip(PADDINGS, (None, "constant", "edge", "reflect", "wrap", "reflect")))


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown padding {mode!r}: use one of {', '.join(MODES)}")
    return mode


def pad(image: np.ndarray, width: int, mode: str) -> np.ndarray:
    """Pad the spatial axes of ``image`` by ``width`` pixels on every side.

    ``mode``: ``none`` (returned unchanged), ``zero``, ``edge`` (replicate the border pixel),
    ``reflect`` (mirror without repeating the border pixel: ``[a b c] → [c b a b c b a]``) or
    ``circular`` (wrap around); ``context`` as ``reflect`` (a tile's context is cut from the
    image by the engine). Any ``width >= 0``; reflect and circular repeat as needed when
    ``width`` exceeds the image.
    """
    check_mode(mode)
    if width < 0:
        raise ValueError(f"pad width must be >= 0, got {width}")
    if mode == "none" or width == 0:
        return image
    spec = [(width, width), (width, width)] + [(0, 0)] * (image.ndim - 2)
    return np.pad(image, spec, mode=MODES[mode])


def crop(image: np.ndarray, width: int, mode: str = "edge") -> np.ndarray:
    """Undo :func:`pad`: remove ``width`` pixels from every side (nothing for ``mode='none'``)."""
    if mode == "none" or width == 0:
        return image
    return image[width:-width, width:-width]
