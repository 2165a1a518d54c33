"""Cutting an image into overlapping same-size tiles and blending them back without seams.

NumPy only. The engine (:func:`rdip.method.engine.fit_many`) fits the tiles of an image larger than
``FitConfig.tile`` as independent networks and blends their outputs with :func:`blend`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _check_grid(tile: int, overlap: int) -> None:
    """A grid's geometry: tiles of at least one pixel, ``0 <= overlap < tile`` (what a network
    needs, :func:`rdip.config.check_tiles`, is the configuration's to check)."""
    if tile < 1 or not 0 <= overlap < tile:
        raise ValueError(f"tiles need tile >= 1 and 0 <= overlap < tile, got tile {tile}, overlap {overlap}")


def _starts(length: int, tile: int, overlap: int, offset: int = 0) -> list[int]:
    """Tile origins along one axis: 0, then ``offset`` plus every ``tile - overlap`` pixels, the
    last flush with the end (``0 <= offset < tile - overlap``: neighbours overlap by more than
    ``overlap``)."""
    if length <= tile:
        return [0]
    inner = range(offset or tile - overlap, length - tile, tile - overlap)
    return [0, *inner, length - tile]


def positions(height: int, width: int, tile: int, overlap: int,
              offset: int = 0) -> list[tuple[int, int]]:
    """``(top, left)`` of the tiles :func:`split` cuts from a ``height×width`` image, the grid
    shifted by ``offset`` pixels down and right (the first row and column stay at 0)."""
    _check_grid(tile, overlap)
    if not 0 <= offset < max(tile - overlap, 1):
        raise ValueError(f"a grid's offset must be in [0, {tile - overlap}), got {offset}")
    lefts = _starts(width, tile, overlap, offset)
    return [(top, left) for top in _starts(height, tile, overlap, offset) for left in lefts]


def grids(height: int, width: int, tile: int, overlap: int, count: int) -> list[list[tuple[int, int]]]:
    """The tile positions of ``count`` fits of one image (``FitConfig.ensemble``): fit ``k``'s
    grid is shifted by ``k/count`` of the tile step (``tile - overlap``), so the borders of one
    grid's tiles fall inside another's and averaging the fits also averages the seams away."""
    step = tile - overlap
    return [positions(height, width, tile, overlap, (k * step) // count) for k in range(count)]


def split(image: np.ndarray, tile: int, overlap: int,
          where: Sequence[tuple[int, int]] | None = None) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """Cut ``image`` (``(H, W)`` or ``(H, W, C)``) into overlapping tiles of one shape.

    Tiles are ``min(tile, H) × min(tile, W)``; neighbours overlap by at least ``overlap`` pixels
    (more where the last tile is moved back to end flush with the border). An image no larger than
    ``tile`` is one tile. ``where``: the positions to cut (default :func:`positions`). Returns
    ``(tiles, positions)``, positions as ``(top, left)``.
    """
    height, width = image.shape[:2]
    th, tw = min(tile, height), min(tile, width)
    where = list(where) if where is not None else positions(height, width, tile, overlap)
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


def seams(height: int, width: int, tile: int, overlap: int, half: int = 2,
          margin: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Where a tiled fit could show its grid: ``(borders, interiors)``, boolean ``(H, W)`` masks.

    ``borders``: the pixels within ``half`` of a row or column where a tile of :func:`positions`
    starts or ends inside the image; ``interiors``: the others. Both leave out the image's outer
    ``margin`` pixels (the fit of any unpadded network is worse there, tiles or not).
    """
    _check_grid(tile, overlap)
    lines = []  # per axis: the rows (columns) where a tile starts or ends inside the image
    for length in (height, width):
        starts = _starts(length, tile, overlap)
        lines.append({s for s in starts if s > 0} | {s + tile - 1 for s in starts if s + tile < length})
    near = np.zeros((height, width), dtype=bool)
    for row in lines[0]:
        near[max(row - half, 0):row + half + 1, :] = True
    for col in lines[1]:
        near[:, max(col - half, 0):col + half + 1] = True
    inside = np.zeros_like(near)
    inside[margin:height - margin, margin:width - margin] = True
    return near & inside, ~near & inside


def seam_ratio(result: np.ndarray, clean: np.ndarray, tile: int, overlap: int) -> float:
    """The mean absolute error of ``result`` along the tile borders of the ``tile``/``overlap``
    grid divided by that in the tile interiors (:func:`seams`; colour errors averaged over the
    channels). Above 1: the grid shows as lines of larger error."""
    error = np.abs(np.asarray(result, np.float64) - np.asarray(clean, np.float64))
    if error.ndim == 3:
        error = error.mean(2)
    borders, interiors = seams(error.shape[0], error.shape[1], tile, overlap)
    if not borders.any():
        raise ValueError(f"a {error.shape[0]}×{error.shape[1]} image has no tile borders with tile {tile}")
    return float(error[borders].mean() / error[interiors].mean())
