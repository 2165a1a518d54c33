"""Progress (rdip.progress): counts that end at their total, and log lines without a terminal."""

import numpy as np

from rdip import FitConfig, fit, fit_many, preset
from rdip.method.outcome import Progress
from rdip.progress import LogBar, Work, progress_bar, progress_callback


class Counter:
    """A bar that records its updates and the totals it was given."""

    def __init__(self, total=0):
        self.steps, self.totals, self.n, self.total = [], [], 0, total

    def update(self, n=1):
        self.steps.append(n)
        self.n += n
        self.totals.append(self.total)

    def set_postfix(self, *args, **kwargs):
        pass


def test_the_count_ends_at_its_total_the_iterations_run_not_the_caps(rng):
    bar = Counter(4 * 40)
    cfg = preset("default", iters=40, device="cpu", tile=26, tile_overlap=6)  # 4 tiles, chunks of 2
    result = fit(rng.random((40, 34)), cfg, sigma=0.99, callback=progress_callback(bar))  # all stop at 1
    assert result.iters_run == 1
    assert bar.n == bar.total == 4 * 1 and all(isinstance(s, int) for s in bar.steps)
    bar = Counter(7)
    fit(rng.random((26, 26)), cfg.replace(stop="none", iters=7), callback=progress_callback(bar))
    assert bar.steps == [1] * 7 and bar.totals == [7] * 7


def _look(t, steps, stopped, stack=0, iters=800):
    """A report of a stack whose slots' networks have run ``steps`` (None: an empty slot)."""
    return Progress(t, iters, None, None, [None if s is None else 0 for s in steps],
                    stopped=stopped, steps=[s or 0 for s in steps], stack=stack)


def test_the_work_ahead_is_the_typical_stop_then_what_the_finished_networks_took():
    """8 networks capped at 800 through 2 slots, each stopping after 100 iterations: expected at
    first 8 × the typical 150 (not 8 × 800), then what the finished ones took, exactly."""
    work = Work(networks=8, typical=150)
    assert work.look(_look(10, [10, 10], [False, False])) == (20, 8 * 150)
    assert work.look(_look(100, [100, 100], [True, True])) == (200, 8 * 100)
    assert work.look(_look(150, [50, 50], [False, False])) == (300, 8 * 100)
    # a network running past the others is expected to stop soon, never to run to its cap
    done, expected = work.look(_look(250, [150, 120], [False, False]))
    assert (done, expected) == (470, 200 + 150 + 120 + 4 * 100)
    # one that ran 300 raises the expectation: for the others the mean 500 / 3, for one that has
    # run 130 the 300 of the only one that ran longer
    done, expected = work.look(_look(400, [300, 130], [True, False]))
    assert (done, expected) == (500 + 130, round(500 + 300 + 4 * 500 / 3))


def test_stacks_side_by_side_each_count_their_latest_report_and_caps_bound_the_expectation():
    work = Work(networks=4, iters=50, typical=500)  # a typical stop over the cap: the cap
    assert work.look(_look(5, [5, 5], [False, False], stack=0, iters=50)) == (10, 4 * 50)
    assert work.look(_look(3, [3, 3], [False, False], stack=1, iters=50)) == (16, 4 * 50)
    assert work.look(_look(9, [9, 9], [False, False], stack=0, iters=50)) == (24, 4 * 50)
    assert work.look(_look(20, [20, 20], [True, True], stack=0, iters=50)) == (46, 40 + 2 * 20)


def test_the_time_left_follows_the_iterations_the_networks_take(rng):
    """A real fit of 4 networks that stop early on their own: the expected work starts at 4 ×
    the typical stop, never counts a cap, and ends at the iterations the networks ran."""
    from rdip.method.planning import expected_iters

    cfg = FitConfig(iters=300, lr=3e-3, device="cpu", dtype="float64", stop="noise", chunk=2)
    images = [rng.random((26, 26, 3)) for _ in range(4)]
    bar = Counter(4 * cfg.iters)
    results = fit_many(images, cfg, sigma=[0.4, 0.3, 0.45, 0.33],
                       callback=progress_callback(bar, networks=4, typical=expected_iters(cfg)))
    ran = [r.iters_run for r in results]
    assert max(ran) < cfg.iters  # they stopped early
    assert bar.totals[0] == 4 * expected_iters(cfg) < 4 * cfg.iters
    assert bar.n == bar.total == sum(ran)
    assert all(t <= 4 * expected_iters(cfg) for t in bar.totals)


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
