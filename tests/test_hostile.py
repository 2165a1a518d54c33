"""Hostile input: every failure a user can cause ends in one line, exit code 2, no traceback, and
no file written or changed.

Each command-line case runs ``rdip …`` in this process against a folder of good and bad files
(:func:`arena`) and checks that: the exit code is 2; stderr is exactly one line ``rdip: error: …``
holding the expected words; no traceback is printed; and no file or folder under the arena (and
under a ``victim`` folder outside it) is added, removed or changed (SHA-1 of every file, before
and after). The API cases check the exception type and message, and the same file snapshot.
"""

import fcntl
import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from conftest import smooth_image, write_png

import rdip
from rdip import FitConfig
from rdip.experiments.study import LOCK as STUDY_LOCK
from rdip.images.cifar10 import load_cifar10
from rdip.images.files import write_image
from rdip.scale.batch import LOCK

TINY = FitConfig(iters=2, device="cpu")
STUDY = '[sets.c]\nimages = "cifar:0"\nsigma = [0.1]\n[variants.tv]\nmethod = "tv"\n'


def snapshot(*roots: Path) -> dict:
    """Every path under ``roots``: a file's SHA-1, a link's target, or 'folder'."""
    seen = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_symlink():
                seen[str(path)] = "link → " + os.readlink(path)
            elif path.is_dir():
                seen[str(path)] = "folder"
            else:
                seen[str(path)] = hashlib.sha1(path.read_bytes()).hexdigest()
    return seen


@pytest.fixture
def arena(tmp_path, rng):
    """A folder of inputs, good and bad, and a ``victim`` folder beside it that nothing may touch."""
    d = tmp_path / "a"
    d.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    write_png(d / "good.png", rng.integers(0, 256, (30, 30, 3)).astype(np.uint8))
    write_png(d / "grey.png", rng.integers(0, 256, (28, 28)).astype(np.uint8))
    (d / "empty.png").write_bytes(b"")
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\ngarbage")
    (d / "image.bmp").write_bytes(b"BM")
    (d / "notes.txt").write_text("not an image")
    write_png(d / "small.png", np.zeros((20, 20), np.uint8))
    rgba = np.full((30, 30, 4), 200, np.uint8)
    rgba[0, 0, 3] = 10
    write_png(d / "transparent.png", rgba)
    np.save(d / "inf.npy", np.full((30, 30), np.inf))
    nan = np.zeros((30, 30))
    nan[3, 4] = np.nan
    np.save(d / "nan.npy", nan)
    np.save(d / "four.npy", np.zeros((1, 30, 30, 3)))
    np.save(d / "huge.npy", np.full((30, 30), 1e39))
    np.save(d / "byte-floats.npy", rng.integers(0, 256, (30, 30, 3)).astype(np.float64))
    np.save(d / "int64.npy", rng.integers(0, 256, (30, 30)))
    np.save(d / "bool.npy", rng.random((30, 30)) > 0.5)
    np.save(d / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    tifffile.imwrite(d / "pages.tif", np.zeros((3, 30, 30), np.uint8), photometric="minisblack")
    tifffile.imwrite(d / "flat.tif", np.zeros((30, 30), np.uint8))
    with tifffile.TiffWriter(d / "bomb.tif") as tif:  # 16384² pixels in a few kB: tiles of zeros
        tif.write(shape=(16384, 16384), dtype=np.uint8, tile=(1024, 1024), compression="zlib",
                  data=(np.zeros((1024, 1024), np.uint8) for _ in range(256)))
    (d / "existing.png").write_bytes(b"keep me")
    (d / "existing.json").write_bytes(b"keep me too")
    (d / "record.json").mkdir()  # a folder where `-o record.png` would put its record
    (d / "folder.png").mkdir()
    (d / "inputs").mkdir()
    write_png(d / "inputs" / "in.png", rng.integers(0, 256, (26, 26)).astype(np.uint8))
    (d / "no-images").mkdir()
    (d / "no-images" / "readme.txt").write_text("nothing to see")
    (d / "linked").mkdir()
    (d / "linked" / "manifest.jsonl").symlink_to(victim / "precious.txt")
    (d / "locked").mkdir()
    (d / "locked" / LOCK).write_text("4242\n")
    (d / "a-file").write_text("a file, not a folder")
    (d / "dangling.png").symlink_to(victim / "gone.png")  # an output's name taken by links
    (d / "linked.png").symlink_to(victim / "precious.txt")
    (d / "demo-linked").mkdir()
    (d / "demo-linked" / "demo.md").symlink_to(victim / "gone.md")
    (d / "demo-linked" / "summary.md").symlink_to(victim / "precious.txt")
    (d / "other-run").mkdir()
    (d / "other-run" / "experiment.json").write_text('{"config": {"iters": 5}, "sigma": 0.3}')
    np.save(d / "sym.npy", smooth_image((30, 30, 3)) * 2 - 1)  # a photograph in [-1, 1]
    write_png(d / "mid-grey.png", np.full((30, 30), 128, np.uint8))
    write_png(d / "checker.png", (np.indices((30, 30)).sum(0) % 2 * 255).astype(np.uint8))
    (d / "list-compare").mkdir()
    (d / "list-compare" / "compare.json").write_text("[1, 2]")
    (d / "theirs").mkdir()  # a folder of the user's holding files by the outputs' names
    (d / "theirs" / "report.html").write_text("<p>the user's own report</p>")
    (d / "theirs" / "table2.md").write_text("the user's own table")
    (d / "taken").mkdir()  # an output folder holding a file of the user's at an output's name
    (d / "taken" / "in_denoised.png").write_bytes(b"the user's own file")
    (d / "study.toml").write_text(STUDY)
    (d / "study-linked").mkdir()  # a study's folder whose runs.jsonl points elsewhere
    (d / "study-linked" / "runs.jsonl").symlink_to(victim / "precious.txt")
    for name, folder in (("summary.md", "study-folder-output"), ("runs.jsonl", "study-folder-runs")):
        (d / folder / name).mkdir(parents=True)  # a folder where an output goes
    (d / "study-folder-output" / "runs.jsonl").write_text("")
    (d / "study-images-file").mkdir()
    (d / "study-images-file" / "runs.jsonl").write_text("")
    (d / "study-images-file" / "images").write_text("a file where the images go")
    (d / "study-theirs").mkdir()  # a folder of the user's holding a study file by the copy's name
    (d / "study-theirs" / "study.toml").write_text('title = "mine"\n')
    (d / "study-locked").mkdir()
    (d / "study-locked" / "runs.jsonl").write_text("")
    (d / "study-locked" / STUDY_LOCK).write_text("4243\n")
    np.savez(d / "small.npz", images=np.zeros((1, 16, 16, 3), np.uint8), labels=[0], indices=[0])
    np.savez(d / "byte-floats.npz", images=rng.integers(0, 256, (1, 32, 32, 3)).astype(np.float32),
             labels=[0], indices=[0])
    return d, victim


# (command line; {d} is the arena), the words the one-line error must hold
CASES = [
    # rdip denoise: the input
    ("denoise {d}/missing.png -o {d}/out.png", "no such file"),
    ("denoise {d}/empty.png -o {d}/out.png", "the file is empty"),
    ("denoise {d}/corrupt.png -o {d}/out.png", "cannot read it as PNG"),
    ("denoise {d}/image.bmp -o {d}/out.png", "unsupported format '.bmp'"),
    ("denoise {d}/notes.txt -o {d}/out.png", "unsupported format '.txt'"),
    ("denoise {d}/small.png -o {d}/out.png", "at least 25×25"),
    ("denoise {d}/transparent.png -o {d}/out.png", "transparent"),
    ("denoise {d}/inf.npy -o {d}/out.png", "NaN or infinite"),
    ("denoise {d}/nan.npy -o {d}/out.png", "NaN or infinite"),
    ("denoise {d}/four.npy -o {d}/out.png", "4-D array"),
    ("denoise {d}/huge.npy -o {d}/out.png", "rdip expects floats in [0, 1]"),
    ("denoise {d}/byte-floats.npy -o {d}/out.npy", "divide 0-255 data by 255"),
    ("denoise {d}/int64.npy -o {d}/out.npy", "int64 samples are not supported"),
    ("denoise {d}/bool.npy -o {d}/out.npy", "bool samples are not supported"),
    ("denoise {d}/objects.npy -o {d}/out.npy", "the array holds Python objects"),
    ("denoise {d}/pages.tif -o {d}/out.tif", "holds 3 pages"),
    ("denoise {d}/bomb.tif -o {d}/out.tif", "more than the limit"),
    ("denoise {d}/flat.tif -o {d}/out.tif --quiet", "the noise level cannot be estimated"),
    ("denoise {d}/mid-grey.png -o {d}/out.png --quiet", "the image is flat or holds no noise"),
    ("denoise {d}/checker.png -o {d}/out.png --quiet", "is no noise level in (0, 1)"),
    ("denoise {d}/sym.npy -o {d}/out.npy", "becomes [0, 1] with (x + 1) / 2"),
    # rdip denoise: the output
    ("denoise {d}/good.png -o {d}/out.gif", "unsupported format '.gif'"),
    ("denoise {d}/good.png -o {d}/existing.png", "already exists; use --force"),
    ("denoise {d}/good.png -o {d}/out.png --set seed=4294967296", "seed must be an integer from 0 to 4294967295"),
    ("denoise {d}/good.png -o {d}/nofolder/out.png", "does not exist; create it first"),
    ("denoise {d}/good.png -o {d}/dangling.png", "is a symbolic link"),
    ("denoise {d}/good.png -o {d}/dangling.png --force", "is a symbolic link"),
    ("denoise {d}/good.png -o {d}/linked.png --force", "is a symbolic link"),
    ("denoise {d}/good.png -o {d}/folder.png --force", "is a folder"),
    ("denoise {d}/good.png -o {d}/record.png --force", "record.json: is a folder"),
    # rdip denoise: the options
    ("denoise {d}/good.png -o {d}/out.png --sigma 25", "for 0-255 units use --sigma-255 25"),
    ("denoise {d}/good.png -o {d}/out.png --sigma nan", "is not a noise level"),
    ("denoise {d}/good.png -o {d}/out.png --sigma inf", "is not a noise level"),
    ("denoise {d}/good.png -o {d}/out.png --sigma -0.1", "is not a noise level"),
    ("denoise {d}/good.png -o {d}/out.png --sigma-255 300", "in 0-255 units"),
    ("denoise {d}/good.png -o {d}/out.png --sigma 0.1 --sigma-255 25", "either --sigma or --sigma-255"),
    ("denoise {d}/good.png -o {d}/out.png --add-noise 1e200", "is not a noise level"),
    ("denoise {d}/good.png -o {d}/out.png --add-noise-255 0", "is not a noise level"),
    ("denoise {d}/good.png -o {d}/out.png --clean {d}/good.png --add-noise 0.1", "either --add-noise or --clean"),
    ("denoise {d}/good.png -o {d}/out.png --clean {d}/grey.png", "give the clean version of the same image"),
    ("denoise {d}/good.png -o {d}/out.png --padding edge --pad-width 1000000", "pad width 1000000 exceeds"),
    ("denoise {d}/good.png -o {d}/out.png --iters 0", "0 is not in the range x>=1"),
    ("denoise {d}/good.png -o {d}/out.png --iters -5", "-5 is not in the range x>=1"),
    ("denoise {d}/good.png -o {d}/out.png --iters 5000000", "iters must be between 1 and"),
    ("denoise {d}/good.png -o {d}/out.png --padding mirror", "'mirror' is not one of"),
    ("denoise {d}/good.png -o {d}/out.png --preset best", "'best' is not one of"),
    ("denoise {d}/good.png -o {d}/out.png --range 0-255", "'0-255' is not one of"),
    ("denoise {d}/good.png -o {d}/out.png --device tpu", "'tpu' is not auto, cpu, cuda or cuda:N"),
    ("denoise {d}/good.png -o {d}/out.png --seed -1", "-1 is not in the range 0<=x<=4294967295"),
    ("denoise {d}/good.png -o {d}/out.png --seed 18446744073709551616", "not in the range 0<=x<=4294967295"),
    ("denoise {d}/good.png -o {d}/out.png --tile 10", "network's minimum of 25"),
    ("denoise {d}/good.png -o {d}/out.png --tile 32 --overlap 40", "smaller than the tile"),
    ("denoise {d}/good.png", "Missing option '-o'"),
    # rdip batch (a bad file among good ones is an error row, exit 1: tests/test_batch.py)
    ("batch {d}/nothing-here -o {d}/out", "no such file or folder"),
    ("batch {d}/no-images -o {d}/out", "no image files"),
    ("batch {d}/inputs -o {d}/nofolder/out", "does not exist; create it first"),
    ("batch {d}/inputs -o {d}/out --suffix /../../X", "must not contain"),
    ("batch {d}/inputs -o {d}/out --suffix a/b", "must not contain"),
    ("batch {d}/inputs -o {d}/linked", "is a symbolic link"),
    ("batch {d}/inputs -o {d}/locked", "in use by another rdip batch"),
    ("batch {d}/inputs -o {d}/out --chunk 0", "0 is not in the range x>=1"),
    ("batch {d}/inputs -o {d}/out --address auto", "--address and --num-cpus are for --backend ray"),
    ("batch {d}/inputs -o {d}/out --tile 32 --overlap 32", "smaller than the tile"),
    ("batch {d}/inputs -o {d}/out --iters abc", "'abc' is not a valid integer"),
    ("batch {d}/inputs -o {d}/taken", "exists and was not written by rdip batch"),
    ("batch {d}/inputs -o {d}/out --clean-dir {d}/missing", "no such folder of clean references"),
    ("batch {d}/inputs -o {d}/out --suffix " + "x" * 300, "use a shorter --suffix"),
    ("batch {d}/inputs -o {d}/a-file", "exists and is not a folder"),
    # rdip reproduce
    ("reproduce --indices 0-99999999999 --out {d}/r", "CIFAR-10 has 10000 test images"),
    ("reproduce --indices a-b --out {d}/r", "not an index or range"),
    ("reproduce --indices 3-1 --out {d}/r", "reversed"),
    ("reproduce --indices 20 --out {d}/r", "need the official archive"),
    ("reproduce --seeds x --out {d}/r", "'x' is not an integer from 0 to 4294967295"),
    ("reproduce --sigma nan --out {d}/r", "sigma must be a finite number"),
    ("reproduce --preset paper --sigma 5 --out {d}/r", "in (0, 2) in the units of the fitting range"),
    ("reproduce --sigma-255 300 --out {d}/r", "in 0-255 units"),
    ("reproduce --set lr=inf --out {d}/r", "lr must be a finite number"),
    ("reproduce --set h_leak=nan --out {d}/r", "h_leak must be a finite number"),
    ("reproduce --set z_noise_std=inf --out {d}/r", "z_noise_std must be a finite number"),
    ("reproduce --set colour=1 --out {d}/r", "give KEY=VALUE"),
    ("reproduce --set lr=fast --out {d}/r", "lr needs a float"),
    ("reproduce --paddings mirror --out {d}/r", "unknown value 'mirror'"),
    ("reproduce --out {d}/a-file", "is not a folder"),
    ("reproduce --out {d}/other-run --iters 1000", "holds fits of another configuration"),
    ("reproduce --data {d}/missing.npz --out {d}/r", "no such file or folder"),
    ("reproduce --data {d}/notes.txt --out {d}/r", "not an .npz"),
    ("reproduce --data {d}/small.npz --indices 0 --out {d}/r", "test image 0 is 16×16"),
    ("reproduce --data {d}/byte-floats.npz --indices 0 --out {d}/r", "divide 0-255 data by 255"),
    ("reproduce --seeds 18446744073709551616 --out {d}/r", "is not an integer from 0 to 4294967295"),
    ("reproduce --seeds ² --out {d}/r", "'²' is not an integer"),
    ("reproduce --indices " + "9" * 5000 + " --out {d}/r", "CIFAR-10 has 10000 test images"),
    ("reproduce --indices ² --out {d}/r", "not an index or range"),
    ("reproduce --set seed=" + "9" * 30 + " --out {d}/r", "seed must be an integer from 0 to 4294967295"),
    ("reproduce --set seed=4294967296 --out {d}/r", "seed must be an integer from 0 to 4294967295"),
    ("reproduce --paddings none,edge --set pad_width=40 --out {d}/r", "pad width 40 exceeds"),
    ("reproduce --out {d}/theirs", "holds table2.md, report.html but no experiment.json"),
    ("demo --out {d}/demo-linked", "demo.md is a symbolic link"),
    ("demo --out {d}/demo-linked --force", "demo.md is a symbolic link"),
    ("demo --seed 18446744073709551616 --out {d}/demo", "not in the range 0<=x<=4294967295"),
    ("demo --iters 0 --out {d}/demo", "0 is not in the range x>=1"),
    # rdip compare
    ("compare --methods nope --out {d}/c", "unknown value 'nope'"),
    ("compare --methods tv --sigma 25 --out {d}/c", "use --sigma-255"),
    ("compare --methods tv --sigma x --out {d}/c", "give numbers separated by commas"),
    ("compare --methods tv --sigma-255 300 --out {d}/c", "0-255 units"),
    ("compare --methods tv --set tv.nope=1 --out {d}/c", "tv has no option 'nope'"),
    ("compare --methods tv --set tv.weight=heavy --out {d}/c", "tv.weight needs a float"),
    ("compare --methods tv --set dip.iters=5 --out {d}/c", "not among the methods compared"),
    ("compare --methods wavelet --set wavelet.method=Nope --images cifar:0 --out {d}/c", "wavelet.method must be one of"),
    ("compare --methods tv --images {d}/missing --out {d}/c", "no such file or folder"),
    ("compare --methods tv --images cifar:20 --out {d}/c", "need the official archive"),
    ("compare --methods tv --crop 8 --out {d}/c", "8 is not in the range x>=16"),
    ("compare --methods tv --out {d}/a-file", "is not a folder"),
    ("compare --methods tv --images {d}/byte-floats.npy --out {d}/c", "divide 0-255 data by 255"),
    ("compare --methods tv --images {d}/sym.npy --out {d}/c", "(x + 1) / 2"),
    ("compare --methods tv --set tv.weight=nan --out {d}/c", "tv.weight must be a finite number"),
    ("compare --methods tv --set tv.weight=1e999 --out {d}/c", "tv.weight must be a finite number"),
    ("compare --methods tv --out {d}/list-compare", "is not the settings of a comparison"),
    ("compare --methods tv --out {d}/theirs", "holds report.html but no runs of rdip compare"),
    ("compare --methods tv --out {d}/demo-linked --force", "summary.md is a symbolic link"),
    ("compare --methods tv,rdip-default --images cifar:0 --crop 16 --out {d}/c", "rdip-default needs at least 25×25"),
    ("compare --methods rdip-default --set rdip-default.iters=0 --out {d}/c", "rdip-default: iters must be"),
    ("compare --methods tv --images cifar:" + "9" * 5000 + " --out {d}/c", "CIFAR-10 has 10000 test images"),
    ("compare --methods tv --seed 18446744073709551616 --out {d}/c", "not in the range 0<=x<=4294967295"),
    ("compare --methods tv --workers 0 --out {d}/c", "0 is not in the range 1<=x<=256"),
    # rdip study (a bad key or value of the file: tests/test_studyfile.py)
    ("study {d}/missing.toml -o {d}/s", "no such study file"),
    ("study {d}/folder.png -o {d}/s", "is a folder, not a study file"),
    ("study {d}/good.png -o {d}/s", "is not UTF-8 text, so not a study file"),
    ("study {d}/notes.txt -o {d}/s", "not a valid TOML file"),
    ("study {d}/empty.png -o {d}/s", "give at least one [sets.NAME] table"),
    ("study {d}/study.toml -o {d}/a-file", "exists and is not a folder"),
    ("study {d}/study.toml -o {d}/no-images", "holds files but no runs.jsonl"),
    ("study {d}/study.toml -o {d}/study-theirs", "holds files but no runs.jsonl"),
    ("study {d}/study.toml -o {d}/study-linked", "runs.jsonl is a symbolic link"),
    ("study {d}/study.toml -o {d}/study-folder-output", "summary.md: is a folder"),
    ("study {d}/study.toml -o {d}/study-folder-runs", "runs.jsonl: is a folder"),
    ("study {d}/study.toml -o {d}/study-images-file", "images: is not a folder"),
    ("study {d}/study.toml -o {d}/study-locked", "in use by another rdip study (pid 4243)"),
    ("study {d}/study.toml -o {d}/s --workers 0", "0 is not in the range 1<=x<=256"),
    ("study {d}/study.toml -o {d}/s --workers 257", "257 is not in the range 1<=x<=256"),
    ("study {d}/study.toml -o {d}/s --workers two", "'two' is not a valid integer"),
]


@pytest.mark.parametrize("line, message", CASES, ids=[c[0][:60] for c in CASES])
def test_command_line(cli, arena, line, message):
    d, victim = arena
    before = snapshot(d, victim)
    with open(d / "locked" / LOCK) as held, open(d / "study-locked" / STUDY_LOCK) as study:
        for lock in (held, study):  # other runs (pids 4242, 4243) hold these folders
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, out, err = cli(*line.format(d=d).split())
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("rdip: error: "), err
    assert message in err, err
    assert "Traceback" not in out + err
    assert snapshot(d, victim) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="the message of a machine without CUDA")
@pytest.mark.parametrize("line", ["denoise {d}/good.png -o {d}/out.png", "batch {d}/inputs -o {d}/out",
                                  "reproduce --indices 0 --seeds 0 -o {d}/r", "demo -o {d}/demo",
                                  "compare --methods dip --set dip.device=cuda -o {d}/c"])
def test_cuda_without_cuda(cli, arena, line):
    d, victim = arena
    before = snapshot(d, victim)
    code, _, err = cli(*line.format(d=d).split(), *([] if "compare" in line else ["--device", "cuda"]))
    assert code == 2 and err.count("\n") == 1 and "CUDA is not available" in err, err
    assert snapshot(d, victim) == before  # no folder, no experiment.json


# arguments a command line cannot hold as words: empty ones ("" is the current folder to Path)
EMPTY = [
    (["denoise", "{d}/good.png", "-o", ""], "an empty path"),
    (["denoise", "", "-o", "{d}/out.png"], "an empty path"),
    (["denoise", "{d}/good.png", "-o", "{d}/out.png", "--clean", ""], "an empty path"),
    (["batch", "{d}/inputs", "-o", ""], "an empty path"),
    (["batch", "", "-o", "{d}/out"], "an empty input name"),
    (["batch", "{d}/inputs", "-o", "{d}/out", "--clean-dir", ""], "an empty path"),
    (["batch", "{d}/inputs", "-o", "{d}/inputs", "--suffix", ""], "would overwrite the input"),  # no lock left
    (["reproduce", "-o", ""], "an empty path"),
    (["reproduce", "--data", "", "-o", "{d}/r"], "an empty path"),
    (["demo", "-o", ""], "an empty path"),
    (["compare", "--methods", "tv", "-o", ""], "an empty path"),
    (["compare", "--methods", "tv", "--images", "", "-o", "{d}/c"], "--images is empty"),
    (["study", "", "-o", "{d}/s"], "an empty path"),
    (["study", "{d}/good.png", "-o", ""], "an empty path"),
]


@pytest.mark.parametrize("args, message", EMPTY, ids=[" ".join(a[0]) for a in EMPTY])
def test_empty_arguments(cli, arena, monkeypatch, args, message):
    d, victim = arena
    monkeypatch.chdir(d)  # where an empty path would write
    before = snapshot(d, victim)
    code, _, err = cli(*(a.format(d=d) for a in args))
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert snapshot(d, victim) == before


def test_an_unreachable_ray_cluster_fails_at_once(cli, arena, monkeypatch):
    """--address of a cluster that does not answer: a one-line error within the timeout, not a
    hang (Ray's own ray.init retries for minutes); here a closed port on this machine."""
    import socket
    import time

    import rdip.scale.ray

    pytest.importorskip("ray")
    monkeypatch.setattr(rdip.scale.ray, "CONNECT_TIMEOUT", 0.5)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the socket is
    d, victim = arena
    before = snapshot(d, victim)
    started = time.monotonic()
    code, _, err = cli("batch", d / "inputs", "-o", d / "out", "--backend", "ray", "--address", f"127.0.0.1:{port}")
    assert code == 2 and err.count("\n") == 1 and "no Ray cluster answers there within 0.5 s" in err, err
    assert time.monotonic() - started < 10 and snapshot(d, victim) == before


def test_a_failed_record_write_keeps_the_input(cli, arena, monkeypatch):
    """`rdip denoise x.png -o x.png --force` whose record cannot be written (a full disk): the
    input, which the output would replace, is still there and unchanged."""
    d, victim = arena
    import rdip.jobs

    def full(tmp):
        raise OSError(28, "No space left on device")

    real = rdip.jobs.json_writer
    monkeypatch.setattr(rdip.jobs, "json_writer", lambda path, data, force=False: (real(path, data, force)[0], full))
    before = snapshot(d, victim)
    code, _, err = cli("denoise", d / "good.png", "-o", d / "good.png", "--force", "--iters", 1, "--quiet")
    assert code == 2 and err.count("\n") == 1 and "No space left on device" in err
    assert snapshot(d, victim) == before


# rdip's Python API: (call, exception type, words of its message)
API = [
    (lambda a: rdip.denoise(a["byte_floats"], TINY), ValueError, "divide 0-255 data by 255"),
    (lambda a: rdip.denoise(a["int64"], TINY), TypeError, "int64"),
    (lambda a: rdip.denoise(a["good"], "fastest"), ValueError, "unknown preset 'fastest'"),
    (lambda a: rdip.denoise(a["good"], {"iters": 3}), TypeError, "preset name or a FitConfig"),
    (lambda a: rdip.fit(a["good"], 5), TypeError, "config must be a FitConfig"),
    (lambda a: rdip.fit(a["good"], TINY, sigma=-1), ValueError, "sigma must be a finite number"),
    (lambda a: rdip.fit(a["good"], TINY, sigma=25), ValueError, "in 0-255 units that is"),
    (lambda a: rdip.fit(a["good"], TINY, clean=a["small"]), ValueError, "the noisy one"),
    (lambda a: rdip.fit_many([a["good"]] * 2, [TINY]), ValueError, "one config (or one for each image)"),
    (lambda a: rdip.preset("paper", iters="5"), TypeError, "iters must be an integer"),
    (lambda a: rdip.preset("paper", lr=float("nan")), ValueError, "lr must be a finite number"),
    (lambda a: rdip.FitConfig(device="tpu"), ValueError, "device must be"),
    (lambda a: rdip.add_noise(a["good"], float("nan")), ValueError, "sigma must be a finite number"),
    (lambda a: rdip.fit(a["good"][:20], TINY), ValueError, "at least 25×25"),
    (lambda a: rdip.denoise(a["photo"] * 2 - 1, TINY), ValueError, "becomes [0, 1] with (x + 1) / 2"),
    (lambda a: rdip.denoise(a["photo"] * 2, TINY), ValueError, "rdip expects floats in [0, 1]"),
    (lambda a: rdip.denoise(a["photo"] - a["photo"].mean(), TINY), ValueError, "rdip expects floats in [0, 1]"),
    (lambda a: rdip.denoise(np.full((30, 30), 0.5), "default", iters=2), ValueError, "the image is flat"),
    (lambda a: rdip.preset("default", seed=2**63), ValueError, "seed must be between 0 and 2**62"),
    (lambda a: load_cifar10([1.5]), TypeError, "test image index 1.5 is not an integer"),
    (lambda a: write_image(a["dir"] / "nan.png", np.full((30, 30), np.nan)), ValueError, "holds NaN"),
    (lambda a: rdip.fit_many(5, TINY), TypeError, "give the images as a list"),
]


@pytest.mark.parametrize("call, error, message", API, ids=[a[2][:40] for a in API])
def test_api(arena, rng, call, error, message):
    d, victim = arena
    arrays = {"good": rng.random((30, 30, 3)), "small": rng.random((26, 26, 3)),
              "byte_floats": rng.integers(0, 256, (30, 30)).astype(np.float64),
              "int64": rng.integers(0, 256, (30, 30)), "photo": smooth_image((30, 30, 3)), "dir": d}
    before = snapshot(d, victim)
    with pytest.raises(error, match=re.escape(message)):
        call(arrays)
    assert snapshot(d, victim) == before
