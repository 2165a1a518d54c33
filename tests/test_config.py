"""FitConfig and the presets (rdip.config): checks, types, round trips, what decides a result."""

import pytest

from rdip import FitConfig, preset


@pytest.mark.parametrize("field, value, message", [
    ("iters", 0, "iters must be between 1 and"), ("padding", "mirror", "unknown padding"),
    ("optimizer", "lbfgs", "optimizer must be"), ("lr", -1.0, "lr must be > 0"),
    ("device", "tpu", "device must be"), ("tile", 20, "network's minimum of 25"),
    ("tile_overlap", -1, "tile_overlap must be >= 0"), ("range", "0-255", "range must be one of"),
    ("margin", 1.0, "margin must be in \\[0, 1\\)"), ("margin", -0.1, "margin must be in"),
])
def test_bad_config(field, value, message):
    with pytest.raises(ValueError, match=message):
        FitConfig(**{field: value})


@pytest.mark.parametrize("field, value", [("lr", float("inf")), ("h_leak", float("nan")),
                                          ("z_noise_std", float("inf")), ("epsilon", float("nan"))])
def test_config_numbers_must_be_finite(field, value):
    with pytest.raises(ValueError, match=f"{field} must be a finite number"):
        FitConfig(**{field: value})


@pytest.mark.parametrize("field, value, kind", [("iters", "5", "an integer"), ("iters", True, "an integer"),
                                                ("lr", "1e-3", "a number"), ("padding", 3, "a string")])
def test_config_fields_must_have_their_types(field, value, kind):
    with pytest.raises(TypeError, match=f"{field} must be {kind}"):
        FitConfig(**{field: value})


def test_config_round_trip():
    cfg = preset("paper", padding="edge")
    assert FitConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown configuration keys: colour"):
        FitConfig.from_dict({"colour": 1})


def test_settings_leave_out_where_a_fit_runs_and_stack_keys_its_per_network_fields():
    cfg = preset("paper", seed=3, padding="edge")
    assert cfg.settings() == cfg.replace(device="cpu", chunk=7, sync_every=5, capture="graph",
                                         formulation="bmm").settings()
    assert set(cfg.to_dict()) - set(cfg.settings()) == {"device", "chunk", "sync_every", "capture",
                                                        "formulation", "preset"}
    assert cfg.settings(per_network=False) == cfg.replace(seed=9, padding="reflect").settings(per_network=False)
    assert cfg.settings() != cfg.replace(seed=9).settings()
    assert cfg.stack_key() == cfg.replace(seed=9, padding="reflect").stack_key()
    assert cfg.stack_key() != cfg.replace(device="cpu").stack_key()  # one stack runs on one device
    assert cfg.stack_key() != cfg.replace(lr=1e-4).stack_key()


def test_tiles_below_the_network_minimum_or_overlapping_whole_are_refused():
    preset("default", tile=24, tile_overlap=8, padding="context", pad_width=4)  # 32×32 with its context
    with pytest.raises(ValueError, match="with its padding of 2 on each side, at least the network's minimum"):
        preset("default", tile=20, tile_overlap=4, padding="context", pad_width=2)
    with pytest.raises(ValueError, match="network's minimum of 25"):
        preset("default", tile=20, tile_overlap=4)
    with pytest.raises(ValueError, match="smaller than the tile"):
        preset("default", tile=32, tile_overlap=32)
    assert preset("default", tile=0, tile_overlap=40).tile_overlap == 40  # kept for later tiling


def test_a_configuration_takes_seeds_to_2_to_the_62_the_command_line_to_2_to_the_32_minus_1():
    """The command line's and a study file's seeds stop at SEED_LIMIT (rdip compare's noise seed
    ``seed × 2³² + crc32`` stays below 2⁶⁴); a configuration takes the seeds derived from them."""
    from rdip.config import MAX_SEED, SEED_LIMIT

    assert SEED_LIMIT == 2**32 - 1 and SEED_LIMIT * 2**32 + 2**32 - 1 < 2**64
    assert FitConfig(seed=SEED_LIMIT + 1).seed == 2**32 and FitConfig(seed=MAX_SEED).seed == 2**62
    for seed in (-1, MAX_SEED + 1):
        with pytest.raises(ValueError, match="seed must be between 0 and 2\\*\\*62"):
            FitConfig(seed=seed)
