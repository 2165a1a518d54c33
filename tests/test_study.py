"""``rdip study`` (rdip.experiments.study): a tiny study end to end, resuming, the noise, the
batches, ``--workers``, and bad input refused in one line with nothing written."""

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from conftest import quiet, write_png
from test_hostile import snapshot

from rdip.experiments import study as study_module
from rdip.experiments.study import Plan, batches, noise_seed, run_study
from rdip.experiments.studyfile import read_study
from rdip.images.noise import add_noise

TINY = """
title = "tiny"
reference = "nlmeans"

[sets.cifar]
images = "cifar:0-1"
sigma = [0.1]

[variants.rdip]
preset = "default"
iters = 2
device = "cpu"

[variants.tv]
method = "tv"

[variants.nlmeans]
method = "nlmeans"
"""


def study_file(tmp_path, text: str = TINY):
    path = tmp_path / "tiny.toml"
    path.write_text(textwrap.dedent(text))
    return path


def rows(out) -> dict:
    return {r["name"]: r for r in map(json.loads, (out / "runs.jsonl").read_text().splitlines())}


def test_a_tiny_study_end_to_end(cli, tmp_path):
    code, out, err = cli("study", study_file(tmp_path), "-o", tmp_path / "out", "-q")
    assert code == 0 and err == ""
    folder = tmp_path / "out"
    assert {p.name for p in folder.iterdir()} >= {"runs.jsonl", "summary.csv", "summary.md", "report.html",
                                                  "study.toml", "images"}
    assert (folder / "study.toml").read_text() == (tmp_path / "tiny.toml").read_text()
    saved = rows(folder)
    assert list(saved) == [f"{v}/cifar-000{i}-s0.1-r0" for v in ("rdip", "tv", "nlmeans") for i in (0, 1)]
    first = saved["rdip/cifar-0000-s0.1-r0"]
    assert first["config"]["iters"] == 2 and first["config"]["preset"] == "default"  # the full configuration
    assert first["config"]["seed"] == 0 and first["noise_seed"] == noise_seed("cifar-0000", 0.1, 0)
    assert first["scores"]["iters"] == 2 and saved["tv/cifar-0001-s0.1-r0"]["method"] == "tv"
    assert np.load(folder / "images" / "tv" / "cifar-0001-s0.1-r0.npy").shape == (32, 32, 3)
    # the paired difference of summary.csv, by hand from runs.jsonl
    diffs = [saved[f"tv/cifar-000{i}-s0.1-r0"]["scores"]["ssim_full"]
             - saved[f"nlmeans/cifar-000{i}-s0.1-r0"]["scores"]["ssim_full"] for i in (0, 1)]
    summary = {(r["variant"], r["score"]): r for r in csv.DictReader((folder / "summary.csv").open())}
    tv = summary[("tv", "ssim_full")]
    assert float(tv["diff"]) == pytest.approx(np.mean(diffs)) and tv["reference"] == "nlmeans"
    assert int(tv["wins"]) + int(tv["losses"]) == 2
    assert float(tv["mean"]) == pytest.approx(np.mean([saved[f"tv/cifar-000{i}-s0.1-r0"]["scores"]["ssim_full"]
                                                       for i in (0, 1)]))
    text = (folder / "summary.md").read_text()
    assert "## cifar, σ=0.1 (2 images × 1 seed)" in text and "| noisy input |" in text
    assert "| tv | nlmeans | " in text and "tiny" in (folder / "report.html").read_text()


def test_a_rerun_computes_nothing_and_a_changed_variant_only_its_runs(tmp_path, monkeypatch):
    path, out = study_file(tmp_path), tmp_path / "out"
    fitted = []
    real = study_module.fit_batch
    monkeypatch.setattr(study_module, "fit_batch", lambda b, **k: fitted.extend(b.names) or real(b, **k))
    run_study(read_study(path), out, progress=False, log=quiet)
    assert len(fitted) == 6
    before = rows(out)
    fitted.clear()
    lines = []
    run_study(read_study(path), out, progress=False, log=lines.append)
    assert fitted == [] and "6 already done" in lines[0] and "0 to run" in lines[0]
    path.write_text(path.read_text().replace("iters = 2", "iters = 3"))
    run_study(read_study(path), out, progress=False, log=quiet)
    assert fitted == ["rdip/cifar-0000-s0.1-r0", "rdip/cifar-0001-s0.1-r0"]
    after = rows(out)
    assert list(after) == list(before)  # one line per run, in the study's order
    assert after["rdip/cifar-0000-s0.1-r0"]["config"]["iters"] == 3
    assert all(after[n] == before[n] for n in before if not n.startswith("rdip/"))  # untouched


def test_workers_2_give_the_results_of_workers_1(tmp_path):
    path = study_file(tmp_path, TINY.replace('[variants.nlmeans]\nmethod = "nlmeans"', "").replace(
        'reference = "nlmeans"', ""))
    for workers in (1, 2):
        run_study(read_study(path), tmp_path / f"w{workers}", workers=workers, progress=False, log=quiet)
    one, two = rows(tmp_path / "w1"), rows(tmp_path / "w2")
    assert list(one) == list(two) and len(one) == 4
    for name in one:
        drop = lambda r: {**r, "scores": {k: v for k, v in r["scores"].items() if k != "seconds"}}  # noqa: E731
        assert drop(one[name]) == drop(two[name])
        assert np.array_equal(np.load(tmp_path / "w1" / "images" / f"{name}.npy"),
                              np.load(tmp_path / "w2" / "images" / f"{name}.npy"))


def test_every_variant_gets_the_noise_of_its_seeding(tmp_path):
    study = read_study(study_file(tmp_path))
    plan = Plan(study)
    clean = dict(study.sets["cifar"].images)["cifar-0001"]
    runs = [plan.runs[f"{v}/cifar-0001-s0.1-r0"] for v in ("rdip", "tv")]
    expected = add_noise(clean, 0.1, seed=noise_seed("cifar-0001", 0.1, 0))  # as rdip compare
    assert all(np.array_equal(plan.noisy(r), expected) for r in runs)
    study.seeding, study.seeds = "reproduce", (2,)
    run = Plan(study).runs["rdip/cifar-0001-s0.1-r2"]
    assert (run.noise, run.net) == (20001, 20001)  # as rdip reproduce: image + 10000 × seed
    study.seeding = "denoise"
    assert (Plan(study).runs["rdip/cifar-0001-s0.1-r2"].noise, Plan(study).runs["tv/cifar-0001-s0.1-r2"].net) == (2, 2)


def test_batches_stack_an_rdip_variant_by_shape_and_chunk(tmp_path, rng):
    for name, shape in (("a", (30, 30)), ("b", (30, 30)), ("c", (32, 32)), ("d", (30, 30))):
        write_png(tmp_path / f"{name}.png", rng.integers(0, 256, shape).astype(np.uint8))
    study = read_study(study_file(tmp_path, TINY.replace('"cifar:0-1"', '"."').replace(
        "iters = 2", "iters = 2\nchunk = 2")))
    plan = Plan(study)
    got = [b.names for b in batches(plan, list(plan.runs))]
    assert got[:3] == [["rdip/a-s0.1-r0", "rdip/b-s0.1-r0"], ["rdip/d-s0.1-r0"], ["rdip/c-s0.1-r0"]]
    assert got[3:] == [[f"{m}/{n}-s0.1-r0"] for m in ("tv", "nlmeans") for n in "abcd"]  # one call each


@pytest.mark.parametrize("change, words", [
    (("iters = 2", "iters = -2"), "tiny.toml, line 11, variants.rdip.iters: iters must be between"),
    (('"cifar:0-1"', '["../../absent/01.png"]'), "absent/01.png: no such file or folder"),
    (('method = "tv"', 'method = "tv"\nweight = "x"'), "line 16, variants.tv.weight: tv.weight needs a float"),
    (('method = "nlmeans"', 'method = "nlmeans"\npatch_size = -1'),  # the last variant: before the first
     "line 19, variants.nlmeans.patch_size: nlmeans.patch_size must be between 1 and 100"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(cli, tmp_path, change, words):
    path = study_file(tmp_path, TINY.replace(*change))
    before = snapshot(tmp_path)
    code, out, err = cli("study", path, "-o", tmp_path / "out")
    assert code == 2 and out == ""
    assert err.startswith("rdip: error: ") and err.count("\n") == 1 and words in err, err
    assert snapshot(tmp_path) == before


def test_a_folder_that_is_not_a_study_is_refused_and_check_writes_nothing(cli, tmp_path):
    path = study_file(tmp_path)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    before = snapshot(tmp_path)
    code, _, err = cli("study", path, "-o", tmp_path / "notes")
    assert code == 2 and "holds files but no runs.jsonl" in err
    code, out, _ = cli("study", path, "-o", tmp_path / "new", "--check")
    assert code == 0 and "6 to run" in out and snapshot(tmp_path) == before


def test_a_runs_file_rdip_did_not_write_is_never_taken_for_a_study_s(cli, tmp_path):
    """A user's folder holding a runs.jsonl (and a summary.md) of their own: refused, both kept."""
    path, theirs = study_file(tmp_path), tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "runs.jsonl").write_text('{"name": "mine", "scores": {}}\n{"name": "also mine"}\n')
    (theirs / "summary.md").write_text("my own summary")
    before = snapshot(tmp_path)
    code, out, err = cli("study", path, "-o", theirs, "-q")
    assert code == 2 and err.count("\n") == 1 and "holds a runs.jsonl that rdip study did not write" in err
    assert snapshot(tmp_path) == before


def test_no_image_is_written_through_a_symbolic_link_under_images(cli, tmp_path):
    """A study's images/NAME (or an image file) that is a link elsewhere: refused before anything
    is run, the folder it points to untouched."""
    path, out = study_file(tmp_path, TINY.split("[variants.rdip]")[0].replace('reference = "nlmeans"', "")
                           + '[variants.tv]\nmethod = "tv"\n'), tmp_path / "out"
    run_study(read_study(path), out, progress=False, log=quiet)
    elsewhere = tmp_path / "elsewhere"
    (out / "images" / "tv").rename(elsewhere)
    (out / "images" / "tv").symlink_to(elsewhere, target_is_directory=True)
    (out / "runs.jsonl").write_text("")  # every run to do again
    before = snapshot(tmp_path)
    code, _, err = cli("study", path, "-o", out, "-q")
    assert code == 2 and err.count("\n") == 1 and "images/tv is a symbolic link" in err, err
    assert snapshot(tmp_path) == before
    (out / "images" / "tv").unlink()
    (out / "images" / "tv").mkdir()
    (out / "images" / "tv" / "cifar-0000-s0.1-r0.npy").symlink_to(elsewhere / "cifar-0000-s0.1-r0.npy")
    code, _, err = cli("study", path, "-o", out, "-q")
    assert code == 2 and "cifar-0000-s0.1-r0.npy is a symbolic link" in err, err


def test_the_lock_is_taken_before_the_runs_are_read(tmp_path, monkeypatch):
    """Runs another study process saves while this one waits to start are kept, not dropped when
    runs.jsonl is rewritten: it is read under the lock."""
    path, out = study_file(tmp_path, TINY.split("[variants.rdip]")[0].replace('reference = "nlmeans"', "")
                           + '[variants.tv]\nmethod = "tv"\n'), tmp_path / "out"
    run_study(read_study(path), out, progress=False, log=quiet)
    real = study_module.folder_lock

    @contextmanager
    def after_another(lock, busy):
        with real(lock, busy):  # the other process saved its run just before it let go
            with (out / "runs.jsonl").open("a") as f:
                f.write('{"name": "other/run", "scores": {}}\n')
            yield

    monkeypatch.setattr(study_module, "folder_lock", after_another)
    run_study(read_study(path), out, progress=False, log=quiet)
    assert list(rows(out)) == ["tv/cifar-0000-s0.1-r0", "tv/cifar-0001-s0.1-r0", "other/run"]


def test_a_damaged_runs_file_resumes_and_runs_again_only_what_it_lost(tmp_path, monkeypatch):
    """A line cut short, bytes that are not UTF-8 and a damaged image: those runs are run again,
    the others kept; runs.jsonl is rewritten with one good line per run."""
    path, out = study_file(tmp_path, TINY.split("[variants.rdip]")[0] + '[variants.tv]\nmethod = "tv"\n'
                           '[variants.nlmeans]\nmethod = "nlmeans"\n'), tmp_path / "out"
    run_study(read_study(path), out, progress=False, log=quiet)
    lines = (out / "runs.jsonl").read_bytes().splitlines()
    assert len(lines) == 4
    (out / "runs.jsonl").write_bytes(b"\n".join([lines[0], lines[1][:30], b"\xff\xfe\x00", lines[2], lines[3]]))
    (out / "images" / "nlmeans" / "cifar-0001-s0.1-r0.npy").write_bytes(b"\x93NUMPY cut short")
    fitted = []
    real = study_module.fit_batch
    monkeypatch.setattr(study_module, "fit_batch", lambda b, **k: fitted.extend(b.names) or real(b, **k))
    logs = []
    run_study(read_study(path), out, progress=False, log=logs.append)
    assert "2 already done" in logs[0] and fitted == ["tv/cifar-0001-s0.1-r0", "nlmeans/cifar-0001-s0.1-r0"]
    assert list(rows(out)) == [f"{v}/cifar-000{i}-s0.1-r0" for v in ("tv", "nlmeans") for i in (0, 1)]
    assert np.load(out / "images" / "nlmeans" / "cifar-0001-s0.1-r0.npy").shape == (32, 32, 3)


def test_the_study_file_may_sit_in_its_output_folder_but_not_another_by_its_copy_s_name(cli, tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    path = study_file(folder, TINY.split("[variants.rdip]")[0].replace('reference = "nlmeans"', "")
                      + '[variants.tv]\nmethod = "tv"\n').rename(folder / "study.toml")
    code, _, err = cli("study", path, "-o", folder, "-q")
    assert code == 0, err
    assert (folder / "runs.jsonl").exists() and path.read_text().startswith("\ntitle")
    other = tmp_path / "other"
    other.mkdir()
    (other / "study.toml").write_text('title = "mine"\n')
    code, _, err = cli("study", path, "-o", other)
    assert code == 2 and "holds files but no runs.jsonl" in err
    assert (other / "study.toml").read_text() == 'title = "mine"\n'


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads the processes from /proc (Linux)")
def test_workers_end_when_the_study_is_killed(tmp_path):
    """A killed ``rdip study --workers 2`` (SIGKILL: no clean shut-down) leaves no worker
    computing on: each ends within seconds of its parent (measured: about 1 s)."""
    path = study_file(tmp_path, TINY.replace("iters = 2", "iters = 100000\nstop = \"none\""))
    study = subprocess.Popen([sys.executable, "-m", "rdip", "study", str(path), "-o", str(tmp_path / "out"),
                              "--workers", "2", "--quiet"])
    children = Path(f"/proc/{study.pid}/task/{study.pid}/children")

    def workers() -> list[int]:
        try:
            found = [int(p) for p in children.read_text().split()]
        except OSError:
            return []
        return [p for p in found if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]

    def running(pid: int) -> bool:  # alive and not a zombie
        try:
            return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
        except OSError:
            return False

    deadline = time.monotonic() + 60
    while len(workers()) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    pids = workers()
    assert len(pids) == 2, "the study did not start its two workers within 60 s"
    os.kill(study.pid, signal.SIGKILL)
    study.wait()
    deadline = time.monotonic() + 15
    while any(map(running, pids)) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = [p for p in pids if running(p)]
    for p in alive:
        os.kill(p, signal.SIGKILL)
    assert alive == [], "workers kept running after their study was killed"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_runs_file_that_is_a_fifo_is_refused_not_waited_on(cli, tmp_path):
    path = study_file(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / ".rdip-study.lock").touch()  # a study's folder (one without it is refused first)
    os.mkfifo(tmp_path / "out" / "runs.jsonl")
    before = sorted(tmp_path.rglob("*"))  # (names only: snapshot would open the FIFO)
    for extra in (["--check"], []):
        code, out, err = cli("study", path, "-o", tmp_path / "out", *extra)
        assert code == 2 and out == "" and err.count("\n") == 1, err
        assert "runs.jsonl: is not a regular file (a FIFO, socket or device)" in err
    assert sorted(tmp_path.rglob("*")) == before and (tmp_path / "out" / "runs.jsonl").is_fifo()
