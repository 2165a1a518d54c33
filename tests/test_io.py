import warnings

import numpy as np
import pytest
import tifffile
from PIL import Image

from rdip.io import read_image, write_image, write_json


@pytest.mark.parametrize("suffix, dtype, channels", [
    (".png", "uint8", 3), (".png", "uint8", 1), (".png", "uint16", 1),
    (".tif", "uint8", 3), (".tif", "uint16", 3), (".tif", "uint16", 1), (".tif", "float32", 3),
    (".npy", "float64", 3), (".npy", "uint8", 1), (".npy", "uint16", 3),
])
def test_round_trip_keeps_values_and_bit_depth(tmp_path, rng, suffix, dtype, channels):
    shape = (26, 29, 3) if channels == 3 else (26, 29)
    top = {"uint8": 255, "uint16": 65535}.get(dtype)
    data = (rng.integers(0, top + 1, shape) if top else rng.random(shape)).astype(dtype)
    path = tmp_path / f"in{suffix}"
    if suffix == ".npy":
        np.save(path, data)
    elif suffix == ".tif":
        tifffile.imwrite(path, data, photometric="rgb" if channels == 3 else "minisblack")
    else:
        Image.fromarray(data).save(path)
    image, info = read_image(path)
    assert info.dtype == dtype and image.shape == shape and image.dtype == np.float64
    np.testing.assert_allclose(image, data / top if top else data)
    out = write_image(tmp_path / f"out{suffix}", image, dtype=info.dtype)
    again, info2 = read_image(out)
    assert info2.dtype == dtype
    np.testing.assert_allclose(again, image, atol=1e-7)


def test_jpeg(tmp_path, rng):
    image = np.full((32, 32, 3), 0.5) + rng.normal(0, 0.01, (32, 32, 3))
    path = write_image(tmp_path / "a.jpg", image)
    back, info = read_image(path)
    assert info.dtype == "uint8" and back.shape == (32, 32, 3)
    assert np.abs(back - image).max() < 0.05
    with pytest.warns(UserWarning, match="JPEG holds 8 bits"):
        write_image(tmp_path / "b.jpg", image, dtype="uint16")


def test_opaque_alpha_dropped_with_warning_transparent_refused(tmp_path, rng):
    rgba = rng.integers(0, 256, (30, 30, 4)).astype(np.uint8)
    rgba[..., 3] = 255
    Image.fromarray(rgba).save(tmp_path / "opaque.png")
    with pytest.warns(UserWarning, match="dropped an opaque alpha channel"):
        image, _ = read_image(tmp_path / "opaque.png")
    np.testing.assert_allclose(image, rgba[..., :3] / 255)
    rgba[0, 0, 3] = 10
    Image.fromarray(rgba).save(tmp_path / "clear.png")
    with pytest.raises(ValueError, match="transparent alpha channel"):
        read_image(tmp_path / "clear.png")


def test_bad_files(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (tmp_path / "text.tif").write_text("hello")
    np.save(tmp_path / "four.npy", np.zeros((2, 30, 30, 3)))
    np.save(tmp_path / "nan.npy", np.full((30, 30), np.nan))
    np.save(tmp_path / "bool.npy", np.zeros((30, 30), bool))
    (tmp_path / "a.gif").write_bytes(b"GIF89a")
    cases = {"missing.png": "no such file", "empty.png": "the file is empty",
             "corrupt.png": "cannot read it as PNG", "text.tif": "cannot read it as TIF",
             "four.npy": "a 4-D array", "nan.npy": "NaN or infinite", "bool.npy": "unsupported sample type",
             "a.gif": "unsupported format '.gif'"}
    for name, message in cases.items():
        with pytest.raises((ValueError, OSError), match=message):
            read_image(tmp_path / name)


def test_writes_refuse_to_overwrite_and_leave_no_temporary_files(tmp_path):
    image = np.zeros((30, 30))
    write_image(tmp_path / "a.png", image)
    with pytest.raises(FileExistsError, match="use --force"):
        write_image(tmp_path / "a.png", image)
    write_image(tmp_path / "a.png", image + 1, force=True)
    assert read_image(tmp_path / "a.png")[0].min() == 1.0
    with pytest.raises(FileNotFoundError, match="does not exist; create it first"):
        write_image(tmp_path / "no" / "a.png", image)
    with pytest.raises(TypeError):
        write_json(tmp_path / "bad.json", {"x": object()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_json(tmp_path / "ok.json", {"x": np.float32(1.5), "y": np.arange(2)})
    assert (tmp_path / "ok.json").read_text().count("1.5") == 1
