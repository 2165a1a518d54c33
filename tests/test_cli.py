import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from rdip.images.files import read_image


@pytest.fixture
def clean_png(tmp_path, cifar):
    path = tmp_path / "clean.png"
    Image.fromarray(np.round(cifar[0] * 255).astype(np.uint8)).save(path)
    return path


def test_denoise_end_to_end_writes_image_and_json(cli, clean_png, tmp_path):
    out = tmp_path / "out.png"
    code, stdout, err = cli("denoise", clean_png, "-o", out, "--add-noise", 0.1, "--iters", 250,
                            "--device", "cpu", "--seed", 1)
    assert code == 0, err
    image, info = read_image(out)
    assert image.shape == (32, 32, 3) and info.dtype == "uint8"
    record = json.loads((tmp_path / "out.json").read_text())
    assert record["config"]["iters"] == 250 and record["config"]["preset"] == "default"
    assert record["config"]["seed"] == 1 and record["sigma"] == 0.1 and record["add_noise"] == 0.1
    assert record["config"]["margin"] == 0.1  # the default preset fits inside [-0.9, 0.9]
    assert record["metrics"]["ssim_full"] > record["noisy_metrics"]["ssim_full"]
    assert {"read_s", "fit_s", "total_s"} <= set(record["timings"])
    assert "SSIM" in stdout and sorted(p.name for p in tmp_path.iterdir()) == ["clean.png", "out.json", "out.png"]


def test_denoise_set_overrides_any_field_last_and_refuses_unknown_ones(cli, tmp_path, rng):
    np.save(tmp_path / "noisy.npy", rng.random((30, 30)))
    code, _, err = cli("denoise", tmp_path / "noisy.npy", "-o", tmp_path / "out.npy", "--iters", 3,
                       "--set", "capture=graph", "--set", "chunk=3", "--set", "iters=2", "--device", "cpu")
    assert code == 0, err
    config = json.loads((tmp_path / "out.json").read_text())["config"]
    assert (config["capture"], config["chunk"], config["iters"]) == ("graph", 3, 2)
    code, _, err = cli("denoise", tmp_path / "noisy.npy", "-o", tmp_path / "bad.npy", "--set", "speed=11")
    assert code != 0 and "--set 'speed=11'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad.npy").exists()


def test_denoise_set_applies_to_the_tiling_fields_too(cli, tmp_path, rng):
    np.save(tmp_path / "noisy.npy", rng.random((30, 30)))
    code, _, err = cli("denoise", tmp_path / "noisy.npy", "-o", tmp_path / "out.npy", "--iters", 2,
                       "--set", "tile=26", "--set", "tile_overlap=6", "--device", "cpu")
    assert code == 0, err
    record = json.loads((tmp_path / "out.json").read_text())
    assert record["tile"] == {"tile": 26, "overlap": 6}
    code, _, err = cli("denoise", tmp_path / "noisy.npy", "-o", tmp_path / "two.npy", "--iters", 2,
                       "--tile", 28, "--overlap", 4, "--set", "tile=26", "--set", "tile_overlap=6")
    assert code == 0, err  # --set is applied last
    assert json.loads((tmp_path / "two.json").read_text())["tile"] == {"tile": 26, "overlap": 6}


def test_bench_set_applies_to_its_own_options_fields(cli):
    code, out, err = cli("bench", "--json", "--workload", "photo", "--quick", "--set", "iters=2",
                         "--set", "device=cpu", "--set", "ensemble=2")
    assert code == 0, err
    record = json.loads(out)
    assert record["photo_iters"] == 2 and record["device"] == "cpu"
    assert record["default_networks"] == record["ensemble4_networks"] > 4  # both fits: ensemble 2


def test_denoise_with_clean_reference_grey_npy(cli, tmp_path, rng):
    clean = rng.random((30, 30))
    np.save(tmp_path / "clean.npy", clean)
    np.save(tmp_path / "noisy.npy", clean + rng.normal(0, 0.1, clean.shape))
    code, _, err = cli("denoise", tmp_path / "noisy.npy", "-o", tmp_path / "out.npy", "--clean",
                       tmp_path / "clean.npy", "--iters", 3, "--padding", "reflect", "--pad-width", 2)
    assert code == 0, err
    assert np.load(tmp_path / "out.npy").shape == (30, 30)
    record = json.loads((tmp_path / "out.json").read_text())
    assert record["config"]["padding"] == "reflect" and record["metrics"]["psnr"] > 0
    assert record["sigma_source"].startswith("estimated")
    code, _, err = cli("denoise", tmp_path / "noisy.npy", "-o", tmp_path / "m.npy", "--iters", 3,
                       "--range", "unit", "--margin", 0)
    assert code == 0, err
    assert json.loads((tmp_path / "m.json").read_text())["config"]["margin"] == 0.0
    code, _, err = cli("denoise", tmp_path / "noisy.npy", "-o", tmp_path / "m1.npy", "--margin", 1)
    assert code == 2 and "--margin" in err and not (tmp_path / "m1.npy").exists()


def test_version_and_help(cli):
    code, out, _ = cli("--version")
    assert code == 0 and out.startswith("rdip, version ")
    code, out, _ = cli("denoise", "--help")
    assert code == 0 and "--add-noise" in out


def test_unreadable_file(cli, tmp_path, rng, monkeypatch):
    """(The other bad inputs: tests/test_hostile.py.)"""
    unreadable = tmp_path / "unreadable.png"
    Image.fromarray(rng.integers(0, 256, (30, 30, 3)).astype(np.uint8)).save(unreadable)
    unreadable.chmod(0)
    if subprocess.run(["cat", str(tmp_path / "unreadable.png")], capture_output=True).returncode == 0:
        # root reads any file: make the reader fail the way the system would
        import rdip.images.files

        def denied(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(rdip.images.files.Image, "open", denied)
    code, _, err = cli("denoise", tmp_path / "unreadable.png", "-o", tmp_path / "out.png")
    assert code == 2 and "permission denied" in err and not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("where", [0, 1, 4])
def test_debug_shows_traceback_wherever_it_is_typed(cli, tmp_path, where):
    args = ["denoise", tmp_path / "missing.png", "-o", tmp_path / "out.png"]
    with pytest.raises(FileNotFoundError):
        cli(*args[:where], "--debug", *args[where:])


def test_an_error_rdip_does_not_explain_is_one_line_too(cli, tmp_path, monkeypatch):
    """The safety net: any exception (here a KeyError from inside) ends in one line, exit 2,
    naming its type; --debug shows it."""
    import rdip.jobs

    def broken(*args, **kwargs):
        raise KeyError("metrics")

    monkeypatch.setattr(rdip.jobs, "load_input", broken)
    code, out, err = cli("denoise", tmp_path / "x.png", "-o", tmp_path / "y.png")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in out + err
    assert err.startswith("rdip: error: KeyError 'metrics': an error rdip does not explain"), err
    with pytest.raises(KeyError):
        cli("denoise", tmp_path / "x.png", "-o", tmp_path / "y.png", "--debug")


def test_add_noise_as_strong_as_0_5_is_accepted(cli, tmp_path, rng):
    """The noisy image strays far outside [0, 1]; the σ given says that is noise."""
    from conftest import smooth_image, write_png

    write_png(tmp_path / "in.png", np.round(np.clip(smooth_image((30, 30, 3), 0), 0, 1) * 255).astype(np.uint8))
    code, _, err = cli("denoise", tmp_path / "in.png", "-o", tmp_path / "out.png", "--add-noise", 0.5,
                       "--iters", 2, "--device", "cpu", "--quiet")
    assert code == 0, err
    assert json.loads((tmp_path / "out.json").read_text())["add_noise"] == 0.5


def test_console_script_runs_as_a_process(tmp_path):
    result = subprocess.run([sys.executable, "-c", "from rdip.cli import run; run()", "denoise",
                             str(tmp_path / "x.png"), "-o", str(tmp_path / "y.png")],
                            capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.startswith("rdip: error:")


def test_demo_writes_figure_and_table(cli, tmp_path):
    code, out, err = cli("demo", "--out", tmp_path / "demo", "--iters", 3)
    assert code == 0, err
    assert "preset default is meant for up to 800 iterations; --iters 3 is far below" in err
    assert {p.name for p in (tmp_path / "demo").iterdir()} == {"demo.png", "demo.csv", "demo.md", "config.json"}
    assert "padding edge" in (tmp_path / "demo" / "demo.md").read_text() and str(tmp_path / "demo") in out
    code, _, err = cli("demo", "--out", tmp_path / "demo", "--iters", 3)
    assert code == 2 and "already holds" in err


def test_reproduce_command_and_its_errors(cli, tmp_path):
    code, _, err = cli("reproduce", "--indices", "0", "--seeds", "0", "--paddings", "none", "--iters", 2,
                       "--set", "eval_every=1", "--out", tmp_path / "r", "--quiet")
    assert code == 0, err
    assert (tmp_path / "r" / "table2.md").exists()
    for args, message in [(["--set", "colour=1"], "KEY=VALUE"), (["--set", "lr=fast"], "lr needs a float"),
                          (["--paddings", "mirror"], "unknown value 'mirror'"), (["--indices", "3-1"], "reversed")]:
        code, _, err = cli("reproduce", *args, "--out", tmp_path / "bad", "--quiet")
        assert code == 2 and message in err, err


def test_bench_json_keys(cli):
    code, out, err = cli("bench", "--json", "--iters", 2, "--quick")
    assert code == 0, err
    record = json.loads(out)
    for key in ("naive_it_per_s", "batched_it_per_s", "speedup", "model_gflops_per_s",
                "sgemm_gflops_per_s", "sgemm_fraction", "peak_rss_mb", "device"):
        assert key in record
    assert record["speedup"] == pytest.approx(record["batched_it_per_s"] / record["naive_it_per_s"])
    assert 0 < record["sgemm_fraction"] < 2
    assert record["work_ratio"] == pytest.approx(1.0)  # no early stopping: nothing computed in vain


def test_bench_photo_workload_reports_work_and_rates(cli):
    code, out, err = cli("bench", "--json", "--workload", "photo", "--quick", "--iters", 15)
    assert code == 0, err
    record = json.loads(out)
    assert record["photo_size"] == 48 and record["default_networks"] == 4
    assert record["ensemble4_networks"] > 4 * 4  # shifted grids have more tiles
    for name in ("default", "ensemble4"):
        assert 1.0 <= record[f"{name}_work_ratio"] < 1.5
        assert 0 < record[f"{name}_sgemm_fraction"] < 2 and record[f"{name}_seconds"] > 0
        assert 0 < record[f"{name}_ssim"] <= 1


def test_bench_photo_counts_the_flops_of_the_tiles_it_fits(cli):
    from rdip.method.model import flops_per_iteration

    code, out, err = cli("bench", "--json", "--workload", "photo", "--quick", "--iters", 2, "--set", "tile=40")
    assert code == 0, err
    record = json.loads(out)
    flop = flops_per_iteration(40, 40) / 1e9  # not the default preset's 32×32
    assert record["photo_gflop_per_iteration"] == pytest.approx(flop)
    for name in ("default", "ensemble4"):
        rate = record[f"{name}_model_gflops_per_s"] / record[f"{name}_computed_it_per_s"]
        assert rate == pytest.approx(flop)


def test_denoise_report_shows_the_images_first(cli, tmp_path, rng):
    from conftest import write_png

    write_png(tmp_path / "in.png", (rng.random((30, 30, 3)) * 255).astype(np.uint8))
    code, out, err = cli("denoise", tmp_path / "in.png", "-o", tmp_path / "out.png", "--iters", 2,
                         "--add-noise-255", 25, "--report")
    assert code == 0, err
    html = (tmp_path / "out.html").read_text()
    assert html.index("<h2>Images (1)</h2>") < html.index("<h2>Tables</h2>")
    assert html.count("data:image/png;base64,") == 3  # noisy, denoised, clean
    assert "out.html" in out and json.loads((tmp_path / "out.json").read_text())["add_noise"] > 0
    code, _, err = cli("denoise", tmp_path / "in.png", "-o", tmp_path / "out.png", "--report")
    assert code == 2 and "already exists" in err  # no overwriting without --force
