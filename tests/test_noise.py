import numpy as np
import pytest

from rdip.images.noise import add_noise


def test_seeded_and_unclipped_by_default():
    image = np.full((64, 64, 3), 0.95)
    a, b = add_noise(image, 0.1, seed=3), add_noise(image, 0.1, seed=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, add_noise(image, 0.1, seed=4))
    assert a.max() > 1.0  # not clipped
    assert np.std(a - image) == pytest.approx(0.1, rel=0.05)


def test_clip_option_and_zero_sigma():
    image = np.full((32, 32), 0.95)
    assert add_noise(image, 0.2, seed=0, clip=True).max() <= 1.0
    np.testing.assert_array_equal(add_noise(image, 0.0), image)


@pytest.mark.parametrize("sigma, message", [(-0.1, "finite number in \\[0, 1\\)"),
                                            (float("inf"), "finite number"), (1e200, "finite number"),
                                            (25, "in 0-255 units that is 0.09804")])
def test_sigma_outside_unit_range_refused(sigma, message):
    with pytest.raises(ValueError, match=message):
        add_noise(np.zeros((4, 4)), sigma)
