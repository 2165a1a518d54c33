"""Do channels_last, torch.compile or one thread make an iteration faster on this CPU? (issue 3)

Times one training iteration (Eq. 1 step, mean squared error, Adam) of the Table II shapes,
two networks per pass (the CPU's automatic chunk) and one, for each option, after warm-up;
prints the median seconds per iteration over ``--repeats`` blocks and the ratio to the baseline
measured in the same run. Run it on an idle machine:

    python benchmarks/cpu_options.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from rdip.model import RecurrentDIP


def timer(size: int, n: int, memory_format, compiled: bool, iters: int, repeats: int) -> float:
    model = RecurrentDIP(3, list(range(n)))
    z = torch.randn(1, 3 * n, size, size) * 0.1
    target = torch.rand(1, 3 * n, size, size)
    f = torch.zeros_like(target)
    h = torch.zeros(model.hidden_shape(size, size))
    if memory_format is not None:
        model = model.to(memory_format=memory_format)
        z, target, f, h = (x.contiguous(memory_format=memory_format) for x in (z, target, f, h))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    step = torch.compile(model.step) if compiled else model.step

    def iteration(t: int) -> None:
        nonlocal f, h
        out, h_new = step(z, f, h, 0.1, "sum", t, 0.9)
        loss = (out - target).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        f, h = out.detach(), h_new.detach()

    for t in range(1, 4):  # warm-up (and compilation)
        iteration(t)
    blocks = []
    for _ in range(repeats):
        start = time.perf_counter()
        for t in range(iters):
            iteration(t + 4)
        blocks.append((time.perf_counter() - start) / iters)
    return statistics.median(blocks)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    options = {"baseline (fp32, 2 threads)": (None, False, 2),
               "channels_last": (torch.channels_last, False, 2),
               "torch.compile(step)": (None, True, 2),
               "1 thread": (None, False, 1)}
    print(f"torch {torch.__version__}; median s/iteration of {args.repeats} blocks of {args.iters}")
    print("| shape | networks | option | s / iteration | fit-iterations / s | vs baseline |")
    print("|---|---|---|---|---|---|")
    for size in (32, 40):
        for n in (2, 1):
            base = None
            for name, (fmt, compiled, threads) in options.items():
                torch.set_num_threads(threads)
                s = timer(size, n, fmt, compiled, args.iters, args.repeats)
                base = base or s
                print(f"| {size}×{size} | {n} | {name} | {s:.4f} | {n / s:.1f} | {base / s:.2f}× |",
                      flush=True)
    torch.set_num_threads(2)


if __name__ == "__main__":
    main()
