import numpy as np
import pytest

from rdip.config import FitConfig, preset
from rdip.method.planning import estimate, fit_tiled


def test_fit_tiled_returns_the_shape(rng):
    clean = rng.random((60, 70, 3))
    cfg = preset("default", iters=2, device="cpu")
    result = fit_tiled(clean + 0.1 * rng.standard_normal(clean.shape), cfg, tile=40, overlap=10,
                       clean=clean)
    assert result.image.shape == (60, 70, 3)
    assert 0 <= result.image.min() and result.image.max() <= 1
    assert result.iters_run == 2 and result.loss.shape == (2,)
    assert set(result.metrics) == {"ssim_full", "ssim_centre", "psnr"}


def test_fit_tiled_grey_and_single_tile_equals_fit(rng):
    from rdip.method.engine import fit

    noisy = rng.random((30, 28))
    cfg = preset("default", iters=2, device="cpu")
    tiled = fit_tiled(noisy, cfg, tile=64, overlap=16)
    assert tiled.image.shape == (30, 28)
    np.testing.assert_allclose(tiled.image, fit(noisy, cfg).image, atol=1e-6)


def test_estimate_grows_with_size():
    cfg = preset("default")
    small, large = (estimate(s, s, 3, cfg, "cpu") for s in (64, 256))
    assert set(small) >= {"gflop_per_iter", "seconds", "memory_mb"}
    for key in ("gflop_per_iter", "seconds", "memory_mb"):
        assert large[key] > 4 * small[key]
    assert estimate(256, 256, 3, cfg, "cuda")["seconds"] < large["seconds"] / 100
    padded = estimate(64, 64, 3, cfg.replace(padding="edge"), "cpu")
    assert padded["gflop_per_iter"] > small["gflop_per_iter"]


def test_fit_tiled_rejects_tiles_below_the_network_minimum(rng):
    with pytest.raises(ValueError, match="minimum"):
        fit_tiled(rng.random((60, 60)), preset("default", iters=2), tile=20, overlap=4)


def test_plan_tiles_only_when_the_whole_image_would_not_fit():
    from rdip.method.planning import TILE, plan

    cfg = FitConfig(iters=10, device="cpu")
    whole = plan(200, 200, 3, cfg, available_mb=1e6)
    assert whole["tile"] is None and whole["tiles"] == 1 and "whole" in whole["message"]
    need = whole["memory_mb"]
    tiled = plan(200, 200, 3, cfg, available_mb=need)  # only MEMORY_SHARE of it may be used
    assert tiled["tile"] == TILE and tiled["tiles"] == 16 and tiled["memory_mb"] < need / 2
    assert plan(200, 200, 3, cfg, tile=50, overlap=10, available_mb=1e6)["tiles"] == 25
    with pytest.raises(MemoryError, match="--tile 64"):
        plan(200, 200, 3, cfg, tile=None, available_mb=need)


def test_cli_tiles_automatically_when_memory_is_short(tmp_path, rng, cli, monkeypatch):
    import json

    from rdip.images.files import write_image

    write_image(tmp_path / "in.png", rng.random((100, 100, 3)))
    monkeypatch.setattr("rdip.method.planning.available_memory_mb", lambda device: 1.0)
    code, _, err = cli("denoise", tmp_path / "in.png", "-o", tmp_path / "out.png", "--iters", "2",
                       "--device", "cpu", "--preset", "paper")  # paper: no tiles of its own
    assert code == 0, err
    assert "as 4 tiles of 64 (overlap 16)" in err
    record = json.loads((tmp_path / "out.json").read_text())
    assert record["tile"] == {"tile": 64, "overlap": 16} and record["estimate"]["available_mb"] == 1.0
    code, _, err = cli("denoise", tmp_path / "in.png", "-o", tmp_path / "o2.png", "--tile", "none",
                       "--preset", "paper")
    assert code == 2 and "--tile 64" in err and not (tmp_path / "o2.png").exists()


def test_plan_follows_the_presets_own_tiles():
    from rdip.method.planning import plan

    cfg = preset("default", device="cpu")  # 32×32 tiles, overlap 8
    how = plan(100, 90, 3, cfg, available_mb=1e6)
    assert (how["tile"], how["overlap"], how["tiles"]) == (32, 8, 16)
    assert (how["config"].tile, how["config"].tile_overlap) == (32, 8)
    assert "as 16 tiles of 32 (overlap 8)" in how["message"]
    assert plan(32, 32, 3, cfg, available_mb=1e6)["tile"] is None  # one tile: the whole image
    whole = plan(100, 90, 3, cfg, tile=None, available_mb=1e6)  # --tile none: never
    assert whole["tile"] is None and whole["config"].tile == 0
    other = plan(100, 90, 3, cfg, tile=50, available_mb=1e6)  # --tile 50: memory tiles' overlap
    assert (other["config"].tile, other["config"].tile_overlap) == (50, 16)
    with pytest.raises(ValueError, match="overlap"):
        plan(100, 90, 3, cfg, overlap=32, available_mb=1e6)


def test_cli_default_preset_fits_tiles_and_records_them(tmp_path, rng, cli):
    import json

    from rdip.images.files import write_image

    write_image(tmp_path / "in.png", rng.random((50, 40)))
    code, _, err = cli("denoise", tmp_path / "in.png", "-o", tmp_path / "out.png", "--iters", "2",
                       "--device", "cpu", "--quiet")
    assert code == 0, err
    record = json.loads((tmp_path / "out.json").read_text())
    assert record["tile"] == {"tile": 32, "overlap": 8} and record["config"]["tile"] == 32
    code, _, err = cli("denoise", tmp_path / "in.png", "-o", tmp_path / "o2.png", "--overlap", "40")
    assert code == 2 and "overlap" in err and not (tmp_path / "o2.png").exists()
