"""The optimisers of a stack of slots: Adam and SGD with every network's own state.

A stack (:mod:`rdip.method.slots`) holds ``n`` networks side by side in each parameter (network
``i`` owns the ``i``-th of ``n`` equal row blocks, :class:`~rdip.method.model.StackedConv`), and a
network taken out of a slot is replaced by a new one at its own first iteration. Adam's bias
correction depends on each network's step count, which ``torch.optim.Adam`` keeps once per
parameter tensor, shared by all the networks in it. So :class:`SlotAdam` hands torch's fused Adam
kernel (``torch._fused_adam_``, the kernel of ``torch.optim.Adam(fused=True)``) one view per
network of every parameter, moment and gradient, each with its network's own step count: exactly
torch's fused update, in one pass over the memory. Where that kernel is missing (older torch, or a
device without it) the update is written out with ``t`` a vector (``torch.optim.Adam``'s
arithmetic: ``lerp`` of the first moment, ``addcmul`` of the second, ``denom = sqrt(v) /
sqrt(1 - β₂ᵗ) + ε``, ``p -= lr / (1 - β₁ᵗ) · m / denom``; the step size divides ``denom`` before
``m`` is divided by it, so the last bits differ). SGD (with momentum) needs no count: its momentum
buffer starts at zero, which gives ``torch.optim.SGD``'s first step (the buffer = the gradient).

While every network of a stack has taken the same number of steps (a stack whose networks all
started together, as they do until a finished one is replaced: on a GPU, where a stack holds the
whole queue, always), the fused kernel is handed the whole tensors with one shared step count
instead: the same kernel and the same numbers, without one view per network (a stack of 1,500
networks has 30,000 views, and the kernel is launched once per few dozen of them). The first
:meth:`SlotAdam.reset` after a step leaves that mode for good (:attr:`SlotOptimizer.version`
counts such changes, so that a captured step is captured again).

Both work in place on tensors made once (moments, counts), read the gradients autograd wrote, and
never read a value back to the host: :meth:`step` is part of the step a CUDA graph captures. On
the CPU this matters for speed too (a stack of 2 networks, one thread, idle machine):
``torch.optim.Adam`` 17.3 ms a step (a fresh temporary the size of a parameter each step costs
page faults), the written-out update in place 6.8 ms, the fused kernel per network 2.2 ms.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def _rows(t: torch.Tensor, n: int) -> torch.Tensor:
    """``t`` viewed as ``(n, -1)``: one row per network."""
    return t.view(n, -1)


class SlotOptimizer:
    """Common to both: the parameters (each ``(n*rows, …)``), ``n``, and the per-network state."""

    def __init__(self, params: Sequence[torch.nn.Parameter], n: int, lr: float):
        self.params, self.n, self.lr = list(params), n, lr
        #: Changes whenever :meth:`step` starts computing differently (a captured step is stale).
        self.version = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def reset(self, slot: int) -> None:
        """Network ``slot`` starts anew: its moments zero, its step count 0."""
        raise NotImplementedError

    def select(self, params: Sequence[torch.nn.Parameter], keep: torch.Tensor) -> SlotOptimizer:
        """A copy for the parameters of :meth:`RecurrentDIP.select`, with the networks ``keep``'s state."""
        raise NotImplementedError


class SlotAdam(SlotOptimizer):
    """Adam (``torch.optim.Adam`` defaults: β = (0.9, 0.999), ε = 1e-8) with a step count per
    network; ``fused`` (None: where the device has the kernel) chooses torch's fused kernel.
    :attr:`uniform`: every network has taken the same number of steps, and the fused kernel
    updates whole tensors with one shared count (see the module)."""

    def __init__(self, params, n: int, lr: float, betas=(0.9, 0.999), eps: float = 1e-8,
                 fused: bool | None = None):
        super().__init__(params, n, lr)
        self.betas, self.eps = betas, eps
        device = self.params[0].device
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = torch.zeros(n, dtype=torch.float64, device=device)
        self.fused = fused_adam_works(device, self.params[0].dtype) if fused is None else fused
        self.stepped = False  # a step taken since the counts were last all zero (host-side)
        if self.fused:
            self.uniform = True
            self.shared_step = torch.zeros((), device=device)  # every network's count, while uniform
            self.slot_steps = [torch.zeros((), device=device) for _ in range(n)]
            # per network: a view of each tensor, and one step count shared by its views
            self._steps = [self.slot_steps[i] for _ in self.params for i in range(n)]
            self._p, self._m, self._v = (_views(x, n) for x in (self.params, self.m, self.v))
        else:
            self.uniform = False
            self.denom = [torch.empty_like(p) for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        self.t.add_(1)
        self.stepped = True
        if self.fused and self.uniform:
            self.shared_step.add_(1)
            torch._fused_adam_(self.params, [p.grad for p in self.params], self.m, self.v, [],
                               [self.shared_step] * len(self.params), **self._hyper())
            return
        if self.fused:
            torch._foreach_add_(self.slot_steps, 1)
            torch._fused_adam_(self._p, _views([p.grad for p in self.params], self.n), self._m, self._v, [],
                               self._steps, **self._hyper())
            return
        beta1, beta2 = self.betas
        step_size = (self.lr / (1 - beta1 ** self.t)).to(self.params[0].dtype)[:, None]  # (n, 1)
        bc2_sqrt = torch.sqrt(1 - beta2 ** self.t).to(self.params[0].dtype)[:, None]
        for p, m, v, denom in zip(self.params, self.m, self.v, self.denom):
            g = p.grad
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            torch.sqrt(v, out=denom)
            _rows(denom, self.n).div_(bc2_sqrt).add_(self.eps).div_(step_size)
            p.addcdiv_(m, denom, value=-1)

    def _hyper(self) -> dict:
        return {"lr": self.lr, "beta1": self.betas[0], "beta2": self.betas[1], "weight_decay": 0.0,
                "eps": self.eps, "amsgrad": False, "maximize": False}

    def _leave_uniform(self) -> None:
        """From now on one step count per network (each the shared one so far)."""
        for s in self.slot_steps:
            s.copy_(self.shared_step)
        self.uniform = False
        self.version += 1

    def reset(self, slot: int) -> None:
        if self.fused and self.uniform and self.stepped:
            self._leave_uniform()
        for m, v in zip(self.m, self.v):
            _rows(m, self.n)[slot] = 0
            _rows(v, self.n)[slot] = 0
        self.t[slot] = 0
        if self.fused:
            self.slot_steps[slot].zero_()

    def select(self, params, keep: torch.Tensor) -> SlotAdam:
        new = SlotAdam(params, len(keep), self.lr, self.betas, self.eps, self.fused)
        for mine, theirs in ((self.m, new.m), (self.v, new.v)):
            for a, b in zip(mine, theirs):
                b.copy_(_rows(a, self.n)[keep].reshape(b.shape))
        new.t.copy_(self.t[keep])
        new.stepped = self.stepped
        if self.fused and self.uniform:
            new.shared_step.copy_(self.shared_step)
        elif self.fused:
            new._leave_uniform()
            for i, k in enumerate(keep.tolist()):
                new.slot_steps[i].copy_(self.slot_steps[k])
        return new


def _views(tensors: Sequence[torch.Tensor], n: int) -> list[torch.Tensor]:
    """Each tensor's ``n`` row blocks (one per network), tensor by tensor."""
    return [row for x in tensors for row in _rows(x, n).unbind(0)]


_FUSED: dict[tuple, bool] = {}


def fused_adam_works(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether torch's fused Adam kernel runs on ``device`` for ``dtype`` (tried once, on a tiny
    tensor, and remembered)."""
    key = (device.type, dtype)
    if key not in _FUSED:
        try:
            x = torch.zeros(2, device=device, dtype=dtype)
            torch._fused_adam_([x], [x.clone()], [x.clone()], [x.clone()], [], [torch.ones((), device=device)],
                               lr=1e-3, beta1=0.9, beta2=0.999, weight_decay=0.0, eps=1e-8,
                               amsgrad=False, maximize=False)
            _FUSED[key] = True
        except (AttributeError, RuntimeError, NotImplementedError, TypeError):
            _FUSED[key] = False
    return _FUSED[key]


class SlotSGD(SlotOptimizer):
    """SGD with optional momentum (no dampening, no weight decay), ``torch.optim.SGD``'s update."""

    def __init__(self, params, n: int, lr: float, momentum: float = 0.0):
        super().__init__(params, n, lr)
        self.momentum = momentum
        self.buffers = [torch.zeros_like(p) for p in self.params] if momentum else []

    @torch.no_grad()
    def step(self) -> None:
        if not self.momentum:
            for p in self.params:
                p.sub_(p.grad, alpha=self.lr)
            return
        for p, buf in zip(self.params, self.buffers):
            buf.mul_(self.momentum).add_(p.grad)
            p.sub_(buf, alpha=self.lr)

    def reset(self, slot: int) -> None:
        for buf in self.buffers:
            _rows(buf, self.n)[slot] = 0

    def select(self, params, keep: torch.Tensor) -> SlotSGD:
        new = SlotSGD(params, len(keep), self.lr, self.momentum)
        for a, b in zip(self.buffers, new.buffers):
            b.copy_(_rows(a, self.n)[keep].reshape(b.shape))
        return new


def slot_optimizer(name: str, params, n: int, lr: float, momentum: float = 0.0) -> SlotOptimizer:
    """``adam`` or ``sgd`` (``FitConfig.optimizer``) for ``n`` networks stacked in ``params``."""
    return SlotAdam(params, n, lr) if name == "adam" else SlotSGD(params, n, lr, momentum)
