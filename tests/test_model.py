import pytest
import torch

from rdip.method.model import (
    ENCODER_LAYERS,
    MIN_SIZE,
    RecurrentDIP,
    State,
    flops_per_iteration,
)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [(25, 25), (32, 32), (40, 40), (37, 50)])
def test_shapes(channels, size):
    h, w = size
    model = RecurrentDIP(channels, seeds=[0, 1])
    state = model.initial_state(h, w, z_noise_std=0.1)
    assert state.t == 0 and not state.f.any() and not state.h.any()  # f(z_0) = 0, h_0 = 0
    out, h_t = model(state)
    assert out.shape == state.z_noise.shape == (1, 2 * channels, h, w)
    assert h_t.shape == state.h.shape == (1, 2 * 256, h - 24, w - 24)  # Table I: 32×32 → 256×8×8
    assert out.abs().max() <= 1  # f = tanh(V(h))
    after = model.advance(state, out, h_t)
    assert after.t == 1 and not after.f.requires_grad and torch.equal(after.f, out.detach())


def test_z_noise_is_seeded_per_network():
    stack = RecurrentDIP(3, seeds=[4, 9]).initial_state(26, 26, z_noise_std=0.5)
    alone = RecurrentDIP(3, seeds=[9]).initial_state(26, 26, z_noise_std=0.5)
    torch.testing.assert_close(stack.z_noise[:, 3:], alone.z_noise)
    assert stack.z_noise.std().item() == pytest.approx(0.5, rel=0.05)


def test_table_one_layers():
    model = RecurrentDIP(3, seeds=[0])
    enc = [(layer.cin, layer.cout, layer.kernel) for layer in model.encoder.layers]
    dec = [(layer.cin, layer.cout, layer.kernel) for layer in model.decoder.layers]
    assert enc == [(3, 16, 6), (16, 32, 6), (32, 64, 6), (64, 128, 6), (128, 256, 5)]
    assert dec == [(256, 128, 5), (128, 64, 6), (64, 32, 6), (32, 16, 6), (16, 3, 6)]
    assert MIN_SIZE == 25 == sum(k - 1 for _, _, k in ENCODER_LAYERS) + 1  # config's copy agrees


def test_seeded_weights_and_stacking():
    a = RecurrentDIP(3, seeds=[7])
    b = RecurrentDIP(3, seeds=[7])
    stack = RecurrentDIP(3, seeds=[5, 7])
    for pa, pb, ps in zip(a.parameters(), b.parameters(), stack.parameters()):
        assert torch.equal(pa, pb)
        half = ps.shape[0] // 2
        assert torch.equal(ps[half:], pa)  # network 2 of the stack is the seed-7 network
        assert not torch.equal(ps[:half], pa)


def test_a_large_stack_is_drawn_by_threads_with_each_networks_own_weights(monkeypatch):
    """Stacks of 4 or more are drawn by several threads, each network from its own generator:
    network i is still the network of seed i made alone (and float64 holds the same values)."""
    from rdip.method import model

    monkeypatch.setattr(model, "DRAW_THREADS", 3)
    seeds = [11, 3, 8, 5, 2]
    stack = RecurrentDIP(1, seeds=seeds, dtype=torch.float64)
    for i, seed in enumerate(seeds):
        for ps, pa in zip(stack.parameters(), RecurrentDIP(1, seeds=[seed]).parameters()):
            rows = ps.shape[0] // len(seeds)
            assert ps.dtype == torch.float64 and torch.equal(ps[i * rows:(i + 1) * rows], pa.double())


def test_stacked_networks_do_not_mix():
    """Output i of a stack depends only on input i: the stack equals separate networks."""
    torch.manual_seed(0)
    stack = RecurrentDIP(3, seeds=[0, 1, 2])
    z = torch.randn(1, 9, 32, 32)
    h = torch.randn(1, 3 * 256, 8, 8) * 0.1
    out, _ = stack(State(z, z * 0.5, h, t=3))
    for i in range(3):
        single = RecurrentDIP(3, seeds=[i])
        zi = z[:, 3 * i:3 * i + 3]
        o, _ = single(State(zi, zi * 0.5, h[:, 256 * i:256 * (i + 1)], t=3))
        torch.testing.assert_close(out[:, 3 * i:3 * i + 3], o, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mode", ["sum", "mean", "leaky", "none"])
def test_h_modes(mode):
    model = RecurrentDIP(1, seeds=[0], epsilon=0.0, h_mode=mode, h_leak=0.5)
    z = torch.randn(1, 1, 25, 25)
    prev = torch.ones(1, 256, 1, 1)
    u = model.encoder(z)  # ε = 0: z_t = z_noise
    _, h = model(State(z, torch.zeros_like(z), prev, t=3))  # time step 4
    expected = {"sum": u + prev, "mean": prev + (u - prev) / 4, "leaky": 0.5 * prev + u, "none": u}[mode]
    torch.testing.assert_close(h, expected)


def test_flops_match_the_issue_figures():
    assert flops_per_iteration(32, 32) == pytest.approx(1.5e9, rel=0.02)
    assert flops_per_iteration(40, 40) == pytest.approx(4.7e9, rel=0.02)


def test_bad_channels_and_h_mode():
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        RecurrentDIP(4, seeds=[0])
    with pytest.raises(ValueError, match="unknown h_mode 'max'"):
        RecurrentDIP(3, seeds=[0], h_mode="max")
