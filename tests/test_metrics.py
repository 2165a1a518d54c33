import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from rdip.images.metrics import centre, psnr, scores, ssim, ssim_centre


def test_ssim_agrees_with_scikit_image(cifar, rng):
    clean = cifar[0]
    noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1)
    reference = structural_similarity(noisy, clean, data_range=1, channel_axis=-1)
    assert abs(ssim(noisy, clean) - reference) < 1e-5
    assert ssim(clean, clean) == pytest.approx(1.0)
    # data_range=2 (old scikit-image's float default) raises the score (design.md §2.6)
    assert ssim(noisy, clean, data_range=2) > ssim(noisy, clean)


def test_centre_is_rows_and_columns_8_to_23():
    image = np.arange(32 * 32, dtype=float).reshape(32, 32)
    c = centre(image, 16)
    assert c.shape == (16, 16)
    assert c[0, 0] == image[8, 8] and c[-1, -1] == image[23, 23]


def test_ssim_centre_is_ssim_of_crops(cifar, rng):
    clean = cifar[1]
    noisy = clean + rng.normal(0, 0.1, clean.shape)
    expected = structural_similarity(noisy[8:24, 8:24], clean[8:24, 8:24], data_range=1, channel_axis=-1)
    assert abs(ssim_centre(noisy, clean) - expected) < 1e-5


def test_grey_and_psnr(rng):
    clean = rng.random((32, 32))
    noisy = clean + 0.1
    assert psnr(noisy, clean) == pytest.approx(20.0)
    assert psnr(noisy, clean) == pytest.approx(peak_signal_noise_ratio(clean, noisy, data_range=1))
    s = scores(noisy, clean)
    assert set(s) == {"ssim_full", "ssim_centre", "psnr"} and 0 < s["ssim_full"] < 1


def test_shape_mismatch_and_large_centre():
    with pytest.raises(ValueError, match="shapes differ"):
        ssim(np.zeros((32, 32)), np.zeros((32, 31)))
    with pytest.raises(ValueError, match="exceeds the image"):
        centre(np.zeros((10, 10)), 16)


def test_scores_take_anything_numpy_reads_and_say_when_shapes_differ():
    """rdip.ssim on lists raised AttributeError ('list' object has no attribute 'shape')."""
    from rdip import psnr, scores, ssim

    a, b = [[0.1 * (i % 5)] * 20 for i in range(20)], [[0.1 * (i % 5) + 0.05] * 20 for i in range(20)]
    assert ssim(a, b) == pytest.approx(ssim(np.array(a), np.array(b)))
    assert psnr(a, b) == pytest.approx(20 * np.log10(1 / 0.05))
    assert scores(np.array(a), np.array(a))["psnr"] == float("inf")
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(a, [[0.0]])
