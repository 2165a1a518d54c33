"""The hourglass network (rdip.method.hourglass) under Eq. 1, stacked in the slot engine."""

import numpy as np
import pytest
import torch

from rdip import fit, fit_many, preset
from rdip.method.hourglass import Hourglass, auto_depth
from rdip.method.model import State

HG = preset("default", network="hourglass", tile=0, lr=1e-2, iters=6, net_width=8, net_input=8, net_skip=2,
            device="cpu", stop="none")


@pytest.mark.parametrize("side, depth", [(25, 2), (32, 3), (64, 4), (128, 5), (512, 5)])
def test_the_depth_follows_the_image_size(side, depth):
    assert auto_depth(side, side + 7) == depth


@pytest.mark.parametrize("shape", [(25, 31, 3), (33, 26, 1)])
def test_any_size_comes_back_at_its_size(shape, rng):
    net = Hourglass(shape[2], [0, 1], height=shape[0], width_px=shape[1], width=8, skip=2, input_channels=8)
    state = net.initial_state(shape[0], shape[1], 0.1)
    f, h = net(state)
    assert f.shape == (1, 2 * shape[2], shape[0], shape[1]) and h.shape == state.h.shape
    assert state.z_noise.shape == (1, 16, shape[0], shape[1]) and 0 <= state.z_noise.min() < state.z_noise.max() <= 0.1


def test_eq1_switches_feedback_and_the_h_sum():
    """ε = 0: the previous output does not reach the input; h_mode none: h_{t-1} does not reach
    h_t; ε > 0 and sum: both do (the plain DIP is ε = 0 with h_mode none)."""
    torch.manual_seed(0)

    def step(epsilon, h_mode, f_scale, h_scale):
        net = Hourglass(3, [5], height=32, width_px=32, width=8, skip=2, input_channels=8, epsilon=epsilon,
                        h_mode=h_mode)
        s = net.initial_state(32, 32, 0.1)
        g = torch.Generator().manual_seed(1)
        state = State(s.z_noise, torch.rand(s.f.shape, generator=g) * f_scale,
                      torch.rand(s.h.shape, generator=g) * h_scale, 3)
        with torch.no_grad():
            return net(state)

    plain = step(0.0, "none", 0, 0)[0]
    assert torch.equal(step(0.0, "none", 1, 1)[0], plain)  # neither f nor h reaches the output
    assert not torch.allclose(step(0.1, "none", 1, 0)[0], plain)  # the feedback
    assert not torch.allclose(step(0.0, "sum", 0, 1)[0], plain)  # the h sum
    f, h = step(0.0, "sum", 0, 0)
    assert torch.allclose(step(0.0, "none", 0, 0)[1], h)  # h_0 = 0: sum and none agree at first


def test_each_network_of_a_stack_follows_its_trajectory_alone(rng):
    """Three images in one stack of three slots (stopped by the noise rule at different
    iterations, the stack shrinking) against each fitted alone: the same outputs up to float
    rounding."""
    images = [np.clip(rng.random((30, 28, 3)) * 0.3 + k * 0.2, 0, 1) for k in range(3)]
    cfgs = [HG.replace(seed=k, iters=12, stop="noise", chunk=3) for k in range(3)]
    sigmas = [0.05, 0.2, 0.35]
    together = fit_many(images, cfgs, sigma=sigmas)
    assert len({r.stopped_at for r in together}) > 1  # they stopped apart
    for x, c, s, r in zip(images, cfgs, sigmas, together):
        alone = fit(x, c.replace(chunk=1), sigma=s)
        assert alone.stopped_at == r.stopped_at
        np.testing.assert_allclose(r.image, alone.image, atol=1e-5)


@pytest.mark.parametrize("padding", ["none", "zero", "edge", "reflect", "circular"])
def test_target_padding_works_on_the_hourglass(padding, rng):
    noisy = rng.random((27, 29, 3))
    r = fit(noisy, HG.replace(padding=padding, pad_width=4))
    assert r.image.shape == noisy.shape and np.isfinite(r.loss).all()


def test_a_tiled_image_with_context_padding_comes_back_whole(rng):
    noisy = rng.random((48, 40))
    r = fit(noisy, HG.replace(tile=32, tile_overlap=16, padding="context", pad_width=4))
    assert r.image.shape == noisy.shape


def test_the_hourglass_denoises(rng):
    """A smooth 64×64 image with σ = 0.1 noise: the hourglass stopped by the noise rule is closer
    to the clean image than the noisy one is (a fit that does not denoise fails)."""
    yy, xx = np.mgrid[0:64, 0:64] / 63
    clean = np.stack([0.2 + 0.6 * xx, 0.3 + 0.4 * yy, 0.5 + 0.3 * np.sin(3 * xx)], -1)
    noisy = clean + rng.normal(0, 0.1, clean.shape)
    r = fit(noisy, preset("hourglass", device="cpu", net_width=16, net_input=16), clean=clean, sigma=0.1)
    assert np.mean((r.image - clean) ** 2) < 0.5 * np.mean((noisy.clip(0, 1) - clean) ** 2)


def test_bmm_is_refused_for_the_hourglass():
    with pytest.raises(ValueError, match="bmm is for network table1"):
        HG.replace(formulation="bmm")


def test_on_cuda_a_stack_of_hourglasses_is_bounded_by_their_memory():
    from rdip.method.devices import CPU_CHUNK, chunk_for

    cfg = preset("hourglass")
    cuda = torch.device("cuda")  # only its type is read
    small = chunk_for(cfg, cuda, 64, 64, 3, available_mb=2048)
    assert 1 <= chunk_for(cfg, cuda, 512, 512, 3, available_mb=2048) < small <= 64
    assert chunk_for(cfg, torch.device("cpu"), 64, 64, 3, available_mb=2048) == CPU_CHUNK
