"""When to stop fitting without a clean image, and which output to keep (``FitConfig.stop``).

Every rule follows the ``n`` networks of a stack one by one. After each iteration ``t`` the engine
calls :meth:`Rule.update` with the outputs; :attr:`Rule.done` then says which networks have
stopped, and :meth:`Rule.kept` gives the output to keep for each (its own choice for a stopped
network, the current estimate for the others). A stopped network trains on with its stack (it is
independent of the others) but its kept output no longer changes; the stack stops when every
network has (:attr:`Rule.all_done`).

- ``none`` (:class:`Never`): run every iteration, keep the last estimate.
- ``noise`` (:class:`NoiseLevel`): Morozov's discrepancy principle: stop at the first iteration
  whose mean squared error to the (padded) noisy target is at most ``stop_ratio`` × σ², and keep
  that output.
- ``wmv`` (:class:`VarianceMinimum`): ES-WMV (Wang et al. 2021, "Early stopping for deep image
  prior"): the variance over the last ``stop_window`` outputs, per pixel, averaged; stop once it
  has not reached a new minimum for ``stop_patience`` iterations, and keep the estimate of the
  iteration of the minimum.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..config import FitConfig, range_width


class Rule:
    """A stopping rule for ``n`` networks whose outputs have ``shape`` (``(1, n*C, H, W)``).

    ``done``: ``(n,)`` bool, the networks that have stopped; ``chosen``: the iteration whose
    output each keeps; ``ran``: the iterations each had trained when it stopped (``iters`` for
    those that did not stop). All three live on the CPU.
    """

    def __init__(self, cfg: FitConfig, n: int, shape, device, dtype):
        self.cfg, self.n = cfg, n
        self.done = torch.zeros(n, dtype=torch.bool)
        self.ran = torch.full((n,), cfg.iters)
        self.chosen = torch.full((n,), cfg.iters)
        self._kept = torch.zeros(shape, device=device, dtype=dtype).reshape(n, -1)

    def update(self, t: int, output: torch.Tensor, estimate: torch.Tensor, mse: torch.Tensor) -> None:
        """Take iteration ``t``: the outputs f(z_t), the estimate that would be kept (the output,
        or its running average) and each network's mean squared error to its target ``(n,)``."""

    @property
    def all_done(self) -> bool:
        return bool(self.done.all())

    def kept(self, estimate: torch.Tensor) -> torch.Tensor:
        """The kept outputs of stopped networks, ``estimate`` for the others (``estimate``'s shape)."""
        est = estimate.reshape(self.n, -1)
        return torch.where(self.done.to(est.device)[:, None], self._kept, est).reshape(estimate.shape)

    def _stop(self, newly: torch.Tensor, source: torch.Tensor, t: int) -> None:
        """Networks ``newly`` (CPU bool ``(n,)``) stop at iteration ``t`` and keep their rows of
        ``source`` (``(n, -1)``)."""
        if newly.any():
            self._kept[newly.to(source.device)] = source[newly.to(source.device)]
        self.ran[newly] = t
        self.done |= newly


class Never(Rule):
    """``stop = "none"``: every network runs all ``iters`` iterations."""


class NoiseLevel(Rule):
    """``stop = "noise"``: stop where the mean squared error first falls to ``stop_ratio`` × σ² (one σ per network,
    in [0, 1] units; the error is compared in the fitting range's units, (2σ)² in [-1, 1])."""

    def __init__(self, cfg: FitConfig, sigmas: Sequence[float], shape, device, dtype):
        super().__init__(cfg, len(sigmas), shape, device, dtype)
        width = range_width(cfg.range, cfg.margin)
        self.threshold = torch.tensor([cfg.stop_ratio * (s * width) ** 2 for s in sigmas], device=device, dtype=dtype)

    def update(self, t, output, estimate, mse) -> None:
        newly = (mse <= self.threshold).cpu() & ~self.done
        self.chosen[newly] = t
        self._stop(newly, estimate.reshape(self.n, -1), t)


class VarianceMinimum(Rule):
    """``stop = "wmv"``: ES-WMV over windows of ``stop_window`` outputs, patience ``stop_patience``."""

    def __init__(self, cfg: FitConfig, n: int, shape, device, dtype):
        super().__init__(cfg, n, shape, device, dtype)
        self.ring = torch.zeros((cfg.stop_window,) + self._kept.shape, device=device, dtype=dtype)
        self.best = torch.full((n,), float("inf"), dtype=torch.float64)
        self.best_t = torch.zeros(n, dtype=torch.long)
        self.candidate = torch.zeros_like(self._kept)

    def update(self, t, output, estimate, mse) -> None:
        window = self.cfg.stop_window
        self.ring[(t - 1) % window] = output.reshape(self.n, -1)
        if t < window:
            return
        var = self.ring.var(0, unbiased=False).mean(1).to("cpu", torch.float64)
        better = (var < self.best) & ~self.done
        self.best = torch.where(better, var, self.best)
        self.best_t[better] = t
        if better.any():
            rows = better.to(self.candidate.device)
            self.candidate[rows] = estimate.reshape(self.n, -1)[rows]
        newly = (t - self.best_t >= self.cfg.stop_patience) & ~self.done
        self.chosen[newly] = self.best_t[newly]
        self._stop(newly, self.candidate, t)


def rule_for(cfg: FitConfig, sigmas: Sequence[float | None], shape, device, dtype) -> Rule:
    """The rule ``cfg.stop`` names, for networks with these σ (used by ``noise`` only)."""
    if cfg.stop == "noise":
        return NoiseLevel(cfg, sigmas, shape, device, dtype)
    if cfg.stop == "wmv":
        return VarianceMinimum(cfg, len(sigmas), shape, device, dtype)
    return Never(cfg, len(sigmas), shape, device, dtype)
