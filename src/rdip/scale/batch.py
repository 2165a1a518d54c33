"""Denoise many image files into a folder, resumably: ``rdip batch``.

Images of one shape are fitted together (one :func:`~rdip.method.engine.fit_many` call per chunk
of at most ``chunk`` images, :data:`CHUNK` by default), each output is written atomically in its
input's bit depth, and then one JSON line per image is appended to ``OUT/manifest.jsonl`` and
synced to disk. The manifest is the record of what is finished: a rerun skips every input whose
latest row is ``done`` and whose output exists (and is still its own), and redoes the rest (error rows included). A run
killed at any moment (even ``kill -9``) loses only the chunks in flight; a half-written manifest
line is ignored and its temporary files (each recorded in the lock file as it is made, so no
file of the user's is taken for one) are removed. Manifest lines that are not rows (edited
or damaged) are skipped with one warning. A rerun with other settings keeps the outputs already
done (it says which, and how to refit them).
A file at an output's name that rdip batch did not write (no manifest row names it, and no run
was killed while writing it) is never replaced without ``force``: the run is refused first.
Every check comes before the first write (the folder, the lock, a row): a refused run leaves
nothing behind.
The chunks are fitted in this process (backend ``local``) or as Ray tasks on one machine or a
cluster (backend ``ray``, :mod:`rdip.scale.ray`); either way this process reads the images and
writes the outputs and the manifest, so both backends write the same rows.
A run holds an exclusive lock on ``OUT/.rdip-batch.lock`` (:func:`fcntl.flock`, so POSIX only;
the file holds the pid of the run, then the outputs being written, and stays when it ends): a
second run on the same folder fails at once instead of removing the first one's temporary files,
and a run killed while writing an output leaves it known as rdip's.
Outputs are named ``stem + suffix + extension`` of their input, always inside ``OUT``; nothing is
written through a symbolic link: an output that is one gets an error row, a manifest that is one
refuses the run. An output never replaces an input of the run, nor the finished output of another
input (the manifest records each output's input: two folders' ``a.png`` into one folder), not
even with ``force``: such a run is refused. Every image gets the same seed, so an output does not depend on which other
images shared its batch.
"""

from __future__ import annotations

import fcntl
import glob
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path

from ..config import FitConfig
from ..images.files import SUFFIXES, name_max
from ..jobs import Input, load_input, write_output
from ..method.devices import resolve_device
from ..method.engine import fit_many
from ..method.planning import SLOW_SECONDS, plan
from ..progress import progress_bar
from ..store import NOFOLLOW, differences
from ..store import append_line as _append
from .ray import check_address, ray_runner

#: Images per fit_many call (local) or Ray task at most: what a kill can lose, per chunk in flight.
CHUNK = 16
MANIFEST = "manifest.jsonl"
#: The lock file of a run, in the output folder (hidden and not an image: never taken as an input).
LOCK = ".rdip-batch.lock"
BACKENDS = ("local", "ray")


def check_suffix(suffix: str) -> str:
    """``suffix`` if it only extends a file name: no path separator, ``..`` or NUL (an empty one
    is allowed; :func:`run_batch` refuses it where an output would replace its input)."""
    if any(bad in suffix for bad in ("/", "\\", "..", "\0")):
        raise ValueError(f"suffix {suffix!r}: must not contain '/', '\\', '..' or NUL characters "
                         "(outputs are written inside the output folder)")
    return suffix


def expand_inputs(inputs: list[str], warn: Callable[[str], None] | None = None) -> list[Path]:
    """Files, folders (their image files, sorted, hidden ones skipped) and glob patterns → paths.

    A path that exists is that path, even where its name holds ``*``, ``?`` or ``[`` (``img[1].png``
    is not a pattern matching ``img1.png``); a pattern that matches no file gets a ``warn`` line.
    """
    paths: list[Path] = []
    for item in inputs:
        if not item.strip():
            raise ValueError("an empty input name; give files, folders or glob patterns")
        if Path(item).is_dir():
            found = sorted(p for p in Path(item).iterdir() if p.is_file())
        elif Path(item).exists():
            paths.append(Path(item))  # named explicitly: a bad format becomes an error row
            continue
        elif any(c in item for c in "*?["):
            found = [Path(p) for p in sorted(glob.glob(item)) if Path(p).is_file()]
            if not found and warn is not None:
                warn(f"{item}: matches no file")
        else:
            raise FileNotFoundError(f"{item}: no such file or folder")
        paths += [p for p in found if p.suffix.lower() in SUFFIXES and not p.name.startswith(".")]
    unique = {p.resolve(): None for p in paths}
    if not unique:
        raise ValueError(f"no image files ({', '.join(SUFFIXES)}) found in {' '.join(inputs)}")
    return list(unique)


def _row(line: bytes) -> dict | None:
    """The manifest row on one line, or None where the line is not one (not UTF-8, not JSON, not
    an object, or a field of the wrong type)."""
    try:
        row = json.loads(line.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    if not (isinstance(row, dict) and isinstance(row.get("input"), str)
            and isinstance(row.get("status"), str) and isinstance(row.get("output"), (str, type(None)))
            and isinstance(row.get("config", {}), dict)):
        return None
    return row


def manifest_rows(path: Path, warn: Callable[[str], None] | None = None) -> list[dict]:
    """Every row of a manifest, in order.

    A last line without its newline (cut short by a kill) is ignored silently; any other line that
    is not a row (see :func:`_row`) is skipped, and ``warn`` (when given) gets one line with how
    many were skipped and the first line numbers.
    """
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    cut = lines.pop()  # b"" after a final newline, else the last line, maybe cut short
    rows, skipped = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        row = _row(line)
        if row is None:
            skipped.append(number)
        else:
            rows.append(row)
    if cut.strip() and (row := _row(cut)) is not None:
        rows.append(row)
    if skipped and warn is not None:
        numbers = ", ".join(map(str, skipped[:5])) + (", …" if len(skipped) > 5 else "")
        what = ("lines that are not manifest rows (lines" if len(skipped) > 1
                else "line that is not a manifest row (line")
        warn(f"{path}: skipped {len(skipped)} {what} {numbers}); they are ignored")
    return rows


def read_manifest(path: Path, warn: Callable[[str], None] | None = None) -> dict[str, dict]:
    """The latest row per input of a manifest (:func:`manifest_rows`)."""
    return {row["input"]: row for row in manifest_rows(path, warn)}


def _other_settings(previous: dict[str, dict], kept: list[tuple[Path, Path]],
                    config: FitConfig) -> str | None:
    """One line about the kept ``(input, output)`` pairs whose ``done`` row holds another
    configuration than ``config`` (compared on :meth:`FitConfig.settings` by
    :func:`rdip.store.differences`), or None when they all match (or have none)."""
    current = config.settings()
    changes: dict[str, list] = {}  # field → the other values it had
    names = []
    for path, output in kept:
        saved = previous[str(path)].get("config")
        if saved is None:
            continue  # no configuration recorded: nothing to compare
        differ = differences(saved, current)
        for k, (old, _) in differ.items():
            if old not in changes.setdefault(k, []):
                changes[k].append(old)
        if differ:
            names.append(output.name)
    if not names:
        return None
    fields = ", ".join(f"{k} {'/'.join(map(str, old))} → {current[k]}" for k, old in changes.items())
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return (f"{len(names)} done output{'s were' if len(names) > 1 else ' was'} made with other settings "
            f"({fields}) and {'are' if len(names) > 1 else 'is'} kept: {shown}; to refit "
            f"{'them' if len(names) > 1 else 'it'} with these settings, delete "
            f"{'them' if len(names) > 1 else 'it'} or use another folder")


def _lock_lines(data: bytes) -> tuple[str, list[str]]:
    """The pid and the pending outputs held in a lock file's ``data`` (lines it cannot read are
    left out)."""
    lines = data.decode("utf-8", "replace").splitlines()
    pending = []
    for line in lines[1:]:
        try:
            name = json.loads(line)
        except ValueError:
            continue
        if isinstance(name, str):
            pending.append(name)
    return (lines[0].strip() if lines else ""), pending


def _lock_temps(data: bytes) -> list[str]:
    """The temporary files a run was writing, held in a lock file's ``data`` (``{"temp": path}``
    lines): the only ones a later run removes."""
    temps = []
    for line in data.decode("utf-8", "replace").splitlines()[1:]:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("temp"), str):
            temps.append(entry["temp"])
    return temps


def pending_outputs(out_dir: Path) -> list[str]:
    """The outputs a run on ``out_dir`` was writing when it ended (killed), from its lock file."""
    path = out_dir / LOCK
    if not path.is_file() or path.is_symlink():
        return []
    return _lock_lines(path.read_bytes())[1]


class _Held:
    """The lock of a run (an open, locked :data:`LOCK`): its file holds this run's pid, then, one
    JSON string a line, the outputs being written (and those a killed run left unfinished), then
    the temporary files being written (``{"temp": path}``; a killed run's, until removed)."""

    def __init__(self, fd: int):
        self.fd, self.used = fd, False  # used: a row appended or an output being written
        data = os.pread(fd, 1 << 20, 0)
        self.carried, self.temps, self.writing = _lock_lines(data)[1], _lock_temps(data), []
        self.mark([])

    def mark(self, outputs: list[str]) -> None:
        """Record ``outputs`` as being written (synced), after what a killed run left."""
        self.used = self.used or bool(outputs)
        self.writing = list(outputs)
        text = (f"{os.getpid()}\n" + "".join(json.dumps(o) + "\n" for o in [*self.carried, *self.writing])
                + "".join(json.dumps({"temp": t}) + "\n" for t in self.temps))
        if os.pread(self.fd, 1 << 20, 0) != text.encode():  # (a rerun in the same process: unchanged)
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, text.encode(), 0)
            os.fsync(self.fd)

    def temp(self, path: str) -> None:
        """Record the temporary file ``path`` (just made, still empty) as this run's (synced)."""
        self.temps.append(path)
        self.mark(self.writing)

    def settle(self, owned: set[str]) -> None:
        """The outputs written (their temporary files renamed) and their rows appended: none is
        pending any more."""
        self.carried = [o for o in self.carried if o not in owned]
        self.temps = []
        self.mark([])


@contextmanager
def _lock(out_dir: Path) -> Iterator[_Held]:
    """Hold ``out_dir``'s :data:`LOCK` (an exclusive :func:`fcntl.flock`) for the block; a
    ValueError at once when another run holds it."""
    path = out_dir / LOCK
    if path.is_symlink():
        raise ValueError(f"{path} is a symbolic link; nothing was written (remove it)")
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | NOFOLLOW, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if not (path.exists() and os.path.samestat(os.fstat(fd), os.stat(path))):
                raise BlockingIOError  # removed by a run that ended before writing anything
        except BlockingIOError:
            holder = _lock_lines(os.pread(fd, 64, 0))[0] or "unknown"
            raise ValueError(f"{out_dir} is in use by another rdip batch (pid {holder}); wait for it "
                             "to finish or use another folder") from None
        held = _Held(fd)
        try:
            yield held
        except BaseException:
            if created and not held.used:  # a run that wrote nothing leaves no lock file either
                path.unlink(missing_ok=True)
            raise
    finally:
        os.close(fd)  # releases the lock


def _sync(path: Path) -> None:
    """Force a written output to disk before its manifest row claims it."""
    fd = os.open(path, os.O_RDONLY | NOFOLLOW)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fit(images: list, cleans: list, configs: dict) -> list:
    """Fit one chunk of same-shape images in one :func:`~rdip.method.engine.fit_many` call with their
    shape's configuration (:func:`rdip.method.planning.plan`: whole, or as tiles); one result per image."""
    return fit_many(images, configs[images[0].shape], clean=cleans)


class _InProcess:
    """The local backend: each chunk fitted in this process in turn (the interface of
    :class:`rdip.scale.ray.RayRunner`)."""

    slots = 1
    memory_mb = None  # this machine's free memory, measured by rdip.method.planning.plan

    def __init__(self, device: str):
        self.device = device

    @staticmethod
    def run(fit: Callable, jobs: Iterable[tuple]) -> Iterator[tuple]:
        """``(key, fit(images, cleans))`` for each ``(key, images, cleans)``, or ``(key, exception)``."""
        for key, images, cleans in jobs:
            try:
                outcome = fit(images, cleans)
            except Exception as e:  # noqa: BLE001  (one failed fit must not stop the others)
                outcome = e
            yield key, outcome


def run_batch(inputs: list[str], out_dir: Path, config: FitConfig, *, auto_tile: bool = True,
              suffix: str = "_denoised", clean_dir: Path | None = None, chunk: int = CHUNK,
              backend: str = "local", address: str | None = None, num_cpus: int | None = None,
              force: bool = False, progress: bool = True, log=print,
              warn: Callable[[str], None] | None = None) -> list[dict]:
    """Denoise ``inputs`` (files, folders, globs) into ``out_dir``; return this run's manifest rows.

    Each image shape is planned once (:func:`rdip.method.planning.plan`): tiles where ``config``
    has them, else the whole image, or, with ``auto_tile``, tiles when the whole image would not
    fit in memory (without it such images get error rows). An image fitted as tiles is one call of
    its own, otherwise same-shape images are stacked, at most ``chunk`` per call. With
    ``clean_dir`` (a folder that must exist), an image whose file name also exists there is scored
    against it. Outputs of rdip batch whose input has no ``done`` row (a kill between the write
    and the row) are redone and replaced; ``done`` outputs made with another configuration are
    kept, and ``log`` gets one line about them. A file at an output's name that rdip batch did not
    write is replaced only with ``force``; without it the run is refused.

    ``suffix`` (:func:`check_suffix`) names the outputs, each in ``out_dir``, in names the file
    system takes. An output path that is a symbolic link (or a folder) gets an error row and is
    left alone; a ``manifest.jsonl`` that is a symbolic link, or an ``out_dir`` held by another
    run (:data:`LOCK`), is a ValueError. Every refusal comes before anything is written.
    ``warn`` (default :func:`warnings.warn`) gets what the user must hear even when ``log`` is
    quiet: skipped manifest lines, patterns that match nothing, no clean reference found.

    ``backend="ray"`` fits each chunk as a Ray task (:func:`rdip.scale.ray.ray_runner`: Ray at
    ``address``, else Ray's default, else a new one on ``num_cpus`` CPUs), and splits a shape's
    images into at least as many chunks as the cluster runs tasks at a time; the rows are
    appended as the tasks finish. Ray is not started when no image is left to fit; an address
    where no cluster answers is refused first (:func:`rdip.scale.ray.check_address`).
    """
    warn = warn or partial(warnings.warn, stacklevel=2)
    found = _check(inputs, Path(out_dir), config, suffix, clean_dir, chunk, backend, address, warn)
    out_dir = Path(out_dir)
    # a dry run of the checks: refused before the folder, the lock or a row is written
    _Batch(out_dir, config, found, suffix, clean_dir, backend, force=force, pending=pending_outputs(out_dir))
    made = not out_dir.exists()
    out_dir.mkdir(exist_ok=True)
    try:
        with _lock(out_dir) as held:  # held until the last row: a second run fails at once
            batch = _Batch(out_dir, config, found, suffix, clean_dir, backend, force=force,
                           pending=held.carried, warn=warn)  # again, under the lock
            batch.start(held, log)
            with progress_bar(len(batch.todo), "batch", enabled=progress, unit="image") as batch.bar:
                batch.run(chunk, backend, address, num_cpus, auto_tile)
    except BaseException:
        if made and not any(out_dir.iterdir()):
            out_dir.rmdir()  # failed before its first row (Ray did not start…): nothing left
        raise
    errors = sum(r["status"] == "error" for r in batch.rows)
    log(f"done {len(batch.rows) - errors}, errors {errors}; manifest: {batch.manifest}")
    return batch.rows


def _check(inputs: list[str], out_dir: Path, config: FitConfig, suffix: str, clean_dir, chunk: int,
           backend: str, address: str | None, warn) -> list[Path]:
    """:func:`run_batch`'s arguments checked, nothing written; the input files."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    check_suffix(suffix)
    if not out_dir.parent.is_dir():
        raise FileNotFoundError(f"{out_dir}: the folder {out_dir.parent} does not exist; create it first")
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir}: exists and is not a folder; give a folder for the outputs")
    if clean_dir is not None and not Path(clean_dir).is_dir():
        raise FileNotFoundError(f"{clean_dir}: no such folder of clean references (--clean-dir)")
    if (out_dir / MANIFEST).is_symlink():
        raise ValueError(f"{out_dir / MANIFEST} is a symbolic link; refusing to write through it, "
                         "nothing was written (replace it with the file itself or use another folder)")
    if backend == "local":
        resolve_device(config.device)  # no CUDA for --device cuda: one error now, not one per image
    else:
        check_address(address)  # an unreachable cluster: an error now, not a hang
    found = expand_inputs(inputs, warn)  # no inputs: an error before the folder is made
    if clean_dir is not None and not any((Path(clean_dir) / p.name).is_file() for p in found):
        warn(f"{clean_dir}: holds none of the inputs' file names; no image will be scored")
    return found


class _Batch:
    """One run over an output folder: which inputs are left, their outputs and manifest rows, and
    the configuration each image shape is fitted with. Made twice: as a dry run of the checks
    before anything is written, then under the folder's lock (:meth:`start`)."""

    def __init__(self, out_dir: Path, config: FitConfig, found: list[Path], suffix: str,
                 clean_dir: Path | None, backend: str, *, force: bool = False, pending=(), warn=None):
        self.out_dir, self.folder, self.manifest = out_dir, out_dir.resolve(), out_dir / MANIFEST
        self.config, self.clean_dir, self.backend = config, clean_dir, backend
        rows = manifest_rows(self.manifest, warn)
        self.previous = {row["input"]: row for row in rows}
        self.owned = {r["output"] for r in rows if r.get("output")} | set(pending)  # what rdip wrote
        self.paths = [p for p in found  # not our own outputs, nor the lock file
                      if str(p) not in self.owned and p != self.folder / LOCK]
        latest = [r for r in rows if self.previous[r["input"]] is r]
        # each finished output's source: the input whose latest row is done and names it (the last)
        self.finished = {r["output"]: r["input"] for r in latest if r["status"] == "done" and r.get("output")}
        self.outputs = self._outputs(suffix)
        self.todo = [p for p in self.paths if not (self.previous.get(str(p), {}).get("status") == "done"
                                                   and self.finished.get(str(self.outputs[p])) == str(p)
                                                   and self.outputs[p].is_file()
                                                   and not self.outputs[p].is_symlink())]
        self._refuse_taken()
        if not force:
            self._refuse_foreign()
        self.rows: list[dict] = []
        self.configs: dict[tuple, FitConfig] = {}  # image shape → the configuration it is fitted with
        self.bar = self.held = self.log = None

    def _outputs(self, suffix: str) -> dict[Path, Path]:
        """Each input's output in the folder (a link there stays one), checked: inside the folder,
        no input and no other output overwritten, a name the file system takes."""
        outputs = {p: self.folder / f"{p.stem}{suffix}{p.suffix}" for p in self.paths}
        limit = name_max(self.folder if self.folder.is_dir() else self.folder.parent)
        owner: dict[Path, Path] = {}
        inputs = set(self.paths)
        for p, out in outputs.items():
            if out.parent != self.folder:  # check_suffix and file names keep it so; never write elsewhere
                raise ValueError(f"{p}: its output {out} would be outside {self.out_dir}; use another --suffix")
            if out == p or out in owner:
                raise ValueError(f"{p}: its output {out} would overwrite "
                                 f"{'the input' if out == p else owner[out]}; use another --suffix")
            if out in inputs:  # an input of this run, not an output of rdip's: never replaced
                raise ValueError(f"{p}: its output {out} is another input of this run, which rdip never "
                                 "replaces, not even with --force; use another --suffix or output folder")
            if (size := len(os.fsencode(out.name))) > limit:
                raise ValueError(f"{p}: its output name {out.name!r} is {size} bytes long, more than the "
                                 f"{limit} the file system allows; use a shorter --suffix")
            owner[out] = p
        return outputs

    def _refuse_taken(self) -> None:
        """Refuse the run (``force`` or not) where an output to write is the finished output of
        another input (an earlier run from another folder, by the manifest)."""
        for p in self.todo:
            source = self.finished.get(str(out := self.outputs[p]))
            if source is not None and source != str(p) and out.is_file() and not out.is_symlink():
                raise FileExistsError(f"{out}: is the finished output of {source} (a row of "
                                      f"{self.manifest}), which {p} would replace; use another --suffix "
                                      "or output folder for these inputs")

    def _refuse_foreign(self) -> None:
        """Refuse the run where an output to write would replace a file rdip batch did not write."""
        foreign = [out for p in self.todo if (out := self.outputs[p]).is_file() and not out.is_symlink()
                   and str(out) not in self.owned]
        if foreign:
            more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
            raise FileExistsError(f"{foreign[0]}: exists and was not written by rdip batch (no row of "
                                  f"{self.manifest} names it){more}; move it away, or use --force to "
                                  "replace it")

    def run(self, chunk: int, backend: str, address: str | None, num_cpus: int | None,
            auto_tile: bool) -> None:
        """Read, plan, fit and write what is left, on the backend's runner."""
        with ExitStack() as stack:
            groups = self.group()
            if backend == "ray" and groups:
                runner = stack.enter_context(ray_runner(address, num_cpus, self.config.device))
                self.log(runner.summary)
            else:
                runner = _InProcess(self.config.device)
            self.plan(groups, runner, auto_tile)
            fit = partial(_fit, configs=self.configs)
            for (part, shape, infos), outcome in runner.run(fit, self.chunks(groups, chunk, runner.slots)):
                self.finish(part, shape, infos, outcome)

    def start(self, held: _Held, log) -> None:
        """Begin the run under the lock ``held``: say what is left, remove the stale temporary
        files of writes killed half-way."""
        self.held, self.log = held, log
        log(f"{len(self.paths)} images, {len(self.paths) - len(self.todo)} already done, "
            f"{len(self.todo)} to do → {self.out_dir}")
        left = set(self.todo)
        other = _other_settings(self.previous, [(p, self.outputs[p]) for p in self.paths if p not in left],
                                self.config)
        if other:
            log(other)
        for stale in map(Path, self.held.temps):  # a killed run's, recorded as made: no other file
            if stale.parent == self.folder and stale.name.startswith(".") and stale.is_file() \
                    and not stale.is_symlink():
                stale.unlink()
        self.held.temps = []
        self.held.mark([])

    def tiles_of(self, shape) -> dict | None:
        """``{"tile", "overlap"}`` for a shape fitted as tiles, else None."""
        cfg = self.configs.get(tuple(shape or ()))
        return {"tile": cfg.tile, "overlap": cfg.tile_overlap} if cfg is not None and cfg.tile else None

    def record(self, path: Path, status: str, error: str | None = None, result=None, shape=None,
               orientation: int | None = None) -> None:
        """Append ``path``'s row to the manifest (synced) and to :attr:`rows`; ``orientation``: the
        EXIF orientation applied when the input was read (1: none)."""
        row = {"input": str(path), "output": str(self.outputs[path]) if status == "done" else None,
               "status": status, "error": error, "config": self.config.to_dict(),
               "tile": self.tiles_of(shape), "orientation": orientation,
               "metrics": result.metrics if result else {}, "seconds": result.seconds if result else 0.0,
               "iters_run": result.iters_run if result else 0, "shape": shape,
               "device": result.device if result else None, "backend": self.backend, "time": time.time()}
        _append(self.manifest, row)
        self.held.used = True
        self.rows.append(row)
        self.bar.update(1)

    def blocked(self, path: Path) -> bool:
        """Whether ``path``'s output is a symbolic link (never followed), a folder or another
        non-file; such an output gets an error row."""
        out = self.outputs[path]
        if out.is_symlink():
            reason = "is a symbolic link"
        elif out.exists() and not out.is_file():
            reason = "exists and is not a file"
        else:
            return False
        self.record(path, "error", f"{out}: the output {reason}; nothing was written "
                                   "(remove it to write the output there)")
        return True

    def _load(self, path: Path) -> Input:
        clean = None if self.clean_dir is None else Path(self.clean_dir) / path.name
        return load_input(path, clean if clean is not None and clean.is_file() else None)

    def group(self) -> dict[tuple, list[Path]]:
        """The inputs left, by image shape; each read once here to check it (and again when
        fitted: bounded memory); unreadable ones get error rows."""
        groups: dict[tuple, list[Path]] = {}
        for path in self.todo:
            if self.blocked(path):
                continue
            try:
                groups.setdefault(self._load(path).image.shape, []).append(path)
            except Exception as e:  # noqa: BLE001  (one bad file must not stop the others)
                self.record(path, "error", f"{type(e).__name__}: {e}")
        return groups

    def plan(self, groups: dict[tuple, list[Path]], runner, auto_tile: bool) -> None:
        """Plan each shape on the runner's device and memory; a shape that cannot be fitted gets
        error rows; log the estimate."""
        config, plans = self.config.replace(device=runner.device), {}
        for shape, group in list(groups.items()):
            try:
                plans[shape] = plan(shape[0], shape[1], shape[2] if len(shape) == 3 else 1, config,
                                    auto=auto_tile, available_mb=runner.memory_mb)
            except (MemoryError, ValueError) as e:
                for p in groups.pop(shape):
                    self.record(p, "error", f"{type(e).__name__}: {e}", shape=list(shape))
        self.configs.update({shape: p["config"] for shape, p in plans.items()})
        if plans:
            seconds = sum(plans[s]["seconds"] * len(g) for s, g in groups.items()) / runner.slots
            self.log(f"estimated ≈{seconds:.0f} s, ≤{max(p['memory_mb'] for p in plans.values()):.0f} MB "
                     f"per fit, {sum(p['tile'] is not None for p in plans.values())} of {len(plans)} "
                     "image shapes as tiles (rdip.method.planning, calibrated in results/cost)")
            if seconds > SLOW_SECONDS:
                self.log(f"warning: this will take ≈{seconds / 60:.0f} min; to make it faster: a GPU "
                         "(--device cuda), more machines (--backend ray), or smaller images")

    def chunks(self, groups: dict[tuple, list[Path]], step: int, slots: int) -> Iterator[tuple]:
        """``((paths, shape, infos), images, cleans)`` per chunk of at most ``step`` images (one
        where the shape is tiled), each group in at least ``slots`` chunks where it can be; read
        when the runner asks for it."""
        for shape, group in groups.items():
            size = 1 if self.tiles_of(shape) else min(step, math.ceil(len(group) / slots))
            for start in range(0, len(group), size):
                part = group[start:start + size]
                try:
                    loaded = [self._load(p) for p in part]
                except Exception as e:  # noqa: BLE001  (changed since it was grouped)
                    for p in part:
                        self.record(p, "error", f"{type(e).__name__}: {e}", shape=list(shape))
                    continue
                yield (part, shape, [x.info for x in loaded]), [x.image for x in loaded], [x.clean for x in loaded]

    def finish(self, part: list[Path], shape: tuple, infos, outcome) -> None:
        """Write a fitted chunk's outputs and rows (or its error rows)."""
        if isinstance(outcome, Exception):
            for p in part:
                self.record(p, "error", f"{type(outcome).__name__}: {outcome}", shape=list(shape))
            return
        outputs = [str(self.outputs[p]) for p in part]
        self.held.mark(outputs)  # a kill from here on leaves them known as rdip's
        for p, info, result in zip(part, infos, outcome):
            if self.blocked(p):  # made a link while it was fitted
                continue
            # a link made after this check is refused (check_output), never followed
            write_output(self.outputs[p], result, info, force=True, made=self.held.temp)
            _sync(self.outputs[p])
            self.record(p, "done", result=result, shape=list(shape), orientation=info.orientation)
        self.held.settle(set(outputs))
