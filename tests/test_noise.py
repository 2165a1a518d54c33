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


def test_integer_images_get_noise_on_their_type_s_range():
    """As everywhere in rdip, uint8 and uint16 are scaled by their range: σ = 0.1 is 25.5/255."""
    for image in (np.full((64, 64), 128, np.uint8), np.full((64, 64), 32896, np.uint16)):
        noisy = add_noise(image, 0.1, seed=0)
        assert noisy.mean() == pytest.approx(128 / 255, abs=0.01)
        assert np.std(noisy) == pytest.approx(0.1, rel=0.05)
        assert 0.3 < add_noise(image, 0.1, seed=0, clip=True).mean() < 0.7  # not white
    with pytest.raises(TypeError, match="int64"):
        add_noise(np.zeros((4, 4), np.int64), 0.1)


@pytest.mark.parametrize("image, message", [
    (np.full((32, 32), 0.5), "the image is flat or holds no noise"),  # estimated 2e-33, not NaN
    (np.zeros((32, 32)), "the image is flat or holds no noise"),
    (np.indices((32, 32)).sum(0) % 2 * 1.0, "is no noise level in \\(0, 1\\).*checkerboard"),
])
def test_estimates_that_are_no_noise_level_say_to_give_sigma(image, message):
    from rdip.images.noise import noise_sigma

    with pytest.raises(ValueError, match=f"cannot be estimated: .*{message}.*give sigma"):
        noise_sigma(image)
    assert noise_sigma(image, 0.1) == 0.1


@pytest.mark.parametrize("sigma", [0.01, 0.05, 0.1])
def test_noise_outside_unit_range_is_told_from_another_range(sigma):
    """Values outside [0, 1] are accepted when noise explains them, refused when the image's bulk
    lies in another range ([-1, 1], [0, 2], zero-mean), whatever its extremes."""
    from conftest import smooth_image

    from rdip.images.noise import check_range

    noisy = smooth_image((40, 40, 3), sigma, seed=1)
    assert noisy.min() < 0 or sigma < 0.05
    np.testing.assert_array_equal(check_range(noisy), noisy)
    for other in (noisy * 2 - 1, noisy * 2, noisy - noisy.mean(), noisy * 255):
        with pytest.raises(ValueError, match="rdip expects floats in \\[0, 1\\]"):
            check_range(other)
    assert check_range(add_noise(np.zeros((40, 40)), 0.5, seed=0), sigma=0.5).shape == (40, 40)
