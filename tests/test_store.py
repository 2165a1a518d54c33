"""Saved runs (rdip.store): when a saved result may be reused, the run store and the run log."""

import json

import numpy as np
import pytest

from rdip.config import preset
from rdip.store import RunLog, RunStore, differences, same


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
    (tmp_path / "runs" / "tv" / "notes.json").write_text("the user's")
    store.clear(r"tv/a-s[0-9.]+")  # only names of the caller's runs
    assert [p.name for p in (tmp_path / "runs").rglob("*.*")] == ["notes.json"]


def test_an_unreadable_record_is_not_done(tmp_path):
    store = RunStore(tmp_path)
    np.save(tmp_path / "x.npy", np.zeros(2))
    (tmp_path / "x.json").write_text("{cut short")
    assert store.record("x") is None and not store.done("x")
    with pytest.raises(json.JSONDecodeError):
        store.load("x")


def test_run_log_skips_damaged_lines_and_keeps_the_rest(tmp_path):
    """A line cut short by a crash, bytes that are not UTF-8, JSON that is not a run or a run whose
    scores are not a table: each is skipped (its run is run again), the good lines are kept."""
    path = tmp_path / "runs.jsonl"
    good = {"name": "tv/a", "sigma": 0.1, "scores": {"psnr": 30.0}}
    path.write_bytes(b"\n".join([json.dumps(good).encode(), b'{"name": "tv/b", "sig', b"\xff\xfe\x00 not text",
                                 b"[1, 2]", b'{"sigma": 0.1}', b'{"name": "tv/c", "scores": "high"}']))
    log = RunLog(path)
    assert list(log.records()) == ["tv/a"] and log.done("tv/a", {"sigma": 0.1})
    assert not log.done("tv/b") and not log.done("tv/c")
    log.save("tv/b", {"sigma": 0.1, "scores": {"psnr": float("inf")}})  # after the cut-short line
    log.rewrite(["tv/b", "tv/a"])
    assert path.read_text().splitlines() == [json.dumps({"name": "tv/b", "sigma": 0.1, "scores": {"psnr": None}}),
                                             json.dumps(good)]  # standard JSON: ∞ as null


def test_run_log_runs_again_a_run_whose_kept_image_is_damaged(tmp_path, rng):
    log = RunLog(tmp_path / "runs.jsonl", tmp_path / "images")
    log.save("tv/a", {"sigma": 0.1}, rng.random((4, 4)))
    log.save("tv/b", {"sigma": 0.1})  # no image kept: done all the same
    assert log.done("tv/a") and log.done("tv/b") and log.load("tv/b")[1] is None
    (tmp_path / "images" / "tv" / "a.npy").write_bytes(b"\x93NUMPY cut short")
    assert not log.done("tv/a") and log.load("tv/a")[1] is None
