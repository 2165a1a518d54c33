"""The stopping rules (rdip.method.stopping), through the engine: where each stops, what it keeps."""

import numpy as np
import pytest

from rdip import FitConfig, add_noise, fit, fit_many, preset, ssim


def _trajectory(noisy, cfg):
    """Per-iteration outputs (bias-corrected EMA when cfg.ema) and per-pixel MSE of a full run."""
    outputs, mse = [], []

    def record(p):
        out = p.output.detach().double().numpy()[0].transpose(1, 2, 0)
        mse.append(float(((out - noisy) ** 2).mean()))
        outputs.append(out)

    fit(noisy, cfg, callback=record)
    return np.array(outputs), np.array(mse)


def _between(values: np.ndarray, k: int) -> float:
    """A threshold strictly between ``values[k]`` and the next larger value: which iterations lie
    below it cannot change with the last bits of the arithmetic (other CPUs, BLAS, threads)."""
    above = values[values > values[k]]
    return float((values[k] + above.min()) / 2) if above.size else float(values[k] * 1.5)


@pytest.mark.parametrize("fit_range, margin, low, high", [("unit", 0.0, 0.0, 1.0), ("symmetric", 0.0, -1.0, 1.0),
                                                        ("symmetric", 0.1, -0.9, 0.9)])
def test_noise_rule_stops_where_the_loss_reaches_sigma_squared(rng, fit_range, margin, low, high):
    """σ is in [0, 1] units; the error is compared in the fitting interval's (σ·2 in [-1, 1],
    σ·1.8 in [-0.9, 0.9])."""
    noisy = rng.random((26, 26, 3))
    cfg = FitConfig(iters=40, lr=1e-3, device="cpu", range=fit_range, margin=margin)
    span = high - low
    outputs, mse = _trajectory(span * noisy + low, cfg)  # error to the fitted target
    threshold = _between(mse, 20)
    first = int(np.argmax(mse <= threshold)) + 1  # the first iteration at or below it
    seen = []
    res = fit(noisy, cfg.replace(stop="noise"), sigma=np.sqrt(threshold) / span,
              callback=lambda p: seen.append(p.t))
    assert (res.stopped_at, res.iters_run, len(res.loss)) == (first, first, first)
    assert seen == list(range(1, first + 1))  # the callback sees the stopping iteration too
    kept = (outputs[first - 1] - low) / span
    np.testing.assert_allclose(res.image, np.clip(kept, 0, 1), atol=1e-5)
    never = fit(noisy, cfg.replace(stop="noise"), sigma=1e-9)
    assert (never.stopped_at, never.iters_run) == (None, 40)


def test_wmv_rule_keeps_the_output_at_the_variance_minimum(rng):
    noisy = rng.random((26, 26))
    cfg = FitConfig(iters=120, lr=3e-3, device="cpu", stop_window=5, stop_patience=10)
    outputs, _ = _trajectory(noisy, cfg)
    var = np.array([outputs[t - 5:t].var(0).mean() for t in range(5, 121)])  # iterations 5…120
    best = stopping = None
    for t, v in zip(range(5, 121), var):  # ES-WMV replayed in NumPy
        if best is None or v < var[best - 5]:
            best = t
        if t - best >= 10:
            stopping = t
            break
    assert stopping is not None, "the test case should stop before 120 iterations"
    res = fit(noisy, cfg.replace(stop="wmv"))
    assert (res.stopped_at, res.iters_run) == (best, stopping)
    np.testing.assert_allclose(res.image, np.clip(outputs[best - 1][:, :, 0], 0, 1), atol=1e-6)


def test_stopping_is_per_network_in_a_stack(cifar):
    """Networks stop at their own iterations, as they would alone; the stack runs until the last."""
    images = [add_noise(cifar[i], 0.1, seed=i) for i in range(2)]
    cfg = preset("default", lr=1e-3, iters=100, device="cpu", stop="noise", dtype="float64")
    clean, sigmas = [cifar[0], cifar[1]], [0.2, 0.25]  # large σ: both stop early
    together = fit_many(images, cfg, clean=clean, sigma=sigmas)
    for img, c, s, res in zip(images, clean, sigmas, together):
        alone = fit(img, cfg, clean=c, sigma=s)
        assert res.stopped_at == alone.stopped_at and res.stopped_at is not None
        np.testing.assert_allclose(res.image, alone.image, atol=1e-8)
        assert all(h["iter"] <= res.iters_run for h in res.history)
        assert res.metrics["ssim_full"] == pytest.approx(ssim(res.image, c))
    assert together[0].stopped_at != together[1].stopped_at


def test_noise_rule_on_tiles_uses_one_sigma_for_the_image(rng):
    cfg = preset("default", iters=50, device="cpu", tile=26, tile_overlap=6)
    result = fit(rng.random((40, 40)), cfg, sigma=0.99)  # σ² above any error: every tile stops at once
    assert result.iters_run == 1


def test_stop_ratio_scales_the_noise_rules_threshold(rng):
    """stop_ratio r stops where the error reaches r·σ²: σ with ratio r equals σ·√r with ratio 1."""
    noisy = rng.random((26, 26, 3))
    cfg = FitConfig(iters=40, lr=1e-3, device="cpu", stop="noise")
    _, mse = _trajectory(noisy, cfg.replace(stop="none"))
    threshold = _between(mse, 20)
    plain = fit(noisy, cfg, sigma=float(np.sqrt(threshold)))
    scaled = fit(noisy, cfg.replace(stop_ratio=4.0), sigma=float(np.sqrt(threshold) / 2))
    assert plain.stopped_at == scaled.stopped_at == int(np.argmax(mse <= threshold)) + 1
    with pytest.raises(ValueError, match="stop_ratio"):
        cfg.replace(stop_ratio=0.0)
