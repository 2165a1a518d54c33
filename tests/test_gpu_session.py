"""The GPU session's script (benchmarks/gpu_session.py) at tiny sizes on the CPU: every phase a
GPU session needs runs, records what it measured and leaves at most 8 files in OUT (what the
device tool brings back)."""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_session.py"


def _session(tmp_path, *args, timeout=3600, env=None):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(SCRIPT), str(out), "--tiny", "--scratch", str(tmp_path / "scratch"),
                           *args], capture_output=True, text=True, timeout=timeout, check=False,
                          env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr[-2000:]
    return out, [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_phase_runs_records_and_returns_few_files(tmp_path):
    """On any CPU, however slow: no time box (a budget and phase limits far above what a slow CPU
    needs) and the CPU told it has no bf16, so the bf16 variants are recorded as skipped (what
    they measure is checked below, at a size where slow bf16 does not matter)."""
    out, runs = _session(tmp_path, "--phases", "EKGTDRC", "--budget", "100000", "--limit-scale", "100",
                         env={"RDIP_NATIVE_BF16": "0"})
    variants = _lines(out / "k.jsonl")
    assert len(variants) == 2 * (6 + 4) and not [v for v in variants if "error" in v]
    skipped = [v for v in variants if "skipped" in v]
    assert {v["variant"] for v in skipped} == {"bf16", "bmm-bf16", "bf16+graph", "bmm-bf16+graph"}
    assert len(skipped) == 8 and all("bfloat16" in json.dumps(v["changes"]) for v in skipped)
    assert all(v["ok"] for v in variants if v not in skipped)  # on the CPU every variant agrees with fp32
    assert {v["variant"] for v in variants if v not in skipped} >= {"fp32", "bmm-tf32", "tf32+graph"}
    best = json.loads((out / "best.json").read_text())
    fastest = max((v for v in variants if v["workload"] == "tiles" and v not in skipped),
                  key=lambda v: v["steady_it_per_s"])
    assert best["tiles"]["variant"] == fastest["variant"]
    phases = {r["phase"]: r for r in runs}
    assert phases["E"]["fp32_tflops"] > 0 and phases["E"]["weight_bound_tflops_32"] > 0
    for phase in ("T", "R", "D"):
        assert phases[phase]["rc"] == 0, phases[phase]
    assert len(phases["T"]["column_means"]) == 6 and phases["T vs R"]["largest_column_mean_change"] < 0.05
    assert 0 < phases["D"]["ssim"] <= 1 and phases["D"]["fit_s"] <= phases["D"]["wall_s"]
    assert [r["slots"] for r in runs if r["phase"] == "C" and "slots" in r] == [2, 2]
    with tarfile.open(out / "runs.tgz") as tar:
        assert {"t-best/table2.csv", "t-fp32/table2.csv", "d-default.json"} <= set(tar.getnames())
    assert sorted(p.name for p in out.iterdir()) == ["best.json", "k.jsonl", "log.txt", "runs.jsonl", "runs.tgz"]


def test_bf16_variants_agree_with_fp32_within_one_bf16_rounding(tmp_path):
    """The bf16 variants (eager) at the tiny sizes, run whatever the CPU (a few seconds even where
    bf16 is emulated): their outputs within :data:`TOLERANCE` of fp32's."""
    out = tmp_path / "out"
    out.mkdir()
    done = subprocess.run([sys.executable, str(SCRIPT), str(out), "--tiny", "--variants", "eager",
                           "--scratch", str(tmp_path)], capture_output=True, text=True, check=False,
                          env={**os.environ, "RDIP_NATIVE_BF16": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    bf16 = [v for v in _lines(out / "k.jsonl") if v["changes"].get("dtype") == "bfloat16"]
    assert len(bf16) == 4 and all(v["ok"] and 0 < v["mean_abs_diff"] for v in bf16), bf16


def test_phases_past_the_budget_are_skipped_and_recorded(tmp_path):
    out, runs = _session(tmp_path, "--phases", "KTD", "--budget", "1", timeout=120)
    assert [(r["phase"], r["skipped"]) for r in runs] == [("K", True), ("T", True), ("D", True)]
    assert "done" in (out / "log.txt").read_text()


def test_the_best_variant_is_the_fastest_within_tolerance_and_half_lines_are_skipped(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_session", SCRIPT)
    session = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(session)
    rows = [{"workload": "tiles", "variant": "bf16", "changes": {"dtype": "bfloat16"}, "tf32": "default",
             "steady_it_per_s": 900.0, "ok": False},  # faster, but its outputs are off
            {"workload": "tiles", "variant": "tf32", "changes": {}, "tf32": "on", "steady_it_per_s": 500.0, "ok": True},
            {"workload": "tiles", "variant": "fp32", "changes": {}, "tf32": "off", "steady_it_per_s": 400.0, "ok": True}]
    (tmp_path / "k.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + '\n{"workload": "til')
    s = session.Session(tmp_path, tmp_path / "scratch", 10, True, "cpu")
    best = session.choose(s)
    assert best["tiles"]["variant"] == "tf32" and best["tiles"]["tf32"] == "on"
    assert best["table2"]["variant"].startswith("fp32")  # none measured: strict fp32 eager
    assert json.loads((tmp_path / "best.json").read_text()) == best
