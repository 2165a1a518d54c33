"""When to stop fitting without a clean image, and which output to keep (``FitConfig.stop``).

Every rule follows the ``n`` slots of a stack (:mod:`rdip.method.slots`), each holding one network
at its own iteration ``t``. The step calls :meth:`Rule.update` with the iteration counts, the
outputs and the errors; everything stays on the fitting device (no value is read back to the host,
so the rule is part of the step a CUDA graph captures). A network *finishes* when its rule stops it
or when it reaches ``iters``: :attr:`Rule.finished` says which have, :attr:`Rule.stopped` which of
those the rule stopped, :attr:`Rule.ran` the iteration each finished at, :attr:`Rule.chosen` the
iteration whose output it keeps and :attr:`Rule.kept` that output. A finished network may go on
training until the engine takes it out of its slot (it looks every ``sync_every`` iterations), but
nothing it keeps changes after it finished. :meth:`Rule.load` readies a slot for a new network.

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

import torch

from ..config import FitConfig, range_width


class Rule:
    """A stopping rule for ``n`` slots whose outputs have ``size`` values each.

    ``finished``, ``stopped``: ``(n,)`` bool; ``ran``, ``chosen``: ``(n,)`` long; ``kept``:
    ``(n, size)``. All on ``device``.
    """

    def __init__(self, cfg: FitConfig, n: int, size: int, device, dtype):
        self.cfg, self.n, self.size = cfg, n, size
        self.finished = torch.zeros(n, dtype=torch.bool, device=device)
        self.stopped = torch.zeros_like(self.finished)
        self.ran = torch.zeros(n, dtype=torch.long, device=device)
        self.chosen = torch.zeros_like(self.ran)
        self.kept = torch.zeros((n, size), device=device, dtype=dtype)

    def _decide(self, t, output, estimate, mse) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(stop, chosen, source)``: which slots the rule stops at this iteration (``(n,)`` bool,
        before masking the finished ones), the iteration each would keep and the outputs
        ``(n, size)`` it would keep."""
        return torch.zeros_like(self.finished), t, estimate

    def update(self, t: torch.Tensor, output: torch.Tensor, estimate: torch.Tensor,
               mse: torch.Tensor) -> None:
        """Take iteration ``t`` (``(n,)``, each slot's): the outputs f(z_t) and the estimates that
        would be kept (both ``(n, size)``) and each slot's mean squared error to its target ``(n,)``."""
        stop, chosen, source = self._decide(t, output, estimate, mse)
        stop = stop & ~self.finished
        cap = (t >= self.cfg.iters) & ~self.finished & ~stop
        self.kept.copy_(torch.where(stop[:, None], source, torch.where(cap[:, None], estimate, self.kept)))
        self.chosen.copy_(torch.where(stop, chosen, self.chosen))
        self.ran.copy_(torch.where(stop | cap, t, self.ran))
        self.stopped |= stop
        self.finished |= stop | cap

    def interrupt(self, which: torch.Tensor, t: torch.Tensor, estimate: torch.Tensor) -> None:
        """Finish the slots ``which`` (``(n,)`` bool) now, unstopped, keeping ``estimate``."""
        which = which & ~self.finished
        self.kept.copy_(torch.where(which[:, None], estimate, self.kept))
        self.ran.copy_(torch.where(which, t, self.ran))
        self.finished |= which

    def load(self, slot: int, sigma: float | None) -> None:
        """Slot ``slot`` holds a new network (noise level ``sigma``, [0, 1] units, or None)."""
        self.finished[slot] = False
        self.stopped[slot] = False
        self.ran[slot] = 0
        self.chosen[slot] = 0
        self.kept[slot] = 0

    def state(self) -> dict[str, torch.Tensor]:
        """Every per-slot tensor, by attribute name (slot axis first)."""
        return {k: v for k, v in vars(self).items() if isinstance(v, torch.Tensor)}

    def select(self, keep: torch.Tensor) -> Rule:
        """The rule for the slots ``keep`` only (indices, in that order)."""
        new = object.__new__(type(self))
        new.__dict__.update(vars(self))
        for name, value in self.state().items():
            setattr(new, name, value[keep].clone())
        new.n = len(keep)
        return new


class Never(Rule):
    """``stop = "none"``: every network runs all ``iters`` iterations."""


class NoiseLevel(Rule):
    """``stop = "noise"``: stop where the mean squared error first falls to ``stop_ratio`` × σ²
    (σ per network, in [0, 1] units; the error is compared in the fitting range's units, (2σ)²
    in [-1, 1])."""

    def __init__(self, cfg: FitConfig, n: int, size: int, device, dtype):
        super().__init__(cfg, n, size, device, dtype)
        self.threshold = torch.zeros(n, device=device, dtype=dtype)

    def load(self, slot: int, sigma: float | None) -> None:
        super().load(slot, sigma)
        width = range_width(self.cfg.range, self.cfg.margin)
        self.threshold[slot] = self.cfg.stop_ratio * (sigma * width) ** 2

    def _decide(self, t, output, estimate, mse):
        return mse <= self.threshold, t, estimate


class VarianceMinimum(Rule):
    """``stop = "wmv"``: ES-WMV over windows of ``stop_window`` outputs, patience ``stop_patience``."""

    def __init__(self, cfg: FitConfig, n: int, size: int, device, dtype):
        super().__init__(cfg, n, size, device, dtype)
        self.ring = torch.zeros((n, cfg.stop_window, size), device=device, dtype=dtype)
        self.best = torch.full((n,), float("inf"), device=device, dtype=dtype)
        self.best_t = torch.zeros(n, dtype=torch.long, device=device)
        self.candidate = torch.zeros_like(self.kept)
        self.slots = torch.arange(n, device=device)

    def load(self, slot: int, sigma: float | None) -> None:
        super().load(slot, sigma)
        self.ring[slot] = 0
        self.best[slot] = float("inf")
        self.best_t[slot] = 0
        self.candidate[slot] = 0

    def _decide(self, t, output, estimate, mse):
        window = self.cfg.stop_window
        self.ring.index_put_((self.slots, (t - 1) % window), output)
        full = t >= window  # a window of outputs to measure
        var = self.ring.var(1, unbiased=False).mean(1)
        better = full & (var < self.best) & ~self.finished
        self.best.copy_(torch.where(better, var, self.best))
        self.best_t.copy_(torch.where(better, t, self.best_t))
        self.candidate.copy_(torch.where(better[:, None], estimate, self.candidate))
        return full & (t - self.best_t >= self.cfg.stop_patience), self.best_t, self.candidate

    def select(self, keep: torch.Tensor) -> VarianceMinimum:
        new = super().select(keep)
        new.slots = torch.arange(new.n, device=self.slots.device)
        return new


RULES = {"none": Never, "noise": NoiseLevel, "wmv": VarianceMinimum}


def rule_for(cfg: FitConfig, n: int, size: int, device, dtype) -> Rule:
    """The rule ``cfg.stop`` names, for ``n`` slots of ``size`` values each."""
    return RULES[cfg.stop](cfg, n, size, device, dtype)
