import numpy as np
import pytest

from rdip.config import FitConfig, preset
from rdip.method.planning import estimate


def test_config_tiles_return_the_shape_and_a_single_tile_equals_fit(rng):
    from rdip.method.engine import fit

    clean = rng.random((60, 70, 3))
    cfg = preset("default", iters=2, device="cpu", tile=40, tile_overlap=10, stop="none")
    result = fit(clean + 0.1 * rng.standard_normal(clean.shape), cfg, clean=clean)
    assert result.image.shape == (60, 70, 3)
    assert 0 <= result.image.min() and result.image.max() <= 1
    assert result.iters_run == 2 and result.loss.shape == (2,)
    assert set(result.metrics) == {"ssim_full", "ssim_centre", "psnr"}
    noisy = rng.random((30, 28))
    tiled = fit(noisy, cfg.replace(tile=64, tile_overlap=16))
    assert tiled.image.shape == (30, 28)
    np.testing.assert_allclose(tiled.image, fit(noisy, cfg.replace(tile=0)).image, atol=1e-6)


def test_estimate_grows_with_size():
    cfg = preset("default")
    small, large = (estimate(s, s, 3, cfg, "cpu") for s in (64, 256))
    assert set(small) >= {"gflop_per_iter", "seconds", "memory_mb"}
    for key in ("gflop_per_iter", "seconds", "memory_mb"):
        assert large[key] > 4 * small[key]
    assert estimate(256, 256, 3, cfg, "cuda")["seconds"] < large["seconds"] / 100
    padded = estimate(64, 64, 3, cfg.replace(padding="edge"), "cpu")
    assert padded["gflop_per_iter"] > small["gflop_per_iter"]


def test_plan_tiles_only_when_the_whole_image_would_not_fit():
    import torch

    from rdip.config import MEMORY_TILE
    from rdip.method.devices import lanes_for
    from rdip.method.planning import plan

    cfg = FitConfig(iters=10, device="cpu")
    whole = plan(200, 200, 3, cfg, available_mb=1e6)
    assert whole["tile"] is None and whole["tiles"] == 1 and "whole" in whole["message"]
    need = whole["memory_mb"]
    tiled = plan(200, 200, 3, cfg, available_mb=need)  # only MEMORY_SHARE of it may be used
    assert tiled["tile"] == MEMORY_TILE and tiled["tiles"] == 16 and tiled["memory_mb"] < need
    one = plan(64, 64, 3, cfg, available_mb=1e6)["memory_mb"]  # a tile's network
    lanes = lanes_for(torch.device("cpu"), 16, 2)  # stacks side by side on the CPU, 2 slots each
    assert tiled["memory_mb"] == pytest.approx(2 * lanes * one)
    assert (tiled["config"].tile, tiled["config"].tile_overlap) == (64, 8)  # the config's overlap
    assert plan(200, 200, 3, cfg.replace(tile=50, tile_overlap=10), available_mb=1e6)["tiles"] == 25
    with pytest.raises(MemoryError, match="--tile 64"):
        plan(200, 200, 3, cfg, auto=False, available_mb=need)


def test_cli_tiles_automatically_when_memory_is_short(tmp_path, rng, cli, monkeypatch):
    import json

    from rdip.images.files import write_image

    write_image(tmp_path / "in.png", rng.random((100, 100, 3)))
    monkeypatch.setattr("rdip.method.planning.available_memory_mb", lambda device: 1.0)
    code, _, err = cli("denoise", tmp_path / "in.png", "-o", tmp_path / "out.png", "--iters", "2",
                       "--device", "cpu", "--preset", "paper")  # paper: no tiles of its own
    assert code == 0, err
    assert "as 4 tiles of 64 (overlap 8)" in err
    record = json.loads((tmp_path / "out.json").read_text())
    assert record["tile"] == {"tile": 64, "overlap": 8} and record["estimate"]["available_mb"] == 1.0
    code, _, err = cli("denoise", tmp_path / "in.png", "-o", tmp_path / "o2.png", "--tile", "none",
                       "--preset", "paper")
    assert code == 2 and "--tile 64" in err and not (tmp_path / "o2.png").exists()


def test_plan_follows_the_presets_own_tiles():
    from rdip.method.planning import plan

    cfg = preset("default", device="cpu")  # 32×32 tiles, overlap 16: origins 0, 16, 32, 48, 58|68
    how = plan(100, 90, 3, cfg, available_mb=1e6)
    assert (how["tile"], how["overlap"], how["tiles"]) == (32, 16, 30)
    assert (how["config"].tile, how["config"].tile_overlap) == (32, 16)
    assert "as 30 tiles of 32 (overlap 16)" in how["message"]
    assert plan(32, 32, 3, cfg, available_mb=1e6)["tile"] is None  # one tile: the whole image
    whole = plan(100, 90, 3, cfg.replace(tile=0), auto=False, available_mb=1e6)  # --tile none
    assert whole["tile"] is None and whole["config"].tile == 0
    other = plan(100, 90, 3, cfg.replace(tile=50), auto=False, available_mb=1e6)  # --tile 50
    assert (other["config"].tile, other["config"].tile_overlap, other["tiles"]) == (50, 16, 9)


def test_plan_counts_every_fit_of_an_ensemble():
    from rdip.method.planning import plan
    from rdip.method.tiling import grids

    one = plan(100, 90, 3, preset("default", device="cpu"), available_mb=1e6)
    four = plan(100, 90, 3, preset("quality", device="cpu"), available_mb=1e6)
    assert four["tiles"] == sum(len(g) for g in grids(100, 90, 32, 16, 4)) > 4 * one["tiles"] - 1
    assert four["seconds"] == pytest.approx(one["seconds"] * four["tiles"] / one["tiles"])
    assert "4 fits averaged" in four["message"]
    whole = plan(32, 32, 3, preset("quality", device="cpu"), available_mb=1e6)
    assert whole["tile"] is None and whole["tiles"] == 4 and "4 fits averaged" in whole["message"]


def test_cli_default_preset_fits_tiles_and_records_them(tmp_path, rng, cli):
    import json

    from rdip.images.files import write_image

    write_image(tmp_path / "in.png", rng.random((50, 40)))
    code, _, err = cli("denoise", tmp_path / "in.png", "-o", tmp_path / "out.png", "--iters", "2",
                       "--device", "cpu", "--quiet")
    assert code == 0, err
    record = json.loads((tmp_path / "out.json").read_text())
    assert record["tile"] == {"tile": 32, "overlap": 16} and record["config"]["tile"] == 32
    code, _, err = cli("denoise", tmp_path / "in.png", "-o", tmp_path / "o2.png", "--overlap", "40")
    assert code == 2 and "overlap" in err and not (tmp_path / "o2.png").exists()


def test_estimates_count_the_typical_stop_and_slow_runs_say_how_to_go_faster():
    from rdip.method.planning import TYPICAL_STOP, plan

    cfg = preset("default", device="cpu")
    small = plan(64, 64, 3, cfg, available_mb=1e6)
    assert small["seconds_max"] == pytest.approx(small["seconds"] * cfg.iters / TYPICAL_STOP[cfg.range])
    assert "at most" in small["message"] and small["warning"] is None
    fixed = plan(64, 64, 3, cfg.replace(stop="none"), available_mb=1e6)  # no early stop: one figure
    assert fixed["seconds"] == fixed["seconds_max"] and "at most" not in fixed["message"]
    big = plan(512, 512, 3, cfg, available_mb=1e6)
    assert big["seconds"] > 600 and "--device cuda" in big["warning"] and "smaller crop" in big["warning"]
