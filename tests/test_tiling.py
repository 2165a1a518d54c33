import numpy as np
import pytest

from rdip.method.tiling import blend, grids, positions, seam_ratio, seams, split


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


@pytest.mark.parametrize("shape, tile, overlap, count", [
    ((64, 64), 32, 8, 2), ((64, 64), 32, 16, 2), ((100, 70), 32, 8, 4), ((257, 40), 40, 10, 3)])
def test_shifted_grids_cover_the_image_and_overlap_enough(shape, tile, overlap, count, rng):
    layouts = grids(shape[0], shape[1], tile, overlap, count)
    assert layouts[0] == positions(shape[0], shape[1], tile, overlap)  # fit 0: the usual grid
    x = rng.random(shape)
    for k, where in enumerate(layouts):
        tops = sorted({t for t, _ in where})
        assert tops[0] == 0 and tops[-1] == shape[0] - tile
        assert all(b - a <= tile - overlap for a, b in zip(tops, tops[1:]))  # neighbours overlap
        if k and shape[0] > 2 * tile:  # the grid moved: its inner tile borders are elsewhere
            assert set(tops[1:-1]).isdisjoint({t for t, _ in layouts[0]})
        tiles, _ = split(x, tile, overlap, where)
        np.testing.assert_allclose(blend(tiles, where, shape, overlap), x, atol=1e-12)


def test_seams_mark_rows_and_columns_at_inner_tile_borders():
    borders, interiors = seams(64, 64, 32, 16)
    assert not (borders & interiors).any()
    assert borders[10].nonzero()[0].tolist() == [14, 15, 16, 17, 18, 29, 30, 31, 32, 33, 34,
                                                  45, 46, 47, 48, 49]
    assert not borders[:4].any() and not interiors[:, -4:].any()  # the outer margin is neither


def test_seam_ratio_sees_a_grid_and_not_a_flat_error(rng):
    clean = np.full((64, 64), 0.5)
    flat = clean + 0.05 * rng.standard_normal(clean.shape)
    assert seam_ratio(flat, clean, 32, 8) == pytest.approx(1.0, abs=0.1)
    borders, _ = seams(64, 64, 32, 8)
    lines = flat + np.where(borders, 0.05, 0.0)  # larger errors along the tile borders
    assert seam_ratio(lines, clean, 32, 8) > 1.3  # ≈1.45: mean |N(0.05, 0.05²)| / mean |N(0, 0.05²)|
    with pytest.raises(ValueError, match="no tile borders"):
        seam_ratio(clean[:32, :32], clean[:32, :32], 32, 8)
