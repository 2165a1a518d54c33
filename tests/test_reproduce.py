import csv
import dataclasses
import json

import numpy as np
import pytest

from rdip.config import preset
from rdip.experiments.reproduce import COLUMNS, Experiment, paper_table, run_reproduce


def test_paper_table_means():
    rows = paper_table()
    assert len(rows) == 15
    means = {c: sum(r[c] for r in rows) / 15 for c in COLUMNS}
    assert means["ssim_full_none"] == pytest.approx(0.863, abs=5e-4)
    assert means["ssim_center_none"] == pytest.approx(0.900, abs=5e-4)


def test_reproduce_writes_five_files_and_resumes(tmp_path):
    exp = Experiment(config=preset("paper", iters=4, eval_every=2, device="cpu"), indices=(0, 1),
                     paddings=("none", "edge", "reflect"), seeds=(0,))
    logs = []
    rows = run_reproduce(exp, tmp_path, progress=False, log=logs.append)
    for name in ("table2.csv", "table2.md", "fig3.png", "curves.png", "config.json"):
        assert (tmp_path / name).stat().st_size > 0
    with open(tmp_path / "table2.csv") as f:
        header = next(csv.reader(f))
    assert header[:7] == ["image", *COLUMNS]
    assert [r["image"] for r in rows] == [0, 1]
    assert "0 already done" in logs[0]
    assert "ssim_full_none" in (tmp_path / "table2.md").read_text()
    assert json.loads((tmp_path / "config.json").read_text())["experiment"]["indices"] == [0, 1]

    saved = sorted((tmp_path / "fits").glob("*.json"))
    assert len(saved) == 6
    mtimes = [p.stat().st_mtime_ns for p in saved]
    logs.clear()
    again = run_reproduce(exp, tmp_path, progress=False, log=logs.append)
    assert "6 already done" in logs[0]
    assert [p.stat().st_mtime_ns for p in saved] == mtimes  # nothing refitted
    assert again == rows

    other = Experiment(config=exp.config.replace(lr=1e-3), indices=(0, 1), seeds=(0,))
    with pytest.raises(FileExistsError, match="another configuration"):
        run_reproduce(other, tmp_path, progress=False, log=logs.append)


def test_partial_run_finishes_the_rest(tmp_path):
    exp = Experiment(config=preset("paper", iters=3, device="cpu"), indices=(0,), paddings=("none",),
                     seeds=(0,))
    run_reproduce(exp, tmp_path, progress=False, log=lambda *_: None)
    more = Experiment(config=exp.config, indices=(0, 2), paddings=("none", "zero"), seeds=(0,))
    logs = []
    rows = run_reproduce(more, tmp_path, progress=False, log=logs.append)
    assert "1 already done" in logs[0] and len(rows) == 2 and "ssim_full_zero" in rows[0]

def test_fits_saved_before_a_field_existed_match_its_default():
    exp = Experiment(config=preset("paper"))
    key = exp.key()
    older = {**key, "config": {k: v for k, v in key["config"].items() if k != "tile"}}
    assert exp.matches(key) and exp.matches(older)
    assert not Experiment(config=preset("paper", tile=32)).matches(older)
    assert not exp.matches({**key, "sigma": 0.2}) and not exp.matches({"config": None})


def test_resume_keys_distinguish_ranges():
    unit, symmetric = Experiment(config=preset("paper-unit")), Experiment(config=preset("paper"))
    assert symmetric.config.range == "symmetric" and unit.config.range == "unit"
    other = Experiment(config=preset("paper", range="unit"))
    assert not other.matches(symmetric.key()) and not symmetric.matches(other.key())
    older = {**unit.key(), "config": {k: v for k, v in unit.key()["config"].items() if k != "range"}}
    assert unit.matches(older)  # saved before the range existed: fitted in [0, 1]
    assert not Experiment(config=preset("paper-unit", range="symmetric")).matches(older)


@pytest.mark.parametrize("fit_range, unit_sigma", [("unit", 0.1), ("symmetric", 0.05)])
def test_noise_is_added_in_the_fitting_range(fit_range, unit_sigma):
    """σ = 0.1 in the fitting range: 0.1 in [0, 1], 0.05 in [0, 1] units when fitting in [-1, 1]."""
    from rdip.method.inputs import to_range

    flat = np.full((128, 128, 3), 0.5)
    exp = Experiment(config=preset("paper", range=fit_range), sigma=0.1)
    noisy = exp.noisy(flat, index=3, seed=1)
    assert exp.unit_sigma == unit_sigma
    # 49152 samples: the sample std is within 0.6% (3 standard errors) of σ
    assert np.std(to_range(noisy, fit_range) - to_range(flat, fit_range)) == pytest.approx(0.1, rel=0.01)
    assert np.std(noisy - flat) == pytest.approx(unit_sigma, rel=0.01)
    with pytest.raises(ValueError, match="sigma must be a finite number in \\(0, 2\\)"):
        Experiment(config=preset("paper"), sigma=float("nan"))


def test_force_deletes_the_fits_it_replaces_before_fitting(tmp_path, monkeypatch):
    """A --force run of another configuration that fails half-way leaves no fit of the old one
    for a later run to resume under the new key (T = 2 fits were once reused as T = 3)."""
    import rdip.experiments.reproduce

    old = Experiment(config=preset("paper", iters=2, device="cpu"), indices=(0,), paddings=("none",),
                     seeds=(0,))
    run_reproduce(old, tmp_path, progress=False, log=lambda *_: None)
    assert len(list((tmp_path / "fits").glob("*.json"))) == 1

    def crash(*args, **kwargs):
        raise RuntimeError("power cut")

    new = Experiment(config=old.config.replace(iters=3), indices=(0,), paddings=("none",), seeds=(0,))
    monkeypatch.setattr(rdip.experiments.reproduce, "fit_many", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        run_reproduce(new, tmp_path, force=True, progress=False, log=lambda *_: None)
    assert list((tmp_path / "fits").iterdir()) == []
    monkeypatch.undo()
    logs = []
    run_reproduce(new, tmp_path, progress=False, log=logs.append)
    assert "0 already done" in logs[0]
    saved = json.loads(next((tmp_path / "fits").glob("*.json")).read_text())
    assert saved["config"]["iters"] == 3 and saved["iters_run"] == 3


def test_force_deletes_only_rdip_s_fits(tmp_path):
    """--force deletes the fits rdip saved, by their names, and no file of the user's in fits/:
    other names, files in a sub-folder, links (nor what they point to)."""
    exp = Experiment(config=preset("paper", iters=2, device="cpu"), indices=(0,), paddings=("none",), seeds=(0,))
    run_reproduce(exp, tmp_path, progress=False, log=lambda *_: None)
    fits = tmp_path / "fits"
    theirs = {"notes.json": "mine", "none-0000-s0-backup.npy": "mine too", "old/none-0000-s1.json": "kept"}
    for name, text in theirs.items():
        (fits / name).parent.mkdir(exist_ok=True)
        (fits / name).write_text(text)
    (fits / "edge-0000-s0.json").symlink_to(tmp_path / "victim.json")
    (tmp_path / "victim.json").write_text("not rdip's")
    fitted = (fits / "none-0000-s0.json").stat().st_mtime_ns
    again = dataclasses.replace(exp, config=exp.config.replace(iters=3))
    run_reproduce(again, tmp_path, force=True, progress=False, log=lambda *_: None)
    assert {n: (fits / n).read_text() for n in theirs} == theirs
    assert (fits / "edge-0000-s0.json").is_symlink() and (tmp_path / "victim.json").read_text() == "not rdip's"
    assert json.loads((fits / "none-0000-s0.json").read_text())["config"]["iters"] == 3
    assert (fits / "none-0000-s0.json").stat().st_mtime_ns != fitted


def test_a_fit_s_file_that_is_a_symbolic_link_is_refused_first(tmp_path):
    exp = Experiment(config=preset("paper", iters=2, device="cpu"), indices=(0,), paddings=("none",), seeds=(0,))
    (tmp_path / "out" / "fits").mkdir(parents=True)
    (tmp_path / "victim.npy").write_bytes(b"not rdip's")
    (tmp_path / "out" / "fits" / "none-0000-s0.npy").symlink_to(tmp_path / "victim.npy")
    for force in (False, True):
        with pytest.raises(ValueError, match="none-0000-s0.npy is a symbolic link; nothing was written"):
            run_reproduce(exp, tmp_path / "out", force=force, progress=False, log=lambda *_: None)
    assert (tmp_path / "victim.npy").read_bytes() == b"not rdip's"
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == ["fits", "none-0000-s0.npy"]


def test_set_device_in_reproduce(cli, tmp_path):
    code, _, err = cli("reproduce", "--indices", "0", "--seeds", "0", "--paddings", "none", "--iters", 1,
                       "--set", "device=cpu", "--out", tmp_path / "r", "--quiet")
    assert code == 0, err
    assert json.loads((tmp_path / "r" / "config.json").read_text())["experiment"]["config"]["device"] == "cpu"


def test_every_padding_mode_runs_and_unusable_saved_fits_are_fitted_again(tmp_path):
    """--paddings circular failed in curves.png (its line style was read as data); a saved fit
    whose image is damaged or of another shape is fitted again, not loaded."""
    exp = Experiment(config=preset("paper", iters=2, eval_every=1, device="cpu"), indices=(0,),
                     paddings=("none", "circular", "zero"), seeds=(0,))
    run_reproduce(exp, tmp_path, progress=False, log=lambda *_: None)
    assert (tmp_path / "curves.png").stat().st_size > 0
    np.save(tmp_path / "fits" / "circular-0000-s0.npy", np.zeros((16, 16, 3), np.float32))
    (tmp_path / "fits" / "zero-0000-s0.npy").write_bytes(b"\x93NUMPY cut short")
    logs = []
    run_reproduce(exp, tmp_path, progress=False, log=logs.append)
    assert "1 already done" in logs[0]
    assert np.load(tmp_path / "fits" / "circular-0000-s0.npy").shape == (32, 32, 3)
    assert np.load(tmp_path / "fits" / "zero-0000-s0.npy").shape == (32, 32, 3)


@pytest.mark.parametrize("dtype, top", [("float32", 1.0), ("float64", 1.0), ("uint16", 65535), ("uint8", 255)])
def test_archives_are_read_with_their_sample_type(tmp_path, dtype, top):
    """A .npz of floats in [0, 1] (or uint16) was read as uint8: all zeros, scored as if fine."""
    from rdip.experiments.compare import load_images

    rng = np.random.default_rng(0)
    unit = rng.random((2, 32, 32, 3))
    np.savez(tmp_path / "c.npz", images=(unit * top).astype(dtype) if top > 1 else unit.astype(dtype),
             labels=[0, 1], indices=[5, 7])
    images = load_images("cifar:7,5", tmp_path / "c.npz")
    assert [name for name, _ in images] == ["cifar-0007", "cifar-0005"]
    np.testing.assert_allclose(images[0][1], unit[1], atol=1 / top if top > 1 else 1e-6)
    exp = Experiment(config=preset("paper", iters=2, device="cpu"), indices=(5,), paddings=("none",),
                     seeds=(0,), data=str(tmp_path / "c.npz"))
    [row] = run_reproduce(exp, tmp_path / "r", progress=False, log=lambda *_: None)
    assert row["ssim_full_noisy"] > 0.3  # a real image, not zeros
