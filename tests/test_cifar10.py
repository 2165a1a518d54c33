import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from rdip.images.cifar10 import (
    SAMPLE_LABELS,
    load_cifar10,
    parse_indices,
    resolve_cache_dir,
)

CIFAR_NPZ = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cifar10" / \
    "cifar10_test_0000-0749.npz"
N_FAKE = 20


def fake_batch(n: int = N_FAKE) -> tuple[bytes, np.ndarray, list[int]]:
    """A pickled test_batch in the official layout: CHW rows (1024 R, 1024 G, 1024 B)."""
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(i % 10) for i in range(n)]
    blob = pickle.dumps({b"batch_label": b"testing batch 1 of 1", b"labels": labels,
                         b"data": data, b"filenames": [b"x.png"] * n}, protocol=2)
    return blob, data, labels


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def fake(tmp_path):
    """(archive path, its md5, data rows, labels) of a small fake cifar-10-python.tar.gz."""
    blob, data, labels = fake_batch()
    path = tmp_path / "src" / "cifar-10-python.tar.gz"
    path.parent.mkdir()
    with tarfile.open(path, "w:gz") as tar:
        for name, content in [("cifar-10-batches-py/readme.html", b"<html/>"),
                              ("cifar-10-batches-py/test_batch", blob)]:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path, md5(path), data, labels


@pytest.mark.parametrize("spec, expected", [
    ("7", [7]), ("0-3", [0, 1, 2, 3]), ("0,3,5-7", [0, 3, 5, 6, 7]), (" 2 , 4-5 ", [2, 4, 5]),
    ("9,1", [9, 1]), ("3-3", [3]),
])
def test_parse_indices(spec, expected):
    assert parse_indices(spec) == expected


@pytest.mark.parametrize("spec, words", [
    ("", "empty"), ("  ", "empty"), ("5-3", "reversed"), ("-3", "negative"), ("abc", "not an index"),
    ("1,,2", "not an index"), ("1-2-3", "not an index"), ("1.5", "not an index"), ("0-", "not an"),
])
def test_parse_indices_errors(spec, words):
    with pytest.raises(ValueError, match=words) as e:
        parse_indices(spec)
    assert "\n" not in str(e.value)


def test_parse_indices_takes_an_integer_and_refuses_other_types():
    assert parse_indices(5) == [5] and parse_indices(np.int64(9999)) == [9999]
    for bad in (-1, 10000):
        with pytest.raises(ValueError, match="out of range; use 0-9999"):
            parse_indices(bad)
    for bad in (1.5, True, None, [1, 2]):
        with pytest.raises(TypeError, match="not an integer; give integers"):
            parse_indices(bad)


def test_archive_chw_to_hwc(fake):
    path, digest, data, labels = fake
    images, labs = load_cifar10([5, 0, 17, 5], path, md5=digest)
    assert images.shape == (4, 32, 32, 3) and images.dtype == np.uint8 and labs.dtype == np.uint8
    assert labs.tolist() == [labels[5], labels[0], labels[17], labels[5]]
    row = data[5]  # pixel (y, x) channel c sits at c * 1024 + y * 32 + x in the official row
    for y, x in [(0, 0), (0, 31), (31, 0), (7, 19)]:
        assert images[0, y, x].tolist() == [row[c * 1024 + y * 32 + x] for c in range(3)]
    np.testing.assert_array_equal(images[2], data[17].reshape(3, 32, 32).transpose(1, 2, 0))


def test_archive_folder_and_extracted_batch(fake, tmp_path):
    path, digest, data, _ = fake
    a, _ = load_cifar10("1-3", path.parent, md5=digest)  # folder holding the archive
    extracted = tmp_path / "ex"
    batch = extracted / "cifar-10-batches-py" / "test_batch"
    batch.parent.mkdir(parents=True)
    with tarfile.open(path) as tar:
        batch.write_bytes(tar.extractfile("cifar-10-batches-py/test_batch").read())
    b, _ = load_cifar10("1-3", extracted, batch_md5=md5(batch))  # folder holding test_batch
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="md5"):  # the official test_batch md5 by default
        load_cifar10("1-3", extracted)


def test_archive_errors(fake, tmp_path):
    path, digest, _, _ = fake
    with pytest.raises(ValueError, match=r"md5 [0-9a-f]{32}, expected c58f3"):
        load_cifar10([0], path)  # the official md5 by default: never unpickled
    with pytest.raises(ValueError, match="holds 20 test images"):
        load_cifar10([N_FAKE], path, md5=digest)
    with pytest.raises(ValueError, match="out of range"):
        load_cifar10([10000], path, md5=digest)
    with pytest.raises(ValueError, match="at least one"):
        load_cifar10([], path, md5=digest)
    with pytest.raises(FileNotFoundError, match="neither"):
        load_cifar10([0], tmp_path, md5=digest)
    with pytest.raises(FileNotFoundError):
        load_cifar10([0], tmp_path / "missing.tar.gz")
    (tmp_path / "x.zip").write_bytes(b"PK")
    with pytest.raises(ValueError, match="not an .npz"):
        load_cifar10([0], tmp_path / "x.zip")


def test_download_into_cache_then_reuse(fake, tmp_path):
    path, digest, data, _ = fake
    cache = tmp_path / "cache"
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_cifar10("15-16", cache_dir=cache)
    images, _ = load_cifar10("15-16", cache_dir=cache, download=True, url=path.as_uri(), md5=digest)
    np.testing.assert_array_equal(images[1], data[16].reshape(3, 32, 32).transpose(1, 2, 0))
    assert [p.name for p in cache.iterdir()] == ["cifar-10-python.tar.gz"]
    path.unlink()  # the second call must use the cache, not the URL
    again, _ = load_cifar10("15-16", cache_dir=cache, download=True, url=path.as_uri(), md5=digest)
    np.testing.assert_array_equal(images, again)


def test_download_wrong_md5_leaves_nothing(fake, tmp_path):
    path, digest, _, _ = fake
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match=f"md5 {digest}, expected 0{{32}}") as e:
        load_cifar10([15], cache_dir=cache, download=True, url=path.as_uri(), md5="0" * 32)
    assert "\n" not in str(e.value)
    assert list(cache.iterdir()) == []
    with pytest.raises(OSError):  # a failed download leaves nothing either
        load_cifar10([15], cache_dir=cache, download=True, url=(tmp_path / "nope").as_uri())
    assert list(cache.iterdir()) == []


def test_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("RDIP_CACHE", str(tmp_path / "r"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert resolve_cache_dir(tmp_path / "c") == tmp_path / "c"
    assert resolve_cache_dir() == tmp_path / "r"
    monkeypatch.delenv("RDIP_CACHE")
    assert resolve_cache_dir() == tmp_path / "x" / "rdip"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert resolve_cache_dir() == tmp_path / "h" / ".cache" / "rdip"


def test_bundled_samples_need_no_files(monkeypatch, tmp_path):
    monkeypatch.setenv("RDIP_CACHE", str(tmp_path / "empty"))
    images, labels = load_cifar10("14,0,3")
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8
    assert labels.tolist() == [SAMPLE_LABELS[14], SAMPLE_LABELS[0], SAMPLE_LABELS[3]] == [9, 3, 0]
    assert not (tmp_path / "empty").exists()


@pytest.fixture
def npz(tmp_path):
    """The development data's .npz of test images 0–749, else one of the same layout made here
    (random pixels, the bundled images' labels repeated)."""
    if CIFAR_NPZ.exists():
        return CIFAR_NPZ
    rng = np.random.default_rng(0)
    path = tmp_path / "cifar10_test_0000-0749.npz"
    np.savez(path, images=rng.integers(0, 256, (750, 32, 32, 3), dtype=np.uint8),
             labels=np.resize(np.array(SAMPLE_LABELS, np.uint8), 750), indices=np.arange(750))
    return path


def test_npz_rows_by_index(npz):
    images, labels = load_cifar10([749, 3, 100], npz)
    with np.load(npz) as d:
        np.testing.assert_array_equal(images, d["images"][[749, 3, 100]])
        assert labels.tolist() == d["labels"][[749, 3, 100]].tolist()
    with pytest.raises(ValueError, match="holds no test image 750"):
        load_cifar10("748-751", npz)


def test_npz_looks_rows_up_by_indices_array(tmp_path):
    images = np.arange(3 * 32 * 32 * 3, dtype=np.uint8).reshape(3, 32, 32, 3)
    path = tmp_path / "sub.npz"
    np.savez(path, images=images, labels=np.array([1, 2, 3], np.uint8), indices=np.array([40, 7, 9]))
    got, labels = load_cifar10([9, 40], path)
    np.testing.assert_array_equal(got, images[[2, 0]])
    assert labels.tolist() == [3, 1]


@pytest.mark.parametrize("key", ["images", "labels", "indices"])
def test_an_npz_of_object_arrays_is_refused_in_rdip_s_words(tmp_path, key):
    arrays = {"images": np.zeros((1, 32, 32, 3), np.uint8), "labels": np.array([1]), "indices": np.array([0])}
    arrays[key] = np.array([object()] * len(arrays[key]) if key != "images" else [None], dtype=object)
    path = tmp_path / "objects.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError) as e:
        load_cifar10([0], path)
    message = str(e.value)
    assert message.startswith(f"{path}: an array in it holds Python objects") and "save numeric arrays" in message
    assert "allow_pickle" not in message and "\n" not in message


@pytest.mark.skipif(not CIFAR_NPZ.exists(), reason="compares with the development data in ../shared")
def test_bundled_samples_equal_npz():
    npz = CIFAR_NPZ
    bundled, labels = load_cifar10("0-14")
    from_npz, npz_labels = load_cifar10("0-14", npz)
    np.testing.assert_array_equal(bundled, from_npz)
    np.testing.assert_array_equal(labels, npz_labels)
    assert labels.tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9]
