"""Issue 3's CPU speed options, measured: eager fp32 against channels_last and torch.compile.

One training iteration of the engine (Eq. 1 step, mean squared error, backward, Adam) for a
stack of 2 networks (the CPU's automatic chunk) on a 40×40 (padded CIFAR-10) and a 32×32 target,
each mode timed in turns in one run (median of --repeats rounds of --iters iterations, after
warm-up; torch.compile's compilation is in the warm-up). Also the largest output difference from
eager after the timed iterations, same seeds.

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/cpu_options.py
"""

import argparse
import statistics
import time

import torch

from rdip.method.model import RecurrentDIP, State

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--iters", type=int, default=10)
ap.add_argument("--repeats", type=int, default=5)
ap.add_argument("--warmup", type=int, default=5)
args = ap.parse_args()


def trainer(size: int, mode: str):
    torch.manual_seed(0)
    model = RecurrentDIP(3, [0, 1])
    target = torch.rand(1, 6, size, size)
    z = torch.randn(1, 6, size, size) * 0.1
    state = {"f": torch.zeros_like(target), "h": torch.zeros(1, 512, size - 24, size - 24), "t": 0}
    fmt = torch.channels_last if mode == "channels_last" else torch.contiguous_format
    model = model.to(memory_format=fmt)
    target, z = target.to(memory_format=fmt), z.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss_of(z, f, h):
        out, h_new = model(State(z, f, h))
        return (out - target).square().mean(), out, h_new

    step_fn = torch.compile(loss_of) if mode == "compile" else loss_of

    def step():
        loss, out, h_new = step_fn(z, state["f"], state["h"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        state["f"], state["h"] = out.detach(), h_new.detach()
        return out

    return step, state


for size in (40, 32):
    modes = ["eager", "channels_last", "compile"]
    steps = {}
    for m in modes:
        steps[m] = trainer(size, m)
        for _ in range(args.warmup):
            steps[m][0]()
    times = {m: [] for m in modes}
    for _ in range(args.repeats):
        for m in modes:
            started = time.perf_counter()
            for _ in range(args.iters):
                steps[m][0]()
            times[m].append((time.perf_counter() - started) / args.iters)
    base = statistics.median(times["eager"])
    for m in modes:
        med = statistics.median(times[m])
        diff = (steps[m][1]["f"] - steps["eager"][1]["f"]).abs().max().item()
        print(f"{size}×{size}, 2 networks, {m}: {1000 * med:.1f} ms/iteration, "
              f"{base / med:.2f}× eager, max |output − eager| {diff:.1e}", flush=True)
