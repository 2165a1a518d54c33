import numpy as np
import pytest

from rdip.config import FitConfig, preset
from rdip.tiles import blend, estimate, fit_tiled, split


@pytest.mark.parametrize("shape, tile, overlap", [
    ((64, 64), 64, 16),      # image == tile: one tile
    ((20, 30), 64, 16),      # image smaller than the tile
    ((100, 70, 3), 32, 8),   # not a multiple of the step
    ((97, 131), 40, 0),      # no overlap
    ((50, 45, 1), 25, 24),   # overlap just under the tile
    ((33, 300, 3), 30, 10),  # one axis smaller than the tile
])
def test_split_blend_round_trip(shape, tile, overlap, rng):
    x = rng.random(shape)
    tiles, positions = split(x, tile, overlap)
    assert len({t.shape for t in tiles}) == 1
    assert tiles[0].shape[:2] == (min(tile, shape[0]), min(tile, shape[1]))
    covered = np.zeros(shape[:2], bool)
    for t, (top, left) in zip(tiles, positions):
        covered[top:top + t.shape[0], left:left + t.shape[1]] = True
        assert top + t.shape[0] <= shape[0] and left + t.shape[1] <= shape[1]
    assert covered.all()
    np.testing.assert_allclose(blend(tiles, positions, x.shape, overlap), x, rtol=0, atol=1e-12)


def test_constant_tiles_have_no_seam():
    tiles, positions = split(np.full((90, 77, 3), 0.3), 32, 12)
    out = blend(tiles, positions, (90, 77, 3), 12)
    np.testing.assert_allclose(out, 0.3, rtol=0, atol=1e-15)


def test_blend_fades_between_disagreeing_tiles():
    tiles, positions = split(np.zeros((40, 64)), 40, 16)
    tiles = [np.full(t.shape, float(k)) for k, t in enumerate(tiles)]  # 0 on the left, 1 on the right
    row = blend(tiles, positions, (40, 64), 16)[20]
    assert row[0] == 0 and row[-1] == 1
    assert np.all(np.diff(row) >= 0) and np.abs(np.diff(row)).max() < 0.2  # a ramp, not a step


def test_split_rejects_bad_overlap():
    with pytest.raises(ValueError, match="overlap"):
        split(np.zeros((50, 50)), 32, 32)


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
    from rdip.fit import fit

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
    from rdip.tiles import TILE, plan

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

    from rdip.io import write_image

    write_image(tmp_path / "in.png", rng.random((100, 100, 3)))
    monkeypatch.setattr("rdip.tiles.available_memory_mb", lambda device: 1.0)
    code, _, err = cli("denoise", tmp_path / "in.png", "-o", tmp_path / "out.png", "--iters", "2",
                       "--device", "cpu")
    assert code == 0, err
    assert "as 4 tiles of 64 (overlap 16)" in err
    record = json.loads((tmp_path / "out.json").read_text())
    assert record["tile"] == {"tile": 64, "overlap": 16} and record["estimate"]["available_mb"] == 1.0
    code, _, err = cli("denoise", tmp_path / "in.png", "-o", tmp_path / "o2.png", "--tile", "none")
    assert code == 2 and "--tile 64" in err and not (tmp_path / "o2.png").exists()
