import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import manifest_rows, quiet, write_png
from test_hostile import snapshot

from rdip.cli import batch_command
from rdip.config import preset
from rdip.images.files import read_image
from rdip.scale import batch
from rdip.scale.batch import LOCK, MANIFEST, _append, read_manifest, run_batch

CFG = preset("default", iters=2, device="cpu")


@pytest.fixture
def mixed(make_folder, rng):
    return make_folder({
        "a.png": (rng.random((30, 30, 3)) * 255).astype(np.uint8),
        "b.png": (rng.random((30, 30, 3)) * 255).astype(np.uint8),
        "c.png": (rng.random((40, 32)) * 65535).astype(np.uint16),
        "d.npy": rng.random((28, 28)).astype(np.float32),
        "bad.png": b"\x89PNG\r\n\x1a\n not really a png",
        "tiny.png": (rng.random((10, 10)) * 255).astype(np.uint8),
        "notes.txt": "not an image",  # ignored: not an image suffix
    })


def test_mixed_folder_then_rerun_skips_done(mixed, tmp_path):
    out = tmp_path / "out"
    rows = run_batch([str(mixed)], out, CFG, progress=False, log=quiet)
    assert len(rows) == 6 and rows == manifest_rows(out)
    status = {Path(r["input"]).name: r["status"] for r in rows}
    assert status == {"a.png": "done", "b.png": "done", "c.png": "done", "d.npy": "done",
                      "bad.png": "error", "tiny.png": "error"}
    errors = {Path(r["input"]).name: r["error"] for r in rows if r["status"] == "error"}
    assert "corrupt" in errors["bad.png"] and "25×25" in errors["tiny.png"]
    expected = {"a_denoised.png": ("uint8", (30, 30, 3)), "b_denoised.png": ("uint8", (30, 30, 3)),
                "c_denoised.png": ("uint16", (40, 32)), "d_denoised.npy": ("float32", (28, 28))}
    for name, (dtype, shape) in expected.items():
        image, info = read_image(out / name)
        assert (info.dtype, image.shape) == (dtype, shape)
    done = [r for r in rows if r["status"] == "done"]
    assert all(r["config"]["iters"] == 2 and r["shape"] and r["seconds"] > 0 for r in done)
    assert {r["orientation"] for r in done} == {1}  # no EXIF orientation to apply

    mtimes = {name: (out / name).stat().st_mtime_ns for name in expected}
    again = run_batch([str(mixed)], out, CFG, progress=False, log=quiet)
    assert sorted(Path(r["input"]).name for r in again) == ["bad.png", "tiny.png"]  # retried
    assert {name: (out / name).stat().st_mtime_ns for name in expected} == mtimes
    assert len(manifest_rows(out)) == 8


def test_metrics_with_clean_dir_and_globs(tmp_path, rng):
    src, clean_dir = tmp_path / "in", tmp_path / "clean"
    src.mkdir(), clean_dir.mkdir()
    for name in ("x.png", "y.png"):
        clean = (rng.random((26, 27)) * 255).astype(np.uint8)
        write_png(clean_dir / name, clean)
        write_png(src / name, clean)
    rows = run_batch([str(src / "x*.png"), str(src / "y.png")], tmp_path / "out", CFG,
                     clean_dir=clean_dir, progress=False, log=quiet)
    assert [Path(r["input"]).name for r in rows] == ["x.png", "y.png"]
    assert all(set(r["metrics"]) == {"ssim_full", "ssim_centre", "psnr"} for r in rows)


def test_tiled_batch(tmp_path, rng):
    write_png(tmp_path / "big.png", (rng.random((40, 50, 3)) * 255).astype(np.uint8))
    rows = run_batch([str(tmp_path / "big.png")], tmp_path / "out", CFG.replace(tile=30, tile_overlap=8),
                     progress=False, log=quiet)
    assert rows[0]["status"] == "done" and rows[0]["tile"] == {"tile": 30, "overlap": 8}
    assert read_image(tmp_path / "out" / "big_denoised.png")[0].shape == (40, 50, 3)


def test_one_line_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        run_batch([str(tmp_path / "empty")], tmp_path / "out", CFG, log=quiet)
    with pytest.raises(FileNotFoundError, match="no such file"):
        run_batch([str(tmp_path / "missing.png")], tmp_path / "out", CFG, log=quiet)
    np.save(tmp_path / "e.npy", np.zeros((30, 30)))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_batch([str(tmp_path / "e.npy")], tmp_path / "no" / "out", CFG, log=quiet)
    with pytest.raises(ValueError, match="overwrite the input"):
        run_batch([str(tmp_path / "e.npy")], tmp_path, CFG, suffix="", log=quiet)
    for options, message in ((["--address", "auto"], "are for --backend ray"),
                             (["--num-cpus", "2"], "are for --backend ray"),
                             (["--backend", "ray", "--address", "auto", "--num-cpus", "2"],
                              "the cluster at --address has its own CPUs")):
        result = CliRunner().invoke(batch_command, [str(tmp_path / "e.npy"), "-o", str(tmp_path / "o"),
                                                    *options])
        assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "o").exists()


def test_manifest_survives_a_line_cut_short(tmp_path):
    manifest = tmp_path / MANIFEST
    _append(manifest, {"input": "a", "status": "done"})
    with open(manifest, "a") as f:
        f.write('{"input": "b", "sta')  # killed mid-line
    _append(manifest, {"input": "c", "status": "error"})
    assert read_manifest(manifest) == {"a": {"input": "a", "status": "done"},
                                       "c": {"input": "c", "status": "error"}}


def test_resume_after_kill_9(tmp_path, rng):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for k in range(4):  # four shapes: four fit_many calls, outputs written one after another
        write_png(src / f"i{k}.png", (rng.random((25 + k, 25, 3)) * 255).astype(np.uint8))
    args = [str(src), "-o", str(out), "--device", "cpu", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.Popen([sys.executable, "-c", "from rdip.cli import batch_command; batch_command()",
                             *args, "--iters", "20"], env=env)
    deadline = time.monotonic() + 60
    while not ((out / MANIFEST).exists() and (out / MANIFEST).read_text()):
        assert proc.poll() is None and time.monotonic() < deadline, "no manifest row appeared"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(manifest_rows(out)) < 4, "the run finished before it was killed: raise --iters"
    half = out / ".i3_denoised.png.k9x2z1.png"
    half.write_bytes(b"\x89PNG half")  # as a kill mid-write leaves, recorded in the lock file
    with open(out / LOCK, "a") as f:
        f.write("\n" + json.dumps({"temp": str(half.resolve())}) + "\n")  # (a kill mid-rewrite leaves it empty)

    result = CliRunner().invoke(batch_command, [*args, "--iters", "2"])  # the rest, quickly
    assert result.exit_code == 0, result.output
    rows = manifest_rows(out)
    assert sorted(Path(r["input"]).name for r in rows) == [f"i{k}.png" for k in range(4)]
    assert all(r["status"] == "done" and read_image(r["output"])[0].shape[1] == 25 for r in rows)
    names = [LOCK] + [f"i{k}_denoised.png" for k in range(4)] + [MANIFEST]
    assert sorted(p.name for p in out.iterdir()) == names


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def pair(tmp_path, rng):
    """A folder of two small images, a.png and b.png."""
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.png", "b.png"):
        write_png(src / name, (rng.random((26, 26)) * 255).astype(np.uint8))
    return src


def test_an_output_that_is_a_symlink_gets_an_error_row(pair, tmp_path, monkeypatch):
    out, victim = tmp_path / "out", tmp_path / "victim.png"
    out.mkdir()
    victim.write_bytes(b"someone else's file")
    before = digest(victim)
    (out / "a_denoised.png").symlink_to(victim)
    rows = {Path(r["input"]).name: r for r in run_batch([str(pair)], out, CFG, progress=False, log=quiet)}
    assert rows["b.png"]["status"] == "done" and rows["a.png"]["status"] == "error"
    assert "is a symbolic link; nothing was written" in rows["a.png"]["error"]
    assert rows["a.png"]["output"] is None
    assert digest(victim) == before and (out / "a_denoised.png").is_symlink()

    # a done output replaced by a link since: not done, an error row, the target untouched
    (out / "b_denoised.png").unlink()
    (out / "b_denoised.png").symlink_to(victim)
    again = run_batch([str(pair)], out, CFG, progress=False, log=quiet)
    assert sorted((Path(r["input"]).name, r["status"]) for r in again) == [("a.png", "error"),
                                                                            ("b.png", "error")]
    assert digest(victim) == before and (out / "b_denoised.png").is_symlink()

    # a link made while the image is fitted: checked again before the write
    (out / "a_denoised.png").unlink()
    (out / "b_denoised.png").unlink()
    fit_many = batch.fit_many

    def link_then_fit(images, config, clean):
        (out / "a_denoised.png").symlink_to(victim)
        return fit_many(images, config, clean=clean)

    monkeypatch.setattr(batch, "fit_many", link_then_fit)
    rows = {Path(r["input"]).name: r for r in run_batch([str(pair)], out, CFG, progress=False, log=quiet)}
    assert rows["a.png"]["status"] == "error" and "symbolic link" in rows["a.png"]["error"]
    assert rows["b.png"]["status"] == "done" and not (out / "b_denoised.png").is_symlink()
    assert digest(victim) == before

    # a folder in an output's place: an error row too, not a traceback
    (out / "b_denoised.png").unlink()
    (out / "b_denoised.png").mkdir()
    rows = {Path(r["input"]).name: r for r in run_batch([str(pair)], out, CFG, progress=False, log=quiet)}
    assert "exists and is not a file" in rows["b.png"]["error"] and (out / "b_denoised.png").is_dir()


def test_a_manifest_that_is_a_symlink_refuses_the_run(pair, tmp_path, cli):
    out, victim = tmp_path / "out", tmp_path / "victim.jsonl"
    out.mkdir()
    victim.write_text("not ours\n")
    (out / MANIFEST).symlink_to(victim)
    with pytest.raises(ValueError, match="manifest.jsonl is a symbolic link"):
        run_batch([str(pair)], out, CFG, progress=False, log=quiet)
    code, stdout, stderr = cli("batch", pair, "-o", out, "--iters", "1", "--device", "cpu", "--quiet")
    assert code == 2 and stderr.count("\n") == 1 and "is a symbolic link" in stderr
    assert victim.read_text() == "not ours\n"
    assert [p.name for p in out.iterdir()] == [MANIFEST]  # nothing written, no lock taken
    with pytest.raises(OSError):
        _append(out / MANIFEST, {"input": "x", "status": "done"})  # never through a link
    assert victim.read_text() == "not ours\n"


@pytest.mark.parametrize("suffix", ["/../../X", "_a/b", "..", "_x\\y", "_a\0b"])
def test_a_suffix_must_not_leave_the_folder(tmp_path, cli, suffix):
    np.save(tmp_path / "e.npy", np.zeros((25, 25)))
    out = tmp_path / "deep" / "out"
    out.parent.mkdir()
    with pytest.raises(ValueError, match="must not contain"):
        run_batch([str(tmp_path / "e.npy")], out, CFG, suffix=suffix, log=quiet)
    code, stdout, stderr = cli("batch", tmp_path / "e.npy", "-o", out, "--suffix", suffix, "--device", "cpu")
    assert code == 2 and stderr.count("\n") == 1 and "--suffix" in stderr and "must not contain" in stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["deep", "e.npy"]  # nothing written


def test_a_suffix_may_be_empty_or_hold_dots(tmp_path, rng):
    np.save(tmp_path / "e.npy", rng.random((25, 25)))
    rows = run_batch([str(tmp_path / "e.npy")], tmp_path / "out", CFG, suffix="", progress=False, log=quiet)
    assert rows[0]["status"] == "done" and rows[0]["output"] == str((tmp_path / "out" / "e.npy").resolve())
    rows = run_batch([str(tmp_path / "e.npy")], tmp_path / "out2", CFG, suffix=".v2", progress=False,
                     log=quiet)
    assert rows[0]["output"] == str((tmp_path / "out2" / "e.v2.npy").resolve())


def test_a_second_run_on_one_folder_fails_at_once(pair, tmp_path, cli):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".a_denoised.png.k9x2z1.png"
    stale.write_bytes(b"\x89PNG half")  # the other run's file being written
    with open(out / LOCK, "w") as held:  # the other run
        held.write(f"4242\n{json.dumps({'temp': str(stale.resolve())})}\n")  # its pid, its temporary file
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        message = (f"{out} is in use by another rdip batch (pid 4242); wait for it to finish "
                   "or use another folder")
        with pytest.raises(ValueError) as error:
            run_batch([str(pair)], out, CFG, progress=False, log=quiet)
        assert str(error.value) == message
        code, stdout, stderr = cli("batch", pair, "-o", out, "--iters", "1", "--device", "cpu")
        assert code == 2 and stderr.count("\n") == 1 and message in stderr
        assert sorted(p.name for p in out.iterdir()) == sorted([LOCK, stale.name])  # nothing written
        assert stale.exists()
    # released: the next run removes the stale file, and never takes the lock file as an input
    rows = run_batch([str(pair), str(out / LOCK), str(out)], out, CFG, progress=False, log=quiet)
    assert sorted(Path(r["input"]).name for r in rows) == ["a.png", "b.png"]
    assert sorted(p.name for p in out.iterdir()) == [LOCK, "a_denoised.png", "b_denoised.png", MANIFEST]
    assert (out / LOCK).read_text() == f"{os.getpid()}\n"  # the holder's pid, while it ran


def test_garbage_manifest_lines_are_skipped_with_one_warning(pair, tmp_path):
    out = tmp_path / "out"
    [row] = run_batch([str(pair / "a.png")], out, CFG, progress=False, log=quiet)
    mtime = (out / "a_denoised.png").stat().st_mtime_ns
    with open(out / MANIFEST, "ab") as f:
        f.write(b"not json\n"                                   # line 2
                b"[1, 2]\n"                                     # 3: not an object
                b'{"input": 5, "status": "done"}\n'             # 4
                b'{"input": "x", "status": []}\n'               # 5
                b'{"input": "x", "status": "done", "output": 7}\n'  # 6
                b'{"input": "caf\xe9.png", "status": "done"}\n'   # 7: not UTF-8
                b"\n"                                           # 8: blank, ignored
                b"\xff\xfe\x00garbage\n"                        # 9
                b'{"input": "b", "sta')                          # cut short by a kill: silent
    messages = []
    rows = run_batch([str(pair)], out, CFG, progress=False, log=quiet, warn=messages.append)
    assert [Path(r["input"]).name for r in rows] == ["b.png"]  # a.png's done row still honoured
    assert (out / "a_denoised.png").stat().st_mtime_ns == mtime
    warnings = [m for m in messages if "skipped" in m]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert "skipped 7 lines" in warnings[0] and "(lines 2, 3, 4, 5, 6, …)" in warnings[0]
    assert read_manifest(out / MANIFEST)[row["input"]]["status"] == "done"


def test_a_rerun_with_other_settings_keeps_the_outputs_and_says_so(pair, tmp_path):
    out = tmp_path / "out"
    run_batch([str(pair)], out, CFG, progress=False, log=quiet)
    names = ["a_denoised.png", "b_denoised.png"]
    mtimes = {n: (out / n).stat().st_mtime_ns for n in names}

    def rerun(config) -> list[str]:
        messages = []
        assert run_batch([str(pair)], out, config, progress=False, log=messages.append) == []
        assert {n: (out / n).stat().st_mtime_ns for n in names} == mtimes  # kept, not refitted
        return [m for m in messages if "other settings" in m]

    assert rerun(CFG.replace(device="auto")) == []  # where it runs is not a setting
    [line] = rerun(CFG.replace(iters=1, lr=1e-2))
    assert "2 done outputs were made with other settings" in line
    assert "iters 2 → 1" in line and "lr 0.001 → 0.01" in line
    assert "a_denoised.png, b_denoised.png" in line and "delete them or use another folder" in line

    # rows saved before a field existed: it counts at its default (range: unit; ensemble: 1)
    rows = [json.loads(x) for x in (out / MANIFEST).read_text().splitlines()]
    for r in rows:
        del r["config"]["range"], r["config"]["ensemble"]
    (out / MANIFEST).write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert rerun(CFG.replace(range="unit")) == []
    [line] = rerun(CFG)  # the default preset fits in [-1, 1]
    assert "range unit → symmetric" in line and "iters" not in line and "ensemble" not in line


def test_a_file_rdip_did_not_write_is_never_replaced_without_force(pair, tmp_path, cli):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_denoised.png").write_bytes(b"the user's own file")
    with pytest.raises(FileExistsError, match="a_denoised.png: exists and was not written by rdip batch"):
        run_batch([str(pair)], out, CFG, progress=False, log=quiet)
    code, _, err = cli("batch", pair, "-o", out, "--iters", "2", "--device", "cpu", "--quiet")
    assert code == 2 and "move it away, or use --force" in err
    assert sorted(p.name for p in out.iterdir()) == ["a_denoised.png"]  # no lock, no manifest
    assert (out / "a_denoised.png").read_bytes() == b"the user's own file"
    code, _, err = cli("batch", pair, "-o", out, "--iters", "2", "--device", "cpu", "--quiet", "--force")
    assert code == 0, err
    assert read_image(out / "a_denoised.png")[0].shape == (26, 26)
    # what rdip wrote (a row names it) is replaced when redone (its input failed since), no --force
    _append(out / MANIFEST, {"input": str((pair / "a.png").resolve()), "status": "error", "output": None})
    rows = run_batch([str(pair)], out, CFG, progress=False, log=quiet)
    assert [(Path(r["input"]).name, r["status"]) for r in rows] == [("a.png", "done")]


def test_an_output_never_replaces_an_input_even_with_force(pair, tmp_path, cli):
    """`rdip batch in -o in --force` with a.png and a_denoised.png of the user's: a.png's output
    would be the other input; refused, every file kept."""
    (pair / "b.png").rename(pair / "a_denoised.png")
    before = snapshot(pair)
    with pytest.raises(ValueError, match="a_denoised.png is another input of this run"):
        run_batch([str(pair)], pair, CFG, force=True, progress=False, log=quiet)
    code, _, err = cli("batch", pair, "-o", pair, "--force", "--iters", "2", "--device", "cpu", "--quiet")
    assert code == 2 and err.count("\n") == 1 and "which rdip never replaces, not even with --force" in err
    assert snapshot(pair) == before


def test_two_folders_into_one_output_folder_never_replace_each_other(pair, tmp_path, rng, cli):
    """x/a.png then y/a.png into one folder: y's output would replace x's finished one; refused
    (--force too), and x's output stays x's (its rerun has nothing to do)."""
    other = tmp_path / "y"
    other.mkdir()
    write_png(other / "a.png", (rng.random((26, 26)) * 255).astype(np.uint8))
    out = tmp_path / "out"
    run_batch([str(pair / "a.png")], out, CFG, progress=False, log=quiet)
    before = snapshot(out)
    for force in (False, True):
        with pytest.raises(FileExistsError, match=r"a_denoised.png: is the finished output of .*in/a.png"):
            run_batch([str(other / "a.png")], out, CFG, force=force, progress=False, log=quiet)
    code, _, err = cli("batch", other, "-o", out, "--force", "--iters", "2", "--device", "cpu", "--quiet")
    assert code == 2 and "use another --suffix or output folder" in err
    assert snapshot(out) == before
    assert run_batch([str(pair / "a.png")], out, CFG, progress=False, log=quiet) == []
    rows = run_batch([str(other / "a.png")], out, CFG, suffix="_y", progress=False, log=quiet)
    assert [r["status"] for r in rows] == ["done"] and (out / "a_y.png").is_file()


def test_only_rdip_s_own_temporary_files_are_removed(pair, tmp_path, monkeypatch):
    """A user's file named as rdip names its temporary files stays; one a killed run recorded in
    the lock file is removed; each temporary file is recorded there before it is written."""
    out, seen, real = tmp_path / "out", [], batch.write_output

    def spy(*args, made, **kwargs):
        def record(tmp):
            made(tmp)
            seen.append((tmp, (out / LOCK).read_text(), os.path.getsize(tmp)))
        return real(*args, made=record, **kwargs)

    monkeypatch.setattr(batch, "write_output", spy)
    out.mkdir()
    mine = out / ".a_denoised.png.mine1234.png"
    mine.write_bytes(b"the user's own hidden file")
    theirs = out / ".b_denoised.png.k9x2z1ab.png"
    theirs.write_bytes(b"\x89PNG half")
    (out / LOCK).write_text(f"4242\n{json.dumps({'temp': str(theirs.resolve())})}\n")
    rows = run_batch([str(pair)], out, CFG, progress=False, log=quiet)
    assert [r["status"] for r in rows] == ["done", "done"]
    assert mine.read_bytes() == b"the user's own hidden file" and not theirs.exists()
    assert len(seen) == 2 and all(json.dumps({"temp": tmp}) in lock and size == 0 for tmp, lock, size in seen)
    assert (out / LOCK).read_text() == f"{os.getpid()}\n"


def test_an_output_a_killed_run_was_writing_is_still_rdip_s(pair, tmp_path):
    """Killed between an output's write and its row: the lock file lists the output as being
    written, so the rerun replaces it (no --force) and the list empties."""
    out = tmp_path / "out"
    out.mkdir()
    written = (out / "a_denoised.png").resolve()
    written.write_bytes(b"a complete output, no row yet")
    (out / LOCK).write_text(f"4242\n{json.dumps(str(written))}\n")
    rows = run_batch([str(pair)], out, CFG, progress=False, log=quiet)
    assert [r["status"] for r in rows] == ["done", "done"]
    assert read_image(written)[0].shape == (26, 26) and (out / LOCK).read_text() == f"{os.getpid()}\n"


def test_an_existing_path_is_a_path_not_a_pattern(tmp_path, rng):
    src = tmp_path / "in"
    src.mkdir()
    write_png(src / "img[1].png", (rng.random((26, 26)) * 255).astype(np.uint8))
    write_png(src / "img1.png", (rng.random((26, 26)) * 255).astype(np.uint8))
    rows = run_batch([str(src / "img[1].png")], tmp_path / "out", CFG, progress=False, log=quiet)
    assert [Path(r["input"]).name for r in rows] == ["img[1].png"]
    messages = []
    rows = run_batch([str(src / "img[12].png"), str(src / "*.jpg")], tmp_path / "out2", CFG, progress=False,
                     log=quiet, warn=messages.append)
    assert [Path(r["input"]).name for r in rows] == ["img1.png"]  # a pattern where no such file exists
    assert messages == [f"{src / '*.jpg'}: matches no file"]


def test_what_the_user_must_hear_reaches_stderr_even_with_quiet(pair, tmp_path, cli):
    """A damaged manifest line in the middle and a --clean-dir that holds none of the inputs:
    one warning line each on stderr, --quiet or not."""
    out, clean = tmp_path / "out", tmp_path / "clean"
    clean.mkdir()
    run_batch([str(pair / "a.png")], out, CFG, progress=False, log=quiet)
    lines = (out / MANIFEST).read_bytes()
    (out / MANIFEST).write_bytes(b"\xff\xfe not a row\n" + lines)  # before a good row
    code, stdout, err = cli("batch", pair, "-o", out, "--iters", "2", "--device", "cpu", "--quiet",
                            "--clean-dir", clean)
    assert code == 0 and stdout == ""
    warnings = [line for line in err.splitlines() if line.startswith("rdip: warning:")]
    assert any("skipped 1 line that is not a manifest row (line 1)" in w for w in warnings), err
    assert any("holds none of the inputs' file names; no image will be scored" in w for w in warnings), err


def test_rows_are_standard_json_also_for_infinite_scores(tmp_path):
    _append(tmp_path / MANIFEST, {"input": "a", "status": "done", "metrics": {"psnr": float("inf")}})
    line = (tmp_path / MANIFEST).read_text()
    assert json.loads(line, parse_constant=lambda c: pytest.fail(c))["metrics"]["psnr"] is None


def test_a_run_that_fails_before_its_first_row_leaves_nothing(pair, tmp_path, monkeypatch):
    """Ray failing to start (e.g. --num-cpus beyond its limit) left the new folder and its lock."""
    def fails(*args, **kwargs):
        raise RuntimeError("Ray did not start")

    monkeypatch.setattr(batch, "ray_runner", fails)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="Ray did not start"):
        run_batch([str(pair)], out, CFG, backend="ray", progress=False, log=quiet)
    assert not out.exists()
    out.mkdir()
    (out / "keep.txt").write_text("the user's")
    with pytest.raises(RuntimeError, match="Ray did not start"):
        run_batch([str(pair)], out, CFG, backend="ray", progress=False, log=quiet)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
