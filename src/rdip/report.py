"""One self-contained HTML file, ``report.html``: text, tables, figures and image comparisons.

The file needs nothing else to be viewed, not even a network: CSS and JavaScript are inline, every
image is a ``data:`` URI (PNG), fonts are the browser's own, and a Content-Security-Policy forbids
loading anything else. There is no JavaScript framework; without JavaScript everything but the
zoom buttons and the before/after slider still shows.

Each :class:`Comparison` is a card with its panels (noisy / each result / clean, in the order given)
side by side at full resolution, one image pixel to one CSS pixel at 1x, shown zoomed by default
to a size one can judge (:func:`default_zoom`: a 32×32 image at 8×, 96×96 at 2×), the scores
under each panel, zoom buttons (1x 2x 4x 8x, drawn with ``image-rendering: pixelated``; one set
for all cards at the top of the section) and a before/after slider: two panels picked by the reader overlaid,
the left one shown left of a divider that is dragged with the mouse (or the range input).

Size: an image costs its PNG size times 4/3 (base64); text and tables are negligible. A 32x32
CIFAR panel is about 3.5 KB (noisy 4.5 KB), so 15 CIFAR images x 5 panels give about 0.3 MB and
100 x 5 about 1.8 MB; a noisy 256x256 colour panel is about 0.25 MB, a denoised one 0.1-0.2 MB, so
15 photographs x 5 panels give 12-20 MB (grey images a third of that). Off-screen cards are laid
out only when scrolled to (``content-visibility: auto``): headless Chromium loads the 100-image
report in 0.3 s and the 15-photograph one in 0.35 s (writing them takes 0.15 s and 1.4 s).
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .images.files import atomic_write

__all__ = ["Comparison", "Figure", "Panel", "Table", "default_zoom", "fmt", "png_bytes",
           "render_report", "write_report"]

ZOOMS = (1, 2, 4, 8)
#: The most CSS pixels the larger side of a panel takes at its default zoom.
PANEL_PX = 320


def default_zoom(shapes: Sequence[tuple[int, int]]) -> int:
    """The zoom a card starts at: the largest of :data:`ZOOMS` that keeps its largest panel
    (``(height, width)`` each) within :data:`PANEL_PX` CSS pixels, 1 at least: 8× for 32×32
    CIFAR images, 4× for 64×64 crops, 2× for 96 to 160 pixels, 1× from 161."""
    side = max((max(h, w) for h, w in shapes), default=1)
    return max(z for z in ZOOMS if z == 1 or side * z <= PANEL_PX)


@dataclass(frozen=True)
class Table:
    """A table: ``rows`` are dicts, column name to value; the columns are every key, in the order
    first seen. Floats are rounded to about 4 significant digits, ``None`` is an empty cell."""

    caption: str
    rows: Sequence[Mapping[str, object]]


@dataclass(frozen=True)
class Figure:
    """An existing PNG (or JPEG) file, embedded with its caption."""

    caption: str
    png_path: str | os.PathLike


@dataclass(frozen=True)
class Panel:
    """One image of a comparison: ``image`` is ``(H, W)`` grey or ``(H, W, 3)`` colour, floats in
    [0, 1] (clipped; NaN shown black; uint8 is taken as 0-255); ``scores`` (e.g. ``{"SSIM": 0.81,
    "PSNR (dB)": 27.3}``) are shown under it."""

    label: str
    image: np.ndarray
    scores: Mapping[str, float] | None = None


@dataclass(frozen=True)
class Comparison:
    """A row of panels for one image; ``pair`` indexes the two panels the before/after slider
    shows first (left, right); the reader can pick others."""

    name: str
    panels: Sequence[Panel]
    pair: tuple[int, int] = (0, 1)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def fmt(value: object) -> str:
    """A table or score value as text: floats to about 4 significant digits (``28.12``,
    ``0.8123``, ``734.2``, ``12346``), very small or large ones in exponent form, ``None`` empty."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_, int, np.integer, str)):
        return str(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v) or v == 0:
            return str(v).replace("inf", "∞")
        if abs(v) >= 1e6 or abs(v) < 1e-3:
            return f"{v:.3g}"
        return f"{v:.{max(0, 3 - math.floor(math.log10(abs(v))))}f}"
    return str(value)


def png_bytes(image: np.ndarray) -> bytes:
    """Encode ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` floats in [0, 1] (clipped, NaN as 0; uint8
    taken as 0-255) as an 8-bit grey or RGB PNG."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)) or a.size == 0:
        raise ValueError(f"an image must be (H, W) or (H, W, 3), not {a.shape}")
    if a.dtype != np.uint8:
        a = np.rint(np.clip(np.nan_to_num(a.astype(np.float64), nan=0.0), 0.0, 1.0) * 255)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _table(table: Table) -> str:
    cols = list(dict.fromkeys(k for row in table.rows for k in row))
    out = ["<table class='data'>"]
    if table.caption:
        out.append(f"<caption>{_e(table.caption)}</caption>")
    out.append("<tr>" + "".join(f"<th>{_e(c)}</th>" for c in cols) + "</tr>")
    for row in table.rows:
        cells = []
        for c in cols:
            v = row.get(c)
            num = isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
            cells.append(f"<td{' class=num' if num else ''}>{_e(fmt(v))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "\n".join(out) + "</table>"


def _figure(fig: Figure) -> str:
    data = Path(fig.png_path).read_bytes()
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        mime = "image/png"
    elif data.startswith(b"\xff\xd8\xff"):
        mime = "image/jpeg"
    else:
        raise ValueError(f"{fig.png_path}: not a PNG or JPEG file")
    return (f"<figure class='fig'><img src='{_data_uri(data, mime)}' alt='{_e(fig.caption)}'>"
            f"<figcaption>{_e(fig.caption)}</figcaption></figure>")


def _zoom_bar(active: int | None) -> str:
    return "<span class='zoom'>zoom " + "".join(
        f"<button type='button' data-z='{z}' aria-pressed='{str(z == active).lower()}'>{z}×</button>"
        for z in ZOOMS) + "</span>"


def _comparison(i: int, comp: Comparison) -> str:
    panels, shapes = [], []
    for p in comp.panels:
        uri = _data_uri(png_bytes(p.image))
        h, w = np.shape(p.image)[:2]
        shapes.append((h, w))
        scores = "".join(f"<tr><th>{_e(k)}</th><td>{_e(fmt(v))}</td></tr>"
                         for k, v in (p.scores or {}).items())
        panels.append(f"<figure class='panel'><img class='px' style='--w:{w};--h:{h}' "
                      f"src='{uri}' alt='{_e(comp.name)}: {_e(p.label)}' draggable='false'>"
                      f"<figcaption>{_e(p.label)}<table class='scores'>{scores}</table>"
                      f"</figcaption></figure>")
    zoom = default_zoom(shapes)
    sizes = sorted({f"{w}×{h}" for h, w in shapes})
    out = [f"<section class='card' id='c{i}' style='--z:{zoom}'>",
           f"<h3>{_e(comp.name)} <small>{_e(', '.join(sizes))}</small> {_zoom_bar(zoom)}</h3>",
           "<div class='scroll'><div class='panels'>", *panels, "</div></div>"]
    if len(comp.panels) >= 2:
        a, b = comp.pair
        if not (0 <= a < len(comp.panels) and 0 <= b < len(comp.panels)):
            raise ValueError(f"{comp.name}: pair {comp.pair} is not two of its "
                             f"{len(comp.panels)} panels")

        def select(side: str, chosen: int) -> str:
            opts = "".join(f"<option value='{j}'{' selected' if j == chosen else ''}>"
                           f"{_e(p.label)}</option>" for j, p in enumerate(comp.panels))
            return f"<label>{side} <select class='{side}'>{opts}</select></label>"

        out += ["<div class='ab'><div class='pick'>before/after: ", select("left", a), " ",
                select("right", b), "</div><div class='slide'><div class='scroll'>"
                "<div class='stage' style='--pos:50%'><img class='px' alt='' draggable='false'>"
                "<img class='px top' alt='' draggable='false'><div class='divider'></div></div></div>"
                "<input type='range' min='0' max='100' step='0.5' value='50' "
                "aria-label='divider position'></div></div>"]
    return "\n".join(out) + "</section>"


_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        "script-src 'unsafe-inline'")

_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px;
       padding: 0 1em; color: #222; background: #fafafa; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table.data { border-collapse: collapse; margin: 1em 0; font-variant-numeric: tabular-nums; }
table.data caption { text-align: left; font-weight: 600; padding-bottom: .3em; }
table.data th, table.data td { border: 1px solid #ccc; padding: .2em .6em; }
table.data th { background: #eee; } td.num { text-align: right; }
figure.fig { margin: 1em 0; } figure.fig img { max-width: 100%; height: auto; }
figcaption { font-size: .9em; color: #444; }
.card { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .5em 1em 1em;
        margin: 1em 0; content-visibility: auto; contain-intrinsic-size: auto 420px; }
.card h3 { margin: .3em 0; font-size: 1.05em; } .card small { color: #777; font-weight: normal; }
.zoom { margin-left: 1em; font-size: .85em; font-weight: normal; }
.zoom button { font: inherit; padding: 0 .5em; border: 1px solid #aaa; background: #f4f4f4;
               border-radius: 3px; cursor: pointer; }
.zoom button[aria-pressed=true] { background: #333; color: #fff; }
.scroll { overflow-x: auto; }
.panels { display: flex; gap: 12px; align-items: flex-start; }
.panel { margin: 0; } .panel figcaption { font-weight: 600; margin-top: .2em; }
img.px { display: block; image-rendering: pixelated; max-width: none;
         width: calc(var(--w) * var(--z, 1) * 1px); height: calc(var(--h) * var(--z, 1) * 1px); }
table.scores { font-weight: normal; font-size: .85em; font-variant-numeric: tabular-nums; }
table.scores th { text-align: left; font-weight: normal; color: #666; padding-right: .6em; }
.ab { margin-top: .8em; } .slide { display: inline-block; max-width: 100%; }
.pick { font-size: .9em; margin-bottom: .3em; }
.stage { position: relative; display: inline-block; cursor: ew-resize; touch-action: none;
         user-select: none; vertical-align: top; }
.stage img.top { position: absolute; left: 0; top: 0;
                 clip-path: inset(0 calc(100% - var(--pos)) 0 0); }
.divider { position: absolute; top: 0; bottom: 0; left: var(--pos); width: 2px;
           margin-left: -1px; background: #fff; box-shadow: 0 0 2px #000; pointer-events: none; }
.ab input[type=range] { display: block; width: 100%; min-width: 96px; margin: .3em 0 0; }
"""

_JS = """
"use strict";
function setZoom(card, z) {
  card.style.setProperty("--z", z);
  card.querySelectorAll(".zoom button").forEach(b => b.setAttribute("aria-pressed", b.dataset.z === z));
}
document.querySelectorAll(".zoom").forEach(bar => bar.addEventListener("click", e => {
  const z = e.target.dataset && e.target.dataset.z, card = bar.closest(".card");
  if (!z) return;
  (card ? [card] : document.querySelectorAll(".card")).forEach(c => setZoom(c, z));
  if (!card) bar.querySelectorAll("button").forEach(b => b.setAttribute("aria-pressed", b.dataset.z === z));
}));
document.querySelectorAll(".ab").forEach(ab => {
  const imgs = ab.closest(".card").querySelectorAll(".panel img"), stage = ab.querySelector(".stage");
  const [under, top] = stage.querySelectorAll("img"), range = ab.querySelector("input[type=range]");
  const [left, right] = ab.querySelectorAll("select");
  function show(img, i) {
    const src = imgs[+i];
    img.src = src.src; img.alt = src.alt;
    for (const p of ["--w", "--h"]) img.style.setProperty(p, src.style.getPropertyValue(p));
  }
  function pick() { show(top, left.value); show(under, right.value); }
  function move(pos) {
    pos = Math.round(Math.max(0, Math.min(100, pos)) * 2) / 2;
    stage.style.setProperty("--pos", pos + "%"); range.value = pos;
  }
  function drag(e) { const r = stage.getBoundingClientRect(); move((e.clientX - r.left) / r.width * 100); }
  left.addEventListener("change", pick); right.addEventListener("change", pick);
  range.addEventListener("input", () => move(+range.value));
  stage.addEventListener("pointerdown", e => { e.preventDefault(); stage.setPointerCapture(e.pointerId); drag(e); });
  stage.addEventListener("pointermove", e => { if (stage.hasPointerCapture(e.pointerId)) drag(e); });
  pick();
});
"""


def render_report(title: str, *, intro: str = "", tables: Sequence[Table] = (),
                  figures: Sequence[Figure] = (), comparisons: Sequence[Comparison] = (),
                  images_first: bool = False) -> str:
    """The report as an HTML string (see :func:`write_report`)."""
    body = [f"<h1>{_e(title)}</h1>"]
    body += [f"<p>{_e(p.strip())}</p>" for p in intro.split("\n\n") if p.strip()]
    sections = {"tables": ["<h2>Tables</h2>", *(_table(t) for t in tables)] if tables else [],
                "figures": ["<h2>Figures</h2>", *(_figure(f) for f in figures)] if figures else [],
                "images": [f"<h2>Images ({len(comparisons)})</h2>",
                           "<p class='help'>Each row shows the panels at full resolution (1× is one "
                           "image pixel per CSS pixel), small images zoomed, with their scores. "
                           "Below it, pick two panels "
                           f"and drag the divider to compare them. All rows: {_zoom_bar(None)}</p>",
                           *(_comparison(i, c) for i, c in enumerate(comparisons))] if comparisons else []}
    for name in ("images", "tables", "figures") if images_first else ("tables", "figures", "images"):
        body += sections[name]
    return ("<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>\n"
            f"<meta http-equiv='Content-Security-Policy' content=\"{_CSP}\">\n"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
            f"<title>{_e(title)}</title>\n<style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(body) + f"\n<script>{_JS}</script>\n</body></html>\n")


def write_report(path: str | os.PathLike, title: str, *, intro: str = "",
                 tables: Sequence[Table] = (), figures: Sequence[Figure] = (),
                 comparisons: Sequence[Comparison] = (), images_first: bool = False) -> Path:
    """Write the self-contained HTML report to ``path`` (atomically) and return ``path``.

    ``title`` heads the page; ``intro`` is plain text, blank lines separating paragraphs; then come
    the ``tables``, the ``figures`` and the ``comparisons`` (with ``images_first``, the comparisons
    first), each section only when given. All text
    is escaped (plain text, not HTML). The folder must exist; an existing file is replaced.
    Raises ``ValueError`` for an image of another shape or a figure that is not PNG/JPEG and
    ``OSError`` for a figure that cannot be read; nothing is written then.
    """
    text = render_report(title, intro=intro, tables=tables, figures=figures,
                         comparisons=comparisons, images_first=images_first)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return Path(path)
