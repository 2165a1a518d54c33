"""The slots of the engine (rdip.method.slots, rdip.method.engine): networks enter and leave a
stack at their own iterations and still follow the trajectories they follow alone."""

import numpy as np
import pytest

from rdip import FitConfig, fit, fit_many
from rdip.method.engine import shrunk

#: float64: a network's trajectory in a stack and alone agree to ~1e-12, so where the noise rule
#: stops cannot move with the last bits of the arithmetic.
BASE = FitConfig(iters=60, lr=3e-3, device="cpu", dtype="float64", stop="noise", chunk=2)


def _images(rng, count):
    return [rng.random((26, 26, 3)) for _ in range(count)]


def _alone(images, configs, sigmas):
    return [fit(x, c, sigma=s) for x, c, s in zip(images, configs, sigmas)]


def _same(together, alone, atol=1e-8):
    for a, b in zip(together, alone):
        assert (a.stopped_at, a.iters_run) == (b.stopped_at, b.iters_run)
        np.testing.assert_allclose(a.image, b.image, atol=atol)
        np.testing.assert_allclose(a.loss, b.loss, rtol=1e-7, atol=1e-10)


def test_a_queue_of_networks_that_stop_at_different_iterations_equals_each_alone(rng):
    """Five networks through two slots: each finished network leaves, the next takes its slot at
    its own first iteration; the last one runs alone in a stack shrunk to one slot."""
    images = _images(rng, 5)
    sigmas = [0.40, 0.30, 0.45, 0.33, 0.38]  # in [0, 1] units: each stops on its own, early
    configs = [BASE.replace(seed=10 + i) for i in range(5)]
    sizes: dict[int, list[int]] = {}  # per stack (on the CPU, stacks of one queue run side by side)
    together = fit_many(images, configs, sigma=sigmas,
                        callback=lambda p: sizes.setdefault(p.stack, []).append(len(p.indices)))
    alone = _alone(images, configs, sigmas)
    _same(together, alone)
    stops = [r.stopped_at for r in together]
    assert None not in stops and len(set(stops)) > 2  # they do stop, at different iterations
    for r in together:  # looked at every iteration (the CPU's sync_every): nothing computed in vain
        assert r.work == {"computed": r.iters_run, "needed": r.iters_run}
    for seen in sizes.values():  # each stack starts full and shrinks once its queue is dry
        assert seen[0] == 2 and seen[-1] == 1 and sorted(seen, reverse=True) == seen


def test_looking_less_often_costs_iterations_not_results(rng):
    images, sigmas = _images(rng, 3), [0.4, 0.3, 0.45]
    configs = [BASE.replace(seed=i) for i in range(3)]
    every = fit_many(images, configs, sigma=sigmas)
    seldom = fit_many(images, [c.replace(sync_every=7) for c in configs], sigma=sigmas)
    _same(seldom, every, atol=1e-12)
    extra = [r.work["computed"] - r.work["needed"] for r in seldom]
    assert all(0 <= e <= 6 + 1e-9 for e in extra[:2]) and sum(extra) > 0


def test_the_batched_matrix_product_formulation_gives_the_grouped_results(rng):
    images, sigmas = _images(rng, 3), [0.4, 0.3, 0.45]
    configs = [BASE.replace(seed=i) for i in range(3)]
    grouped = fit_many(images, configs, sigma=sigmas)
    bmm = fit_many(images, [c.replace(formulation="bmm") for c in configs], sigma=sigmas)
    _same(bmm, grouped, atol=1e-8)


def test_the_capture_path_on_the_cpu_gives_the_eager_results(rng):
    """capture="graph" runs the warm-up, capture and replay sequence; off CUDA its graph calls
    the step, so everything of that path but CUDA's graph itself is checked here."""
    images, sigmas = _images(rng, 3), [0.4, 0.3, 0.45]
    configs = [BASE.replace(seed=i) for i in range(3)]
    eager = fit_many(images, configs, sigma=sigmas)
    captured = fit_many(images, [c.replace(capture="graph") for c in configs], sigma=sigmas)
    _same(captured, eager, atol=1e-12)


def test_the_capture_path_captures_again_once_a_slot_is_refilled(rng, monkeypatch):
    """Networks that start together share one step count in the optimiser; the first refill
    changes how its step computes, so a step captured before must not be replayed after: it is
    captured anew (a stand-in graph that fails when replayed stale), and the results are still
    the eager ones."""
    from rdip.method import slots

    graphs = []

    class Frozen(slots._Eager):
        """Replays only what the optimiser computed when it was captured (as CUDA's graph)."""

        version = None

        def __init__(self):
            graphs.append(self)

        def replay(self):
            opt = self.step.__self__.opt
            self.version = opt.version if self.version is None else self.version
            assert opt.version == self.version, "a stale capture was replayed"
            super().replay()

    monkeypatch.setattr(slots, "_Eager", Frozen)
    images, sigmas = _images(rng, 5), [0.40, 0.30, 0.45, 0.33, 0.38]
    configs = [BASE.replace(seed=i, chunk=2) for i in range(5)]
    eager = fit_many(images, configs, sigma=sigmas)
    captured = fit_many(images, [c.replace(capture="graph") for c in configs], sigma=sigmas)
    _same(captured, eager, atol=1e-12)
    assert any(g.version for g in graphs)  # captured again after a refill


@pytest.mark.parametrize("changes", [
    {"stop": "wmv", "stop_window": 4, "stop_patience": 6, "iters": 80},
    {"stop": "none", "iters": 12, "h_mode": "mean", "ema": 0.9},
    {"stop": "none", "iters": 12, "optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "padding": "reflect"},
])
def test_every_rule_and_state_is_per_slot(rng, changes):
    images = _images(rng, 3)
    configs = [BASE.replace(seed=i, **changes) for i in range(3)]
    together = fit_many(images, configs)  # the third enters slot 0 when the first leaves
    _same(together, _alone(images, configs, [None] * 3))
    if changes["stop"] == "wmv":
        assert together[0].stopped_at is not None


def test_a_callback_stops_the_networks_in_the_slots_and_the_queue_goes_on(rng):
    images = _images(rng, 2)
    cfg = BASE.replace(stop="none", iters=9, chunk=1)
    results = fit_many(images, cfg, callback=lambda p: p.t == 3 and p.stack == 0)
    assert [r.iters_run for r in results] == [3, 9]  # one stack (one thread) or two side by side
    assert [len(r.loss) for r in results] == [3, 9]


def test_progress_counts_every_network_iteration_once(rng):
    images, sigmas = _images(rng, 4), [0.4, 0.3, 0.45, 0.33]
    advanced = []
    fit_many(images, [BASE.replace(seed=i, sync_every=4) for i in range(4)], sigma=sigmas,
             callback=lambda p: advanced.append(p.advanced))
    assert sum(advanced) == 4 * BASE.iters


def test_on_the_cpu_a_queue_runs_in_stacks_side_by_side_with_the_results_of_one(rng, monkeypatch):
    """With 2 torch threads a queue of 5 runs as 2 stacks on a thread each (jobs 0, 2, 4 and 1,
    3); the results are those of the one stack of a single thread (float64), and the caller's
    thread count is back afterwards. The results' seconds add up to the call's time, not to the
    sum of the two stacks' (they ran at once)."""
    import time

    import torch

    images, sigmas = _images(rng, 5), [0.40, 0.30, 0.45, 0.33, 0.38]
    configs = [BASE.replace(seed=10 + i) for i in range(5)]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = fit_many(images, configs, sigma=sigmas)
        torch.set_num_threads(2)
        stacks = set()
        started = time.perf_counter()
        two = fit_many(images, configs, sigma=sigmas, callback=lambda p: stacks.add(p.stack))
        wall = time.perf_counter() - started
        assert stacks == {0, 1} and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    _same(two, one, atol=1e-8)
    assert 0.5 * wall < sum(r.seconds for r in two) <= wall


def test_an_error_in_one_stack_side_by_side_stops_the_others_and_reaches_the_caller(rng, monkeypatch):
    import torch

    threads = torch.get_num_threads()
    seen = []

    def callback(p):
        seen.append(p.stack)
        if p.stack == 1 and p.t == 2:
            raise ValueError("stack 1 failed")

    try:
        torch.set_num_threads(2)
        with pytest.raises(ValueError, match="stack 1 failed"):
            fit_many(_images(rng, 4), BASE.replace(stop="none", iters=40), callback=callback)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    assert seen.count(0) < 40  # the other stack stopped at its next look, not at its end


@pytest.mark.parametrize("size, loaded, expected", [(2, 1, 1), (2, 2, 2), (256, 200, 256), (256, 192, 192),
                                                    (256, 150, 192), (256, 1, 1), (4, 3, 3), (3, 2, 2)])
def test_a_dry_queue_shrinks_its_stack_to_a_few_fixed_sizes(size, loaded, expected):
    assert shrunk(size, loaded) == expected


@pytest.mark.parametrize("size, loaded, expected", [(1457, 1, 18), (1457, 20, 24), (256, 150, 192),
                                                    (16, 1, 16), (8, 1, 8)])
def test_a_stack_shrinks_no_further_than_its_floor(size, loaded, expected):
    assert shrunk(size, loaded, floor=16) == expected


@pytest.mark.parametrize("changes", [
    {}, {"stop": "wmv", "stop_window": 4, "stop_patience": 3}, {"ema": 0.9, "h_mode": "mean"},
    {"optimizer": "sgd", "momentum": 0.9, "lr": 0.01}, {"formulation": "bmm", "dtype": "bfloat16"},
])
def test_a_step_reads_no_value_back_to_the_host(rng, monkeypatch, changes):
    """What a CUDA graph captures may not wait for the device: no ``item``, ``tolist``, ``bool``,
    ``float``, ``numpy``, ``cpu`` or ``nonzero`` of a tensor in :meth:`Slots.step` (here on the
    CPU, where they would cost nothing), with every rule and state, and in both of Adam's modes."""
    import torch

    from rdip import preset
    from rdip.method.slots import Slots

    cfg = preset("default", device="cpu", **changes)
    slots = Slots(cfg, torch.device("cpu"), [0, 1], [rng.random((26, 26, 3)) for _ in range(2)], [0.1, 0.2],
                  watch=True)

    def refuse(*args, **kwargs):
        raise AssertionError("a value read back to the host in the step")

    for _adam in ("whole tensors", "one view per network"):
        with monkeypatch.context() as m:
            for name in ("item", "tolist", "__bool__", "__int__", "__float__", "__index__", "numpy", "cpu",
                         "nonzero"):
                m.setattr(torch.Tensor, name, refuse)
            with pytest.raises(AssertionError):
                torch.ones(()).item()  # the trap works
            for _ in range(3):
                slots.step()
        slots.load(1, 7, rng.random((26, 26, 3)), 0.1)  # after a step: one count per network
