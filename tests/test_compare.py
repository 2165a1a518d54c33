import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from rdip.experiments.compare import load_images
from rdip.experiments.study import noise_seed

FAST = ["--methods", "tv,wavelet,zsn2n,rdip-default", "--set", "zsn2n.iters=20",
        "--set", "rdip-default.iters=5"]
OUTPUTS = ("compare.csv", "summary.csv", "summary.md", "crops.png", "compare.json")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks run faster on one thread, and far faster on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def folder(tmp_path):
    """Two 28×28 synthetic colour PNGs (a ramp and a disc)."""
    d = tmp_path / "images"
    d.mkdir()
    y, x = np.mgrid[:28, :28] / 27
    ramp = np.stack([x, y, x * y], axis=-1)
    disc = np.repeat((((x - 0.5) ** 2 + (y - 0.5) ** 2) < 0.1)[..., None], 3, axis=-1) * 0.8 + 0.1
    for name, image in (("ramp", ramp), ("disc", disc)):
        Image.fromarray(np.round(image * 255).astype(np.uint8)).save(d / f"{name}.png")
    return d


def test_compare_end_to_end_and_resume(cli, folder, tmp_path):
    out = tmp_path / "out"
    code, stdout, err = cli("compare", "--images", folder, "--sigma-255", "25,50", "--out", out, *FAST)
    assert code == 0, err
    assert "0 already done" in stdout
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 0
    with open(out / "compare.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 * 2 * 2
    assert list(rows[0]) == ["method", "image", "sigma", "ssim_full", "ssim_centre", "psnr", "seconds",
                             "device"]
    assert {r["device"] for r in rows} == {"cpu"}
    assert {r["image"] for r in rows} == {"disc", "ramp"}
    with open(out / "summary.csv") as f:
        summary = list(csv.DictReader(f))
    assert len(summary) == (4 + 1) * 2 and {r["count"] for r in summary} == {"2"}
    assert [float(r["sigma"]) for r in summary] == sorted(float(r["sigma"]) for r in summary)
    assert "noisy" in (out / "summary.md").read_text()
    settings = json.loads((out / "compare.json").read_text())
    assert settings["sigmas"] == [25 / 255, 50 / 255] and settings["images"] == ["disc", "ramp"]
    assert settings["options"]["zsn2n"] == {"iters": 20} and settings["crop"] is None
    assert settings["environment"]["command"][1] == "compare"
    record = json.loads((out / "runs" / "tv" / f"disc-s{25 / 255:g}.json").read_text())
    assert record["noise_seed"] == noise_seed("disc", 25 / 255, 0) and record["sigma"] == 25 / 255
    assert np.load(out / "runs" / "tv" / f"disc-s{25 / 255:g}.npy").dtype == np.float32

    saved = sorted((out / "runs").rglob("*.*"))
    assert len(saved) == 2 * 16
    mtimes = [p.stat().st_mtime_ns for p in saved]
    code, stdout, err = cli("compare", "--images", folder, "--sigma-255", "25,50", "--out", out, *FAST)
    assert code == 0, err
    assert "16 already done" in stdout
    assert [p.stat().st_mtime_ns for p in saved] == mtimes  # nothing run again

    # where a run was made does not decide its reuse: the same runs asked for on the CPU explicitly
    on_cpu = FAST + ["--set", "zsn2n.device=cpu", "--set", "rdip-default.device=cpu"]
    code, stdout, err = cli("compare", "--images", folder, "--sigma-255", "25,50", "--out", out, *on_cpu)
    assert code == 0, err
    assert "16 already done" in stdout
    assert [p.stat().st_mtime_ns for p in saved] == mtimes

    # a configuration field added to FitConfig after a run was saved counts as its default: a
    # record without `stop_window` (the default preset keeps the default) is still reused, one
    # without `tile` (the preset's 32 is not the default 0) is run again
    for field, name in (("stop_window", "disc"), ("tile", "ramp")):
        path = out / "runs" / "rdip-default" / f"{name}-s{25 / 255:g}.json"
        record = json.loads(path.read_text())
        del record["config"][field]
        path.write_text(json.dumps(record))
    code, stdout, err = cli("compare", "--images", folder, "--sigma-255", "25,50", "--out", out, *FAST)
    assert code == 0, err
    assert "15 already done" in stdout
    assert "tile" in json.loads(path.read_text())["config"]  # the ramp run was redone

    other = [a.replace("iters=5", "iters=6") for a in FAST]
    code, _, err = cli("compare", "--images", folder, "--sigma-255", "25,50", "--out", out, *other)
    assert code == 2 and "another seed, crop or options" in err and err.count("\n") == 1


def test_compare_crop_and_cifar(cli, tmp_path):
    out = tmp_path / "out"
    code, _, err = cli("compare", "--images", "cifar:0", "--methods", "tv", "--crop", 24,
                       "--out", out, "--quiet")
    assert code == 0, err
    assert np.load(out / "runs" / "tv" / "cifar-0000-s0.1.npy").shape == (24, 24, 3)
    assert "centre 24×24" in (out / "summary.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["--methods", "tv,median"], "unknown value 'median': use one of nlmeans"),
    (["--images", "{empty}"], "holds no images"),
    (["--images", "{empty}/missing.png"], "no such file"),
    (["--images", "{bad}"], "cannot read it as PNG"),
    (["--set", "tv.weight"], "give METHOD.KEY=VALUE"),
    (["--set", "dip.iters=5"], "'dip' is not among the methods"),
    (["--set", "tv.strength=1"], "tv has no option 'strength'"),
    (["--set", "tv.weight=high"], "tv.weight needs a float"),
    (["--set", "tv.weight=0"], "tv.weight must be > 0"),  # was a division by zero after runs/tv
    (["--methods", "tv,nlmeans", "--set", "nlmeans.patch_size=-1"], "nlmeans.patch_size must be between 1"),
    (["--methods", "wavelet", "--set", "wavelet.wavelet=nope"], "wavelet.wavelet 'nope' is not"),
    (["--methods", "dip", "--set", "dip.iters=0"], "dip.iters must be between 1"),
    (["--sigma", "0.1", "--sigma-255", "25"], "either --sigma or --sigma-255"),
    (["--sigma", "0.1,x"], "give numbers separated by commas"),
    (["--crop", "8"], "8 is not in the range x>=16"),
    (["--crop", "40"], "smaller than the crop 40×40"),
])
def test_compare_bad_input_one_line_exit_2(cli, folder, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"\x89PNG\r\n\x1a\ngarbage")
    args = [a.format(empty=tmp_path / "empty", bad=tmp_path / "bad") for a in args]
    if "--images" not in args:
        args += ["--images", str(folder)]
    if "--methods" not in args:
        args += ["--methods", "tv"]
    code, _, err = cli("compare", *args, "--out", tmp_path / "out", "--quiet")
    assert code == 2
    assert message in err, err
    assert err.count("\n") == 1 and err.startswith("rdip: error: ") and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_load_images_cifar_and_folder(folder):
    images = load_images("cifar:0-1", None)
    assert [n for n, _ in images] == ["cifar-0000", "cifar-0001"]
    assert images[0][1].shape == (32, 32, 3) and images[0][1].dtype == np.float64
    assert 0 <= images[0][1].min() and images[0][1].max() <= 1
    (folder / "notes.txt").write_text("not an image")
    names = [n for n, _ in load_images(str(folder), None)]
    assert names == ["disc", "ramp"]
    files = f"{folder / 'ramp.png'},{folder / 'disc.png'}"
    assert [n for n, _ in load_images(files, None)] == ["ramp", "disc"]
    with pytest.raises(ValueError, match="only to cifar"):
        load_images(str(folder), folder)


def test_saved_runs_that_cannot_be_used_are_run_again(cli, folder, tmp_path):
    """A run saved without its metrics gave a KeyError traceback, a damaged image a failed load:
    both are run again."""
    out = tmp_path / "out"
    args = ["compare", "--images", folder, "--methods", "tv", "--out", out]
    assert cli(*args)[0] == 0
    record = out / "runs" / "tv" / "disc-s0.1.json"
    record.write_text(json.dumps({k: v for k, v in json.loads(record.read_text()).items() if k != "metrics"}))
    (out / "runs" / "tv" / "ramp-s0.1.npy").write_bytes(b"\x93NUMPY")
    code, stdout, err = cli(*args)
    assert code == 0, err
    assert "0 already done" in stdout and "metrics" in json.loads(record.read_text())
    assert np.load(out / "runs" / "tv" / "ramp-s0.1.npy").shape == (28, 28, 3)


def test_an_image_path_with_a_comma_is_that_path(folder):
    (folder / "ramp.png").rename(folder / "ramp, v2.png")
    [(name, image)] = load_images(str(folder / "ramp, v2.png"))
    assert name == "ramp, v2" and image.shape == (28, 28, 3)
    assert [n for n, _ in load_images(f"{folder / 'disc.png'},{folder / 'disc.png'}")] == ["disc", "disc"]


def test_an_image_name_too_long_for_its_runs_is_refused_before_any_run(tmp_path):
    from rdip.experiments.compare import run_compare

    long = "x" * 250
    with pytest.raises(ValueError, match="makes a saved run's file name of 260 bytes"):
        run_compare(["tv"], [(long, np.zeros((32, 32)))], [0.1], tmp_path / "out", progress=False,
                    log=lambda *_: None)
    assert not (tmp_path / "out").exists()


def test_workers_share_the_runs_and_give_the_results_of_one_process(cli, folder, tmp_path):
    """--workers N (the study runner's): N processes of one torch thread each; the same records."""
    args = ["compare", "--images", folder, "--methods", "tv,wavelet", "--sigma", "0.1,0.2", "-q"]
    for workers in (1, 2):
        code, _, err = cli(*args, "--out", tmp_path / f"w{workers}", "--workers", workers)
        assert code == 0, err
    one, two = (sorted((tmp_path / w / "runs").rglob("*.json")) for w in ("w1", "w2"))
    assert len(one) == 8 and [p.relative_to(tmp_path / "w1") for p in one] == [
        p.relative_to(tmp_path / "w2") for p in two]
    for a, b in zip(one, two):
        drop = lambda p: {k: v for k, v in json.loads(p.read_text()).items() if k != "seconds"}  # noqa: E731
        assert drop(a) == drop(b)
        assert np.array_equal(np.load(a.with_suffix(".npy")), np.load(b.with_suffix(".npy")))


def test_runs_saved_before_the_runner_are_reused(cli, folder, tmp_path):
    """compare's records keep their form (no study-only key fields); an rdip run saved with the
    preset's seed 0 in its configuration (as every run was before the runner) is reused at --seed 3."""
    out = tmp_path / "out"
    args = ["compare", "--images", folder, "--methods", "tv,rdip-default", "--set", "rdip-default.iters=2",
            "--seed", 3, "--out", out]
    assert cli(*args, "-q")[0] == 0
    path = out / "runs" / "rdip-default" / "disc-s0.1.json"
    record = json.loads(path.read_text())
    assert set(record) == {"method", "image", "sigma", "seed", "noise_seed", "crop", "options", "clean_sha1",
                           "config", "metrics", "seconds", "device"}
    assert record["seed"] == 3 and record["config"]["seed"] == 3
    path.write_text(json.dumps({**record, "config": {**record["config"], "seed": 0}}))
    code, stdout, err = cli(*args)
    assert code == 0, err
    assert "4 already done" in stdout


def test_a_method_that_gives_nan_is_refused_and_its_run_not_saved(cli, folder, tmp_path, monkeypatch):
    from rdip.experiments import baselines

    def broken(noisy, sigma=None, seed=0, *, weight: float = 0.08):
        return np.full_like(noisy, np.nan)

    monkeypatch.setitem(baselines.METHODS, "tv", broken)
    code, _, err = cli("compare", "--images", folder, "--methods", "tv", "--out", tmp_path / "out", "-q")
    assert code == 2 and err.count("\n") == 1
    assert "tv on disc-s0.1-r0 gave NaN or infinite values" in err, err
    assert not (tmp_path / "out").exists()


def test_settings_or_runs_that_are_fifos_are_never_opened(cli, folder, tmp_path):
    """A FIFO is no saved run (run again, and replaced) and no settings (refused): opening
    either would wait forever for a writer."""
    import os

    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    out = tmp_path / "out"
    (out / "runs" / "tv").mkdir(parents=True)
    os.mkfifo(out / "runs" / "tv" / "disc-s0.1.json")
    os.mkfifo(out / "runs" / "tv" / "ramp-s0.1.npy")
    args = ["compare", "--images", folder, "--methods", "tv", "--out", out, "--quiet"]
    code, _, err = cli(*args)
    assert code == 0, err
    assert json.loads((out / "runs" / "tv" / "disc-s0.1.json").read_text())["method"] == "tv"
    (out / "compare.json").unlink()
    os.mkfifo(out / "compare.json")
    code, _, err = cli(*args)
    assert code == 2 and "compare.json: is not a regular file" in err and err.count("\n") == 1, err
