"""Image files in and out: PNG, JPEG, TIFF (8- and 16-bit), NPY; grey or RGB.

Reading gives a float64 array in [0, 1] (``(H, W)`` grey or ``(H, W, 3)`` colour) and an
:class:`ImageInfo` recording the file's sample type, so the result can be written back in the
input's bit depth. Pillow (through imageio) reads and writes PNG and JPEG, tifffile reads and
writes TIFF, NumPy reads and writes NPY. Writes are atomic: a temporary file in the target folder,
then a rename, so a failed write leaves nothing behind.

An alpha channel that is fully opaque is dropped with a warning; one with any transparency is
refused (denoising it would need a decision about the hidden pixels that is the user's to make).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import tifffile

PIL_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
TIFF_SUFFIXES = {".tif", ".tiff"}
SUFFIXES = tuple(PIL_SUFFIXES) + tuple(TIFF_SUFFIXES) + (".npy",)


@dataclass(frozen=True)
class ImageInfo:
    """Where an image came from: its path and sample type (``uint8``, ``uint16``, ``float32``…)."""

    path: str
    dtype: str


def _check_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: unsupported format {suffix or '(no extension)'!r}; "
                         f"use one of {', '.join(SUFFIXES)}")
    return suffix


def _to_unit_float(a: np.ndarray, path: Path) -> np.ndarray:
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float64) / 65535.0
    if np.issubdtype(a.dtype, np.floating):
        return a.astype(np.float64)
    raise ValueError(f"{path}: unsupported sample type {a.dtype}; use uint8, uint16 or float")


def _drop_alpha(a: np.ndarray, path: Path) -> np.ndarray:
    if a.ndim == 3 and a.shape[2] in (2, 4):
        alpha = a[..., -1]
        opaque = np.iinfo(a.dtype).max if np.issubdtype(a.dtype, np.integer) else 1.0
        if not np.all(alpha == opaque):
            raise ValueError(f"{path}: the image has a transparent alpha channel; "
                             "flatten it onto a background or save it without alpha first")
        warnings.warn(f"{path}: dropped an opaque alpha channel", stacklevel=3)
        a = a[..., :-1]
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    return a


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, ImageInfo]:
    """Read an image file; return ``(image, info)`` with ``image`` float64 in [0, 1].

    Integer files are scaled by their type's maximum (255, 65535); float files (NPY, float TIFF)
    are taken as they are, already in [0, 1] nominally. Raises ``ValueError`` or ``OSError`` with
    a one-line message for a missing, empty, corrupt or unsupported file, or a bad shape.
    """
    path = Path(path)
    suffix = _check_suffix(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty")
    try:
        if suffix == ".npy":
            a = np.load(path, allow_pickle=False)
        elif suffix in TIFF_SUFFIXES:
            a = tifffile.imread(path)
        else:
            a = iio.imread(path)
    except PermissionError as e:
        raise PermissionError(f"{path}: cannot read the file (permission denied)") from e
    except Exception as e:  # each reader has its own exceptions for a damaged file
        raise ValueError(f"{path}: cannot read it as {suffix[1:].upper()} (corrupt or not an image: "
                         f"{type(e).__name__})") from e
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[2] > 4 and suffix in TIFF_SUFFIXES:
        a = np.moveaxis(a, 0, -1)  # planar TIFF (C, H, W)
    if a.ndim not in (2, 3):
        raise ValueError(f"{path}: a {a.ndim}-D array of shape {a.shape}; give one image, "
                         "(H, W) grey or (H, W, 3) colour")
    a = _drop_alpha(a, path)
    if a.ndim == 3 and a.shape[2] != 3:
        raise ValueError(f"{path}: {a.shape[2]} channels; give (H, W) grey or (H, W, 3) colour")
    if a.size == 0:
        raise ValueError(f"{path}: the image has no pixels")
    image = _to_unit_float(a, path)
    if not np.isfinite(image).all():
        raise ValueError(f"{path}: the image contains NaN or infinite values; replace them first")
    return image, ImageInfo(str(path), str(a.dtype))


def check_output(path: str | os.PathLike, force: bool = False) -> Path:
    """Check that ``path`` can be written: known format, existing folder, no file unless ``force``."""
    path = Path(path)
    _check_suffix(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: the folder {path.parent} does not exist; create it first")
    if path.exists() and not force:
        raise FileExistsError(f"{path}: already exists; use --force to overwrite it")
    return path


def atomic_write(path: str | os.PathLike, write, suffix: str = "") -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def to_dtype(image: np.ndarray, dtype: str) -> np.ndarray:
    """Convert a float image in [0, 1] to ``dtype``: integers are clipped, scaled and rounded."""
    if dtype in ("uint8", "uint16"):
        top = 255 if dtype == "uint8" else 65535
        return np.round(np.clip(image, 0.0, 1.0) * top).astype(dtype)
    return np.asarray(image, dtype=dtype)


def write_image(path: str | os.PathLike, image: np.ndarray, dtype: str = "uint8",
                force: bool = False) -> Path:
    """Write a float image in [0, 1] as ``dtype`` (normally the input's, see :class:`ImageInfo`).

    PNG and TIFF keep 8 or 16 bits; JPEG holds 8 bits only (16-bit data is written as 8-bit with
    a warning); float data goes to TIFF and NPY as float, to PNG as 16-bit and to JPEG as 8-bit.
    Refuses to overwrite an existing file unless ``force``.
    """
    path = check_output(path, force)
    suffix = path.suffix.lower()
    if suffix in PIL_SUFFIXES and dtype not in ("uint8", "uint16"):
        dtype = "uint16" if suffix == ".png" else "uint8"
    if PIL_SUFFIXES.get(suffix) == "JPEG" and dtype == "uint16":
        warnings.warn(f"{path}: JPEG holds 8 bits; writing 8-bit", stacklevel=2)
        dtype = "uint8"
    data = to_dtype(image, dtype)
    if suffix == ".npy":
        atomic_write(path, lambda tmp: np.save(tmp, data))
    elif suffix in TIFF_SUFFIXES:
        atomic_write(path, lambda tmp: tifffile.imwrite(
            tmp, data, photometric="rgb" if data.ndim == 3 else "minisblack"))
    else:
        atomic_write(path, lambda tmp: iio.imwrite(tmp, data, extension=suffix))
    return path


def write_json(path: str | os.PathLike, data: dict, force: bool = False) -> Path:
    """Write ``data`` as indented JSON, atomically; refuse to overwrite unless ``force``."""
    import json

    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path}: already exists; use --force to overwrite it")
    text = json.dumps(data, indent=2, default=_json_default)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text + "\n"))
    return path


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")
