import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from click.testing import CliRunner

from rdip.batch import MANIFEST, _append, batch_command, read_manifest, run_batch
from rdip.config import preset
from rdip.io import read_image

CFG = preset("default", iters=2, device="cpu")


def quiet(*_):
    pass


def rows_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / MANIFEST).read_text().splitlines()]


@pytest.fixture
def mixed(tmp_path, rng):
    src = tmp_path / "in"
    src.mkdir()
    iio.imwrite(src / "a.png", (rng.random((30, 30, 3)) * 255).astype(np.uint8))
    iio.imwrite(src / "b.png", (rng.random((30, 30, 3)) * 255).astype(np.uint8))
    iio.imwrite(src / "c.png", (rng.random((40, 32)) * 65535).astype(np.uint16))
    np.save(src / "d.npy", rng.random((28, 28)).astype(np.float32))
    (src / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    iio.imwrite(src / "tiny.png", (rng.random((10, 10)) * 255).astype(np.uint8))
    (src / "notes.txt").write_text("not an image")  # ignored: not an image suffix
    return src


def test_mixed_folder_then_rerun_skips_done(mixed, tmp_path):
    out = tmp_path / "out"
    rows = run_batch([str(mixed)], out, CFG, progress=False, log=quiet)
    assert len(rows) == 6 and rows == rows_of(out)
    status = {Path(r["input"]).name: r["status"] for r in rows}
    assert status == {"a.png": "done", "b.png": "done", "c.png": "done", "d.npy": "done",
                      "bad.png": "error", "tiny.png": "error"}
    errors = {Path(r["input"]).name: r["error"] for r in rows if r["status"] == "error"}
    assert "corrupt" in errors["bad.png"] and "25×25" in errors["tiny.png"]
    expected = {"a_denoised.png": ("uint8", (30, 30, 3)), "b_denoised.png": ("uint8", (30, 30, 3)),
                "c_denoised.png": ("uint16", (40, 32)), "d_denoised.npy": ("float32", (28, 28))}
    for name, (dtype, shape) in expected.items():
        image, info = read_image(out / name)
        assert (info.dtype, image.shape) == (dtype, shape)
    done = [r for r in rows if r["status"] == "done"]
    assert all(r["config"]["iters"] == 2 and r["shape"] and r["seconds"] > 0 for r in done)

    mtimes = {name: (out / name).stat().st_mtime_ns for name in expected}
    again = run_batch([str(mixed)], out, CFG, progress=False, log=quiet)
    assert sorted(Path(r["input"]).name for r in again) == ["bad.png", "tiny.png"]  # retried
    assert {name: (out / name).stat().st_mtime_ns for name in expected} == mtimes
    assert len(rows_of(out)) == 8


def test_metrics_with_clean_dir_and_globs(tmp_path, rng):
    src, clean_dir = tmp_path / "in", tmp_path / "clean"
    src.mkdir(), clean_dir.mkdir()
    for name in ("x.png", "y.png"):
        clean = (rng.random((26, 27)) * 255).astype(np.uint8)
        iio.imwrite(clean_dir / name, clean)
        iio.imwrite(src / name, clean)
    rows = run_batch([str(src / "x*.png"), str(src / "y.png")], tmp_path / "out", CFG,
                     clean_dir=clean_dir, progress=False, log=quiet)
    assert [Path(r["input"]).name for r in rows] == ["x.png", "y.png"]
    assert all(set(r["metrics"]) == {"ssim_full", "ssim_centre", "psnr"} for r in rows)


def test_tiled_batch(tmp_path, rng):
    iio.imwrite(tmp_path / "big.png", (rng.random((40, 50, 3)) * 255).astype(np.uint8))
    rows = run_batch([str(tmp_path / "big.png")], tmp_path / "out", CFG, tile=30, overlap=8,
                     progress=False, log=quiet)
    assert rows[0]["status"] == "done" and rows[0]["tile"] == {"tile": 30, "overlap": 8}
    assert read_image(tmp_path / "out" / "big_denoised.png")[0].shape == (40, 50, 3)


def test_one_line_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        run_batch([str(tmp_path / "empty")], tmp_path / "out", CFG, log=quiet)
    with pytest.raises(FileNotFoundError, match="no such file"):
        run_batch([str(tmp_path / "missing.png")], tmp_path / "out", CFG, log=quiet)
    np.save(tmp_path / "e.npy", np.zeros((30, 30)))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_batch([str(tmp_path / "e.npy")], tmp_path / "no" / "out", CFG, log=quiet)
    with pytest.raises(ValueError, match="overwrite the input"):
        run_batch([str(tmp_path / "e.npy")], tmp_path, CFG, suffix="", log=quiet)
    for options, message in ((["--address", "auto"], "are for --backend ray"),
                             (["--num-cpus", "2"], "are for --backend ray"),
                             (["--backend", "ray", "--address", "auto", "--num-cpus", "2"],
                              "the cluster at --address has its own CPUs")):
        result = CliRunner().invoke(batch_command, [str(tmp_path / "e.npy"), "-o", str(tmp_path / "o"),
                                                    *options])
        assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "o").exists()


def test_manifest_survives_a_line_cut_short(tmp_path):
    manifest = tmp_path / MANIFEST
    _append(manifest, {"input": "a", "status": "done"})
    with open(manifest, "a") as f:
        f.write('{"input": "b", "sta')  # killed mid-line
    _append(manifest, {"input": "c", "status": "error"})
    assert read_manifest(manifest) == {"a": {"input": "a", "status": "done"},
                                       "c": {"input": "c", "status": "error"}}


def test_resume_after_kill_9(tmp_path, rng):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for k in range(4):  # four shapes: four fit_many calls, outputs written one after another
        iio.imwrite(src / f"i{k}.png", (rng.random((25 + k, 25, 3)) * 255).astype(np.uint8))
    args = [str(src), "-o", str(out), "--device", "cpu", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.Popen([sys.executable, "-c", "from rdip.batch import batch_command; batch_command()",
                             *args, "--iters", "20"], env=env)
    deadline = time.monotonic() + 60
    while not ((out / MANIFEST).exists() and (out / MANIFEST).read_text()):
        assert proc.poll() is None and time.monotonic() < deadline, "no manifest row appeared"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(rows_of(out)) < 4, "the run finished before it was killed: raise --iters"
    (out / ".i3_denoised.png.k9x2z1.png").write_bytes(b"\x89PNG half")  # as a kill mid-write leaves

    result = CliRunner().invoke(batch_command, [*args, "--iters", "2"])  # the rest, quickly
    assert result.exit_code == 0, result.output
    rows = rows_of(out)
    assert sorted(Path(r["input"]).name for r in rows) == [f"i{k}.png" for k in range(4)]
    assert all(r["status"] == "done" and read_image(r["output"])[0].shape[1] == 25 for r in rows)
    assert sorted(p.name for p in out.iterdir()) == [f"i{k}_denoised.png" for k in range(4)] + [MANIFEST]
