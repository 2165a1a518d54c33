"""Writing results: output folders, CSV and Markdown tables."""

from __future__ import annotations

import csv
import io as _io
import os
from pathlib import Path

from ..images.files import atomic_write


def check_out_dir(out_dir: Path, names: list[str], force: bool) -> Path:
    """``out_dir`` if ``names`` can be written there (it need not exist yet; the caller creates it
    when it writes): refuse a file in its place, any of ``names`` there unless ``force``, and a
    symbolic link by any of ``names`` even with ``force`` (never written through or replaced)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir}: exists and is not a folder; choose another --out")
    if link := next((out_dir / n for n in names if (out_dir / n).is_symlink()), None):
        raise ValueError(f"{link} is a symbolic link; nothing was written (remove it)")
    existing = [n for n in names if os.path.lexists(out_dir / n)]
    if existing and not force:
        raise FileExistsError(f"{out_dir}: already holds {', '.join(existing)}; "
                              "use --force to overwrite or choose another --out")
    return out_dir


def write_csv(path: Path, rows: list[dict]) -> None:
    buffer = _io.StringIO()
    columns = list(dict.fromkeys(k for row in rows for k in row))  # every key, in order of appearance
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda tmp: Path(tmp).write_text(buffer.getvalue()))


def markdown_table(rows: list[dict], digits: int = 3) -> str:
    """A GitHub Markdown table of ``rows`` (floats rounded to ``digits``)."""
    cols = list(dict.fromkeys(k for row in rows for k in row))  # every key, in order of appearance
    fmt = lambda v: f"{v:.{digits}f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"
