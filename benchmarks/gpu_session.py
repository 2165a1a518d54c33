"""The GPU session of the GPU issue in one call: what the engine's options are worth on a GPU,
and the paper's table and a photograph end to end, each phase time-boxed, in order of need.

Run by ``benchmarks/gpu_session.sh`` (which installs the carried wheels first); on a CPU at tiny
sizes with ``--tiny`` (the test suite runs it so, tests/test_gpu_session.py). Phases:

- ``E``: the machine: torch, device, matrix rates (fp32, TF32, bf16) and the copy bandwidth, and
  from them the weight-traffic bound of the photo workload (:func:`weight_bound`).
- ``K``: the kernel and precision variants (:data:`VARIANTS`; captured as a CUDA graph:
  :data:`CAPTURED`, in a process of its own) on two workloads: ``table2`` (the 45 fits of Table II
  at one seed, T = 50, stacks of 15 and 30) and ``tiles`` (one stack of 512 tiles 32×32, the
  photograph's shape, T = 20); per run the steady rate, the model's TFLOP/s, the peak memory and
  the outputs' distance to the fp32 eager run's (``ok``: mean |Δ| ≤ :data:`TOLERANCE`, within one
  bf16 rounding); the bf16 variants are recorded as skipped on a device without native bf16
  (:func:`rdip.method.devices.native_bf16`, which rdip refuses them on). ``best.json``: the fastest ``ok`` variant of each workload.
- ``T``: ``rdip reproduce --preset paper --seeds 0`` end to end with the best ``table2`` variant.
- ``D``: ``rdip denoise`` of a 768×512 colour photograph (scikit-image's coffee, resized; σ 25
  added) with ``default`` and with ``quality``, the best ``tiles`` variant.
- ``P``: ``rdip bench --workload photo`` with the best ``tiles`` variant (256×256, 225 tiles).
- ``R``: the Table II run again in strict fp32 eager, for the column means' check (≤ 0.002).
- ``C``: slots per stack on the tiles workload (1,024 tiles): 128 … 1,024 and automatic, each
  with its peak memory against :func:`rdip.method.devices.network_bytes`.

$OUT gets log.txt, runs.jsonl (one record per phase run), k.jsonl (the variants), best.json and
runs.tgz (the reproduce folders' tables and configurations, the denoise records): five files.
A phase that would start with less than :data:`MIN_PHASE` seconds of ``--budget`` left is skipped
(recorded as such); each runs under the smaller of its own limit and what is left. Working files
go to ``--scratch`` (outside $OUT, whose files all come back from the device).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np
import torch

#: name: (FitConfig changes, TF32 :func:`set_tf32`: ``on``, ``off`` or ``default``, PyTorch's: in
#: cuDNN's convolutions only).
VARIANTS: dict[str, tuple[dict, str]] = {
    "fp32": ({}, "off"),
    "tf32": ({}, "on"),
    "bf16": ({"dtype": "bfloat16"}, "default"),
    "bmm-fp32": ({"formulation": "bmm"}, "off"),
    "bmm-tf32": ({"formulation": "bmm"}, "on"),
    "bmm-bf16": ({"formulation": "bmm", "dtype": "bfloat16"}, "default"),
}
#: The variants also run with ``capture="graph"`` (in a process of their own: a failed capture
#: can leave CUDA unusable).
CAPTURED = ("tf32", "bf16", "bmm-tf32", "bmm-bf16")
#: A variant is ``ok`` when its outputs (images in [0, 1]) are on average within this of the fp32
#: eager run's: half a bf16 step at 1 (2⁻⁸).
TOLERANCE = 4e-3
#: Seconds a phase needs at least to be started.
MIN_PHASE = 15
#: Weight traffic per parameter and iteration, bytes (fp32): the forward and the backward pass
#: read the weight (4 + 4), the backward writes its gradient (4), fused Adam reads weight,
#: gradient and both moments and writes weight and moments (28).
WEIGHT_BYTES = 40

SIZES = {
    "full": {"table2_iters": 50, "table2_images": 15, "tiles": 512, "tile_iters": 20, "t_iters": 2000, "indices": None,
             "photo": (768, 512), "chunks": (128, 256, 512, 1024, 0), "chunk_tiles": 1024,
             "gemm": 8192, "copy_mb": 2048, "quick": False},
    "tiny": {"table2_iters": 3, "table2_images": 2, "tiles": 4, "tile_iters": 3, "t_iters": 2, "indices": "0-1",
             "photo": (64, 48), "chunks": (2, 0), "chunk_tiles": 4, "gemm": 256, "copy_mb": 8,
             "quick": True},
}
#: Phase: seconds at most (full size).
LIMITS = {"E": 30, "K": 110, "G": 70, "T": 60, "D": 60, "Q": 100, "P": 60, "R": 90, "C": 90}


class Session:
    """The output folder, the log, the budget and the records."""

    def __init__(self, out: Path, scratch: Path, budget: float, tiny: bool, device: str, limit_scale: float = 1.0):
        self.out, self.scratch, self.budget, self.tiny, self.device = out, scratch, budget, tiny, device
        self.limit_scale = limit_scale
        self.size = SIZES["tiny" if tiny else "full"]
        self.started = time.monotonic()
        self.scratch.mkdir(parents=True, exist_ok=True)

    def log(self, message: str) -> None:
        line = f"== {time.strftime('%H:%M:%S')} +{time.monotonic() - self.started:.0f}s {message}"
        print(line, flush=True)
        with open(self.out / "log.txt", "a") as f:
            f.write(line + "\n")

    def record(self, name: str, data: dict) -> None:
        append(self.out / name, data)

    def left(self) -> float:
        return self.budget - (time.monotonic() - self.started)

    def limit(self, phase: str) -> float | None:
        """The phase's time box, or None (skip it: too little budget left)."""
        limit = min(LIMITS[phase] * (0.5 if self.tiny else 1.0) * self.limit_scale, self.left() - 5)
        if limit < (5 if self.tiny else MIN_PHASE):
            self.log(f"{phase}: skipped ({self.left():.0f} s of the budget left)")
            self.record("runs.jsonl", {"phase": phase, "skipped": True, "left_s": self.left()})
            return None
        return limit

    def run(self, phase: str, args: list[str], tf32: str = "default", limit: float = 60) -> dict:
        """Run this script's ``--cli`` mode (``rdip`` with TF32 ``on``, ``off`` or ``default``) or
        ``--variants`` mode in a process of its own, at most ``limit`` seconds; returns
        ``{rc, wall_s}`` (its output goes to the log)."""
        command = [sys.executable, __file__, "--tf32", tf32, *args]
        self.log(f"{phase}: {' '.join(args)} (TF32 {tf32}, at most {limit:.0f} s)")
        started = time.monotonic()
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=limit, check=False,
                                  start_new_session=True)
            rc, tail = done.returncode, (done.stdout + done.stderr)[-2000:]
        except subprocess.TimeoutExpired as e:  # its output so far comes as bytes
            rc, tail = "timeout", (e.stdout or b"").decode(errors="replace")[-2000:]
        wall = time.monotonic() - started
        with open(self.out / "log.txt", "a") as f:
            f.write(tail + "\n")
        return {"rc": rc, "wall_s": round(wall, 2)}


def append(path: Path, data: dict) -> None:
    """One JSON record as a line of ``path`` (written as soon as it is measured)."""
    with open(path, "a") as f:
        f.write(json.dumps(data, default=str) + "\n")


def set_tf32(name: str) -> None:
    """``on``: TF32 in convolutions and matrix products; ``off``: in neither; ``default``:
    PyTorch's defaults (in cuDNN's convolutions, not in matrix products)."""
    conv, matmul = {"on": (True, True), "off": (False, False), "default": (True, False)}[name]
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = conv, matmul


def median_seconds(work, device: torch.device, repeats: int = 5, warmup: int = 2) -> float:
    """The median time of ``work()`` over ``repeats`` runs after ``warmup``, the device synchronised."""
    from rdip.experiments.bench import _sync

    times = []
    for i in range(warmup + repeats):
        _sync(device)
        started = time.perf_counter()
        work()
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - started)
    return float(np.median(times))


def gemm_tflops(device: torch.device, size: int, dtype: torch.dtype, tf32: str) -> float:
    """A ``size``² matrix product's rate, TFLOP/s (TF32 as :func:`set_tf32`; left ``default``)."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    set_tf32(tf32)
    seconds = median_seconds(lambda: a @ b, device)
    set_tf32("default")
    return 2 * size**3 / seconds / 1e12


def copy_gbs(device: torch.device, megabytes: int) -> float:
    """Memory bandwidth from a device-to-device copy, GB/s (read and write counted)."""
    x = torch.empty(megabytes * 2**18, device=device)
    y = torch.empty_like(x)
    return 2 * x.numel() * 4 / median_seconds(lambda: y.copy_(x), device) / 1e9


def weight_bound(bandwidth_gbs: float, height: int = 32, width: int = 32) -> float:
    """The most TFLOP/s one iteration of a ``height×width`` network can reach when only its weight
    traffic (:data:`WEIGHT_BYTES` per parameter) is counted at ``bandwidth_gbs``: Table I's 2.4 M
    weights against 1.52 GFLOP for a 32×32 tile."""
    from rdip.method.model import flops_per_iteration, footprint

    seconds = footprint(height, width)["parameters"] * WEIGHT_BYTES / (bandwidth_gbs * 1e9)
    return flops_per_iteration(height, width) / seconds / 1e12


def phase_environment(s: Session) -> None:
    dev = torch.device(s.device)
    rec: dict = {"phase": "E", "torch": torch.__version__, "device": s.device,
                 "threads": torch.get_num_threads(), "cpus": os.cpu_count()}
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        rec.update({"name": props.name, "memory_gb": props.total_memory / 1e9,
                    "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()})
    n = s.size["gemm"]
    rec["fp32_tflops"] = gemm_tflops(dev, n, torch.float32, "off")
    rec["tf32_tflops"] = gemm_tflops(dev, n, torch.float32, "on")
    rec["bf16_tflops"] = gemm_tflops(dev, n, torch.bfloat16, "off")
    rec["copy_gbs"] = copy_gbs(dev, s.size["copy_mb"])
    rec["weight_bound_tflops_32"] = weight_bound(rec["copy_gbs"])
    rec["weight_bound_fraction_of_bf16"] = rec["weight_bound_tflops_32"] / rec["bf16_tflops"]
    s.record("runs.jsonl", rec)
    s.log(f"E: {json.dumps(rec, default=str)}")


# --- the variants (run in a process of their own: --variants eager|graph|chunks) ---------------

def _workloads(size: dict, device: str):
    """``{name: (images, configs)}``: the Table II workload and the tiles workload."""
    from rdip import preset
    from rdip.experiments.bench import table2_workload

    rng = np.random.default_rng(0)
    images, paddings = table2_workload(rng)
    base = preset("paper", iters=size["table2_iters"], device=device)
    keep = [k for k in range(len(images)) if k % 15 < size["table2_images"]]  # per padding
    table2 = ([images[k] for k in keep], [base.replace(padding=paddings[k], seed=k) for k in keep])
    tiles = [rng.random((32, 32, 3)) for _ in range(size["tiles"])]
    cfg = preset("default", iters=size["tile_iters"], stop="none", device=device, chunk=size["tiles"])
    return {"table2": table2, "tiles": (tiles, [cfg.replace(seed=k) for k in range(len(tiles))])}


def _measure(images, configs, device: torch.device) -> dict:
    """One timed fit_many: seconds, steady it/s, the model's TFLOP/s, peak memory, the images."""
    from rdip.experiments.bench import timed
    from rdip.method.model import flops_per_iteration

    if device.type == "cuda":
        torch.cuda.empty_cache()  # what the last run cached, back (its blocks fragment the next)
        torch.cuda.reset_peak_memory_stats(device)
    run = timed(images, configs, device)
    rate = run["steady_computed"] / max(run["steady_seconds"], 1e-9)
    flop = np.mean([flops_per_iteration(*r.image.shape[:2]) if c.padding == "none" else
                    flops_per_iteration(r.image.shape[0] + 2 * c.pad_width, r.image.shape[1] + 2 * c.pad_width)
                    for r, c in zip(run["results"], configs)])
    out = {"seconds": round(run["seconds"], 3), "steady_it_per_s": rate, "model_tflops": rate * flop / 1e12,
           "images": np.stack([r.image for r in run["results"]])}
    if device.type == "cuda":
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def variants_main(group: str, out: Path, scratch: Path, size: dict, device: str) -> None:
    """``eager``: every variant of :data:`VARIANTS` on both workloads (fp32 first: the reference,
    saved in ``scratch``); ``graph``: :data:`CAPTURED` with ``capture="graph"``; ``chunks``: slots
    per stack."""
    from rdip.method.devices import native_bf16

    dev = torch.device(device)
    if group == "chunks":
        return _chunks(out, size, device)
    names = list(VARIANTS) if group == "eager" else [f"{v}+graph" for v in CAPTURED]
    for workload, (images, configs) in _workloads(size, device).items():
        for name in names:
            changes, tf32 = VARIANTS[name.removesuffix("+graph")]
            changes = {**changes, **({"capture": "graph"} if name.endswith("+graph") else {})}
            set_tf32(tf32)
            rec = {"workload": workload, "variant": name, "changes": changes, "tf32": tf32}
            if changes.get("dtype") == "bfloat16" and not native_bf16(dev):  # rdip refuses it there
                rec["skipped"] = f"{device} has no native bf16"
                append(out / "k.jsonl", rec)
                continue
            try:
                m = _measure(images, [c.replace(**changes) for c in configs], dev)
            except Exception as e:  # noqa: BLE001  (recorded; the next variant runs)
                rec["error"] = f"{type(e).__name__}: {e}"[:500]
                append(out / "k.jsonl", rec)
                continue
            ref_path = scratch / f"ref-{workload}.npy"
            if name == "fp32":
                np.save(ref_path, m["images"])
            if ref_path.exists():
                diff = np.abs(m.pop("images") - np.load(ref_path))
                rec.update({"mean_abs_diff": float(diff.mean()), "max_abs_diff": float(diff.max()),
                            "ok": bool(diff.mean() <= TOLERANCE)})
            rec.update({k: v for k, v in m.items() if k != "images"})
            append(out / "k.jsonl", rec)
            print(json.dumps(rec), flush=True)


def _chunks(out: Path, size: dict, device: str) -> None:
    """The tiles workload at :data:`SIZES`' chunk_tiles tiles in stacks of each chunk (0: the
    automatic one, recorded), with the best tiles variant; peak memory per network against the
    estimate."""
    from rdip import preset
    from rdip.method.devices import chunk_for, network_bytes

    dev = torch.device(device)
    best = json.loads((out / "best.json").read_text()).get("tiles", {}) if (out / "best.json").exists() else {}
    changes = best.get("changes", {})
    set_tf32(best.get("tf32", "default"))
    rng = np.random.default_rng(1)
    tiles = [rng.random((32, 32, 3)) for _ in range(size["chunk_tiles"])]
    base = preset("default", iters=size["tile_iters"], stop="none", device=device, **changes)
    for chunk in size["chunks"]:
        slots = min(len(tiles), chunk_for(base.replace(chunk=chunk), dev, 32, 32, 3))
        rec = {"phase": "C", "chunk": chunk, "slots": slots, "changes": changes,
               "estimate_mb_per_network": network_bytes(32, 32, 3, changes.get("formulation", "grouped")) / 2**20}
        try:
            m = _measure(tiles, [base.replace(seed=k, chunk=chunk) for k in range(len(tiles))], dev)
            m.pop("images")
            rec.update(m)
            if "peak_gpu_mb" in m:
                rec["peak_mb_per_network"] = m["peak_gpu_mb"] / slots
        except Exception as e:  # noqa: BLE001
            rec["error"] = f"{type(e).__name__}: {e}"[:500]
        append(out / "runs.jsonl", rec)
        print(json.dumps(rec), flush=True)


def choose(s: Session) -> dict:
    """The fastest ``ok`` variant per workload (``best.json``); the fp32 eager run if none."""
    rows = _readable((s.out / "k.jsonl").read_text().splitlines()) if (s.out / "k.jsonl").exists() else []
    best = {}
    for workload in ("table2", "tiles"):
        fine = [r for r in rows if r["workload"] == workload and r.get("ok")]
        pick = max(fine, key=lambda r: r["steady_it_per_s"]) if fine else \
            {"variant": "fp32 (none measured)", "changes": {}, "tf32": "off"}
        best[workload] = {k: pick.get(k) for k in ("variant", "changes", "tf32", "steady_it_per_s")}
    (s.out / "best.json").write_text(json.dumps(best, indent=1))
    s.log(f"best: {json.dumps(best)}")
    return best


def _readable(lines: list[str]) -> list[dict]:
    """The lines that are whole JSON records (a process killed while writing leaves half a line)."""
    rows = []
    for line in lines:
        try:
            rows.append(json.loads(line))
        except ValueError:
            pass
    return rows


def _sets(changes: dict) -> list[str]:
    return [a for k, v in changes.items() for a in ("--set", f"{k}={v}")]


def _column_means(folder: Path) -> dict | None:
    path = folder / "table2.csv"
    if not path.exists():
        return None
    import csv

    rows = list(csv.DictReader(path.open()))
    cols = [f"ssim_{w}_{p}" for w in ("full", "center") for p in ("none", "edge", "reflect")]
    return {c: float(np.mean([float(r[c]) for r in rows])) for c in cols if c in rows[0]}


def phase_table2(s: Session, phase: str, best: dict | None) -> dict | None:
    limit = s.limit(phase)
    if limit is None:
        return None
    folder = s.scratch / ("t-best" if best else "t-fp32")
    args = ["--cli", "reproduce", "--preset", "paper", "--seeds", "0", "--iters", str(s.size["t_iters"]),
            "--device", s.device, "-o", str(folder), "-q"]
    if s.size["indices"]:
        args += ["--indices", s.size["indices"]]
    args += _sets(best["changes"]) if best else []
    res = s.run(phase, args, best["tf32"] if best else "off", limit)
    rec = {"phase": phase, "variant": best["variant"] if best else "fp32 eager", **res,
           "column_means": _column_means(folder)}
    s.record("runs.jsonl", rec)
    s.log(f"{phase}: {json.dumps(rec)}")
    return rec


def photo(s: Session) -> Path:
    """The 768×512 (tiny: 64×48) colour photograph as a uint8 .npy file."""
    from PIL import Image
    from skimage import data

    path = s.scratch / "photo.npy"
    if not path.exists():
        width, height = s.size["photo"]
        np.save(path, np.asarray(Image.fromarray(data.coffee()).resize((width, height), Image.LANCZOS)))
    return path


def phase_denoise(s: Session, phase: str, preset_name: str, best: dict) -> None:
    limit = s.limit(phase)
    if limit is None:
        return
    out = s.scratch / f"d-{preset_name}.npy"
    args = ["--cli", "denoise", str(photo(s)), "-o", str(out), "--preset", preset_name, "--add-noise-255", "25",
            "--device", s.device, "-q", "--force", *_sets(best["changes"])]
    res = s.run(phase, args, best["tf32"], limit)
    rec = {"phase": phase, "preset": preset_name, "variant": best["variant"], "size": s.size["photo"], **res}
    record = out.with_suffix(".json")
    if record.exists():
        r = json.loads(record.read_text())
        rec.update({"fit_s": r.get("seconds"), "iters_run": r.get("iters_run"), "timings": r.get("timings"),
                    "ssim": (r.get("metrics") or {}).get("ssim_full"), "work": r.get("work")})
        out.unlink(missing_ok=True)  # the image is not kept, its record is
    s.record("runs.jsonl", rec)
    s.log(f"{phase}: {json.dumps(rec, default=str)}")


def phase_bench_photo(s: Session, best: dict) -> None:
    limit = s.limit("P")
    if limit is None:
        return
    record = s.scratch / "p-photo.json"
    args = ["--stdout", str(record), "--cli", "bench", "--json", "--workload", "photo", "--device", s.device,
            *_sets(best["changes"]), *(["--quick"] if s.size["quick"] else [])]
    res = s.run("P", args, best["tf32"], limit)
    rec = {"phase": "P", "variant": best["variant"], **res}
    if record.exists() and record.read_text().strip():
        rec["bench"] = json.loads(record.read_text())
    s.record("runs.jsonl", rec)
    s.log(f"P: {json.dumps(rec, default=str)[:1500]}")


def pack(s: Session) -> None:
    """runs.tgz: the reproduce folders' tables and configurations, and the denoise records."""
    keep = [p for pattern in ("t-*/table2.csv", "t-*/config.json", "t-*/experiment.json", "d-*.json", "p-*.json")
            for p in s.scratch.glob(pattern)]
    with tarfile.open(s.out / "runs.tgz", "w:gz") as tar:
        for p in keep:
            tar.add(p, arcname=str(p.relative_to(s.scratch)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, nargs="?", default=Path(os.environ.get("OUT", "gpu-session")))
    parser.add_argument("--tiny", action="store_true", help="CPU-sized dry run (device cpu unless --device).")
    parser.add_argument("--scratch", type=Path, default=None,
                        help="working files, outside OUT (whose files all come back from the device); "
                             "default a new temporary folder")
    parser.add_argument("--device", default=None)
    parser.add_argument("--budget", type=float, default=450, help="seconds for all phases")
    parser.add_argument("--limit-scale", type=float, default=1.0,
                        help="each phase's own time box times this (a test on a slow CPU: large)")
    parser.add_argument("--phases", default="EKGTDQPRC", help="which phases, in this order")
    parser.add_argument("--tf32", default="default", choices=("on", "off", "default"))
    parser.add_argument("--variants", choices=("eager", "graph", "chunks"), default=None)
    parser.add_argument("--stdout", type=Path, default=None, help="--cli: its standard output into this file")
    parser.add_argument("--cli", nargs=argparse.REMAINDER, default=None)
    args = parser.parse_args(argv)
    device = args.device or ("cpu" if args.tiny else "cuda")
    set_tf32(args.tf32)
    if args.cli is not None:  # rdip itself, with TF32 set
        from rdip.cli import run

        sys.argv = ["rdip", *args.cli]
        if args.stdout is None:
            run()
            return
        with open(args.stdout, "w") as f:
            sys.stdout = f
            try:
                run()
            finally:
                sys.stdout = sys.__stdout__
        return
    size = SIZES["tiny" if args.tiny else "full"]
    if args.variants:
        variants_main(args.variants, args.out, args.scratch, size, device)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    if args.scratch is None:
        args.scratch = Path(tempfile.mkdtemp(prefix="rdip-gpu-session-"))
    elif args.scratch.exists() and any(args.scratch.iterdir()):
        sys.exit(f"--scratch {args.scratch} is not empty: a resumed reproduce would time nothing; give a new folder")
    s = Session(args.out, args.scratch, args.budget, args.tiny, device, args.limit_scale)
    flags = (["--tiny"] if args.tiny else []) + ["--device", device, "--scratch", str(args.scratch)]
    best = {w: {"variant": "engine defaults", "changes": {}, "tf32": "default"} for w in ("table2", "tiles")}
    table2s: dict = {}
    try:
        for phase in args.phases:
            if phase == "E" and s.limit("E") is not None:
                try:
                    phase_environment(s)
                except Exception as e:  # noqa: BLE001  (recorded: the phases that measure go on)
                    s.record("runs.jsonl", {"phase": "E", "error": f"{type(e).__name__}: {e}"[:500]})
            elif phase in "KG" and (limit := s.limit(phase)) is not None:
                group = "eager" if phase == "K" else "graph"
                s.record("runs.jsonl", {"phase": phase, **s.run(phase, [str(s.out), "--variants", group, *flags],
                                                                   "default", limit)})
                best = choose(s)
            elif phase == "T":
                table2s["T"] = phase_table2(s, "T", best["table2"])
            elif phase in "DQ":
                phase_denoise(s, phase, "default" if phase == "D" else "quality", best["tiles"])
            elif phase == "P":
                phase_bench_photo(s, best["tiles"])
            elif phase == "R":
                fp32, done = phase_table2(s, "R", None), table2s.get("T")
                if fp32 and done and fp32["column_means"] and done["column_means"]:
                    gap = max(abs(done["column_means"][c] - fp32["column_means"][c]) for c in fp32["column_means"])
                    s.record("runs.jsonl", {"phase": "T vs R", "largest_column_mean_change": gap,
                                            "within_0.002": gap <= 0.002, "variant": done["variant"]})
            elif phase == "C" and (limit := s.limit("C")) is not None:
                s.record("runs.jsonl", {"phase": "C", **s.run("C", [str(s.out), "--variants", "chunks", *flags],
                                                              "default", limit)})
            pack(s)
    finally:
        pack(s)
        s.log(f"done ({s.left():.0f} s of the budget left)")


if __name__ == "__main__":
    main()
