"""GPU speed options on the Table II workload shape, one variant at a time (issue 3).

The engine's inner step (Eq. 1 forward, squared error, backward, Adam) on the two groups of the
paper's experiment at one seed: 15 networks on 32×32 (unpadded) and 30 on 40×40 (padded), RGB.
Each variant times ``--iters`` iterations per group after a warm-up and projects the Table II
workload (45 fits × 2000 iterations) as ``2000 × (ms per iteration of both groups)``.

Variants: ``tf32`` (PyTorch's defaults, as the engine runs: cuDNN convolutions in TF32),
``fp32`` (TF32 off), ``bf16`` (autocast, as ``dtype=bfloat16``), ``fused`` (``Adam(fused=True)``),
``channels_last``, ``graph`` (the whole step captured once as a CUDA graph and replayed; Adam
``capturable``), ``graph-bf16``. ``--profile`` prints the top kernels of the ``tf32`` step.

    python benchmarks/gpu_options.py --iters 200 [--profile] [--variants tf32,graph]

Needs CUDA. Only the speed is measured here; SSIM effects come from full fits (``rdip reproduce``).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from rdip.method.model import RecurrentDIP, State

GROUPS = ((15, 32), (30, 40))  # (networks, side): the Table II workload at one seed
VARIANTS = ("tf32", "fp32", "bf16", "fused", "channels_last", "graph", "graph-bf16")


def _setup(n: int, side: int, variant: str):
    dev = torch.device("cuda")
    model = RecurrentDIP(3, list(range(n)), h_mode="mean").to(dev)
    gen = torch.Generator(device="cpu").manual_seed(0)
    target = torch.rand((1, 3 * n, side, side), generator=gen).to(dev)
    z = (torch.randn((1, 3 * n, side, side), generator=gen) * 0.1).to(dev)
    f = torch.zeros_like(target)
    h = torch.zeros((1, 256 * n, side - 24, side - 24), device=dev)
    if variant == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        target, z, f, h = (x.contiguous(memory_format=torch.channels_last) for x in (target, z, f, h))
    opt = torch.optim.Adam(model.parameters(), lr=1e-5, fused=variant == "fused",
                           capturable=variant.startswith("graph"))
    return model, opt, target, z, f, h


def _step_fn(model, opt, target, z, f, h, t, bf16: bool):
    """One iteration in place: f, h and t are updated, as the engine's loop does (paper preset:
    h mean, ε = 0.1, loss mean per network)."""
    n = model.n

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            out, h_new = model(State(z, f, h, t - 1))  # t: this 1-based step, a device tensor
        per_net = (out.float() - target).square().reshape(n, -1).mean(1)
        opt.zero_grad(set_to_none=False)
        per_net.sum().backward()
        opt.step()
        f.copy_(out.detach())
        h.copy_(h_new.detach())
        t.add_(1)
        return per_net
    return step


def time_variant(variant: str, iters: int) -> dict:
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = variant != "fp32"
    bf16 = variant.endswith("bf16")
    row = {"variant": variant}
    for n, side in GROUPS:
        model, opt, target, z, f, h = _setup(n, side, variant)
        t = torch.ones((), device="cuda")
        step = _step_fn(model, opt, target, z, f, h, t, bf16)
        run = step
        if variant.startswith("graph"):
            side_stream = torch.cuda.Stream()
            side_stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side_stream):
                for _ in range(5):  # warm-up off the capture stream (autotuning, allocator)
                    step()
            torch.cuda.current_stream().wait_stream(side_stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                step()
            run = graph.replay
            # the replayed step must match eager steps from the same start: 5 warm-up + 20 each
            ref = _setup(n, side, "tf32")
            ref_step = _step_fn(*ref, torch.ones((), device="cuda"), bf16)
            for _ in range(25):
                ref_step()
            for _ in range(20):
                run()
            row[f"graph_vs_eager_max_diff_{n}x{side}"] = float((ref[4] - f).abs().max())
        for _ in range(10):
            run()
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(iters):
            run()
        torch.cuda.synchronize()
        row[f"ms_{n}x{side}"] = 1e3 * (time.perf_counter() - start) / iters
    row["table2_projected_s"] = 2000 * sum(row[f"ms_{n}x{s}"] for n, s in GROUPS) / 1e3
    return row


def profile(iters: int = 20) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    torch.backends.cudnn.benchmark = True
    for n, side in GROUPS:
        model, opt, target, z, f, h = _setup(n, side, "tf32")
        step = _step_fn(model, opt, target, z, f, h, torch.ones((), device="cuda"), False)
        for _ in range(10):
            step()
        torch.cuda.synchronize()
        with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(iters):
                step()
            torch.cuda.synchronize()
        print(f"== top kernels, {n} networks × {side}², {iters} iterations")
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=14, max_name_column_width=60))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    print(torch.__version__, torch.cuda.get_device_name())
    for v in args.variants.split(","):
        try:
            row = time_variant(v, args.iters)
        except Exception as exc:  # a variant that fails to run is reported, the others still run
            row = {"variant": v, "error": f"{type(exc).__name__}: {exc}"[:300]}
        print(json.dumps(row), flush=True)
    if args.profile:
        try:
            profile()
        except Exception as exc:
            print(f"profile failed: {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main()
