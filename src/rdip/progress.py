"""Progress on long work: a tqdm bar on a terminal, a line every few seconds in a log.

Fits count network-iterations: the iterations the networks (images, tiles) actually ran. The
total is what they are expected to run (:class:`Work`): the networks that finished count what they
ran, the others what the finished ones took (before any has finished, the planning's typical stop,
:func:`rdip.method.planning.expected_iters`), never their cap ``T`` when they stop early
(``FitConfig.stop``); so the time left follows the truth as networks finish, and the count ends at
its total.
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


class Work:
    """Network-iterations done and expected in a fit of ``networks`` networks of at most ``iters``
    iterations each, from the engine's :class:`~rdip.method.outcome.Progress` reports (:meth:`look`).

    Done: what the finished networks ran and the running ones have run. Expected: done, plus for
    each running network the mean of the finished networks that ran longer than it has (none: it is
    expected to stop now), and for each waiting one the mean of the finished networks; before any
    has finished, ``typical`` (default ``iters``) stands for that mean. Never more than ``iters``
    a network. The stacks of one fit report in turn (:attr:`Progress.stack`): the running networks
    are each stack's latest report."""

    def __init__(self, networks: int | None = None, iters: int | None = None, typical: int | None = None):
        self.networks, self.iters, self.typical = networks, iters, typical
        self.finished: list[int] = []
        self.running: dict[int, list[int]] = {}  # per stack: the steps of its running networks

    def look(self, p) -> tuple[int, int]:
        """Take in the report ``p``; return (done, expected) network-iterations."""
        iters = self.iters = self.iters or p.iters
        n = len(p.indices)
        steps = p.steps if p.steps is not None else [p.t] * n
        stopped = p.stopped if p.stopped is not None else [False] * n
        running = []
        for index, t, stop in zip(p.indices, steps, stopped):
            if index is not None:
                (self.finished if stop else running).append(min(int(t), iters))
        self.running[p.stack] = running
        return self.done(), self.expected()

    def done(self) -> int:
        return sum(self.finished) + sum(sum(r) for r in self.running.values())

    def expected(self) -> int:
        iters = self.iters or 0
        typical = min(self.typical or iters, iters)
        mean = sum(self.finished) / len(self.finished) if self.finished else typical
        running = [t for r in self.running.values() for t in r]
        ahead = 0.0
        for t in running:
            longer = [f for f in self.finished if f > t] if self.finished else [max(t, typical)]
            ahead += max(t, sum(longer) / len(longer)) if longer else t
        waiting = max(0, (self.networks or 0) - len(self.finished) - len(running))
        return max(self.done(), round(sum(self.finished) + ahead + waiting * mean))


def progress_callback(bar, every: int = 10, *, networks: int | None = None, typical: int | None = None):
    """A fit callback that advances ``bar`` by the network-iterations run and sets its total to
    those expected (:class:`Work` of ``networks``, default the bar's total over ``iters``, and
    ``typical``), and shows the loss, and SSIM/PSNR of the first network scored, when there are
    scores. Make one per bar: it keeps the count of the networks finished."""
    work = Work(networks, None, typical)

    def callback(p) -> None:
        scored = [m for m in p.metrics or () if m]
        if p.t % every == 0 or scored:
            post = {"loss": f"{float(p.loss.mean()):.3g}"}
            if scored:
                post.update(ssim=f"{scored[0]['ssim_full']:.3f}", psnr=f"{scored[0]['psnr']:.2f}")
            bar.set_postfix(post, refresh=False)
        if work.networks is None:
            work.networks = round((bar.total or 0) / p.iters)
        done, expected = work.look(p)
        bar.total = expected
        bar.update(done - bar.n)
    return callback
