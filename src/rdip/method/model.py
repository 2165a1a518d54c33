"""The recurrent deep image prior network: encoder U, decoder V (Table I) and Eq. 1.

Every layer holds the weights of ``n`` independent networks side by side, and runs them as one
grouped convolution (``groups=n``). With ``n = 1`` this is the plain network of the paper; with
``n > 1`` it fits many images at once without mixing them: network ``i`` only ever sees channels
``i*C … (i+1)*C - 1`` of the batch, and the optimiser updates are element-wise, so a stack of ``n``
networks is mathematically the same as ``n`` separate runs (see :mod:`rdip.method.engine`).

Tensors are laid out ``(1, n*C, H, W)``: the ``n`` networks are concatenated along channels.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import MIN_SIZE

#: Table I, encoder U: (in, out, kernel) of the five stride-1 ``Conv2d`` layers (``in`` of the first
#: layer is the image's channel count: 3 in the paper, 1 for grey images).
ENCODER_LAYERS: tuple[tuple[int, int, int], ...] = (
    (3, 16, 6),
    (16, 32, 6),
    (32, 64, 6),
    (64, 128, 6),
    (128, 256, 5),
)
#: Table I, decoder V: the five stride-1 ``ConvTranspose2d`` layers, the mirror image of U.
DECODER_LAYERS: tuple[tuple[int, int, int], ...] = (
    (256, 128, 5),
    (128, 64, 6),
    (64, 32, 6),
    (32, 16, 6),
    (16, 3, 6),
)
#: How a stacked layer computes (:class:`StackedConv`): one grouped convolution, or the networks'
#: patches times their weights as one batched matrix product.
FORMULATIONS = ("grouped", "bmm")
#: Threads that draw the weights of a stack's networks (each network's generator in one thread).
DRAW_THREADS = min(16, os.cpu_count() or 1)
#: The receptive shrinkage of U: a ``H×W`` input gives a ``(H-25)+1 × (W-25)+1`` hidden state
#: (:data:`rdip.config.MIN_SIZE`, the sum of the encoder's kernel sizes less one, plus one).


def _with_channels(layers, channels: int, first: bool):
    layers = list(layers)
    if first:
        _, cout, k = layers[0]
        layers[0] = (channels, cout, k)
    else:
        cin, _, k = layers[-1]
        layers[-1] = (cin, channels, k)
    return tuple(layers)


class StackedConv(nn.Module):
    """``n`` independent stride-1, unpadded ``Conv2d`` (or ``ConvTranspose2d``) layers as one.

    Made empty (on ``device``, of ``dtype``); :meth:`load` draws network ``slot``'s weights as
    PyTorch initialises a single layer (uniform in ±1/sqrt(fan_in), with PyTorch's own fan_in
    convention for each layer type) from that network's generator, on the CPU (so that a network's
    weights do not depend on the device), and writes them into its rows: network ``i`` owns rows
    ``i*rows … (i+1)*rows - 1`` of the weight (``rows`` = ``cout`` for a convolution, ``cin`` for
    a transposed one) and of the bias (``cout`` each).

    Input ``(B, n*cin, H, W)``; output ``(B, n*cout, H∓(k-1), W∓(k-1))`` (smaller for a convolution,
    larger for a transposed one).
    """

    def __init__(self, cin: int, cout: int, kernel: int, transposed: bool, n: int,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        super().__init__()
        self.n, self.cin, self.cout, self.kernel, self.transposed = n, cin, cout, kernel, transposed
        # PyTorch's layout: Conv2d weight (cout, cin, k, k); ConvTranspose2d weight (cin, cout, k, k),
        # and in both cases fan_in is weight.size(1) * k * k.
        self.shape = (cin, cout, kernel, kernel) if transposed else (cout, cin, kernel, kernel)
        made = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty((n * self.shape[0], *self.shape[1:]), **made))
        self.bias = nn.Parameter(torch.empty(n * cout, **made))

    def _draw(self, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """One network's weight and bias from its generator (the weight first)."""
        bound = 1.0 / math.sqrt(self.shape[1] * self.kernel * self.kernel)
        weight = torch.rand(self.shape, generator=g).mul_(2).sub_(1).mul_(bound)  # (u·2 − 1)·bound
        return weight, torch.rand(self.cout, generator=g).mul_(2).sub_(1).mul_(bound)

    @torch.no_grad()
    def load(self, slot: int, g: torch.Generator) -> None:
        """Network ``slot`` anew: its weight and bias drawn from ``g`` as the constructor draws them."""
        weight, bias = self._draw(g)
        rows = self.shape[0]
        self.weight[slot * rows:(slot + 1) * rows] = weight
        self.bias[slot * self.cout:(slot + 1) * self.cout] = bias

    @torch.no_grad()
    def select(self, keep: torch.Tensor) -> None:
        """Keep only the networks ``keep`` (indices, in that order)."""
        n = self.n
        self.weight = nn.Parameter(self.weight.reshape(n, -1)[keep].reshape(-1, *self.weight.shape[1:]))
        self.bias = nn.Parameter(self.bias.reshape(n, -1)[keep].reshape(-1))
        self.n = len(keep)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.formulation == "bmm":
            return self._bmm(x)
        if self.transposed:
            return F.conv_transpose2d(x, self.weight, self.bias, groups=self.n)
        return F.conv2d(x, self.weight, self.bias, groups=self.n)

    #: ``grouped`` (one grouped convolution) or ``bmm`` (:meth:`_bmm`); set by :class:`RecurrentDIP`.
    formulation = "grouped"

    def _bmm(self, x: torch.Tensor) -> torch.Tensor:
        """The same layer as one batched matrix product over the networks: the input's patches
        (``unfold``; for a transposed convolution, of the input padded by ``k - 1``, with the
        kernel flipped and its in/out axes swapped) times each network's weight matrix."""
        n, k = self.n, self.kernel
        if self.transposed:
            x = F.pad(x, (k - 1,) * 4)
            w = self.weight.view(n, self.cin, self.cout, k, k).transpose(1, 2).flip(3, 4)
        else:
            w = self.weight.view(n, self.cout, self.cin, k, k)
        height, width = x.shape[2] - k + 1, x.shape[3] - k + 1
        cols = F.unfold(x, k).view(n, self.cin * k * k, height * width)
        out = torch.baddbmm(self.bias.view(n, self.cout, 1), w.reshape(n, self.cout, -1), cols)
        return out.view(1, n * self.cout, height, width)


class _Layers(nn.Module):
    """Table I's layers of one side, stacked for ``n`` networks (:class:`StackedConv`), with tanh
    after every layer but, where ``last_tanh`` is False, the last."""

    transposed: bool
    last_tanh: bool

    def __init__(self, table, n: int, device=None, dtype=None):
        super().__init__()
        self.layers = nn.ModuleList(StackedConv(cin, cout, k, self.transposed, n, device, dtype)
                                    for cin, cout, k in table)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if self.last_tanh or i < len(self.layers) - 1:
                x = torch.tanh(x)
        return x


class Encoder(_Layers):
    """Encoder U of Table I: five convolutions, each followed by tanh.

    ``(B, n*C, H, W)`` → hidden state ``(B, n*256, H-24, W-24)``.
    """

    transposed, last_tanh = False, True

    def __init__(self, channels: int, n: int, device=None, dtype=None):
        super().__init__(_with_channels(ENCODER_LAYERS, channels, first=True), n, device, dtype)


class Decoder(_Layers):
    """Decoder V of Table I: five transposed convolutions with tanh between them.

    ``(B, n*256, h, w)`` → ``(B, n*C, h+24, w+24)``, before the final tanh of Eq. 1.
    """

    transposed, last_tanh = True, False

    def __init__(self, channels: int, n: int, device=None, dtype=None):
        super().__init__(_with_channels(DECODER_LAYERS, channels, first=False), n, device, dtype)


@dataclass
class State:
    """What Eq. 1 carries from one time step to the next, for a stack of ``n`` networks.

    ``z_noise``: the fixed input noise, ``(1, n*C, H, W)``; ``f``: the previous output f(z_{t-1}),
    ``(1, n*C, H, W)`` (zero before the first step); ``h``: the hidden state h_{t-1},
    ``(1, n*256, H-24, W-24)`` (zero before the first step); ``t``: the time steps taken, an
    ``int`` shared by the networks or a tensor ``(n,)`` of each network's own (the engine's slots,
    :mod:`rdip.method.slots`). ``f`` and ``h`` are values (no graph): time steps are optimisation
    iterations, each back-propagated alone (truncated back-propagation of length 1,
    docs/design-notes.md).
    """

    z_noise: torch.Tensor
    f: torch.Tensor
    h: torch.Tensor
    t: int | torch.Tensor = 0


class RecurrentDIP(nn.Module):
    """``n`` independent recurrent deep image priors (Fig. 1, Eq. 1), one per seed.

    Parameters
    ----------
    channels:
        Image channels ``C``: 3 (RGB, as in the paper) or 1 (grey).
    seeds:
        One seed per network; it fixes that network's initial weights and its ``z_noise``.
    epsilon:
        ε of Eq. 1: the share of the previous output in the next input.
    h_mode, h_leak:
        How the hidden state accumulates (docs/design-notes.md): ``sum`` is Eq. 1 as written
        (``h_t = U(z_t) + h_{t-1}``); ``mean`` keeps the running mean of U's outputs, ``leaky`` a
        leaky sum ``h_leak·h_{t-1} + U(z_t)``, ``none`` drops the recurrence (``h_t = U(z_t)``).
    formulation:
        How the stacked layers compute (:data:`FORMULATIONS`); the results differ by rounding only.
    device, dtype:
        Where the weights are made (the values are drawn on the CPU, the same on every device).

    Each network's weights are drawn from its own generator (seeded with its seed), layer by
    layer, U's then V's (:meth:`load`), so network ``i`` of a stack equals a stack of one made
    with the same seed; the networks of a large stack are drawn by :data:`DRAW_THREADS` threads
    (each generator alone, so the values do not depend on it: 1,457 networks, a 768×512
    photograph's tiles, took ≈17 s on one thread of a 2-core CPU).
    """

    def __init__(self, channels: int, seeds: Sequence[int], *, epsilon: float = 0.1,
                 h_mode: str = "sum", h_leak: float = 0.9, formulation: str = "grouped",
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        if h_mode not in _H_RULES:
            raise ValueError(f"unknown h_mode {h_mode!r}: use one of {', '.join(_H_RULES)}")
        if formulation not in FORMULATIONS:
            raise ValueError(f"unknown formulation {formulation!r}: use one of {', '.join(FORMULATIONS)}")
        self.seeds = [int(s) for s in seeds]
        self.channels, self.n = channels, len(self.seeds)
        self.epsilon, self.h_mode, self.h_leak = epsilon, h_mode, h_leak
        self.encoder = Encoder(channels, self.n, device, dtype)  # U_φ
        self.decoder = Decoder(channels, self.n, device, dtype)  # V_θ
        for layer in self.layers():
            layer.formulation = formulation
        workers = min(self.n, DRAW_THREADS) if self.n >= 4 else 1
        if workers == 1:
            for slot, seed in enumerate(self.seeds):
                self.load(slot, seed)
        else:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(self.load, range(self.n), self.seeds))

    def initial_state(self, height: int, width: int, z_noise_std: float) -> State:
        """The state before the first time step for ``height×width`` images, on the model's
        device and dtype: ``z_noise`` ~ N(0, z_noise_std²), drawn once per network from its
        seed + 2³² (in float64, then cast), and f(z_0) = 0, h_0 = 0."""
        z_noise = torch.cat([self.z_noise(s, height, width, z_noise_std) for s in self.seeds])[None]
        hidden = (1, self.n * ENCODER_LAYERS[-1][1], height - MIN_SIZE + 1, width - MIN_SIZE + 1)
        return State(z_noise, torch.zeros_like(z_noise), z_noise.new_zeros(hidden))

    def z_noise(self, seed: int, height: int, width: int, z_noise_std: float) -> torch.Tensor:
        """One network's ``z_noise`` ``(C, H, W)`` ~ N(0, z_noise_std²), drawn from ``seed`` + 2³²
        in float64, on the model's device and dtype."""
        weight = self.encoder.layers[0].weight
        z = torch.randn((self.channels, height, width), dtype=torch.float64,
                        generator=torch.Generator().manual_seed(seed + 2**32)) * z_noise_std
        return z.to(weight.device, weight.dtype)

    def layers(self) -> list[StackedConv]:
        """U's layers then V's, in the order each network's weights are drawn."""
        return [*self.encoder.layers, *self.decoder.layers]

    def load(self, slot: int, seed: int) -> None:
        """Network ``slot`` anew with the weights of ``seed`` (as a model made with that seed has):
        one generator seeded ``seed`` draws every layer's weight and bias in turn."""
        g = torch.Generator().manual_seed(int(seed))
        for layer in self.layers():
            layer.load(slot, g)
        self.seeds[slot] = int(seed)

    def select(self, keep: torch.Tensor) -> None:
        """Keep only the networks ``keep`` (indices, in that order); the optimiser must be made anew."""
        for layer in self.layers():
            layer.select(keep.to(layer.weight.device))
        self.seeds = [self.seeds[int(i)] for i in keep]
        self.n = len(keep)

    def forward(self, state: State) -> tuple[torch.Tensor, torch.Tensor]:
        """Time step ``t = state.t + 1`` of Eq. 1; returns ``(f(z_t), h_t)``, with their graph.

            z_t    = z_noise · (1 - ε) + f(z_{t-1}) · ε
            h_t    = U(z_t) + h_{t-1}          (h_mode ``sum``; see the class)
            f(z_t) = tanh(V(h_t))
        """
        return eq1(self, state)

    def mix(self, z_noise: torch.Tensor, f: torch.Tensor, epsilon: float) -> torch.Tensor:
        """Eq. 1's input ``z_noise · (1 - ε) + f · ε``."""
        return z_noise * (1 - epsilon) + f * epsilon

    def encode(self, z: torch.Tensor) -> tuple[torch.Tensor, None]:
        """U (Table I's encoder); nothing else goes to V."""
        return self.encoder(z), None

    def decode(self, h: torch.Tensor, _levels: None) -> torch.Tensor:
        """V (Table I's decoder), before the final tanh."""
        return self.decoder(h)

    @staticmethod
    def advance(state: State, f_t: torch.Tensor, h_t: torch.Tensor) -> State:
        """The state after a time step: ``f_t`` and ``h_t`` kept as values, ``t`` counted."""
        return State(state.z_noise, f_t.detach(), h_t.detach(), state.t + 1)


def eq1(net: nn.Module, state: State) -> tuple[torch.Tensor, torch.Tensor]:
    """Time step ``t = state.t + 1`` of Eq. 1 for any network ``net`` (Table I's
    :class:`RecurrentDIP`, the :class:`~rdip.method.hourglass.Hourglass`), which gives the input's
    mix, U (``encode``: its output and what else goes to V, e.g. the hourglass's skips) and V
    (``decode``); returns ``(f(z_t), h_t)`` with their graph::

        z_t    = z_noise · (1 - ε) + f(z_{t-1}) · ε      (net.mix)
        h_t    = U(z_t) + h_{t-1}                        (h_mode ``sum``; _H_RULES)
        f(z_t) = tanh(V(h_t))
    """
    z_t = net.mix(state.z_noise, state.f, net.epsilon)
    u, levels = net.encode(z_t)
    h_t = _H_RULES[net.h_mode](u, state.h, state.t + 1, net.h_leak)
    return torch.tanh(net.decode(h_t, levels)), h_t


#: h_t from U(z_t), h_{t-1}, the 1-based step t and the leak, per ``h_mode``.
_H_RULES = {
    "sum": lambda u, h, t, leak: u + h,
    "mean": lambda u, h, t, leak: h + (u - h) / _per_channel(t, h),
    "leaky": lambda u, h, t, leak: leak * h + u,
    "none": lambda u, h, t, leak: u,
}


def _per_channel(t: int | torch.Tensor, h: torch.Tensor) -> int | torch.Tensor:
    """``t`` as it divides ``h`` ``(1, n*c, …)``: an int as it is, each network's ``(n,)`` repeated
    over its ``c`` channels."""
    if isinstance(t, int):
        return t
    return t.to(h.dtype).repeat_interleave(h.shape[1] // t.numel()).reshape(1, -1, 1, 1)


def flops_per_iteration(height: int, width: int, channels: int = 3) -> float:
    """Analytic FLOP count of one iteration (forward + backward) of one network.

    Each convolution costs ``2·cin·cout·k²`` FLOP per output pixel of the smaller side (the
    convolution's output, the transposed convolution's input). The backward pass costs about twice
    the forward (gradients of inputs and of weights), so an iteration costs ≈ 3× the forward.
    """
    return 3.0 * 2.0 * footprint(height, width, channels)["products"]


def footprint(height: int, width: int, channels: int = 3, formulation: str = "grouped") -> dict:
    """Element counts of one network on a ``height×width×channels`` target (analytic, like
    :func:`flops_per_iteration`): ``activations`` (the ten layers' outputs), ``parameters``
    (weights and biases), ``patches`` (what ``bmm`` unfolds for all ten layers: ``cin·k²`` values
    per output pixel; 0 for ``grouped``) and ``largest`` (the largest of one layer's weight,
    output or patches: a stack of ``n`` networks holds tensors ``n`` times that) and ``products``
    (the forward pass's multiply-adds: ``cin·cout·k²`` per pixel of each layer's smaller side, the
    convolution's output, the transposed convolution's input; :func:`flops_per_iteration`)."""
    counts = {"activations": 0, "parameters": 0, "patches": 0, "products": 0,
              "largest": channels * height * width}
    h, w = height, width
    layers = ([(c, False) for c in _with_channels(ENCODER_LAYERS, channels, first=True)]
              + [(c, True) for c in _with_channels(DECODER_LAYERS, channels, first=False)])
    for (cin, cout, k), transposed in layers:
        smaller = h * w if transposed else (h - k + 1) * (w - k + 1)
        h, w = (h + k - 1, w + k - 1) if transposed else (h - k + 1, w - k + 1)
        patches = cin * k * k * h * w if formulation == "bmm" else 0
        counts["activations"] += cout * h * w
        counts["parameters"] += cin * cout * k * k + cout
        counts["patches"] += patches
        counts["products"] += cin * cout * k * k * smaller
        counts["largest"] = max(counts["largest"], cin * cout * k * k, cout * h * w, patches)
    return counts
