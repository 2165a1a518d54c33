import numpy as np
import pytest

from rdip.method.padding import MODES, crop, pad

ROW = np.array([[1.0, 2.0, 3.0]])


@pytest.mark.parametrize("mode, expected", [
    ("zero", [0, 0, 1, 2, 3, 0, 0]),
    ("edge", [1, 1, 1, 2, 3, 3, 3]),
    ("reflect", [3, 2, 1, 2, 3, 2, 1]),
    ("circular", [2, 3, 1, 2, 3, 1, 2]),
])
def test_pad_known_row(mode, expected):
    image = np.repeat(ROW, 3, axis=0)  # 3×3, every row 1 2 3
    out = pad(image, 2, mode)
    assert out.shape == (7, 7)
    np.testing.assert_array_equal(out[3], expected)


def test_none_and_zero_width_return_input_unchanged(rng):
    image = rng.random((5, 6, 3))
    assert pad(image, 4, "none") is image
    assert pad(image, 0, "edge") is image


@pytest.mark.parametrize("mode", [m for m in MODES if m != "none"])
@pytest.mark.parametrize("width", [1, 4, 9])
def test_crop_undoes_pad_exactly(mode, width, rng):
    image = rng.random((6, 7, 3))  # width 9 exceeds the image: reflect/circular repeat
    padded = pad(image, width, mode)
    assert padded.shape == (6 + 2 * width, 7 + 2 * width, 3)
    np.testing.assert_array_equal(crop(padded, width, mode), image)


def test_channels_are_not_padded(rng):
    assert pad(rng.random((4, 4, 3)), 2, "edge").shape == (8, 8, 3)
    assert pad(rng.random((4, 4)), 2, "edge").shape == (8, 8)


def test_bad_mode_and_width():
    with pytest.raises(ValueError, match="unknown padding 'mirror'"):
        pad(np.zeros((4, 4)), 1, "mirror")
    with pytest.raises(ValueError, match="pad width must be >= 0"):
        pad(np.zeros((4, 4)), -1, "edge")


def test_modes_are_the_configurations():
    from rdip.config import PADDINGS

    assert tuple(MODES) == PADDINGS and MODES["none"] is None and MODES["circular"] == "wrap"
