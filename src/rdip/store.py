"""Saved runs that a rerun resumes from: one rule for when a saved result may be reused, and two
ways to keep runs keyed by name: a folder of files (:class:`RunStore`) and one JSON-lines file
(:class:`RunLog`).

A run is saved as ``<name>.json`` (its record, holding the fields of its key) beside
``<name>.npy`` (its image); the ``.json`` is renamed into place last, so it marks the run done.
A saved run is reused when its record matches the key asked for (:func:`same`): every field equal,
a configuration compared on the fields that decide a result (:meth:`FitConfig.settings`), where a
field added to :class:`FitConfig` after the run was saved counts at its default. ``rdip
reproduce`` and ``rdip compare`` keep their runs in a :class:`RunStore`, ``rdip study`` in a
:class:`RunLog`; ``rdip batch`` keeps its record in a manifest and reports kept outputs whose
configuration :func:`differences` finds. :func:`folder_lock` keeps a second run out of a folder
in use; :func:`append_line` adds a line to a JSON-lines file so that a crash loses at most it.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .config import FitConfig
from .images.files import atomic_write, atomic_write_all, json_text, json_writer

#: Opens a path itself, never the file a symbolic link there points to (0 where the OS lacks it).
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def regular(path: str | Path) -> bool:
    """Whether ``path`` is a regular file: stat'ed, never opened (opening a FIFO waits forever)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def differences(saved: dict, config: dict) -> dict[str, tuple]:
    """``{field: (saved value, value)}`` for the fields of ``config`` (a dict of configuration
    fields, e.g. :meth:`FitConfig.settings`) that the saved configuration holds otherwise; a field
    it lacks (saved before the field existed) counts at its default."""
    saved = FitConfig.saved(saved, config)
    return {k: (saved.get(k), v) for k, v in config.items() if saved.get(k) != v}


def same(saved: dict | None, key: dict) -> bool:
    """Whether a saved key (or record) matches ``key``: each of ``key``'s fields equal in
    ``saved``, a ``config`` dict compared by :func:`differences`."""
    if not isinstance(saved, dict):
        return False
    for field, value in key.items():
        mine = saved.get(field)
        if field == "config" and isinstance(value, dict):
            if not isinstance(mine, dict) or differences(mine, value):
                return False
        elif mine != value:
            return False
    return True


class RunStore:
    """The runs saved under ``folder``; a run's ``name`` may hold ``/`` (a sub-folder)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def path(self, name: str, suffix: str) -> Path:
        return self.folder / f"{name}{suffix}"

    def record(self, name: str) -> dict | None:
        """The saved record of ``name``, or None when there is none (or it cannot be read)."""
        path = self.path(name, ".json")
        if not regular(path):  # none, or a FIFO or device: not a saved run (and never opened)
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def done(self, name: str, key: dict | None = None, *, shape: tuple | None = None,
             fields: tuple[str, ...] = ()) -> bool:
        """Whether ``name`` is saved and usable: a record (a JSON object) that matches ``key`` and
        holds ``fields``, and a complete image (of ``shape``, when given). A run saved otherwise
        (a damaged or truncated file, an edited record) is not done: it is run again."""
        record = self.record(name)
        return (isinstance(record, dict) and all(f in record for f in fields)
                and (key is None or same(record, key)) and self._complete(name, shape))

    def _complete(self, name: str, shape: tuple | None) -> bool:
        return whole_array(self.path(name, ".npy"), shape)

    def load(self, name: str) -> tuple[dict, np.ndarray]:
        """``(record, image)`` of a saved run (see :meth:`done`)."""
        return json.loads(self.path(name, ".json").read_text()), np.load(self.path(name, ".npy"))

    def save(self, name: str, record: dict, image: np.ndarray) -> None:
        """Save a run: its image (float32) and record, both complete before either replaces a file,
        the record last."""
        self.path(name, "").parent.mkdir(parents=True, exist_ok=True)
        data = np.asarray(image, np.float32)
        atomic_write_all([(self.path(name, ".npy"), lambda tmp: np.save(tmp, data)),
                          json_writer(self.path(name, ".json"), record, force=True)])

    def clear(self, pattern: str) -> None:
        """Delete the saved runs (records and images) under the folder whose names (``/`` for a
        sub-folder) match ``pattern``, a regular expression of the names its caller gives runs,
        and nothing else: no file of another name, no folder, no symbolic link, nothing through
        a linked folder."""
        if not self.folder.is_dir() or self.folder.is_symlink():
            return
        for root, _, files in os.walk(self.folder):  # (into no linked folder)
            for file in files:
                old = Path(root) / file
                name = old.relative_to(self.folder).with_suffix("").as_posix()
                if old.suffix in (".json", ".npy") and re.fullmatch(pattern, name) \
                        and not old.is_symlink() and old.is_file():
                    old.unlink()


def whole_array(path: Path, shape: tuple | None = None) -> bool:
    """Whether ``path`` is a whole ``.npy`` array (mapped, not read: a file cut short does not
    map), of ``shape`` when given."""
    if not regular(path):
        return False
    try:
        saved = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return False
    return shape is None or saved.shape == tuple(shape)


@contextmanager
def folder_lock(path: Path, busy: str) -> Iterator[None]:
    """Hold the lock file ``path`` (an exclusive :func:`fcntl.flock`, with this process's pid in
    the file) for the block; a ValueError ``busy (pid N); wait …`` at once when another process
    holds it. Never through a symbolic link."""
    path = Path(path)
    if path.is_symlink():
        raise ValueError(f"{path} is a symbolic link; nothing was written (remove it)")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | NOFOLLOW, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise ValueError(f"{busy} (pid {holder}); wait for it to finish or use another folder") from None
        pid = f"{os.getpid()}\n".encode()
        if os.pread(fd, 32, 0) != pid:  # (a rerun in the same process leaves the file alone)
            os.ftruncate(fd, 0)
            os.pwrite(fd, pid, 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def append_line(path: Path, row: dict) -> None:
    """Append one JSON line and sync it to disk (after a line cut short, start a new line); never
    through a symbolic link (an OSError)."""
    with open(os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | NOFOLLOW, 0o644), "a+b") as f:
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")
        f.write((json_text(row, indent=None) + "\n").encode())
        f.flush()
        os.fsync(f.fileno())


class RunLog:
    """Runs kept as one JSON-lines file, a record per line with its ``name``; the runs' images,
    where they are kept, beside it as ``<images>/<name>.npy`` (float32).

    A run is saved by writing its image (atomically) and then appending its line
    (:func:`append_line`), so a line marks a run done and a crash loses at most the run being
    saved. Reading takes the last complete line of each name (a line cut short by a crash, one
    that is not UTF-8, or anything that is not a JSON object with a ``name`` and, where it has
    ``scores``, a table of them, is skipped). :meth:`rewrite` replaces the file with one line per
    run, in a given order, once a run is over.
    """

    def __init__(self, path: str | Path, images: str | Path | None = None):
        self.path, self.images = Path(path), None if images is None else Path(images)
        self._records: dict[str, dict] | None = None

    def records(self) -> dict[str, dict]:
        """Every saved record by name (read once, then kept up to date by :meth:`save`)."""
        if self._records is None:
            self._records = {}
            if self.path.exists() and not regular(self.path):
                raise ValueError(f"{self.path}: is not a regular file (a FIFO, socket or device); "
                                 "nothing was written (move it away, or choose another folder)")
            try:
                lines = self.path.read_bytes().splitlines()
            except FileNotFoundError:
                lines = []
            for line in lines:
                try:
                    row = json.loads(line.decode("utf-8"))
                except ValueError:  # (UnicodeDecodeError among them)
                    continue
                if isinstance(row, dict) and isinstance(row.get("name"), str) and \
                        isinstance(row.get("scores", {}), dict):
                    self._records[row["name"]] = row
        return self._records

    def record(self, name: str) -> dict | None:
        return self.records().get(name)

    def done(self, name: str, key: dict | None = None) -> bool:
        """Whether ``name`` is saved with a record that matches ``key`` (:func:`same`); its image
        need not be kept, but a kept one that is damaged (:func:`whole_array`) makes it not done."""
        record, path = self.record(name), self.image_path(name)
        return (record is not None and (key is None or same(record, key))
                and (path is None or not path.exists() or whole_array(path)))

    def image_path(self, name: str) -> Path | None:
        return None if self.images is None else self.images / f"{name}.npy"

    def load(self, name: str) -> tuple[dict, np.ndarray | None]:
        """``(record, image)`` of a saved run; the image is None where it was not kept (or
        cannot be read)."""
        path = self.image_path(name)
        image = np.load(path) if path is not None and whole_array(path) else None
        return self.records()[name], image

    def save(self, name: str, record: dict, image: np.ndarray | None = None) -> None:
        """Save a run: its image first (when images are kept and one is given), then its line."""
        record = {"name": name, **record}
        path = self.image_path(name)
        if path is not None and image is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            data = np.asarray(image, np.float32)
            atomic_write(path, lambda tmp: np.save(tmp, data))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        append_line(self.path, record)
        self.records()[name] = record

    def rewrite(self, order: Iterable[str]) -> None:
        """Replace the file (atomically) with one line per saved run: the runs named in ``order``
        first, in that order, then every other run in the order read."""
        records = self.records()
        first = [n for n in dict.fromkeys(order) if n in records]
        chosen = set(first)
        rows = [records[n] for n in first] + [r for n, r in records.items() if n not in chosen]
        text = "".join(json_text(r, indent=None) + "\n" for r in rows)
        atomic_write(self.path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
