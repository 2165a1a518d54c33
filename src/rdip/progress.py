"""Progress on long work: a tqdm bar on a terminal, a line every few seconds in a log.

Fits count network-iterations: a fit of ``n`` networks (images, tiles) of at most ``T`` iterations
is ``n·T``; a network that stops early (``FitConfig.stop``) counts its remaining iterations at
once, so the count ends at its total however early the networks stop.
"""

from __future__ import annotations

import sys
import time

#: Seconds between two progress lines when stderr is not a terminal.
LOG_EVERY = 5.0


class LogBar:
    """A progress report for logs: ``desc: 35% (4480/12800 it), 10 s, about 18 s left`` on stderr
    every :data:`LOG_EVERY` seconds and once at the end (the interface of tqdm that rdip uses)."""

    def __init__(self, total: int, desc: str, unit: str = "it", every: float = LOG_EVERY):
        self.total, self.desc, self.unit, self.every = int(total), desc, unit, every
        self.n, self.postfix = 0, ""
        self.started = self.last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.n += int(n)
        if time.monotonic() - self.last >= self.every:
            self._line()

    def set_postfix(self, values: dict, refresh: bool = False) -> None:
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())

    def set_postfix_str(self, text: str, refresh: bool = False) -> None:
        self.postfix = text

    def _line(self) -> None:
        self.last = time.monotonic()
        elapsed = self.last - self.started
        share = self.n / self.total if self.total else 1.0
        left = f", about {elapsed * (1 - share) / share:.0f} s left" if 0 < share < 1 else ""
        extra = f"; {self.postfix}" if self.postfix else ""
        print(f"{self.desc}: {share:.0%} ({self.n}/{self.total} {self.unit}), {elapsed:.0f} s{left}{extra}",
              file=sys.stderr, flush=True)

    def __enter__(self) -> LogBar:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None and self.n:
            self._line()


def progress_bar(total: int, desc: str, enabled: bool = True, unit: str = "it"):
    """A tqdm bar on stderr when it is a terminal, else a :class:`LogBar`; nothing when not
    ``enabled`` (``--quiet``). Counts are integers."""
    from tqdm.auto import tqdm

    if enabled and not sys.stderr.isatty():
        return LogBar(total, desc, unit)
    return tqdm(total=int(total), desc=desc, unit=unit, disable=not enabled, leave=False,
                file=sys.stderr, dynamic_ncols=True)


def progress_callback(bar, every: int = 10):
    """A fit callback that advances ``bar`` by network-iterations (see the module:
    :attr:`rdip.method.outcome.Progress.advanced`) and shows the loss, and SSIM/PSNR of the first
    network scored, when there are scores."""
    def callback(p) -> None:
        scored = [m for m in p.metrics or () if m]
        if p.t % every == 0 or scored:
            post = {"loss": f"{float(p.loss.mean()):.3g}"}
            if scored:
                post.update(ssim=f"{scored[0]['ssim_full']:.3f}", psnr=f"{scored[0]['psnr']:.2f}")
            bar.set_postfix(post, refresh=False)
        bar.update(p.advanced)
    return callback
