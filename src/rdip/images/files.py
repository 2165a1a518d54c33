"""Image files in and out: PNG, JPEG, TIFF (8- and 16-bit), NPY; grey or RGB.

Reading gives a float64 array in [0, 1] (``(H, W)`` grey or ``(H, W, 3)`` colour), upright (an
EXIF orientation applied), and an :class:`ImageInfo` recording the file's sample type, so the
result can be written back in the input's bit depth. Sample values follow the one rule that
arrays and archives follow, :func:`rdip.images.noise.unit_image`. imagecodecs (libpng) reads and
writes PNG, 8- or 16-bit, grey or colour; Pillow reads PNG and JPEG headers and reads and writes
JPEG; tifffile reads and writes TIFF; NumPy reads and writes NPY.

A file that cannot be used gives a ``ValueError`` or ``OSError`` with a one-line message saying
what is wrong and what to do. Before any pixel is decoded the header is checked: at most
:data:`MAX_PIXELS` pixels, exactly one image (a multi-page TIFF or animated PNG is refused; a JPEG
holding several pictures, MPO, gives its first, primary one), a sample type that can be scaled to
[0, 1] (uint8, uint16, float16/32/64), and for TIFF a grey or RGB photometric interpretation.
An alpha channel (in PNG also a transparent colour key) that is fully opaque is dropped with a
warning; one with any transparency is refused (denoising it would need a decision about the
hidden pixels that is the user's to make). A CMYK (or YCCK) JPEG is converted to RGB with a
warning.

Writes are atomic: temporary files in the target folder (named to fit the file system's name
limit, :func:`temp_prefix`), renamed into place only once complete, so a failed write leaves
nothing behind and touches no existing file (NaN or infinite pixels are refused before);
:func:`atomic_write_all` does this for several files together (an image and its JSON record).
Outputs get the usual permissions: an overwritten file keeps its mode, a new one gets ``0o666``
less the umask.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from .noise import unit_image

PIL_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
TIFF_SUFFIXES = {".tif", ".tiff"}
SUFFIXES = tuple(PIL_SUFFIXES) + tuple(TIFF_SUFFIXES) + (".npy",)
MAX_PIXELS = 89_478_485  # Pillow's default Image.MAX_IMAGE_PIXELS (decompression-bomb limit)
OUTPUT_DTYPES = ("uint8", "uint16", "float32", "float64")

_HINT = "convert to uint8 (0-255), uint16 (0-65535) or floats in [0, 1]"


@dataclass(frozen=True)
class ImageInfo:
    """Where an image came from: its path, sample type (``uint8``, ``uint16``, ``float32``…) and
    the EXIF orientation applied when it was read (1: none; see :func:`read_image`)."""

    path: str
    dtype: str
    orientation: int = 1


class _Refused(ValueError):
    """A file refused with a message of ours (passed through, not rephrased as 'corrupt')."""


def _check_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: unsupported format {suffix or '(no extension)'!r}; "
                         f"use one of {', '.join(SUFFIXES)}")
    return suffix


def _check_pixels(path: Path, height: int, width: int) -> None:
    if height * width > MAX_PIXELS:
        raise _Refused(f"{path}: {width}×{height} is {height * width:,} pixels, more than the limit "
                       f"of {MAX_PIXELS:,}; crop it or scale it down first")


def _check_dtype(path: Path, dtype: np.dtype) -> None:
    if dtype.name not in ("uint8", "uint16", "float16", "float32", "float64"):
        raise _Refused(f"{path}: {dtype.name} samples are not supported; {_HINT}")


def _read_npy(path: Path) -> np.ndarray:
    with open(path, "rb") as f:  # the header only: shape and type before any data is read
        major, _ = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if major == 1 else \
            np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(f)
    if dtype.hasobject:
        raise _Refused(f"{path}: the array holds Python objects; save a numeric array "
                       "(np.save of a uint8, uint16 or float array)")
    if len(shape) not in (2, 3):
        raise _Refused(f"{path}: a {len(shape)}-D array of shape {shape}; give one image, "
                       "(H, W) grey or (H, W, 3) colour")
    _check_pixels(path, shape[0], shape[1])
    _check_dtype(path, dtype)
    return np.load(path, allow_pickle=False)


def _read_tiff(path: Path) -> tuple[np.ndarray, int]:
    with tifffile.TiffFile(path) as tif:
        pages = len(tif.pages)
        if pages > 1:
            raise _Refused(f"{path}: the file holds {pages} pages (images); "
                           "save the page you want as its own file")
        if pages == 0:
            raise _Refused(f"{path}: the TIFF file holds no image")
        page = tif.pages.first
        kind = page.photometric  # palette, white-is-zero, CMYK, Lab… would be read as wrong values
        jpeg_ycbcr = kind == tifffile.PHOTOMETRIC.YCBCR and page.compression == tifffile.COMPRESSION.JPEG
        if kind not in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.RGB) and not jpeg_ycbcr:
            raise _Refused(f"{path}: TIFF photometric interpretation {kind.name} is not supported; "
                           "save it as grey or RGB first")
        colours = 1 if kind == tifffile.PHOTOMETRIC.MINISBLACK else 3  # tifffile gives JPEG YCbCr as RGB
        if page.samplesperpixel - colours not in (0, 1) or page.axes not in ("YX", "YXS", "SYX"):
            raise _Refused(f"{path}: a TIFF of shape {page.shape} ({page.axes}, {kind.name}); "
                           "give grey, grey+alpha, RGB or RGBA")
        _check_pixels(path, page.imagelength, page.imagewidth)
        _check_dtype(path, page.dtype)
        a = page.asarray()
        orientation = page.tags.get("Orientation")
        return (np.moveaxis(a, 0, -1) if page.axes == "SYX" else a,  # planar: samples first
                _orientation(orientation.value if orientation is not None else 1))


#: EXIF orientation → the array operation that shows the image upright (Pillow's
#: ``ImageOps.exif_transpose``): 2 mirrored, 3 turned 180°, 4 flipped, 5 transposed, 6 turned 90°
#: clockwise, 7 transverse, 8 turned 90° anticlockwise.
_UPRIGHT = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
            5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1),
            7: lambda a: a[::-1, ::-1].swapaxes(0, 1), 8: lambda a: np.rot90(a, 1)}


def _orientation(value) -> int:
    """An EXIF orientation tag's value, 1 (as stored) where it is missing or invalid."""
    try:
        value = int(value)
    except (TypeError, ValueError):
        return 1
    return value if value in _UPRIGHT else 1


def _png_bits(data: bytes, a: np.ndarray) -> np.ndarray:
    """A grey PNG of 1, 2 or 4 bits per sample as 8-bit samples: decoders that hand back the raw
    samples (0-1, 0-3, 0-15) get them scaled by their bit depth (×255, ×85, ×17), like libpng's
    own expansion; an already expanded image (or another kind of PNG) is left as it is."""
    bits, colour = data[24], data[25]  # IHDR, always the first chunk
    if colour == 0 and bits < 8 and a.dtype == np.uint8 and a.max() < 2 ** bits:
        return a * np.uint8(255 // (2 ** bits - 1))
    return a


def _read_pil(path: Path, suffix: str) -> tuple[np.ndarray, int]:
    try:
        with warnings.catch_warnings():  # Pillow warns above its limit; MAX_PIXELS is checked below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)  # lazy: reads the header only
    except Image.DecompressionBombError as e:
        raise _Refused(f"{path}: more than twice the limit of {MAX_PIXELS:,} pixels; "
                       "crop it or scale it down first") from e
    with im:
        expected = PIL_SUFFIXES[suffix]
        if im.format not in ((expected,) if expected == "PNG" else ("JPEG", "MPO")):
            raise _Refused(f"{path}: the file holds {im.format} data, not {expected}; "
                           "give it the right extension")
        _check_pixels(path, im.height, im.width)
        frames = getattr(im, "n_frames", 1)
        orientation = _orientation(im.getexif().get(0x0112))  # EXIF (or XMP) orientation
        if suffix == ".png":
            if frames > 1:
                raise _Refused(f"{path}: an animated PNG of {frames} frames; "
                               "save the frame you want as its own file")
            import imagecodecs  # here: PNG files only (rdip runs on .npy and TIFF without it)

            data = path.read_bytes()
            return _png_bits(data, imagecodecs.png_decode(data)), orientation  # 16 bits kept
        if im.mode == "CMYK":
            warnings.warn(f"{path}: converted a CMYK JPEG to RGB (a plain conversion, "
                          "no colour profile)", stacklevel=3)
            return np.asarray(im.convert("RGB")), orientation
        if im.mode not in ("L", "RGB"):
            raise _Refused(f"{path}: a {im.mode} JPEG; save it as grey or RGB first")
        return np.asarray(im), orientation  # an MPO's first, primary picture


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

    The one rule for sample values, as for arrays (:func:`rdip.images.noise.unit_image`):
    uint8 and uint16 samples are scaled by 255 and 65535 (grey PNGs of 1, 2 or 4 bits by their bit
    depth), float16/32/64 samples are taken as they are and must lie in [0, 1] but for noise
    (:func:`rdip.images.noise.check_range`: a float image in [-1, 1] or 0-255 is refused). An
    EXIF orientation (JPEG, PNG; the TIFF tag) is applied as Pillow's ``ImageOps.exif_transpose``
    does, so the image is upright and an output written from it (without the tag) displays as
    the input did; ``info.orientation`` records it. Raises ``ValueError`` or ``OSError`` with a
    one-line message for a missing, empty, corrupt or unsupported file, more than one image in it,
    more than :data:`MAX_PIXELS` pixels, another sample type, a bad shape, transparency, values in
    another range, or NaN or infinite values.
    """
    path = Path(path)
    suffix = _check_suffix(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder, not an image file; give an image file "
                                "(rdip batch denoises a folder's images)")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty")
    try:
        if suffix == ".npy":
            a, orientation = _read_npy(path), 1
        elif suffix in TIFF_SUFFIXES:
            a, orientation = _read_tiff(path)
        else:
            a, orientation = _read_pil(path, suffix)
    except PermissionError as e:
        raise PermissionError(f"{path}: cannot read the file (permission denied)") from e
    except (_Refused, MemoryError):
        raise
    except Exception as e:  # each reader has its own exceptions for a damaged file
        raise ValueError(f"{path}: cannot read it as {suffix[1:].upper()} (corrupt or not an image: "
                         f"{type(e).__name__})") from e
    a = np.asarray(a)
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    if a.ndim not in (2, 3):
        raise ValueError(f"{path}: a {a.ndim}-D array of shape {a.shape}; give one image, "
                         "(H, W) grey or (H, W, 3) colour")
    _check_dtype(path, a.dtype)
    a = _drop_alpha(a, path)
    if a.ndim == 3 and a.shape[2] != 3:
        raise ValueError(f"{path}: {a.shape[2]} channels; give (H, W) grey or (H, W, 3) colour")
    if a.size == 0:
        raise ValueError(f"{path}: the image has no pixels")
    if orientation != 1:
        a = np.ascontiguousarray(_UPRIGHT[orientation](a))
    image = unit_image(a, str(path))
    return image, ImageInfo(str(path), a.dtype.name, orientation)


def name_max(folder: Path) -> int:
    """The longest file name, in bytes, that ``folder``'s file system takes (255 where unknown)."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def check_name(path: Path) -> Path:
    """``path`` if its name fits its (existing) folder's file system, else a ``ValueError``."""
    size, limit = len(os.fsencode(path.name)), name_max(path.parent)
    if size > limit:
        raise ValueError(f"{path}: the file name is {size} bytes long, more than the {limit} its "
                         "file system allows; choose a shorter name")
    return path


def plain_name(name: str) -> str | None:
    """Why ``name`` cannot be one file or folder name that rdip makes from it (a name of a study
    file's variant or image), or None where it can: not empty, not ``.`` or ``..``, no path
    separator (``/``, ``\\``), no control character."""
    if not name:
        return "is empty"
    if name in (".", ".."):
        return f"is {name!r}, which names a folder, not a file"
    if "/" in name or "\\" in name:
        return "holds a path separator (/ or \\)"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "holds a control character"
    return None


def check_target(path: Path, force: bool, allow_symlink: bool = False) -> Path:
    """Check that ``path`` (any file) can be written: an existing folder, a name the file system
    takes, not a folder itself, nothing there (any entry: a dangling symbolic link too) unless
    ``force``, and no symbolic link, even with ``force`` (rdip neither writes through a link nor
    replaces one), unless ``allow_symlink`` (a caller that replaces the link itself)."""
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: the folder {path.parent} does not exist; create it first")
    check_name(path)
    if path.is_symlink() and not allow_symlink:
        raise ValueError(f"{path}: is a symbolic link; rdip does not write through or replace one "
                         "(remove it, or give the path of a regular file)")
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder; give a file name")
    if os.path.lexists(path) and not force:
        raise FileExistsError(f"{path}: already exists; use --force to overwrite it")
    return path


def check_output(path: str | os.PathLike, force: bool = False, allow_symlink: bool = False) -> Path:
    """Check that ``path`` can be written as an image: a known format, an existing folder, not a
    folder itself, nothing there unless ``force``, and no symbolic link (:func:`check_target`)."""
    path = Path(path)
    _check_suffix(path)
    return check_target(path, force, allow_symlink)


def _umask() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)  # no way to read it without setting it; set it straight back
    os.umask(mask)
    return mask


def _output_mode(path: Path) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)  # an overwritten file keeps its mode
    except OSError:
        return 0o666 & ~_umask()


#: The characters :func:`tempfile.mkstemp` puts between a prefix and a suffix.
_RANDOM = 8


def temp_prefix(path: Path, suffix: str) -> str:
    """How the temporary files of ``path`` (ending in ``suffix``) begin: ``.NAME.``, or where that
    would make a name too long for the file system, ``.`` + as much of NAME as fits + ``~`` + 8
    hex digits of its SHA-1 + ``.`` (hidden, and told apart from other outputs' temporary files)."""
    prefix = f".{path.name}."
    room = name_max(path.parent) - len(os.fsencode(suffix)) - _RANDOM
    if len(os.fsencode(prefix)) <= room:
        return prefix
    digest = hashlib.sha1(os.fsencode(path.name)).hexdigest()[:8]
    start = os.fsencode(path.name)[:max(0, room - 11)].decode("utf-8", "ignore")  # . ~ digest .
    return f".{start}~{digest}."


def _write_temp(path: Path, write, suffix: str = "", made=None) -> str:
    """Call ``write(tmp)`` on a new temporary file beside ``path`` and give it ``path``'s future
    mode; return its name. On failure remove it and let the exception go on. ``made(tmp)``, when
    given, hears of the file as soon as it exists (empty), before it is written."""
    suffix = suffix or path.suffix
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path, suffix), suffix=suffix, dir=path.parent)
    os.close(fd)
    if made is not None:
        made(tmp)
    try:
        write(tmp)
        os.chmod(tmp, _output_mode(path))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_all(items, made=None) -> None:
    """Write several files together: ``items`` is a list of ``(path, write)`` pairs; ``made``,
    when given, gets each temporary file's name as it is made (:func:`_write_temp`), so that a
    caller can record which files are its own.

    Each ``write(tmp_path)`` writes a temporary file beside its ``path`` (the temporary name
    ends in the same extension); only when every one is complete are they renamed into place, one
    after the other. If any write fails, every temporary file is removed, the exception goes on,
    and no existing file has been touched. (Should a rename itself fail, e.g. the folder became
    read-only meanwhile, the files renamed before it stay and the other temporary files are removed.)
    """
    items = [(Path(path), write) for path, write in items]
    if len({p.resolve() for p, _ in items}) < len(items):
        raise ValueError(f"the same file is given twice: {', '.join(str(p) for p, _ in items)}")
    temps: list[str] = []
    try:
        for path, write in items:
            temps.append(_write_temp(path, write, made=made))
        for (path, _), tmp in zip(items, list(temps)):
            os.replace(tmp, path)
            temps.remove(tmp)  # renamed: nothing left to remove
    except BaseException:
        for tmp in temps:
            Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, write, suffix: str = "") -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it to ``path``.

    The temporary name ends in ``suffix`` (default: ``path``'s extension), so writers that pick
    the format from the name work. The result gets the permissions described in the module notes.
    """
    path = Path(path)
    tmp = _write_temp(path, write, suffix)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def output_dtype(dtype: str) -> str:
    """The sample type written for ``dtype``: uint8, uint16, float32 and float64 as they are,
    float16 as float32, other floats (longdouble) as float64; anything else is a ``ValueError``."""
    try:
        dt = np.dtype(dtype)
    except TypeError as e:
        raise ValueError(f"unknown sample type {dtype!r}; use one of {', '.join(OUTPUT_DTYPES)}") from e
    if dt.name in OUTPUT_DTYPES:
        return dt.name
    if dt.kind == "f":
        return "float32" if dt.itemsize < 4 else "float64"
    raise ValueError(f"cannot write {dt.name} samples; use one of {', '.join(OUTPUT_DTYPES)}")


def to_dtype(image: np.ndarray, dtype: str) -> np.ndarray:
    """Convert a float image in [0, 1] to :func:`output_dtype` of ``dtype``: integers are clipped,
    scaled and rounded; floats are converted as they are."""
    dtype = output_dtype(dtype)
    if dtype in ("uint8", "uint16"):
        top = 255 if dtype == "uint8" else 65535
        return np.round(np.clip(image, 0.0, 1.0) * top).astype(dtype)
    return np.asarray(image, dtype=dtype)


def _write_tiff(tmp: str, data: np.ndarray) -> None:
    tifffile.imwrite(tmp, data, photometric="rgb" if data.ndim == 3 else "minisblack")


def _write_png(tmp: str, data: np.ndarray) -> None:
    import imagecodecs

    Path(tmp).write_bytes(imagecodecs.png_encode(np.ascontiguousarray(data)))


def _write_jpeg(tmp: str, data: np.ndarray) -> None:
    Image.fromarray(np.ascontiguousarray(data)).save(tmp, "JPEG")


def image_writer(path: str | os.PathLike, image: np.ndarray, dtype: str = "uint8",
                 force: bool = False, allow_symlink: bool = False):
    """Check ``path`` (:func:`check_output`) and ``image`` (finite: NaN or infinity is a
    ``ValueError``) and convert it; return ``(path, write)`` for :func:`atomic_write_all`, which
    writes it. See :func:`write_image` for the sample types."""
    path = check_output(path, force, allow_symlink)
    if not np.isfinite(image).all():
        raise ValueError(f"{path}: the image to write holds NaN or infinite values; nothing was "
                         "written (a NaN pixel would be written as black)")
    suffix = path.suffix.lower()
    dtype = output_dtype(dtype)
    if suffix in PIL_SUFFIXES and dtype not in ("uint8", "uint16"):
        dtype = "uint16" if suffix == ".png" else "uint8"
    if PIL_SUFFIXES.get(suffix) == "JPEG" and dtype == "uint16":
        warnings.warn(f"{path}: JPEG holds 8 bits; writing 8-bit", stacklevel=3)
        dtype = "uint8"
    data = to_dtype(image, dtype)
    if suffix == ".npy":
        return path, lambda tmp: np.save(tmp, data)
    if suffix in TIFF_SUFFIXES:
        return path, lambda tmp: _write_tiff(tmp, data)
    if suffix == ".png":
        return path, lambda tmp: _write_png(tmp, data)
    return path, lambda tmp: _write_jpeg(tmp, data)


def write_image(path: str | os.PathLike, image: np.ndarray, dtype: str = "uint8",
                force: bool = False) -> Path:
    """Write a float image in [0, 1] as ``dtype`` (normally the input's, see :class:`ImageInfo`).

    PNG and TIFF keep 8 or 16 bits, grey or colour; JPEG holds 8 bits only (16-bit data is
    written as 8-bit with a warning); float data goes to TIFF and NPY as float32 or float64
    (float16 as float32), to PNG as 16-bit and to JPEG as 8-bit. Refuses to overwrite an existing
    file unless ``force``.
    """
    path, write = image_writer(path, image, dtype, force)
    atomic_write_all([(path, write)])
    return path


def json_text(data, indent: int | None = 2) -> str:
    """``data`` as standard JSON text, valid for ``jq`` and ``JSON.parse``: NumPy scalars and
    arrays as numbers and lists, paths as strings, and a number that is not finite (a PSNR of ∞
    where a result equals its reference, a NaN) as ``null``; a ``TypeError`` for what JSON cannot
    hold."""
    return json.dumps(_plain(data), indent=indent, allow_nan=False)


def _plain(obj):
    """``obj`` with every value JSON holds as it is, the rest converted (see :func:`json_text`)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def json_writer(path: str | os.PathLike, data: dict, force: bool = False):
    """Check ``path`` and turn ``data`` into indented JSON text now (:func:`json_text`); return
    ``(path, write)`` for :func:`atomic_write_all`."""
    path = check_target(Path(path), force)
    text = json_text(data) + "\n"
    return path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, data: dict, force: bool = False) -> Path:
    """Write ``data`` as indented JSON (:func:`json_text`), atomically; refuse to overwrite
    unless ``force``."""
    path, write = json_writer(path, data, force)
    atomic_write_all([(path, write)])
    return path
