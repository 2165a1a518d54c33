"""rdip.report: the HTML's structure (pure Python) and the page in headless Chromium.

The browser tests drive Chromium over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
JSON messages, NUL-terminated, on file descriptors 3 and 4), so that console messages come with
their level, and failed loads are reported too (Chromium's stderr log prints every console message
of a file:// page at INFO level and does not mention failed loads at all). They are skipped when
no Chromium is found: set RDIP_CHROMIUM to a binary, or put chromium, chromium-browser,
google-chrome or google-chrome-stable on PATH (Debian: ``apt-get install -y chromium``).
"""

import base64
import io
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rdip.report import (
    Comparison,
    Figure,
    Panel,
    Table,
    default_zoom,
    fmt,
    png_bytes,
    render_report,
    write_report,
)

EVIL = 'x<&>"\'y'


def _report(tmp_path: Path) -> Path:
    """A small report: a table, a matplotlib figure, a 32x32 colour and a 20x24 grey comparison."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2), dpi=60)
    ax.plot([0, 1, 2], [1, 3, 2])
    fig.savefig(tmp_path / "curve.png")
    plt.close(fig)
    rng = np.random.default_rng(0)
    clean = rng.random((32, 32, 3))
    grey = np.linspace(0, 1, 20 * 24).reshape(20, 24)
    comps = [
        Comparison("cifar 0", [Panel("noisy", clean + rng.normal(0, .1, clean.shape), {"PSNR": 20.123456}),
                               Panel("rdip", clean * .9, {"SSIM": .8123456, "SSIM centre": .85, "PSNR": 27.31}),
                               Panel("clean", clean)], pair=(0, 1)),
        Comparison(f"grey {EVIL}", [Panel("noisy", grey[..., None] - .5),
                                    Panel(EVIL, grey, {EVIL: 1.5}), Panel("clean", 1 - grey)], pair=(1, 2)),
    ]
    table = Table(f"Table 2 {EVIL}", [{"method": "rdip", "SSIM": 0.812345, "PSNR": 28.123456, "n": 15},
                                      {"method": EVIL, "SSIM": None, "time (s)": 1234.5678}])
    return write_report(tmp_path / "report.html", f"Report {EVIL}", intro=f"First {EVIL}.\n\nSecond.",
                        tables=[table], figures=[Figure(f"curves {EVIL}", tmp_path / "curve.png")],
                        comparisons=comps)


class _Parse(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs, self.text, self.classes = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.append((tag, dict(attrs)))
        self.classes.append(dict(attrs).get("class", ""))

    def handle_data(self, data):
        self.text.append(data)


def test_structure(tmp_path):
    path = _report(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curve.png", "report.html"]  # no temp left
    page = path.read_text(encoding="utf-8")
    p = _Parse()
    p.feed(page)
    imgs = [a for t, a in p.attrs if t == "img"]
    srcs = [a["src"] for a in imgs if "src" in a]
    assert len(srcs) == 1 + 6 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert sum(c == "panel" for c in p.classes) == 6 and sum(c == "card" for c in p.classes) == 2
    assert len([a for a in imgs if "src" not in a]) == 4  # the sliders' images, filled by the script
    assert sum(c == "stage" for c in p.classes) == 2
    # the panels' PNGs decode to the input sizes, clipped to [0, 1]
    panel_imgs = [a["src"] for a in imgs if a.get("class") == "px" and "src" in a]
    decoded = [np.asarray(Image.open(io.BytesIO(base64.b64decode(s.split(",", 1)[1])))) for s in panel_imgs]
    assert [d.shape for d in decoded] == [(32, 32, 3)] * 3 + [(20, 24)] * 3
    assert decoded[3][0, 0] == 0 and decoded[3].max() == 128 and decoded[4][-1, -1] == 255  # clipped
    # text is escaped: the parser gives it back as given, and no raw '<&>' is in the file
    text = "".join(p.text)
    assert f"Report {EVIL}" in text and f"grey {EVIL}" in text and text.count(EVIL) >= 8
    assert "<&>" not in page and "&lt;&amp;&gt;" in page
    # self-contained: no external references, one inline script, no link/iframe
    assert "http://" not in page and "https://" not in page and "//cdn" not in page
    assert p.tags.count("script") == 1 and not any("src" in a for t, a in p.attrs if t == "script")
    assert "link" not in p.tags and "iframe" not in p.tags
    # table: columns in order first seen, floats rounded, None empty
    assert "<th>method</th><th>SSIM</th><th>PSNR</th><th>n</th><th>time (s)</th>" in page
    for cell in ("0.8123", "28.12", "1235", ">15<", "<td></td>", "20.12", "27.31", "0.8500"):
        assert cell in page, cell


def test_fmt_and_png():
    assert [fmt(v) for v in (0.812345, 28.123456, 734.21, 12345.6, 1e-5, 2.5e7, 0.0, None, 3, True,
                             np.float32(0.5), float("nan"), "a")] == \
        ["0.8123", "28.12", "734.2", "12346", "1e-05", "2.5e+07", "0.0", "", "3", "True", "0.5000",
         "nan", "a"]
    img = np.asarray(Image.open(io.BytesIO(png_bytes(np.array([[-1, 0.5, np.nan, 2]])))))
    assert img.tolist() == [[0, 128, 0, 255]]
    for bad in (np.zeros((4, 4, 4)), np.zeros(5), np.zeros((0, 3))):
        with pytest.raises(ValueError, match="must be"):
            png_bytes(bad)
    with pytest.raises(ValueError, match="pair"):
        render_report("t", comparisons=[Comparison("c", [Panel("a", np.zeros((2, 2)))] * 2, pair=(0, 2))])


def test_small_images_start_zoomed_to_a_size_one_can_judge():
    """A 96×96 result was shown at 96 CSS pixels: each card starts at the largest zoom that keeps
    its largest panel within 320 CSS pixels; the buttons still offer every zoom."""
    sizes = {32: 8, 40: 8, 64: 4, 80: 4, 96: 2, 128: 2, 160: 2, 161: 1, 256: 1, 1000: 1}
    assert {n: default_zoom([(n, n)]) for n in sizes} == sizes
    assert default_zoom([(20, 200)]) == 1 and default_zoom([(32, 32), (96, 96)]) == 2  # the largest side
    page = render_report("t", comparisons=[Comparison(f"{n}", [Panel("a", np.zeros((n, n)))] * 2) for n in (32, 96, 300)])
    assert [page.count(f"style='--z:{z}'") for z in (8, 2, 1)] == [1, 1, 1]
    assert page.count("data-z='8'") == 4  # every card's buttons and the bar for all


def test_errors_write_nothing(tmp_path):
    path = tmp_path / "report.html"
    path.write_text("old")
    with pytest.raises(FileNotFoundError):
        write_report(path, "t", figures=[Figure("gone", tmp_path / "gone.png")])
    (tmp_path / "text.png").write_text("not a png")
    with pytest.raises(ValueError, match="not a PNG"):
        write_report(path, "t", figures=[Figure("text", tmp_path / "text.png")])
    with pytest.raises(ValueError, match="must be"):
        write_report(path, "t", comparisons=[Comparison("c", [Panel("a", np.zeros((2, 2, 4)))])])
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "text.png"]


def test_size_for_many_images():
    """15 CIFAR-sized noisy images x 5 panels: about 4 KB a panel (base64 PNG)."""
    rng = np.random.default_rng(1)
    comps = [Comparison(f"img {i}", [Panel(f"p{j}", rng.random((32, 32, 3)), {"SSIM": .5, "PSNR": 20.})
                                     for j in range(5)]) for i in range(15)]
    t = time.perf_counter()
    page = render_report("many", comparisons=comps)
    assert len(page) < 15 * 5 * 5000 + 20000 and time.perf_counter() - t < 5


# --- headless Chromium over the DevTools protocol --------------------------------------------------

def _chromium() -> str | None:
    names = [os.environ.get("RDIP_CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome",
             "google-chrome-stable"]
    return next((shutil.which(n) for n in names if n and shutil.which(n)), None)


class Browser:
    """A headless Chromium with one page, driven over ``--remote-debugging-pipe``; ``problems``
    lists the console errors, uncaught exceptions and failed loads seen so far."""

    def __init__(self, binary: str, tmp: Path):
        self.log = open(tmp / "chromium-stderr.txt", "wb")
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-quic",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp / 'chromium-profile'}", "--remote-debugging-pipe",
                 "--window-size=1200,900", "about:blank"]
        # the protocol runs on fds 3 (in) and 4 (out): the shell moves our pipes there
        self.proc = subprocess.Popen(["sh", "-c", 'exec "$@" 3<&0 4>&1 0</dev/null 1>&2', "sh", binary,
                                      *flags], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log)
        self.messages: queue.Queue = queue.Queue()
        self.events: list[dict] = []
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()
        try:
            target = self.send("Target.createTarget", url="about:blank")["targetId"]
            self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                self.send(f"{domain}.enable", session=True)
        except BaseException:
            self.close()
            raise

    def _read(self):
        buf = b""
        while chunk := self.proc.stdout.read1(1 << 16):
            buf += chunk
            *done, buf = buf.split(b"\0")
            for m in done:
                self.messages.put(json.loads(m))
        self.messages.put(None)

    def _next(self, timeout: float = 30) -> dict:
        try:
            m = self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no answer from Chromium in {timeout} s") from None
        if m is None:
            raise AssertionError("Chromium exited; see chromium-stderr.txt")
        return m

    def send(self, method: str, session: bool = False, **params) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        self.proc.stdin.write(json.dumps(msg).encode() + b"\0")
        self.proc.stdin.flush()
        while (m := self._next()).get("id") != self.next_id:
            self.events.append(m)
        assert "error" not in m, (method, m["error"])
        return m["result"]

    def open(self, url: str) -> None:
        self.send("Page.navigate", session=True, url=url)
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(self._next())

    def js(self, expression: str):
        r = self.send("Runtime.evaluate", session=True, expression=expression, returnByValue=True,
                      awaitPromise=True)
        assert "exceptionDetails" not in r, r["exceptionDetails"]
        return r["result"].get("value")

    def mouse(self, kind: str, x: float, y: float) -> None:
        self.send("Input.dispatchMouseEvent", session=True, type=kind, x=x, y=y, button="left",
                  buttons=0 if kind == "mouseReleased" else 1, clickCount=1)

    def screenshot(self, path: Path) -> None:
        """The whole page, not just the window."""
        size = self.send("Page.getLayoutMetrics", session=True)["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", session=True, format="png",
                                                    captureBeyondViewport=True, clip=clip)["data"]))

    @property
    def problems(self) -> list[str]:
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                out.append(f"exception: {d.get('exception', {}).get('description', d['text'])}")
            elif m == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
                out.append(f"console.{p['type']}: " + " ".join(str(a.get("value")) for a in p["args"]))
            elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append(f"{p['entry']['source']}: {p['entry']['text']} {p['entry'].get('url', '')}")
        return out

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (AssertionError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def browser(tmp_path):
    binary = _chromium()
    if binary is None:
        pytest.skip("no Chromium found (chromium, chromium-browser, google-chrome on PATH, or "
                    "RDIP_CHROMIUM); on Debian: apt-get install -y chromium")
    b = Browser(binary, tmp_path)
    yield b
    b.close()


def test_detects_broken_page(browser, tmp_path):
    """The harness itself: an exception, a console.error and failed loads are all caught."""
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><p>broken</p><img src='missing.png'><img src='http://127.0.0.1:9/x.png'>"
                    "<script>console.log('fine'); console.error('bad-error'); throw new Error('bad-throw')</script>")
    browser.open(page.as_uri())
    browser.js("new Promise(r => setTimeout(r, 300))")  # let the refused connection be reported
    problems = "\n".join(browser.problems)
    assert "bad-throw" in problems and "console.error: bad-error" in problems, problems
    assert "missing.png" in problems and "127.0.0.1:9" in problems, problems
    assert "fine" not in problems


def test_in_browser(browser, tmp_path):
    path = _report(tmp_path)
    browser.open(path.as_uri())
    assert browser.problems == []
    assert browser.js("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    assert browser.js("document.images.length") == 1 + 6 + 4
    # zoom: both cards start at 8x (32×32 and 20×24 px: at most 320 CSS px); card 0's 2x button,
    # then 'all: 1x'
    widths = "[...document.querySelectorAll('.panel img')].map(i => i.getBoundingClientRect().width)"
    assert browser.js(widths) == [256] * 3 + [192] * 3
    browser.js("document.querySelector('#c0 .zoom [data-z=\"2\"]').click()")
    assert browser.js(widths) == [64] * 3 + [192] * 3
    browser.js("document.querySelector('.help .zoom [data-z=\"1\"]').click()")
    assert browser.js(widths) == [32] * 3 + [24] * 3
    browser.js("document.querySelector('.help .zoom [data-z=\"4\"]').click()")
    # slider: starts with the pair given (card 0: noisy | rdip; card 1: panels 1 | 2)
    srcs = ("[...document.querySelectorAll('.card')].map(c => { const p = [...c.querySelectorAll('.panel img')]"
            ".map(i => i.src), s = [...c.querySelectorAll('.stage img')].map(i => p.indexOf(i.src)); return s; })")
    assert browser.js(srcs) == [[1, 0], [2, 1]]  # [under (right), top (left)]
    browser.js("const s = document.querySelector('#c0 select.right'); s.value = '2';"
               "s.dispatchEvent(new Event('change'))")
    assert browser.js(srcs)[0] == [2, 0]
    browser.js("const r = document.querySelector('#c0 input[type=range]'); r.value = 25;"
               "r.dispatchEvent(new Event('input'))")
    assert browser.js("getComputedStyle(document.querySelector('#c0 .stage img.top')).clipPath") == \
        "inset(0px 75% 0px 0px)"
    # drag the divider with a real mouse: press at 10 %, move to 80 % of the stage
    browser.js("document.querySelector('#c1 .stage').scrollIntoView()")
    x, y, w, h = browser.js("const b = document.querySelector('#c1 .stage').getBoundingClientRect();"
                            "[b.x, b.y, b.width, b.height]")
    assert w == 96 and h == 80
    browser.mouse("mousePressed", x + .1 * w, y + h / 2)
    assert browser.js("document.querySelector('#c1 input[type=range]').value") == "10"
    browser.mouse("mouseMoved", x + .8 * w, y + h / 2)
    browser.mouse("mouseReleased", x + .8 * w, y + h / 2)
    assert browser.js("document.querySelector('#c1 .stage').style.getPropertyValue('--pos')") == "80%"
    browser.js("window.scrollTo(0, 0)")
    shot = tmp_path / "report-screenshot.png"
    browser.screenshot(shot)
    image = np.asarray(Image.open(shot).convert("RGB"))
    assert image.shape[1] > 1000 and image.shape[0] > 1000 and shot.stat().st_size > 10_000
    colours = image.astype(np.int32) @ np.array([65536, 256, 1])
    assert len(np.unique(colours)) > 100  # text, a figure, coloured panels
    assert browser.problems == []
