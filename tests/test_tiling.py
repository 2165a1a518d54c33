import numpy as np
import pytest

from rdip.method.tiling import blend, split


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
