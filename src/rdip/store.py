"""Saved runs that a rerun resumes from: one rule for when a saved result may be reused, and a
folder of runs keyed by name.

A run is saved as ``<name>.json`` (its record, holding the fields of its key) beside
``<name>.npy`` (its image); the ``.json`` is renamed into place last, so it marks the run done.
A saved run is reused when its record matches the key asked for (:func:`same`): every field equal,
a configuration compared on the fields that decide a result (:meth:`FitConfig.settings`), where a
field added to :class:`FitConfig` after the run was saved counts at its default. ``rdip
reproduce`` and ``rdip compare`` keep their runs in a :class:`RunStore`; ``rdip batch`` keeps its
record in a manifest and reports kept outputs whose configuration :func:`differences` finds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .config import FitConfig
from .images.files import atomic_write_all, json_writer


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
        try:
            return json.loads(self.path(name, ".json").read_text())
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
        """Whether ``name``'s ``.npy`` is a whole array (mapped, not read: a file cut short does
        not map), of ``shape`` when given."""
        try:
            saved = np.load(self.path(name, ".npy"), mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            return False
        return shape is None or saved.shape == tuple(shape)

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

    def clear(self) -> None:
        """Delete every saved run (records and images) under the folder."""
        if self.folder.is_dir():
            for old in [*self.folder.rglob("*.json"), *self.folder.rglob("*.npy")]:
                old.unlink()
