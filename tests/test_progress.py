"""Progress (rdip.progress): counts that end at their total, and log lines without a terminal."""

import numpy as np

from rdip import fit, preset
from rdip.progress import LogBar, progress_bar, progress_callback


class Counter:
    """A bar that records its updates."""

    def __init__(self):
        self.steps = []

    def update(self, n=1):
        self.steps.append(n)

    def set_postfix(self, *args, **kwargs):
        pass


def test_the_count_ends_at_networks_times_iterations_however_early_they_stop(rng):
    bar = Counter()
    cfg = preset("default", iters=40, device="cpu", tile=26, tile_overlap=6)  # 4 tiles, chunks of 2
    result = fit(rng.random((40, 34)), cfg, sigma=0.99, callback=progress_callback(bar))  # all stop at 1
    assert result.iters_run == 1
    assert sum(bar.steps) == 4 * 40 and all(isinstance(s, int) for s in bar.steps)
    bar = Counter()
    fit(rng.random((26, 26)), cfg.replace(stop="none", iters=7), callback=progress_callback(bar))
    assert bar.steps == [1] * 7


def test_without_a_terminal_progress_is_a_line_every_few_seconds(capsys):
    bar = progress_bar(200, "denoise")  # stderr is captured: not a terminal
    assert isinstance(bar, LogBar)
    bar.every = 0.0  # a line at every update
    with bar:
        bar.update(50)
        bar.set_postfix({"loss": "0.01"})
        bar.update(150)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("denoise: 25% (50/200 it), ") and "left" in lines[0]
    assert lines[-1].startswith("denoise: 100% (200/200 it)") and lines[-1].endswith("; loss 0.01")
    quiet = progress_bar(10, "x", enabled=False)
    quiet.update(10)
    assert capsys.readouterr().err == "" and np.isfinite(quiet.n)
