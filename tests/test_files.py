import json
import os
import stat
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from rdip.images.files import (
    MAX_PIXELS,
    atomic_write_all,
    check_output,
    check_target,
    image_writer,
    json_writer,
    output_dtype,
    read_image,
    to_dtype,
    write_image,
    write_json,
)


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
             "four.npy": "a 4-D array", "nan.npy": "NaN or infinite",
             "bool.npy": "bool samples are not supported",
             "a.gif": "unsupported format '.gif'"}
    for name, message in cases.items():
        with pytest.raises((ValueError, OSError), match=message):
            read_image(tmp_path / name)


def test_reading_a_folder_named_like_an_image_says_it_is_a_folder(tmp_path):
    (tmp_path / "x.png").mkdir()
    with pytest.raises(IsADirectoryError) as e:
        read_image(tmp_path / "x.png")
    assert str(e.value).startswith(f"{tmp_path / 'x.png'}: is a folder, not an image file")
    assert "no such file" not in str(e.value)


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


def _png(path, width, height, bit_depth, colour_type, idat):
    """Write a PNG by hand (struct + zlib), independently of the code tested."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))


def _png16(path, data):
    """A 16-bit grey or RGB PNG of ``data``."""
    rows = data.reshape(data.shape[0], -1).astype(">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)  # filter type 0 on every row
    _png(path, data.shape[1], data.shape[0], 16, 2 if data.ndim == 3 else 0, zlib.compress(raw))


@pytest.mark.parametrize("channels", [3, 1])
def test_16_bit_png_keeps_16_bits(tmp_path, rng, channels):
    shape = (21, 23, 3) if channels == 3 else (21, 23)
    data = rng.integers(0, 65536, shape).astype(np.uint16)
    data.flat[:2] = [0x1234, 0x1235]  # differ in the low byte only
    _png16(tmp_path / "in.png", data)
    image, info = read_image(tmp_path / "in.png")
    assert info.dtype == "uint16" and image.shape == shape
    np.testing.assert_array_equal(np.round(image * 65535), data)
    write_image(tmp_path / "out.png", image, dtype=info.dtype)
    again, info2 = read_image(tmp_path / "out.png")
    assert info2.dtype == "uint16"
    np.testing.assert_array_equal(np.round(again * 65535), data)


def test_colour_float_written_as_16_bit_png(tmp_path, rng):
    image = rng.random((19, 17, 3))
    np.save(tmp_path / "in.npy", image)
    image, info = read_image(tmp_path / "in.npy")
    write_image(tmp_path / "out.png", image, dtype=info.dtype)
    back, info2 = read_image(tmp_path / "out.png")
    assert info2.dtype == "uint16" and back.shape == image.shape
    assert np.abs(back - image).max() <= 0.5 / 65535 + 1e-12
    assert Image.open(tmp_path / "out.png").size == (17, 19)  # an ordinary PNG others can read


@pytest.mark.parametrize("mode", ["P", "1", "LA"])
def test_png_kinds_read_like_pillow(tmp_path, rng, mode):
    rgb = Image.fromarray(rng.integers(0, 256, (20, 24, 3)).astype(np.uint8))
    im = rgb.convert(mode)
    im.save(tmp_path / "a.png")
    expected = np.asarray(im.convert("L" if mode in ("1", "LA") else "RGB")) / 255
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*dropped an opaque alpha channel")
        image, info = read_image(tmp_path / "a.png")
    assert info.dtype == "uint8"
    np.testing.assert_allclose(image, expected)


def test_png_transparent_colour_key_refused(tmp_path, rng):
    data = rng.integers(0, 256, (20, 24, 3)).astype(np.uint8)
    Image.fromarray(data).save(tmp_path / "key.png", transparency=tuple(int(v) for v in data[0, 0]))
    with pytest.raises(ValueError, match="transparent alpha channel"):
        read_image(tmp_path / "key.png")


def test_cmyk_jpeg_read_as_rgb_with_warning(tmp_path):
    cmyk = Image.new("CMYK", (24, 20), (10, 200, 30, 40))
    cmyk.save(tmp_path / "cmyk.jpg", "JPEG", quality=95)
    with pytest.warns(UserWarning, match="converted a CMYK JPEG to RGB"):
        image, info = read_image(tmp_path / "cmyk.jpg")
    assert info.dtype == "uint8" and image.shape == (20, 24, 3)
    expected = np.asarray(cmyk.convert("RGB")) / 255
    assert np.abs(image - expected).max() < 0.05


def test_one_image_per_file(tmp_path, rng):
    pages = rng.integers(0, 256, (3, 20, 24)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "pages.tif", pages, photometric="minisblack")
    with pytest.raises(ValueError, match="holds 3 pages.*save the page you want as its own file"):
        read_image(tmp_path / "pages.tif")
    tifffile.imwrite(tmp_path / "planar.tif", pages, photometric="rgb", planarconfig="separate")
    image, _ = read_image(tmp_path / "planar.tif")
    np.testing.assert_allclose(image, np.moveaxis(pages, 0, -1) / 255)
    frames = [Image.fromarray(p) for p in pages[:2]]
    frames[0].save(tmp_path / "anim.png", save_all=True, append_images=frames[1:])
    with pytest.raises(ValueError, match="animated PNG of 2 frames.*own file"):
        read_image(tmp_path / "anim.png")


def test_tiff_kinds_that_would_read_wrong_are_refused(tmp_path, rng):
    grey = rng.integers(0, 256, (20, 24)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "palette.tif", grey, photometric="palette",
                     colormap=np.zeros((3, 256), np.uint16))
    tifffile.imwrite(tmp_path / "white.tif", grey, photometric="miniswhite")
    for name in ("palette.tif", "white.tif"):
        with pytest.raises(ValueError, match="is not supported; save it as grey or RGB first"):
            read_image(tmp_path / name)
    Image.fromarray(grey).save(tmp_path / "png.jpg", "PNG")
    with pytest.raises(ValueError, match="holds PNG data, not JPEG"):
        read_image(tmp_path / "png.jpg")


def test_pixel_limit_checked_before_decoding(tmp_path):
    assert MAX_PIXELS == 89_478_485
    tile = zlib.compress(bytes(1024 * 1024))  # one compressed 1024×1024 tile of zeros, used 256 times
    tifffile.imwrite(tmp_path / "huge.tif", (tile for _ in range(256)), shape=(16384, 16384),
                     dtype=np.uint8, compression="zlib", tile=(1024, 1024))
    assert (tmp_path / "huge.tif").stat().st_size < 1_000_000
    with open(tmp_path / "huge.npy", "wb") as f:  # the header only: the data would not be read
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False,
                                                 "shape": (9500, 9500)})
    _png(tmp_path / "huge.png", 9500, 9500, 8, 0, b"")  # a header only; over the limit
    _png(tmp_path / "bomb.png", 20000, 20000, 8, 0, b"")  # over twice the limit: Pillow refuses
    for name in ("huge.tif", "huge.npy", "huge.png"):
        with pytest.raises(ValueError, match=r"pixels, more than the limit of 89,478,485; crop it"):
            read_image(tmp_path / name)
    with pytest.raises(ValueError, match=r"more than twice the limit of 89,478,485 pixels"):
        read_image(tmp_path / "bomb.png")


@pytest.mark.parametrize("dtype", ["int64", "int8", "uint32", "bool", "complex128"])
def test_other_sample_types_refused_with_a_hint(tmp_path, dtype):
    np.save(tmp_path / "a.npy", np.zeros((20, 24), dtype))
    hint = rf"{dtype} samples are not supported; convert to uint8 \(0-255\), uint16 \(0-65535\) or floats"
    with pytest.raises(ValueError, match=hint):
        read_image(tmp_path / "a.npy")


def test_other_arrays(tmp_path):
    tifffile.imwrite(tmp_path / "int16.tif", np.zeros((20, 24), np.int16))
    with pytest.raises(ValueError, match="int16 samples are not supported"):
        read_image(tmp_path / "int16.tif")
    np.save(tmp_path / "objects.npy", np.zeros((20, 24), object), allow_pickle=True)
    with pytest.raises(ValueError, match="holds Python objects"):
        read_image(tmp_path / "objects.npy")
    big_endian = np.arange(20 * 24, dtype=">u2").reshape(20, 24)
    np.save(tmp_path / "big_endian.npy", big_endian)
    image, info = read_image(tmp_path / "big_endian.npy")
    assert info.dtype == "uint16"
    np.testing.assert_array_equal(np.round(image * 65535), big_endian)


@pytest.mark.parametrize("suffix", [".tif", ".npy"])
def test_float16_written_as_float32(tmp_path, rng, suffix):
    data = rng.random((20, 24)).astype(np.float16)
    np.save(tmp_path / "in.npy", data)
    image, info = read_image(tmp_path / "in.npy")
    assert info.dtype == "float16"
    write_image(tmp_path / f"out{suffix}", image, dtype=info.dtype)
    back, info2 = read_image(tmp_path / f"out{suffix}")
    assert info2.dtype == "float32"
    np.testing.assert_array_equal(back, data.astype(np.float64))  # float16 values are exact in float32
    assert output_dtype("float16") == "float32" and output_dtype("longdouble") == "float64"
    assert to_dtype(image, "float16").dtype == np.float32
    with pytest.raises(ValueError, match="cannot write int64 samples"):
        write_image(tmp_path / "int.npy", image, dtype="int64")


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_outputs_get_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    for name in ("a.png", "a.jpg", "a.tif", "a.npy"):
        write_image(tmp_path / name, np.zeros((20, 24)))
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask
    write_json(tmp_path / "a.json", {"x": 1})
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o666 & ~umask
    (tmp_path / "a.png").chmod(0o600)
    write_image(tmp_path / "a.png", np.ones((20, 24)), force=True)  # an overwritten file keeps its mode
    assert stat.S_IMODE((tmp_path / "a.png").stat().st_mode) == 0o600


def test_atomic_write_all_writes_all_or_nothing(tmp_path):
    (tmp_path / "a.png").write_bytes(b"old image")
    (tmp_path / "a.json").write_text("old record")

    def fail(tmp):
        Path(tmp).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write_all([image_writer(tmp_path / "a.png", np.zeros((20, 24)), force=True),
                          (tmp_path / "a.json", fail)])
    with pytest.raises(OSError, match="disk full"):
        atomic_write_all([(tmp_path / "new.png", fail), json_writer(tmp_path / "new.json", {"x": 1})])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "a.png"]
    assert (tmp_path / "a.png").read_bytes() == b"old image"
    assert (tmp_path / "a.json").read_text() == "old record"
    atomic_write_all([image_writer(tmp_path / "a.png", np.ones((20, 24)), force=True),
                      json_writer(tmp_path / "a.json", {"x": 1}, force=True)])
    assert read_image(tmp_path / "a.png")[0].min() == 1.0
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "a.png"]
    with pytest.raises(ValueError, match="given twice"):
        atomic_write_all([(tmp_path / "b.json", fail), (tmp_path / "b.json", fail)])


def test_check_output_refuses_a_folder_and_a_link(tmp_path):
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder; give a file name"):
        check_output(tmp_path / "dir.png", force=True)
    with pytest.raises(IsADirectoryError, match="is a folder"):
        write_json(tmp_path / "dir.png", {}, force=True)
    (tmp_path / "target.png").write_bytes(b"x")
    try:
        (tmp_path / "link.png").symlink_to(tmp_path / "target.png")
        (tmp_path / "dangling.png").symlink_to(tmp_path / "nothing.png")
    except OSError:
        pytest.skip("cannot make symbolic links here")
    for name in ("link.png", "dangling.png"):  # never written through or replaced, even with force
        for force in (False, True):
            with pytest.raises(ValueError, match="is a symbolic link"):
                check_output(tmp_path / name, force=force)
    (tmp_path / "gone.json").symlink_to(tmp_path / "nowhere.json")
    with pytest.raises(ValueError, match="is a symbolic link"):
        write_json(tmp_path / "gone.json", {}, force=True)
    # a dangling link is an entry that exists, though Path.exists() says it does not
    with pytest.raises(FileExistsError, match="already exists"):
        check_target(tmp_path / "gone.json", False, allow_symlink=True)
    assert check_output(tmp_path / "link.png", force=True, allow_symlink=True) == tmp_path / "link.png"
    assert (tmp_path / "target.png").read_bytes() == b"x" and (tmp_path / "dangling.png").is_symlink()
    assert not (tmp_path / "nowhere.json").exists()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_applied_as_pillow_does(tmp_path, rng, orientation):
    """A phone picture stored sideways with its EXIF orientation reads upright (Pillow's
    ImageOps.exif_transpose), so an output written from it displays as the input did."""
    from PIL import ImageOps

    data = rng.integers(0, 256, (20, 31, 3)).astype(np.uint8)
    im = Image.fromarray(data)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.save(tmp_path / "a.png", exif=exif.tobytes())
    image, info = read_image(tmp_path / "a.png")
    with Image.open(tmp_path / "a.png") as stored:
        expected = np.asarray(ImageOps.exif_transpose(stored)) / 255
    assert info.orientation == orientation
    np.testing.assert_array_equal(image, expected)
    assert image.shape == ((31, 20, 3) if orientation >= 5 else (20, 31, 3))


def test_exif_orientation_of_jpeg_and_tiff(tmp_path, rng):
    data = rng.integers(0, 256, (20, 31)).astype(np.uint8)
    im = Image.fromarray(data)
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(tmp_path / "a.jpg", exif=exif.tobytes(), quality=95)
    tifffile.imwrite(tmp_path / "a.tif", data, extratags=[(274, "H", 1, 6, True)])
    for name in ("a.jpg", "a.tif"):
        image, info = read_image(tmp_path / name)
        assert info.orientation == 6 and image.shape == (31, 20)
        assert np.abs(image - np.rot90(data, -1) / 255).mean() < 0.05, name  # 90° clockwise
    write_image(tmp_path / "out.png", read_image(tmp_path / "a.tif")[0])
    assert read_image(tmp_path / "out.png")[1].orientation == 1  # written upright, without the tag


@pytest.mark.parametrize("bits", [1, 2, 4])
@pytest.mark.parametrize("raw_decoder", [False, True])
def test_grey_png_of_few_bits_scaled_by_its_bit_depth(tmp_path, monkeypatch, bits, raw_decoder):
    """1-, 2- and 4-bit grey PNGs read as k / (2^bits - 1), also where the PNG decoder hands back
    the raw samples (0-1, 0-3, 0-15) instead of expanding them to 8 bits."""
    import imagecodecs

    top = 2 ** bits - 1
    samples = (np.arange(26 * 32).reshape(26, 32) % (top + 1)).astype(np.uint8)
    per_byte = 8 // bits
    rows = [b"\x00" + bytes(sum(int(v) << (8 - bits * (k + 1)) for k, v in enumerate(row[i:i + per_byte]))
                            for i in range(0, len(row), per_byte)) for row in samples]
    _png(tmp_path / "a.png", 32, 26, bits, 0, zlib.compress(b"".join(rows)))
    if raw_decoder:  # as some versions of the decoder do
        monkeypatch.setattr(imagecodecs, "png_decode", lambda data: samples.copy())
    image, info = read_image(tmp_path / "a.png")
    assert info.dtype == "uint8"
    np.testing.assert_allclose(image, samples / top)


def test_float_files_in_another_range_are_refused_with_what_to_do(tmp_path):
    from conftest import smooth_image

    noisy = smooth_image((32, 32, 3), 0.05)
    for name, data, hint in (("sym.npy", noisy * 2 - 1, r"\(x \+ 1\) / 2"),
                             ("double.tif", (noisy * 2).astype(np.float32), "rescale it to"),
                             ("zero-mean.npy", noisy - noisy.mean(), "rescale it to"),
                             ("bytes.tif", (noisy * 255).astype(np.float32), "divide 0-255 data by 255")):
        if name.endswith(".npy"):
            np.save(tmp_path / name, data)
        else:
            tifffile.imwrite(tmp_path / name, data, photometric="rgb")
        with pytest.raises(ValueError, match=rf"{name} has values from .* {hint}"):
            read_image(tmp_path / name)
    np.save(tmp_path / "strong.npy", smooth_image((32, 32), 0.3))  # noise far outside: accepted
    assert read_image(tmp_path / "strong.npy")[0].min() < -0.5


def test_nan_pixels_are_refused_not_written_as_black(tmp_path):
    image = np.full((30, 30), 0.5)
    image[3, 4] = np.nan
    for name in ("a.png", "a.tif", "a.npy", "a.jpg"):
        with pytest.raises(ValueError, match="holds NaN or infinite values; nothing was written"):
            write_image(tmp_path / name, image)
    assert list(tmp_path.iterdir()) == []


def test_names_near_the_file_system_limit(tmp_path):
    """An output whose name fits is written (its temporary name is made to fit too); one that
    does not is refused before anything is written, with the limit."""
    from rdip.images.files import name_max, temp_prefix

    limit = name_max(tmp_path)
    longest = tmp_path / ("é" * ((limit - 4) // 2) + "x" * ((limit - 4) % 2) + ".png")
    assert len(os.fsencode(longest.name)) == limit
    write_image(longest, np.zeros((30, 30)))
    write_json(longest.with_suffix(".jsn"), {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([longest.name, longest.with_suffix(".jsn").name])
    prefix = temp_prefix(longest, ".png")
    assert prefix.startswith(".é") and len(os.fsencode(prefix)) + 8 + 4 <= limit
    assert temp_prefix(tmp_path / "a.png", ".png") == ".a.png."
    too_long = tmp_path / ("x" * limit + ".png")
    with pytest.raises(ValueError, match=f"the file name is {limit + 4} bytes long, more than the {limit}"):
        write_image(too_long, np.zeros((30, 30)))
    assert len(list(tmp_path.iterdir())) == 2


def test_json_is_standard_json_also_for_infinite_scores(tmp_path):
    """PSNR = ∞ (a result equal to its reference) is written as null: Python's default Infinity
    is rejected by jq and JSON.parse."""
    from rdip.images.files import json_text

    data = {"psnr": float("inf"), "low": -np.inf, "nan": np.float32("nan"), "list": [1.5, np.inf],
            "array": np.array([np.nan, 2.0]), "n": np.int64(3), "ok": True, "path": Path("a/b")}
    strict = json.loads(json_text(data), parse_constant=lambda c: pytest.fail(f"non-standard {c}"))
    assert strict == {"psnr": None, "low": None, "nan": None, "list": [1.5, None],
                      "array": [None, 2.0], "n": 3, "ok": True, "path": "a/b"}
    write_json(tmp_path / "r.json", data)
    assert "Infinity" not in (tmp_path / "r.json").read_text()


def test_npy_files_are_denoised_where_imagecodecs_is_missing(tmp_path, rng):
    """imagecodecs is imported for PNG files only: rdip runs on .npy without it (the GPU machine's
    image lacks it, and its wheel is too large to carry there)."""
    import subprocess
    import sys

    np.save(tmp_path / "in.npy", rng.random((30, 30)))
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'imagecodecs': raise ImportError('no imagecodecs here')\n"
            "sys.meta_path.insert(0, Block())\n"
            "sys.argv = ['rdip', 'denoise', sys.argv[1], '-o', sys.argv[2], '--iters', '2', '--device', 'cpu', '-q']\n"
            "from rdip.cli import run\n"
            "run()\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "in.npy"), str(tmp_path / "out.npy")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert np.load(tmp_path / "out.npy").shape == (30, 30)
