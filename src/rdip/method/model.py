"""The recurrent deep image prior network: encoder U, decoder V (Table I) and Eq. 1.

Every layer holds the weights of ``n`` independent networks side by side, and runs them as one
grouped convolution (``groups=n``). With ``n = 1`` this is the plain network of the paper; with
``n > 1`` it fits many images at once without mixing them: network ``i`` only ever sees channels
``i*C … (i+1)*C - 1`` of the batch, and the optimiser updates are element-wise, so a stack of ``n``
networks is mathematically the same as ``n`` separate runs (see :mod:`rdip.fit`).

Tensors are laid out ``(1, n*C, H, W)``: the ``n`` networks are concatenated along channels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

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
#: The receptive shrinkage of U: a ``H×W`` input gives a ``(H-25)+1 × (W-25)+1`` hidden state.
MIN_SIZE = sum(k - 1 for _, _, k in ENCODER_LAYERS) + 1  # 25


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

    Weights are initialised as PyTorch initialises a single layer (uniform in ±1/sqrt(fan_in), with
    PyTorch's own fan_in convention for each layer type), drawn network by network from each
    network's generator, so network ``i`` of a stack equals a stack of one made with the same seed.

    Input ``(B, n*cin, H, W)``; output ``(B, n*cout, H∓(k-1), W∓(k-1))`` (smaller for a convolution,
    larger for a transposed one).
    """

    def __init__(self, cin: int, cout: int, kernel: int, transposed: bool,
                 generators: Sequence[torch.Generator]):
        super().__init__()
        self.n, self.cin, self.cout, self.kernel, self.transposed = (
            len(generators), cin, cout, kernel, transposed)
        # PyTorch's layout: Conv2d weight (cout, cin, k, k); ConvTranspose2d weight (cin, cout, k, k),
        # and in both cases fan_in is weight.size(1) * k * k.
        shape = (cin, cout, kernel, kernel) if transposed else (cout, cin, kernel, kernel)
        bound = 1.0 / math.sqrt(shape[1] * kernel * kernel)
        weights, biases = [], []
        for g in generators:
            weights.append((torch.rand(shape, generator=g) * 2 - 1) * bound)
            biases.append((torch.rand(cout, generator=g) * 2 - 1) * bound)
        self.weight = nn.Parameter(torch.cat(weights))  # (n*shape[0], shape[1], k, k)
        self.bias = nn.Parameter(torch.cat(biases))  # (n*cout,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.transposed:
            return F.conv_transpose2d(x, self.weight, self.bias, groups=self.n)
        return F.conv2d(x, self.weight, self.bias, groups=self.n)


class Encoder(nn.Module):
    """Encoder U of Table I: five convolutions, each followed by tanh.

    ``(B, n*C, H, W)`` → hidden state ``(B, n*256, H-24, W-24)``.
    """

    def __init__(self, channels: int, generators: Sequence[torch.Generator]):
        super().__init__()
        self.layers = nn.ModuleList(
            StackedConv(cin, cout, k, False, generators)
            for cin, cout, k in _with_channels(ENCODER_LAYERS, channels, first=True))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            z = torch.tanh(layer(z))
        return z


class Decoder(nn.Module):
    """Decoder V of Table I: five transposed convolutions with tanh between them.

    ``(B, n*256, h, w)`` → ``(B, n*C, h+24, w+24)``, before the final tanh of Eq. 1.
    """

    def __init__(self, channels: int, generators: Sequence[torch.Generator]):
        super().__init__()
        self.layers = nn.ModuleList(
            StackedConv(cin, cout, k, True, generators)
            for cin, cout, k in _with_channels(DECODER_LAYERS, channels, first=False))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = torch.tanh(h)
        return h


class RecurrentDIP(nn.Module):
    """``n`` independent recurrent deep image priors (Fig. 1, Eq. 1), one per seed.

    Parameters
    ----------
    channels:
        Image channels ``C``: 3 (RGB, as in the paper) or 1 (grey).
    seeds:
        One seed per network; it fixes that network's initial weights.
    """

    def __init__(self, channels: int, seeds: Sequence[int]):
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.channels, self.n = channels, len(generators)
        self.encoder = Encoder(channels, generators)  # U_φ
        self.decoder = Decoder(channels, generators)  # V_θ

    def step(self, z_noise: torch.Tensor, f_prev: torch.Tensor, h_prev: torch.Tensor,
             epsilon: float, h_mode: str = "sum", t: int = 1, h_leak: float = 0.9):
        """One time step of Eq. 1; time steps are optimisation iterations (design.md §2.1).

            z_t    = z_noise · (1 - ε) + f(z_{t-1}) · ε
            h_t    = U(z_t) + h_{t-1}
            f(z_t) = tanh(V(h_t))

        ``z_noise``, ``f_prev``: ``(1, n*C, H, W)``; ``h_prev``: ``(1, n*256, H-24, W-24)``.
        ``h_mode`` says how the hidden state accumulates (design.md §2.2): ``sum`` is Eq. 1 as
        written; ``mean`` keeps the running mean of U's outputs, ``leaky`` a leaky sum
        ``h_leak·h_{t-1} + U(z_t)``, ``none`` drops the recurrence in h (``h_t = U(z_t)``).
        ``t`` is the 1-based time step (used by ``mean``). Returns ``(f(z_t), h_t)``.
        """
        z_t = z_noise * (1 - epsilon) + f_prev * epsilon
        u = self.encoder(z_t)
        if h_mode == "sum":
            h_t = u + h_prev
        elif h_mode == "mean":
            h_t = h_prev + (u - h_prev) / t
        elif h_mode == "leaky":
            h_t = h_leak * h_prev + u
        elif h_mode == "none":
            h_t = u
        else:
            raise ValueError(f"unknown h_mode {h_mode!r}")
        return torch.tanh(self.decoder(h_t)), h_t

    def hidden_shape(self, height: int, width: int) -> tuple[int, int, int, int]:
        """Shape of ``h`` for an ``height×width`` image: ``(1, n*256, height-24, width-24)``."""
        return (1, self.n * ENCODER_LAYERS[-1][1], height - MIN_SIZE + 1, width - MIN_SIZE + 1)


def flops_per_iteration(height: int, width: int, channels: int = 3) -> float:
    """Analytic FLOP count of one iteration (forward + backward) of one network.

    Each convolution costs ``2·cin·cout·k²`` FLOP per output pixel of the smaller side (the
    convolution's output, the transposed convolution's input). The backward pass costs about twice
    the forward (gradients of inputs and of weights), so an iteration costs ≈ 3× the forward.
    """
    forward = 0.0
    h, w = height, width
    for cin, cout, k in _with_channels(ENCODER_LAYERS, channels, first=True):
        h, w = h - k + 1, w - k + 1
        forward += 2.0 * cin * cout * k * k * h * w
    for cin, cout, k in _with_channels(DECODER_LAYERS, channels, first=False):
        forward += 2.0 * cin * cout * k * k * h * w
        h, w = h + k - 1, w + k - 1
    return 3.0 * forward
