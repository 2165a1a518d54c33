"""What the engine takes in (rdip.method.inputs): image arrays, the fitting range, padding."""

import numpy as np
import pytest

from rdip import FitConfig, add_noise, fit, preset

TINY = FitConfig(iters=5, device="cpu", eval_every=2)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((24, 30)), "at least 25×25"),
    (np.zeros((2, 30, 30, 3)), "must be \\(H, W\\) grey"),
    (np.full((30, 30), np.nan), "NaN or infinite"),
    (np.zeros((30, 30, 4)), "must be \\(H, W\\) grey"),
])
def test_bad_arrays(bad, message):
    with pytest.raises(ValueError, match=message):
        fit(bad, TINY)


def test_integer_images_are_scaled_by_their_type_and_floats_must_be_in_unit_range(rng):
    clean = rng.random((26, 26, 3))
    u8, u16 = np.round(clean * 255).astype(np.uint8), np.round(clean * 65535).astype(np.uint16)
    cfg = TINY.replace(dtype="float64")
    for integers, top in ((u8, 255), (u16, 65535)):
        np.testing.assert_allclose(fit(integers, cfg).image, fit(integers / top, cfg).image, atol=1e-12)
    with pytest.raises(ValueError, match="divide 0-255 data by 255"):
        fit(u8.astype(np.float64), cfg)
    for bad in (u8.astype(np.int64), u8 > 100, u8.astype(np.complex128)):
        with pytest.raises(TypeError, match="give floats in \\[0, 1\\], or uint8"):
            fit(bad, cfg)
    noisy = add_noise(clean, 0.3, seed=0)  # strong noise strays outside [0, 1]: still accepted
    assert noisy.min() < -0.3 and fit(noisy, TINY).image.shape == clean.shape


@pytest.mark.parametrize("name, margin, low, high", [("unit", 0.0, 0.0, 1.0), ("symmetric", 0.0, -1.0, 1.0),
                                                    ("symmetric", 0.1, -0.9, 0.9), ("unit", 0.2, 0.1, 0.9)])
def test_fitting_ranges_map_black_and_white_and_back(rng, name, margin, low, high):
    from rdip.config import range_width
    from rdip.method.inputs import from_range, to_range

    np.testing.assert_allclose(to_range(np.array([0.0, 1.0]), name, margin), [low, high])
    assert range_width(name, margin) == pytest.approx(high - low)
    x = rng.random((5, 5, 3))
    np.testing.assert_allclose(from_range(to_range(x, name, margin), name, margin), x, atol=1e-15)


def test_a_pad_wider_than_the_target_is_refused():
    from rdip.method.inputs import check_padding

    check_padding(32, 30, preset("paper", padding="edge", pad_width=32))
    check_padding(32, 30, preset("paper", padding="none", pad_width=1000))  # no padding: no limit
    with pytest.raises(ValueError, match="pad width 33 exceeds its 32×30 pixels"):
        check_padding(32, 30, preset("paper", padding="edge", pad_width=33))
