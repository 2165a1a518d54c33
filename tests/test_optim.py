"""The slots' optimisers (rdip.method.optim): torch's Adam and SGD, with each network's own state."""

import pytest
import torch

from rdip.method.optim import SlotAdam, SlotSGD, fused_adam_works


def _grads(p: torch.Tensor, step: int) -> torch.Tensor:
    return torch.sin(torch.arange(p.numel(), dtype=p.dtype).reshape(p.shape) * (step + 1) * 0.37)


@pytest.mark.parametrize("kind", ["adam", "adam-written-out", "sgd", "sgd-momentum"])
def test_each_slot_follows_torch_with_its_own_step_count(kind):
    """Two slots, the second reset after 3 steps (a new network in its slot): each follows
    torch.optim's trajectory for a parameter of its own that started when it did."""
    if kind == "adam" and not fused_adam_works(torch.device("cpu"), torch.float32):
        pytest.skip("this torch has no fused Adam kernel for the CPU (the written-out update is tested)")
    torch.manual_seed(0)
    rows = 4
    stacked = torch.nn.Parameter(torch.randn(2 * rows, 3))
    mine = (SlotAdam([stacked], 2, lr=0.01, fused=kind == "adam") if kind.startswith("adam")
            else SlotSGD([stacked], 2, lr=0.01, momentum=0.9 if kind == "sgd-momentum" else 0.0))
    alone = [torch.nn.Parameter(stacked.detach()[:rows].clone()), None]

    def reference(p):
        return (torch.optim.Adam([p], lr=0.01) if kind.startswith("adam") else
                torch.optim.SGD([p], lr=0.01, momentum=0.9 if kind == "sgd-momentum" else 0.0))

    opts = [reference(alone[0]), None]
    for step in range(8):
        if step == 3:  # slot 1 gets a new network
            with torch.no_grad():
                stacked[rows:] = torch.randn(rows, 3)
            mine.reset(1)
            alone[1] = torch.nn.Parameter(stacked.detach()[rows:].clone())
            opts[1] = reference(alone[1])
        g = _grads(stacked, step)
        stacked.grad = g.clone()
        mine.step()
        for i, (p, opt) in enumerate(zip(alone, opts)):
            if p is not None:
                p.grad = g[i * rows:(i + 1) * rows].clone()
                opt.step()
    torch.testing.assert_close(stacked.detach()[:rows], alone[0].detach(), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(stacked.detach()[rows:], alone[1].detach(), rtol=1e-6, atol=1e-7)
    if kind.startswith("adam"):
        assert mine.t.tolist() == [8, 5]


@pytest.mark.parametrize("fused", [True, False])
def test_select_keeps_the_chosen_slots_state(fused):
    p = torch.nn.Parameter(torch.ones(6, 2))
    if fused and not fused_adam_works(torch.device("cpu"), torch.float32):
        pytest.skip("this torch has no fused Adam kernel for the CPU")
    opt = SlotAdam([p], 3, lr=0.1, fused=fused)
    p.grad = torch.arange(12.0).reshape(6, 2)
    opt.step()
    opt.reset(0)
    q = torch.nn.Parameter(p.detach().reshape(3, -1)[[2, 0]].reshape(4, 2))
    kept = opt.select([q], torch.tensor([2, 0]))
    assert kept.t.tolist() == [1, 0]
    torch.testing.assert_close(kept.m[0], opt.m[0].reshape(3, -1)[[2, 0]].reshape(4, 2))
    assert not kept.m[0][2:].any()  # slot 0 had been reset
    q.grad = torch.ones(4, 2)
    kept.step()  # slot 0 of the new stack (old slot 2) at its second step, slot 1 at its first
    assert kept.t.tolist() == [2, 1]


def test_networks_that_started_together_are_updated_as_whole_tensors_with_the_same_numbers():
    """While every network has taken the same number of steps, one fused call on the whole
    tensors (a shared count) gives exactly the per-network views' numbers; the first reset after
    a step leaves that mode (and says so in ``version``), a reset before any step does not."""
    if not fused_adam_works(torch.device("cpu"), torch.float32):
        pytest.skip("this torch has no fused Adam kernel for the CPU")
    torch.manual_seed(0)
    start = torch.randn(3 * 4, 5)
    whole, views = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    a, b = SlotAdam([whole], 3, lr=0.01), SlotAdam([views], 3, lr=0.01)
    a.reset(1)  # before any step: still one count for all
    assert a.uniform and a.version == 0
    b._leave_uniform()
    for step in range(6):
        whole.grad, views.grad = _grads(whole, step), _grads(views, step)
        a.step()
        b.step()
    assert torch.equal(whole.detach(), views.detach())
    a.reset(2)
    assert not a.uniform and a.version == 1
    for step in range(2):
        whole.grad = _grads(whole, step)
        a.step()
    assert [float(s) for s in a.slot_steps] == [8.0, 8.0, 2.0] and a.t.tolist() == [8, 8, 2]
