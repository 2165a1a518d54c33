"""``rdip batch --backend ray`` (rdip.scale.ray): the tests that need Ray skip without it."""

import logging
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import manifest_rows, quiet

from rdip.cli import batch_command
from rdip.config import preset
from rdip.images.files import read_image
from rdip.scale import batch
from rdip.scale.batch import LOCK, MANIFEST, run_batch
from rdip.scale.ray import MISSING, RETRIES, RayRunner

CFG = preset("paper", iters=5, device="cpu")  # no early stop: every network runs its 5


def rows_of(out: Path) -> dict[str, dict]:
    """The latest manifest row of each input, by file name."""
    return {Path(r["input"]).name: r for r in manifest_rows(out)}


@pytest.fixture
def folder(make_folder, rng):
    return make_folder({
        "a.png": (rng.random((26, 26, 3)) * 255).astype(np.uint8),
        "b.png": (rng.random((26, 26, 3)) * 255).astype(np.uint8),
        "g.npy": rng.random((25, 27)).astype(np.float32),
        "bad.png": b"\x89PNG\r\n\x1a\n not really a png",
    })


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray of 2 CPUs and no GPU for the tests below, shut down after them."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


def test_ray_writes_what_local_writes_then_resumes(folder, tmp_path):
    ray = pytest.importorskip("ray")
    running = ray.is_initialized()  # False when run in file order: rdip starts its own Ray
    run_batch([str(folder)], tmp_path / "local", CFG, progress=False, log=quiet)
    out = tmp_path / "ray"
    args = [str(folder), "-o", str(out), "--preset", "paper", "--iters", "5", "--device", "cpu",
            "--backend", "ray", "--num-cpus", "2"]
    result = CliRunner().invoke(batch_command, args)
    assert result.exit_code == 1, result.output  # bad.png
    assert "Ray: 2 CPUs, 0 GPUs; 2 tasks at a time" in result.output
    assert ray.is_initialized() == running  # the Ray it started is shut down

    rows, local = rows_of(out), rows_of(tmp_path / "local")
    assert sorted(rows) == ["a.png", "b.png", "bad.png", "g.npy"]
    assert rows["bad.png"]["status"] == "error" and rows["bad.png"]["error"] == local["bad.png"]["error"]
    for name in ("a.png", "b.png", "g.npy"):
        row = rows[name]
        assert (row["status"], row["backend"], row["device"], row["iters_run"]) == ("done", "ray", "cpu", 5)
        assert row["seconds"] > 0 and row["shape"] == local[name]["shape"]
        assert {k: v for k, v in row.items() if k not in ("output", "seconds", "backend", "time")} \
            == {k: v for k, v in local[name].items() if k not in ("output", "seconds", "backend", "time")}
        ours, theirs = read_image(row["output"]), read_image(local[name]["output"])
        assert ours[1].dtype == theirs[1].dtype
        # same seed, same trajectory, other arithmetic: a and b were one stack of 2 threads
        # locally, one single-thread task each on Ray, and the rounding of the two differs by
        # ≈1e-7 per value (measured 4e-8 after 5 iterations); CPUs and BLAS builds add their own.
        if ours[1].dtype.startswith("uint"):  # can move a pixel across a rounding boundary:
            level = 1 / np.iinfo(ours[1].dtype).max  # one level at most, on few pixels
            np.testing.assert_allclose(ours[0], theirs[0], rtol=0, atol=level + 1e-9)
            assert np.mean(ours[0] != theirs[0]) < 0.01
        else:  # floats are written as they are: equal within 250× the difference measured
            np.testing.assert_allclose(ours[0], theirs[0], rtol=0, atol=1e-5)

    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name not in (MANIFEST, LOCK)}
    again = CliRunner().invoke(batch_command, args)
    assert again.exit_code == 1 and "4 images, 3 already done, 1 to do" in again.output
    assert "Ray:" not in again.output  # only bad.png was left, and it fails at reading: no Ray
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name not in (MANIFEST, LOCK)} == mtimes
    assert len((out / MANIFEST).read_text().splitlines()) == 5


def test_failing_task_is_retried_then_gives_error_rows(ray_cluster, tmp_path, rng, monkeypatch):
    src = tmp_path / "in"
    src.mkdir()
    for k in range(3):
        np.save(src / f"s{k}.npy", rng.random((25, 25)))
    np.save(src / "doomed.npy", rng.random((26, 25)))
    calls, failed = tmp_path / "calls", tmp_path / "failed-once"
    real = batch._fit

    def flaky(images, cleans, configs):  # runs in Ray's workers (pickled by value)
        with open(calls, "a") as f:
            f.write(f"{len(images)} {images[0].shape[0]}\n")
        if images[0].shape[0] == 26:
            raise RuntimeError("this chunk always fails")
        if not failed.exists():
            failed.touch()
            raise RuntimeError("the first task fails once")
        return real(images, cleans, configs)

    monkeypatch.setattr(batch, "_fit", flaky)
    rows = run_batch([str(src)], tmp_path / "out", CFG, backend="ray", progress=False, log=quiet)
    status = {Path(r["input"]).name: (r["status"], r["error"]) for r in rows}
    assert status == {"s0.npy": ("done", None), "s1.npy": ("done", None), "s2.npy": ("done", None),
                      "doomed.npy": ("error", "RuntimeError: this chunk always fails")}
    assert all((tmp_path / "out" / f"s{k}_denoised.npy").exists() for k in range(3))
    made = calls.read_text().splitlines()
    assert made.count("1 26") == RETRIES + 1 and failed.exists()
    assert {line for line in made if line.endswith(" 25")} == {"2 25", "1 25"}  # 3 images, 2 slots


def test_cuda_on_a_cluster_without_gpus(ray_cluster, tmp_path):
    np.save(tmp_path / "e.npy", np.zeros((30, 30)))
    with pytest.raises(RuntimeError, match="the Ray cluster has no GPUs"):
        run_batch([str(tmp_path / "e.npy")], tmp_path / "out", CFG.replace(device="cuda"),
                  backend="ray", progress=False, log=quiet)


class FakeRay:
    """What RayRunner asks of ray: the cluster's resources, and a remote function's options."""

    def __init__(self, resources: dict):
        self.resources, self.options = resources, None

    def cluster_resources(self) -> dict:
        return self.resources

    def remote(self, **options):
        self.options = options
        return lambda function: function


@pytest.mark.parametrize("resources, device, expected, slots, gpus", [
    ({"CPU": 16.0, "GPU": 2.0}, "auto", "cuda", 2, 1),
    ({"CPU": 16.0, "GPU": 2.0}, "cuda", "cuda", 2, 1),
    ({"CPU": 16.0, "GPU": 2.0}, "cpu", "cpu", 16, 0),
    ({"CPU": 4.0}, "auto", "cpu", 4, 0),
])
def test_one_gpu_per_task_where_there_are_gpus(resources, device, expected, slots, gpus):
    ray = FakeRay(resources)
    runner = RayRunner(ray, device)
    assert (runner.device, runner.slots) == (expected, slots)
    assert ray.options == {"num_cpus": 1, "num_gpus": gpus, "max_retries": RETRIES,
                           "retry_exceptions": True}


def test_without_ray_one_line_error(cli, tmp_path, monkeypatch):
    np.save(tmp_path / "e.npy", np.zeros((30, 30)))
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails
    code, out, err = cli("batch", tmp_path / "e.npy", "-o", tmp_path / "o", "--backend", "ray")
    assert (code, out, err) == (2, "", f"rdip: error: {MISSING}\n")
    assert MISSING.endswith("pip install 'rdip[ray]'") and not (tmp_path / "o").exists()
    with pytest.raises(ImportError, match=r"pip install 'rdip\[ray\]'"):
        run_batch([str(tmp_path / "e.npy")], tmp_path / "o", CFG, backend="ray", log=quiet)
