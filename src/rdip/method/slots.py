"""A stack of slots: ``n`` networks fitted side by side, each at its own iteration (Eq. 1, §III).

:class:`Slots` holds everything the networks of one stack carry from one iteration to the next,
slot ``i`` owning the ``i``-th block of every tensor: the stacked model (weights, ``groups = n``,
:class:`~rdip.method.model.RecurrentDIP`), Eq. 1's state (``z_noise``, f, h and each network's
``t``), the targets, the optimiser with each network's moments and step count
(:mod:`rdip.method.optim`), the output average, the per-iteration losses and the stopping rule
(:mod:`rdip.method.stopping`). :meth:`Slots.step` is one iteration of every slot; :meth:`Slots.load`
puts a new network into a slot (weights drawn from its own seed as for a network fitted alone,
moments zero, ``t = 0``), so each network follows exactly the trajectory it follows alone; and
:meth:`Slots.select` keeps some slots only (a smaller stack for the tail of a queue).

:meth:`Slots.step` reads nothing back to the host and branches on no tensor value: on CUDA it is
what a CUDA graph captures and replays (:class:`Replay`); its tensors are made once, and a new
network is written into them in place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..config import FitConfig
from .devices import formulation_for
from .inputs import from_range
from .hourglass import Hourglass
from .model import RecurrentDIP, State, _per_channel
from .optim import slot_optimizer
from .padding import crop
from .stopping import rule_for


def network_for(cfg: FitConfig, channels: int, seeds: Sequence[int], height: int, width: int,
                device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """The stacked networks of ``cfg.network`` (one per seed) for ``height×width×channels`` targets:
    Table I's :class:`RecurrentDIP` or the :class:`Hourglass`, each under Eq. 1."""
    if cfg.network == "hourglass":
        return Hourglass(channels, seeds, height=height, width_px=width, depth=cfg.net_depth, width=cfg.net_width,
                         skip=cfg.net_skip, input_channels=cfg.net_input, norm=cfg.net_norm,
                         activation=cfg.net_activation, epsilon=cfg.epsilon, h_mode=cfg.h_mode,
                         h_leak=cfg.h_leak, device=device, dtype=dtype)
    return RecurrentDIP(channels, seeds, epsilon=cfg.epsilon, h_mode=cfg.h_mode, h_leak=cfg.h_leak,
                        formulation=formulation_for(cfg, device), device=device, dtype=dtype)


def torch_dtype(cfg: FitConfig) -> torch.dtype:
    """The dtype of the weights and state: float64 for ``dtype="float64"``, else float32
    (``bfloat16`` runs the network under autocast, its weights and optimiser stay float32)."""
    return torch.float64 if cfg.dtype == "float64" else torch.float32


class Slots:
    """``n`` slots of networks with one configuration ``cfg``, fitted to targets ``(H, W, C)``
    (padded, in the fitting range) on ``device``; slot ``i`` starts with network ``seeds[i]``,
    ``targets[i]`` and noise level ``sigmas[i]`` ([0, 1] units, for the noise rule, or None).

    ``watch``: keep each slot's kept output of every scoring iteration (``t`` a multiple of
    ``eval_every``, or ``iters``) in :attr:`snapshot` (iteration in :attr:`snapshot_t`), for
    scores against a clean image; read it at least every ``eval_every`` iterations.
    """

    def __init__(self, cfg: FitConfig, device: torch.device, seeds: Sequence[int],
                 targets: Sequence[np.ndarray], sigmas: Sequence[float | None], watch: bool = False):
        self.cfg, self.device, self.dtype, self.n = cfg, device, torch_dtype(cfg), len(seeds)
        self.height, self.width, self.channels = targets[0].shape
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes for many iterations: autotune once
        n, dtype = self.n, self.dtype
        self.model = network_for(cfg, self.channels, seeds, self.height, self.width, device, dtype)
        state = self.model.initial_state(self.height, self.width, cfg.z_noise_std)
        self.state = State(state.z_noise, state.f, state.h, torch.zeros(n, dtype=torch.long, device=device))
        self.target = torch.cat([self._tensor(t) for t in targets])[None]
        self.opt = slot_optimizer(cfg.optimizer, self.model.parameters(), n, cfg.lr, cfg.momentum)
        self.average = torch.zeros_like(self.target) if cfg.ema > 0 else None
        self.losses = torch.zeros((cfg.iters + 1, n), device=device, dtype=torch.float32)  # + a spare row
        self.loss = torch.zeros(n, device=device, dtype=torch.float32)
        self.size = self.channels * self.height * self.width
        self.rule = rule_for(cfg, n, self.size, device, dtype)
        for slot, sigma in enumerate(sigmas):
            self.rule.load(slot, sigma)
        self.watch = watch
        self.snapshot = torch.zeros((n, self.size), device=device, dtype=dtype) if watch else None
        self.snapshot_t = torch.zeros(n, dtype=torch.long, device=device)
        self._slots = torch.arange(n, device=device)

    def _tensor(self, target: np.ndarray) -> torch.Tensor:
        """A target ``(H, W, C)`` as ``(C, H, W)`` on the device."""
        return torch.from_numpy(np.ascontiguousarray(target.transpose(2, 0, 1))).to(self.device, self.dtype)

    def _block(self, x: torch.Tensor, slot: int) -> torch.Tensor:
        """Slot ``slot``'s channels of a ``(1, n*c, …)`` tensor (a view)."""
        c = x.shape[1] // self.n
        return x[:, slot * c:(slot + 1) * c]

    @torch.no_grad()
    def load(self, slot: int, seed: int, target: np.ndarray, sigma: float | None) -> None:
        """Put a new network into ``slot``: the weights and ``z_noise`` of ``seed``, its ``target``
        ``(H, W, C)`` and noise level; its moments, state, average and losses zero, ``t = 0``."""
        self.model.load(slot, seed)
        self._block(self.state.z_noise, slot).copy_(
            self.model.z_noise(seed, self.height, self.width, self.cfg.z_noise_std))
        for x in (self.state.f, self.state.h) + ((self.average,) if self.average is not None else ()):
            self._block(x, slot).zero_()
        self._block(self.target, slot).copy_(self._tensor(target))
        self.state.t[slot] = 0
        self.opt.reset(slot)
        self.losses[:, slot] = 0
        self.rule.load(slot, sigma)
        self.snapshot_t[slot] = 0

    def estimate(self) -> torch.Tensor:
        """The current outputs ``(1, n*C, H, W)``, or their bias-corrected exponential averages."""
        if self.average is None:
            return self.state.f
        return self.average / (1 - self.cfg.ema ** _per_channel(self.state.t, self.average))

    def step(self) -> None:
        """One iteration of every slot: Eq. 1's time step, the squared error to the target,
        back-propagation and the optimiser's step; the state, average, losses, stopping rule and
        snapshots move on. Nothing is read back to the host."""
        cfg, n = self.cfg, self.n
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.dtype == "bfloat16",
                            cache_enabled=False):
            out, h_t = self.model(self.state)
        out, h_t = out.to(self.dtype), h_t.to(self.dtype)
        err = (out - self.target).square().reshape(n, -1)
        loss = err.sum(1) if cfg.loss_reduction == "sum" else err.mean(1)
        self.opt.zero_grad()
        loss.sum().backward()
        self.opt.step()
        with torch.no_grad():
            self.state.f.copy_(out)
            self.state.h.copy_(h_t)
            self.state.t.add_(1)
            t = self.state.t
            self.loss.copy_(loss)
            self.losses.index_put_((t.clamp(max=cfg.iters + 1) - 1, self._slots), self.loss)
            if self.average is not None:
                self.average.mul_(cfg.ema).add_(self.state.f, alpha=1 - cfg.ema)
            estimate = self.estimate().reshape(n, -1)
            before = self.rule.finished.clone()
            self.rule.update(t, self.state.f.reshape(n, -1), estimate, err.mean(1))
            if self.watch:
                due = (((t % cfg.eval_every) == 0) | (t == cfg.iters)) & ~before
                kept = torch.where(self.rule.finished[:, None], self.rule.kept, estimate)
                self.snapshot.copy_(torch.where(due[:, None], kept, self.snapshot))
                self.snapshot_t.copy_(torch.where(due, t, self.snapshot_t))

    def images(self, rows: torch.Tensor, configs: Sequence[FitConfig]) -> list[np.ndarray]:
        """Outputs ``(k, C*H*W)`` (in the fitting range) as one ``(h, w, C)`` image each, back in
        [0, 1] units, clipped, padding cropped (``configs``: one per row)."""
        arr = rows.detach().to("cpu", torch.float64).numpy().reshape(-1, self.channels, self.height, self.width)
        return [crop(np.clip(from_range(a.transpose(1, 2, 0), c.range, c.margin), 0.0, 1.0), c.pad_width, c.padding)
                for a, c in zip(arr, configs)]

    def select(self, keep: Sequence[int]) -> Slots:
        """The slots ``keep`` only (in that order), as a stack of their own: every tensor's
        blocks of those slots; the networks go on where they were."""
        idx = torch.as_tensor(list(keep), device=self.device, dtype=torch.long)
        new = object.__new__(Slots)
        new.__dict__.update(vars(self))
        new.n = len(keep)

        def blocks(x):
            return x.reshape(self.n, -1, *x.shape[2:])[idx].reshape(1, -1, *x.shape[2:])

        self.model.select(idx)
        new.model = self.model
        new.state = State(blocks(self.state.z_noise), blocks(self.state.f), blocks(self.state.h),
                          self.state.t[idx].clone())
        new.target = blocks(self.target)
        new.average = None if self.average is None else blocks(self.average)
        new.opt = self.opt.select(list(self.model.parameters()), idx)
        new.losses, new.loss = self.losses[:, idx].clone(), self.loss[idx].clone()
        new.rule = self.rule.select(idx)
        new.snapshot = None if self.snapshot is None else self.snapshot[idx].clone()
        new.snapshot_t = self.snapshot_t[idx].clone()
        new._slots = torch.arange(new.n, device=self.device)
        return new


class Replay:
    """Runs :meth:`Slots.step`, eagerly or as a captured graph (``FitConfig.capture``).

    ``capture="graph"`` on CUDA: :data:`WARMUP` eager steps on a side stream (cuDNN and cuBLAS
    choose their kernels and workspaces), then the step is captured once as a CUDA graph and
    replayed for every later step (``torch.cuda.graph``: the graph's tensors are those the slots
    made once, which loads write in place). When the optimiser starts computing differently (its
    ``version``: the first network replaced in a stack of networks that had all started together,
    :mod:`rdip.method.optim`) the step is warmed up and captured again. On a CPU the same sequence
    runs with a graph that calls the step (:class:`_Eager`), so everything of the capture path but
    CUDA's graph is the code that runs. The step count and the results do not depend on it.
    """

    WARMUP = 3

    def __init__(self, slots: Slots, capture: str = "none",
                 graph_factory: Callable[[], object] | None = None):
        self.slots, self.capture, self.calls, self.graph, self.version = slots, capture, 0, None, None
        cuda = slots.device.type == "cuda"
        self.graph_factory = graph_factory or (torch.cuda.CUDAGraph if cuda else _Eager)

    def __call__(self) -> None:
        if self.capture == "none":
            self.slots.step()
            return
        if self.graph is not None and self.version != self.slots.opt.version:
            self.graph, self.calls = None, 0  # stale: warm up and capture again
        self.calls += 1
        if self.graph is not None:
            self.graph.replay()
        elif self.calls <= self.WARMUP:
            self._warm_up()
        else:
            self._capture()
            self.graph.replay()

    def _warm_up(self) -> None:
        if self.slots.device.type != "cuda":
            self.slots.step()
            return
        stream = torch.cuda.Stream(self.slots.device)
        stream.wait_stream(torch.cuda.current_stream(self.slots.device))
        with torch.cuda.stream(stream):
            self.slots.step()
        torch.cuda.current_stream(self.slots.device).wait_stream(stream)

    def _capture(self) -> None:
        self.graph, self.version = self.graph_factory(), self.slots.opt.version
        self.slots.opt.zero_grad()  # the graph's backward writes the gradients it reads
        if isinstance(self.graph, _Eager):
            self.graph.step = self.slots.step
            return
        with torch.cuda.graph(self.graph):
            self.slots.step()


class _Eager:
    """A stand-in for ``torch.cuda.CUDAGraph`` off CUDA: :meth:`replay` calls the step."""

    step: Callable[[], None]

    def replay(self) -> None:
        self.step()
