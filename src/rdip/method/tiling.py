"""Cutting an image into overlapping same-size tiles and blending them back without seams.

NumPy only. The engine (:func:`rdip.method.engine.fit_many`) fits the tiles of an image larger than
``FitConfig.tile`` as independent networks and blends their outputs with :func:`blend`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..config import check_tiles


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile origins along one axis: every ``tile - overlap`` pixels, the last flush with the end."""
    if length <= tile:
        return [0]
    return list(range(0, length - tile, tile - overlap)) + [length - tile]


def positions(height: int, width: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """``(top, left)`` of the tiles :func:`split` cuts from a ``height×width`` image."""
    check_tiles(tile, overlap)
    lefts = _starts(width, tile, overlap)
    return [(top, left) for top in _starts(height, tile, overlap) for left in lefts]


def split(image: np.ndarray, tile: int,
          overlap: int) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """Cut ``image`` (``(H, W)`` or ``(H, W, C)``) into overlapping tiles of one shape.

    Tiles are ``min(tile, H) × min(tile, W)``; neighbours overlap by at least ``overlap`` pixels
    (more where the last tile is moved back to end flush with the border). An image no larger than
    ``tile`` is one tile. Returns ``(tiles, positions)``, positions as ``(top, left)``.
    """
    height, width = image.shape[:2]
    th, tw = min(tile, height), min(tile, width)
    where = positions(height, width, tile, overlap)
    return [image[top:top + th, left:left + tw].copy() for top, left in where], where


def _taper(length: int, overlap: int) -> np.ndarray:
    """1-D weights: a raised-cosine rise over ``overlap`` pixels at each end, 1 between, never 0."""
    if overlap == 0:
        return np.ones(length)
    i = np.arange(length)
    edge = np.minimum(i, length - 1 - i)  # distance to the nearer end
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.minimum(edge, overlap) + 0.5) / (overlap + 0.5))
    return np.where(edge >= overlap, 1.0, ramp)


def blend(tiles: Sequence[np.ndarray], positions: Sequence[tuple[int, int]],
          shape: tuple[int, ...], overlap: int) -> np.ndarray:
    """Reassemble tiles from :func:`split` into an image of ``shape``.

    Each tile is weighted by a separable raised-cosine window that falls off over ``overlap``
    pixels towards its sides, and every pixel is divided by its summed weights: where tiles agree
    the result is exact (a constant stays constant), where they differ it fades from one to the
    other without a seam.
    """
    out = np.zeros(shape, dtype=np.float64)
    total = np.zeros(shape[:2], dtype=np.float64)
    th, tw = tiles[0].shape[:2]
    window = np.outer(_taper(th, overlap), _taper(tw, overlap))
    for t, (top, left) in zip(tiles, positions):
        weight = window if t.ndim == 2 else window[:, :, None]
        out[top:top + th, left:left + tw] += weight * t
        total[top:top + th, left:left + tw] += window
    if not (total > 0).all():
        raise ValueError("the tiles do not cover the image")
    return out / (total if out.ndim == 2 else total[:, :, None])
