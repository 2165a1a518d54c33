"""Saved runs (rdip.store): when a saved result may be reused, and the run store."""

import json

import numpy as np
import pytest

from rdip.config import preset
from rdip.store import RunStore, differences, same


def test_same_compares_configurations_on_their_settings_only():
    key = {"config": preset("paper").settings(), "sigma": 0.1}
    saved = {"config": preset("paper", device="cuda", chunk=256).to_dict(), "sigma": 0.1, "other": 1}
    assert same(saved, key)  # where it ran and extra fields do not matter
    assert not same({**saved, "sigma": 0.2}, key)
    assert not same({**saved, "config": preset("paper", lr=0.5).to_dict()}, key)
    assert not same(None, key) and not same({"sigma": 0.1}, key)


def test_a_field_added_after_a_run_was_saved_counts_at_its_default():
    config = preset("paper-unit").settings()
    older = {k: v for k, v in config.items() if k != "range"}  # saved before `range` existed
    assert differences(older, config) == {}
    assert differences(older, preset("paper-unit", range="symmetric").settings()) == {
        "range": ("unit", "symmetric")}


def test_run_store_saves_both_files_and_knows_what_is_done(tmp_path, rng):
    store = RunStore(tmp_path / "runs")
    image = rng.random((4, 5, 3))
    assert not store.done("tv/a-s0.1") and store.record("tv/a-s0.1") is None
    store.save("tv/a-s0.1", {"sigma": 0.1, "metrics": {"psnr": 30.0}}, image)
    assert store.done("tv/a-s0.1") and store.done("tv/a-s0.1", {"sigma": 0.1})
    assert not store.done("tv/a-s0.1", {"sigma": 0.2})
    record, saved = store.load("tv/a-s0.1")
    assert record["metrics"]["psnr"] == 30.0 and saved.dtype == np.float32
    np.testing.assert_allclose(saved, image, atol=1e-7)  # float32
    (tmp_path / "runs" / "tv" / "a-s0.1.npy").unlink()  # a record without its image is not done
    assert not store.done("tv/a-s0.1")
    store.clear()
    assert list((tmp_path / "runs").rglob("*.*")) == []


def test_an_unreadable_record_is_not_done(tmp_path):
    store = RunStore(tmp_path)
    np.save(tmp_path / "x.npy", np.zeros(2))
    (tmp_path / "x.json").write_text("{cut short")
    assert store.record("x") is None and not store.done("x")
    with pytest.raises(json.JSONDecodeError):
        store.load("x")
