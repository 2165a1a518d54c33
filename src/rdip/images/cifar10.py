"""CIFAR-10 test images: index specs, bundled samples, an ``.npz``, or the official archive.

:func:`load_cifar10` returns ``(images, labels)``: ``uint8 (N, 32, 32, 3)`` HWC RGB and
``uint8 (N,)``, for the requested indices of the official **test** batch in the order asked (an
``.npz`` may hold other sizes and sample types, kept as they are).
Test images 0–14 ship with the package; others come from an ``.npz`` (keys ``images``, ``labels``,
``indices``), the official ``cifar-10-python.tar.gz``, a folder holding it or its extracted
``cifar-10-batches-py/test_batch``, or the cache folder (downloaded there on request).

Pickled data is only ever read after its md5 matched: an archive is checked against ``md5`` each
time it is opened (no marker file; about a second for the 163 MB archive), an extracted
``test_batch`` against ``batch_md5``. Downloads go to a temporary file in the cache folder and are
renamed into place only once their md5 matched, so a failed download leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import tarfile
import tempfile
import urllib.request
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import numpy as np

from .values import SAMPLE_TYPES

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"
TEST_BATCH_MD5 = "40351d587109b95175f43aff81a1287e"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
TEST_BATCH = "cifar-10-batches-py/test_batch"
N_TEST = 10000
LABEL_NAMES = ("airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck")
SAMPLE_LABELS = (3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9)  # bundled test images 0–14


def parse_indices(spec: str | int) -> list[int]:
    """Parse ``"0-14"``, ``"0,3,5-7"`` or ``"7"`` into a list of indices (ranges inclusive); an
    integer ``7`` is ``[7]``."""
    if not isinstance(spec, str):
        index = _index(spec)  # a TypeError for anything but an integer
        if not 0 <= index < N_TEST:
            raise ValueError(f"test image index {index} is out of range; use 0-{N_TEST - 1}")
        return [index]
    if not spec.strip():
        raise ValueError("empty index spec; give indices like '0-14' or '0,3,5-7'")
    out: list[int] = []
    for part in (p.strip() for p in spec.split(",")):
        m = re.fullmatch(r"([0-9]+)(?:\s*-\s*([0-9]+))?", part)  # ASCII digits: not '²'
        if m is None:
            why = "negative index" if re.fullmatch(r"-\s*[0-9]+.*", part) else "not an index or range"
            raise ValueError(f"bad index spec {spec!r}: {part!r} is {why}; "
                             "use non-negative indices and ranges like '0-14' or '0,3,5-7'")
        if any(len(g.lstrip("0")) > len(str(N_TEST)) for g in m.groups() if g):  # before int(): 5000 digits
            raise ValueError(f"bad index spec {spec!r}: CIFAR-10 has {N_TEST} test images; "
                             f"use indices 0-{N_TEST - 1}")
        lo, hi = int(m[1]), int(m[2] or m[1])
        if hi < lo:
            raise ValueError(f"bad index spec {spec!r}: range {part!r} is reversed; write {hi}-{lo}")
        if hi >= N_TEST:
            raise ValueError(f"bad index spec {spec!r}: CIFAR-10 has {N_TEST} test images; "
                             f"use indices 0-{N_TEST - 1}")
        out.extend(range(lo, hi + 1))
    return out


def resolve_cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``path``, else ``$RDIP_CACHE``, ``$XDG_CACHE_HOME/rdip``, ``~/.cache/rdip``."""
    if path:
        return Path(path).expanduser()
    if os.environ.get("RDIP_CACHE"):
        return Path(os.environ["RDIP_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "rdip"


def file_md5(path: str | os.PathLike) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def download_file(url: str, dest: Path, md5: str) -> Path:
    """Stream ``url`` to a temporary file beside ``dest``, check its md5, then rename it to ``dest``."""
    from tqdm import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    h = hashlib.md5(usedforsecurity=False)
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=60) as r, tqdm(
                total=int(r.headers.get("Content-Length") or 0) or None, unit="B",
                unit_scale=True, desc=f"downloading {dest.name}", disable=None) as bar:
            while chunk := r.read(1 << 20):
                f.write(chunk)
                h.update(chunk)
                bar.update(len(chunk))
        if h.hexdigest() != md5:
            raise ValueError(f"{url}: downloaded file has md5 {h.hexdigest()}, expected {md5}; "
                             "try again later or download it yourself and pass --data PATH")
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def _unpickle_batch(f, where: str) -> tuple[np.ndarray, np.ndarray]:
    d = pickle.load(f, encoding="bytes")
    data, labels = np.asarray(d[b"data"], dtype=np.uint8), np.asarray(d[b"labels"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise ValueError(f"{where}: not a CIFAR-10 batch (data {data.shape}, {len(labels)} labels)")
    return data, labels


def _read_batch(path: Path, md5: str, batch_md5: str) -> tuple[np.ndarray, np.ndarray]:
    """Checked ``(data (N, 3072) CHW rows, labels)`` from an archive or an extracted test_batch."""
    is_archive = path.name != "test_batch"
    expected = md5 if is_archive else batch_md5
    if (actual := file_md5(path)) != expected:
        raise ValueError(f"{path}: md5 {actual}, expected {expected}; the file is damaged or not "
                         "the official CIFAR-10 one, delete it and download it again")
    if not is_archive:
        with open(path, "rb") as f:
            return _unpickle_batch(f, str(path))
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:  # stop at test_batch: no need to read (or extract) the whole archive
            if member.name == TEST_BATCH and member.isfile():
                return _unpickle_batch(tar.extractfile(member), f"{path}:{TEST_BATCH}")
    raise ValueError(f"{path}: holds no {TEST_BATCH}; give the official {ARCHIVE_NAME}")


def _from_npz(path: Path, idx: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The images as the archive holds them (their sample type kept: uint8, uint16 or floats,
    for :func:`rdip.images.values.unit_samples`), checked to be images, and their labels."""
    with np.load(path, allow_pickle=False) as d:
        if not {"images", "labels", "indices"} <= set(d.files):
            raise ValueError(f"{path}: needs arrays 'images', 'labels' and 'indices'; it has "
                             f"{', '.join(d.files)}")
        images = d["images"]
        grey_or_rgb = images.ndim == 3 or (images.ndim == 4 and images.shape[3] == 3)
        if images.dtype.name not in SAMPLE_TYPES or not grey_or_rgb:
            raise ValueError(f"{path}: 'images' is {images.dtype.name} of shape {images.shape}; give "
                             f"(N, H, W, 3) colour or (N, H, W) grey images of {', '.join(SAMPLE_TYPES)}")
        row = {int(i): r for r, i in enumerate(d["indices"])}
        if missing := [i for i in idx if i not in row]:
            raise ValueError(f"{path}: holds no test image {missing[0]} ({len(missing)} missing); "
                             "choose indices it holds or give the official archive with --data")
        rows = [row[i] for i in idx]
        return images[rows], np.asarray(d["labels"][rows], np.uint8)


def _npz_arrays(path: Path, idx: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_from_npz`, with NumPy's refusal of an array of Python objects in rdip's words."""
    try:
        return _from_npz(path, idx)
    except ValueError as e:
        if "allow_pickle" not in str(e):
            raise
        raise ValueError(f"{path}: an array in it holds Python objects (dtype object), which rdip does "
                         "not load; save numeric arrays: np.savez(PATH, images=uint8 (N, 32, 32, 3), "
                         "labels=integers, indices=integers)") from None


def _from_samples(idx: list[int]) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    images = []
    for i in idx:
        with (resources.files("rdip") / "samples" / f"cifar10_test_{i:04d}.png").open("rb") as f:
            images.append(np.asarray(Image.open(f).convert("RGB")))
    return np.stack(images), np.array([SAMPLE_LABELS[i] for i in idx], np.uint8)


def _index(value) -> int:
    """An index given as a number: an integer (a float such as 1.5 is refused, not truncated)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"test image index {value!r} is not an integer; give integers, e.g. [0, 1] or '0-14'")
    return int(value)


def load_cifar10(indices: Iterable[int] | str, source: str | os.PathLike | None = None, *,
                 cache_dir: str | os.PathLike | None = None, download: bool = False,
                 url: str = OFFICIAL_URL, md5: str = OFFICIAL_MD5,
                 batch_md5: str = TEST_BATCH_MD5) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 test images ``indices`` (a list or a spec for :func:`parse_indices`), in that order.

    ``source``: an ``.npz``, the official archive, or a folder holding the archive or
    ``cifar-10-batches-py/test_batch``. ``None``: the bundled images if all indices are 0–14, else
    the archive in the cache folder (see :func:`resolve_cache_dir`), downloaded from ``url`` if
    ``download``. Returns ``(images uint8 (N, 32, 32, 3) RGB, labels uint8 (N,))``; from an
    ``.npz``, its images as it holds them (any size; uint8, uint16 or floats, to be brought to
    [0, 1] by :func:`rdip.images.values.unit_samples`, as every image is).
    """
    idx = parse_indices(indices) if isinstance(indices, str) else [_index(i) for i in indices]
    if not idx:
        raise ValueError("no image indices given; ask for at least one, e.g. '0-14'")
    if bad := [i for i in idx if not 0 <= i < N_TEST]:
        raise ValueError(f"test image index {bad[0]} is out of range; use 0-{N_TEST - 1}")
    if source is None:
        if max(idx) < len(SAMPLE_LABELS):
            return _from_samples(idx)
        path = resolve_cache_dir(cache_dir) / ARCHIVE_NAME
        if not path.is_file():
            if not download:
                raise FileNotFoundError(f"CIFAR-10 test images beyond 0-14 need the official "
                                        f"archive ({path} not found); pass download=True "
                                        "(command line: --download) or --data PATH")
            download_file(url, path, md5)
    else:
        path = Path(source).expanduser()
        if path.is_dir():
            found = [p for p in (path / TEST_BATCH, path / ARCHIVE_NAME) if p.is_file()]
            if not found:
                raise FileNotFoundError(f"{path}: holds neither {TEST_BATCH} nor {ARCHIVE_NAME}; "
                                        "give the folder the archive was downloaded or extracted to")
            path = found[0]
        elif not path.is_file():
            raise FileNotFoundError(f"{path}: no such file or folder")
        elif path.suffix.lower() == ".npz":
            return _npz_arrays(path, idx)
        elif path.name != "test_batch" and not path.name.lower().endswith((".tar.gz", ".tgz")):
            raise ValueError(f"{path}: not an .npz, {ARCHIVE_NAME} or test_batch; give one of those")
    data, labels = _read_batch(path, md5, batch_md5)
    if max(idx) >= len(data):
        raise ValueError(f"{path}: holds {len(data)} test images, not {max(idx) + 1}")
    images = data[idx].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # CHW rows -> HWC
    return np.ascontiguousarray(images), labels[idx]
