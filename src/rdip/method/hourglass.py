"""A multi-scale hourglass (the Deep Image Prior's "skip" architecture) under Eq. 1, stacked.

Beside Table I's network (:mod:`rdip.method.model`), this network sees the whole image at every
scale: ``depth`` levels of stride-2 down-sampling, bilinear up-sampling back, and at each level a
skip branch from the down path to the up path (Ulyanov et al. 2018, Fig. 21's "skip" network:
reflection-padded 3×3 convolutions, normalisation, LeakyReLU). Like Table I's it holds ``n``
independent networks as one (grouped convolutions, ``groups = n``; per-channel normalisation and
interpolation never mix networks), so a stack of ``n`` is ``n`` separate fits.

Eq. 1 on it (:func:`rdip.method.model.eq1`, the same code as Table I's):

- ``z_t = z_noise·(1-ε) + f(z_{t-1})·ε``: the input has ``input_channels`` channels of noise
  (uniform in [0, ``z_noise_std``), as in DIP); the previous output is mixed into its first ``C``.
- ``U``: the down path, ``z_t`` → the deepest level's features; ``h_t = U(z_t) + h_{t-1}``
  (``h_mode``: ``sum``, ``mean``, ``leaky`` or ``none``).
- ``V``: the up path from ``h_t``, joined at each level by that level's skip branch (computed
  from the down path of this step; the skips are not summed across steps), then a 1×1
  convolution to ``C`` channels; ``f(z_t) = tanh(V(h_t))``.

``epsilon = 0`` and ``h_mode = "none"`` make it the plain Deep Image Prior.

Tensors are ``(1, n*c, H, W)``; any ``H, W`` ≥ 25 (each down-sampling gives ``ceil(H/2)``; the
up-sampling returns to the skip's exact size).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .model import State, StackedConv, eq1

NORMS = ("batch", "none")
ACTIVATIONS = ("leaky", "tanh")
#: The deepest level's side is at least this (depth from the image size: :func:`auto_depth`).
MIN_DEEPEST = 4
MAX_DEPTH = 5


def auto_depth(height: int, width: int) -> int:
    """Levels for a ``height×width`` image: halve the shorter side while it stays ≥
    :data:`MIN_DEEPEST`, at most :data:`MAX_DEPTH` (32 → 3, 64 → 4, 128 and larger → 5)."""
    return max(1, min(MAX_DEPTH, int(math.floor(math.log2(min(height, width) / MIN_DEEPEST)))))


class _Block(nn.Module):
    """A stacked ``k×k`` convolution (reflection-padded, stride ``stride``), per-channel
    normalisation and the activation: ``(1, n*cin, H, W)`` → ``(1, n*cout, ceil(H/s), ceil(W/s))``."""

    def __init__(self, cin, cout, kernel, stride, n, norm, activation, device, dtype):
        super().__init__()
        self.conv = StackedConv(cin, cout, kernel, False, n, device, dtype)
        self.stride, self.norm, self.activation = stride, norm, activation
        self.scale = nn.Parameter(torch.ones(n * cout, device=device, dtype=dtype)) if norm == "batch" else None
        self.shift = nn.Parameter(torch.zeros(n * cout, device=device, dtype=dtype)) if norm == "batch" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.conv.kernel
        if k > 1:
            x = F.pad(x, ((k - 1) // 2, k // 2, (k - 1) // 2, k // 2), mode="reflect")
        w, b = self.conv.weight, self.conv.bias
        x = F.conv2d(x, w, b, stride=self.stride, groups=self.conv.n)
        if self.norm == "batch":  # over H×W, per channel: each network's own statistics
            x = F.batch_norm(x, None, None, self.scale, self.shift, training=True)
        return F.leaky_relu(x, 0.2) if self.activation == "leaky" else torch.tanh(x)

    @torch.no_grad()
    def load(self, slot: int, g: torch.Generator) -> None:
        self.conv.load(slot, g)
        if self.scale is not None:
            c = self.conv.cout
            self.scale[slot * c:(slot + 1) * c] = 1
            self.shift[slot * c:(slot + 1) * c] = 0

    @torch.no_grad()
    def select(self, keep: torch.Tensor) -> None:
        n = self.conv.n
        self.conv.select(keep)
        if self.scale is not None:
            self.scale = nn.Parameter(self.scale.view(n, -1)[keep].reshape(-1))
            self.shift = nn.Parameter(self.shift.view(n, -1)[keep].reshape(-1))


def _join(n: int, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Each network's channels of ``a`` then of ``b``: ``(1, n*ca, H, W)``, ``(1, n*cb, H, W)`` →
    ``(1, n*(ca+cb), H, W)``."""
    h, w = a.shape[2:]
    return torch.cat([a.view(1, n, -1, h, w), b.view(1, n, -1, h, w)], 2).view(1, -1, h, w)


class Hourglass(nn.Module):
    """``n`` independent hourglass networks under Eq. 1, one per seed (see the module).

    Parameters
    ----------
    channels: image channels ``C`` (1 or 3).
    seeds: one per network; it fixes the network's weights (drawn layer by layer, as PyTorch
        initialises each layer) and its ``z_noise``.
    depth: levels (0: :func:`auto_depth` of the image, fixed at :meth:`initial_state`).
    width: channels of every level's down and up path; ``skip``: of each skip branch (0: none).
    input_channels: channels of ``z_noise`` (≥ ``C``). norm: ``batch`` or ``none``.
    activation: ``leaky`` (LeakyReLU 0.2) or ``tanh``. epsilon, h_mode, h_leak: Eq. 1.
    """

    def __init__(self, channels: int, seeds: Sequence[int], *, height: int, width_px: int, depth: int = 0,
                 width: int = 64, skip: int = 4, input_channels: int = 32, norm: str = "batch",
                 activation: str = "leaky", epsilon: float = 0.1, h_mode: str = "sum", h_leak: float = 0.9,
                 device=None, dtype=None):
        super().__init__()
        if channels not in (1, 3) or input_channels < channels:
            raise ValueError(f"channels must be 1 or 3 and at most input_channels, got {channels}, {input_channels}")
        self.seeds, self.channels, self.n = [int(s) for s in seeds], channels, len(seeds)
        self.epsilon, self.h_mode, self.h_leak = epsilon, h_mode, h_leak
        self.input_channels = input_channels
        self.depth = depth or auto_depth(height, width_px)
        n, made = self.n, {"n": self.n, "norm": norm, "activation": activation, "device": device, "dtype": dtype}
        cin = input_channels
        self.down1, self.down2, self.skips, self.up1, self.up2 = (nn.ModuleList() for _ in range(5))
        for _ in range(self.depth):
            self.skips.append(_Block(cin, skip, 1, 1, **made) if skip else nn.Identity())
            self.down1.append(_Block(cin, width, 3, 2, **made))
            self.down2.append(_Block(width, width, 3, 1, **made))
            cin = width
        for _ in range(self.depth):
            self.up1.append(_Block(width + skip, width, 3, 1, **made))
            self.up2.append(_Block(width, width, 1, 1, **made))
        self.out = StackedConv(width, channels, 1, False, n, device, dtype)
        self.skip = skip
        for slot, seed in enumerate(self.seeds):
            self.load(slot, seed)

    def blocks(self) -> list[nn.Module]:
        """Every layer with weights, in the order a network's weights are drawn."""
        order = [b for d in range(self.depth) for b in (self.skips[d], self.down1[d], self.down2[d])]
        return [b for b in order + [*self.up1, *self.up2, self.out] if not isinstance(b, nn.Identity)]

    def load(self, slot: int, seed: int) -> None:
        """Network ``slot`` anew with the weights of ``seed`` (one generator, layer by layer)."""
        g = torch.Generator().manual_seed(int(seed))
        for block in self.blocks():
            block.load(slot, g)
        self.seeds[slot] = int(seed)

    def select(self, keep: torch.Tensor) -> None:
        for block in self.blocks():
            block.select(keep.to(self.out.weight.device))
        self.seeds = [self.seeds[int(i)] for i in keep]
        self.n = len(keep)

    def z_noise(self, seed: int, height: int, width: int, z_noise_std: float) -> torch.Tensor:
        """One network's ``z_noise`` ``(input_channels, H, W)``, uniform in [0, z_noise_std)
        (DIP's input), drawn from ``seed`` + 2³² in float64."""
        z = torch.rand((self.input_channels, height, width), dtype=torch.float64,
                       generator=torch.Generator().manual_seed(seed + 2**32)) * z_noise_std
        return z.to(self.out.weight.device, self.out.weight.dtype)

    def initial_state(self, height: int, width: int, z_noise_std: float) -> State:
        z = torch.cat([self.z_noise(s, height, width, z_noise_std) for s in self.seeds])[None]
        h, w = height, width
        for _ in range(self.depth):
            h, w = -(-h // 2), -(-w // 2)
        f = z.new_zeros((1, self.n * self.channels, height, width))
        return State(z, f, z.new_zeros((1, self.n * self.down2[-1].conv.cout, h, w)))

    def mix(self, z_noise: torch.Tensor, f: torch.Tensor, epsilon: float) -> torch.Tensor:
        """Eq. 1's input: the previous output mixed into the first ``C`` channels of each network's noise."""
        n, c, h, w = self.n, self.channels, *z_noise.shape[2:]
        z = z_noise.view(1, n, self.input_channels, h, w)
        mixed = z[:, :, :c] * (1 - epsilon) + f.view(1, n, c, h, w) * epsilon
        return torch.cat([mixed, z[:, :, c:]], 2).view(1, -1, h, w)

    def encode(self, z: torch.Tensor) -> tuple[torch.Tensor, list]:
        """U: the down path; returns the deepest features and, per level, its size and skip branch."""
        levels = []
        for d in range(self.depth):
            levels.append((z.shape[2:], self.skips[d](z) if self.skip else None))
            z = self.down2[d](self.down1[d](z))
        return z, levels

    def decode(self, h: torch.Tensor, levels: list) -> torch.Tensor:
        """V: the up path from ``h``, joined by the skip branches; before the final tanh."""
        x = h
        for d in reversed(range(self.depth)):
            size, skip = levels[d]
            x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
            if skip is not None:
                x = _join(self.n, x, skip)
            x = self.up2[d](self.up1[d](x))
        return self.out(x)

    def forward(self, state: State) -> tuple[torch.Tensor, torch.Tensor]:
        """Time step ``t = state.t + 1`` of Eq. 1 (:func:`rdip.method.model.eq1`)."""
        return eq1(self, state)


def footprint(height: int, width: int, channels: int, depth: int = 0, width_ch: int = 64, skip: int = 4,
              input_channels: int = 32) -> dict:
    """Element counts of one hourglass on a ``height×width×channels`` target (analytic, like
    :func:`rdip.method.model.footprint`): ``products`` (the forward pass's multiply-adds),
    ``activations`` (every block's output) and ``parameters``."""
    depth = depth or auto_depth(height, width)
    counts = {"products": 0, "activations": 0, "parameters": 0}

    def conv(cin, cout, k, h, w):
        counts["products"] += cin * cout * k * k * h * w
        counts["activations"] += 2 * cout * h * w  # the convolution's output and the normalised one
        counts["parameters"] += cin * cout * k * k + 3 * cout

    h, w, cin, sizes = height, width, input_channels, []
    for _ in range(depth):
        sizes.append((h, w))
        if skip:
            conv(cin, skip, 1, h, w)
        h, w = -(-h // 2), -(-w // 2)
        conv(cin, width_ch, 3, h, w)
        conv(width_ch, width_ch, 3, h, w)
        cin = width_ch
    for h, w in reversed(sizes):
        conv(width_ch + skip, width_ch, 3, h, w)
        conv(width_ch, width_ch, 1, h, w)
    conv(width_ch, channels, 1, height, width)
    return counts


def flops_per_iteration(height: int, width: int, channels: int = 3, **shape) -> float:
    """Analytic FLOP of one iteration (forward + backward ≈ 3× the forward's 2 FLOP a product)."""
    return 3.0 * 2.0 * footprint(height, width, channels, **shape)["products"]
