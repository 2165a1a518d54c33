"""One typed configuration for a fit, shared by the API, the CLI and the experiments.

Every choice the paper leaves open (docs/design-notes.md) is a field here, and the whole object is saved
with every result (:meth:`FitConfig.to_dict`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

OPTIMIZERS = ("sgd", "adam")
REDUCTIONS = ("sum", "mean")
H_MODES = ("sum", "mean", "leaky", "none")
DTYPES = ("float32", "float64", "bfloat16")
STOPS = ("none", "wmv", "noise")
CAPTURES = ("none", "graph")
#: The networks (``FitConfig.network``): Table I's (:mod:`rdip.method.model`) and the multi-scale
#: hourglass (:mod:`rdip.method.hourglass`), each under Eq. 1.
NETWORKS = ("table1", "hourglass")
NET_NORMS = ("batch", "none")
NET_ACTIVATIONS = ("leaky", "tanh")
#: How the stacked layers compute (:data:`rdip.method.model.FORMULATIONS`), ``auto``: per device.
FORMULATIONS = ("auto", "grouped", "bmm")
#: Padding modes of the target (``FitConfig.padding``); :data:`rdip.method.padding.MODES` says how
#: each pads.
PADDINGS = ("none", "zero", "edge", "reflect", "circular", "context")
#: The smallest image side the network takes: Table I's encoder shrinks a side by the sum of its
#: kernels' sizes less one (:data:`rdip.method.model.ENCODER_LAYERS`; ``tests/test_model.py``
#: checks the two agree), so a 25×25 image gives a 1×1 hidden state.
MIN_SIZE = 25
#: The tile size of memory tiling: an image too large to fit whole in the memory, with a
#: configuration that has no tiles of its own (``tile = 0``), is fitted as tiles of this size
#: with the configuration's ``tile_overlap`` (:func:`rdip.method.planning.plan`). A 64×64
#: network costs ≈25 GFLOP per iteration and ≈54 MB. Unpadded fits are worse within ≈4 pixels
#: of their borders (mean absolute error 0.13 at the border against 0.07 inside), so an overlap
#: of 8 leaves every overlap pixel at least 4 pixels inside one of the two tiles. Measured (2 busy
#: CPU cores, preset ``default`` cut to T = 200, 96×96 crop of Set12 image 01, σ = 0.1; noisy
#: SSIM 0.586): untiled 0.578, 64×64 tiles with overlap 16 0.600, 48×48 tiles 0.609.
MEMORY_TILE = 64


def check_tiles(tile: int, overlap: int, padding: int = 0) -> None:
    """The rule for tiles: ``tile`` 0 (the whole image) or, with the ``padding`` the target gets
    on each side, at least the network's minimum, and ``0 <= overlap < tile`` when tiling (the
    overlap is kept for later tiling when ``tile`` is 0)."""
    if not (tile == 0 or tile + 2 * padding >= MIN_SIZE):
        more = f" with its padding of {padding} on each side" if padding else ""
        raise ValueError(f"tile must be 0 (whole image) or, {more or 'as it is'}, at least the network's "
                         f"minimum of {MIN_SIZE} pixels, got {tile}")
    if not (overlap >= 0 and (tile == 0 or overlap < tile)):
        raise ValueError(f"tile_overlap must be >= 0 and smaller than the tile, got {overlap} "
                         f"(tile {tile})")


#: A field's annotation → the Python types it accepts and their name in messages.
_TYPES = {"int": (int, "an integer"), "float": ((int, float), "a number"), "str": (str, "a string")}
#: The most iterations a fit may ask for (a bound on the loss history it keeps).
MAX_ITERS = 1_000_000
#: The most fits of one image an ensemble may average (``FitConfig.ensemble``), and the seed step
#: between them (a tiled fit seeds its tiles ``seed + k``: the step keeps every network's seed its own).
MAX_ENSEMBLE = 64
ENSEMBLE_SEED_STEP = 1_000_000
#: The largest seed a configuration takes: room above it for the seeds derived from it (tile
#: ``k``: ``seed + k``; ensemble fit ``m``: ``seed + ENSEMBLE_SEED_STEP × m``; ``z_noise``:
#: ``seed + 2³²``) below the 2⁶⁴ that torch's generators take.
MAX_SEED = 2**62
#: The largest seed the command line takes (``--seed``, ``--seeds``): rdip reproduce and rdip
#: compare derive other seeds from it (``image + 10000 × seed``, ``seed × 2³² + …``).
SEED_LIMIT = 2**32 - 1
#: Where the network fits the image (``FitConfig.range``): name → (low, high) of that range.
RANGES = {"unit": (0.0, 1.0), "symmetric": (-1.0, 1.0)}


def range_interval(name: str, margin: float = 0.0) -> tuple[float, float]:
    """Where [0, 1] lands when fitted in range ``name`` with ``margin`` (``FitConfig.margin``):
    the range's ``(low, high)`` moved inwards by ``margin`` × its half-width at each end
    (``symmetric`` with margin 0.1: (-0.9, 0.9))."""
    low, high = RANGES[name]
    inset = margin * (high - low) / 2
    return low + inset, high - inset


def range_width(name: str, margin: float = 0.0) -> float:
    """The width of the fitting interval (:func:`range_interval`): a σ (or an error's root) in
    [0, 1] units times this is the same σ in that range's units (2 for ``symmetric``)."""
    low, high = range_interval(name, margin)
    return high - low


@dataclass(frozen=True)
class FitConfig:
    """How to fit one recurrent deep image prior to one noisy image.

    Attributes
    ----------
    iters: T, the number of time steps = optimisation iterations (paper: 2000).
    optimizer: ``sgd`` (the paper's "stochastic gradient descent") or ``adam``.
    lr: learning rate (paper: 0.001). momentum: SGD momentum (0 = plain SGD).
    loss_reduction: ``sum`` (squared Frobenius norm, as written) or ``mean`` (PyTorch's MSELoss).
    epsilon: ε of Eq. 1 (paper: 0.1). z_noise_std: standard deviation of ``z_noise`` (not given).
    h_mode, h_leak: how the hidden state accumulates (:meth:`rdip.method.model.RecurrentDIP`).
    padding, pad_width: padding of the target (paper: none, edge, reflect; width 4). ``context``:
    the paper's padding with true data: a tile's target is the tile with ``pad_width`` pixels of
    the image around it (reflected only where the tile meets the image's own border); only the
    tile is kept and blended. An image fitted whole is reflect-padded.
    ema: weight of an exponential average of the output (0 = report the last output).
    seed: seeds the network's weights and ``z_noise`` (not the noise of the image).
    device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``. dtype: ``float32`` or ``float64``;
    ``bfloat16`` runs the network under autocast (weights and optimiser stay float32).
    eval_every: with a clean reference, compute SSIM/PSNR every this many iterations.
    chunk: slots of a stack, the networks fitted in one batched pass (bounds memory); 0 =
    automatic (:func:`rdip.method.devices.auto_chunk`): 2 on the CPU (measured fastest on 2
    cores, docs/performance.md); on CUDA as many networks as fit in half the free memory.
    sync_every: iterations between two looks of the engine at a stack (finished networks out,
    waiting ones in, scores, progress); 0 = automatic: 1 on the CPU, 10 on CUDA. A finished network
    computes at most ``sync_every - 1`` iterations too many; results do not depend on it.
    capture: ``none`` (eager) or ``graph``: on CUDA the step is captured once per stack size as a
    CUDA graph and replayed (:class:`rdip.method.slots.Replay`); results differ by rounding only.
    formulation: how the stacked layers compute: ``grouped`` (grouped convolutions), ``bmm``
    (patches times weights as one batched matrix product) or ``auto`` (the faster one measured
    for the device, :func:`rdip.method.devices.formulation_for`); results differ by rounding only.
    stop: early stopping without a clean image (:func:`rdip.method.engine.fit_many`): ``none`` (run all
    ``iters``), ``wmv`` (ES-WMV, Wang et al. 2021: stop when the variance of the last
    ``stop_window`` outputs has not reached a new minimum for ``stop_patience`` iterations and
    return the output at that minimum) or ``noise`` (stop when the mean squared error to the
    noisy image falls to ``stop_ratio`` × σ², σ given or estimated; Morozov's discrepancy
    principle at ``stop_ratio`` 1).
    tile, tile_overlap: fit an image larger than ``tile`` pixels (either side) as overlapping
    ``tile×tile`` tiles, each its own network (seed ``seed + k`` for tile ``k``), blended back
    (:mod:`rdip.method.tiling`); 0 = fit the whole image as one network. Part of the method, not only a
    memory bound: the network denoises 32×32 tiles of photographs where it fails on whole 64×64
    crops (docs/comparison.md).
    range: where the network fits the image, inside the fit only (images given and returned stay
    in [0, 1]): ``unit`` fits the image ``x`` itself; ``symmetric`` fits ``2x − 1`` in [-1, 1],
    the range of the decoder's final tanh, and returns ``(f + 1) / 2``. Padding is applied in
    the fitting range (``zero`` pads mid-grey when ``symmetric``).
    ensemble: fit each image this many times (seeds ``seed + ENSEMBLE_SEED_STEP × k``; a tiled
    image's fits on grids shifted by ``k/ensemble`` of the tile step, :func:`rdip.method.tiling.grids`)
    and return the mean of the fits: less of the fits' own noise and no tile grid, at
    ``ensemble`` times the cost.
    margin: fit [0, 1] inside the range, moved inwards by ``margin`` × its half-width at each end
    (:func:`range_interval`; ``symmetric`` with 0.1: [-0.9, 0.9]), so that black and white are
    values tanh reaches rather than its asymptotes; σ and the noise rule follow the interval.
    network: ``table1`` (the paper's encoder and decoder, Table I) or ``hourglass`` (the Deep
    Image Prior's multi-scale network with skips, :class:`rdip.method.hourglass.Hourglass`); both
    under Eq. 1 (ε, h_mode). Its fields (hourglass only): ``net_depth`` levels (0: from the image
    size), ``net_width`` channels per level, ``net_skip`` channels per skip branch (0: none),
    ``net_input`` input channels (its ``z_noise`` is uniform in [0, ``z_noise_std``)),
    ``net_norm`` (``batch``, ``none``), ``net_activation`` (``leaky``, ``tanh``).
    """

    iters: int = 2000
    optimizer: str = "adam"
    lr: float = 1e-4
    momentum: float = 0.0
    loss_reduction: str = "mean"
    epsilon: float = 0.1
    z_noise_std: float = 0.1
    h_mode: str = "sum"
    h_leak: float = 0.9
    padding: str = field(default="none", metadata={"kind": "network"})
    pad_width: int = 4
    ema: float = 0.0
    seed: int = field(default=0, metadata={"kind": "network"})
    device: str = field(default="auto", metadata={"kind": "runtime"})
    dtype: str = "float32"
    eval_every: int = 50
    chunk: int = field(default=0, metadata={"kind": "runtime"})
    stop: str = "none"
    stop_window: int = 50
    stop_patience: int = 100
    tile: int = 0
    tile_overlap: int = 8
    range: str = "unit"
    stop_ratio: float = 1.0
    ensemble: int = 1
    margin: float = 0.0
    sync_every: int = field(default=0, metadata={"kind": "runtime"})
    capture: str = field(default="none", metadata={"kind": "runtime"})
    formulation: str = field(default="auto", metadata={"kind": "runtime"})
    network: str = "table1"
    net_depth: int = 0
    net_width: int = 64
    net_skip: int = 4
    net_input: int = 32
    net_norm: str = "batch"
    net_activation: str = "leaky"
    preset: str = field(default="custom", compare=False, metadata={"kind": "name"})

    def __post_init__(self):
        for f in dataclasses.fields(self):  # types first: the checks below compare numbers
            value, (kind, what) = getattr(self, f.name), _TYPES[f.type]
            if not isinstance(value, kind) or isinstance(value, bool):
                raise TypeError(f"{f.name} must be {what}, got {value!r} ({type(value).__name__})")
            if f.type == "float" and not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, got {value}")
        checks = [
            (1 <= self.iters <= MAX_ITERS, f"iters must be between 1 and {MAX_ITERS}, got {self.iters}"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}"),
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}"),
            (self.loss_reduction in REDUCTIONS, f"loss_reduction must be one of {REDUCTIONS}, got {self.loss_reduction!r}"),
            (0 <= self.epsilon <= 1, f"epsilon must be in [0, 1], got {self.epsilon}"),
            (self.z_noise_std >= 0, f"z_noise_std must be >= 0, got {self.z_noise_std}"),
            (self.h_mode in H_MODES, f"h_mode must be one of {H_MODES}, got {self.h_mode!r}"),
            (0 <= self.h_leak <= 1, f"h_leak must be in [0, 1], got {self.h_leak}"),
            (self.padding in PADDINGS, f"unknown padding {self.padding!r}: use one of {', '.join(PADDINGS)}"),
            (self.pad_width >= 0, f"pad width must be >= 0, got {self.pad_width}"),
            (0 <= self.seed <= MAX_SEED, f"seed must be between 0 and 2**62, got {self.seed}"),
            (0 <= self.ema < 1, f"ema must be in [0, 1), got {self.ema}"),
            (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
             f"device must be auto, cpu or cuda, got {self.device!r}"),
            (self.dtype in DTYPES, f"dtype must be one of {DTYPES}, got {self.dtype!r}"),
            (self.eval_every >= 1, f"eval_every must be >= 1, got {self.eval_every}"),
            (self.chunk >= 0, f"chunk must be >= 0 (0 = automatic), got {self.chunk}"),
            (self.range in RANGES, f"range must be one of {tuple(RANGES)}, got {self.range!r}"),
            (self.stop_ratio > 0, f"stop_ratio must be > 0, got {self.stop_ratio}"),
            (0 <= self.margin < 1, f"margin must be in [0, 1), got {self.margin}"),
            (self.sync_every >= 0, f"sync_every must be >= 0 (0 = automatic), got {self.sync_every}"),
            (self.capture in CAPTURES, f"capture must be one of {CAPTURES}, got {self.capture!r}"),
            (self.formulation in FORMULATIONS,
             f"formulation must be one of {FORMULATIONS}, got {self.formulation!r}"),
            (1 <= self.ensemble <= MAX_ENSEMBLE, f"ensemble must be between 1 and {MAX_ENSEMBLE}, got {self.ensemble}"),
            (self.stop in STOPS, f"stop must be one of {STOPS}, got {self.stop!r}"),
            (2 <= self.stop_window <= MAX_ITERS, f"stop_window must be between 2 and {MAX_ITERS}, got {self.stop_window}"),
            (self.stop_patience >= 1, f"stop_patience must be >= 1, got {self.stop_patience}"),
            (self.network in NETWORKS, f"network must be one of {NETWORKS}, got {self.network!r}"),
            (0 <= self.net_depth <= 8, f"net_depth must be between 0 (automatic) and 8, got {self.net_depth}"),
            (1 <= self.net_width <= 1024, f"net_width must be between 1 and 1024, got {self.net_width}"),
            (0 <= self.net_skip <= 1024, f"net_skip must be between 0 and 1024, got {self.net_skip}"),
            (3 <= self.net_input <= 1024, f"net_input must be between 3 and 1024, got {self.net_input}"),
            (self.net_norm in NET_NORMS, f"net_norm must be one of {NET_NORMS}, got {self.net_norm!r}"),
            (self.net_activation in NET_ACTIVATIONS,
             f"net_activation must be one of {NET_ACTIVATIONS}, got {self.net_activation!r}"),
            (self.network == "table1" or self.formulation != "bmm",
             "formulation bmm is for network table1 only; use auto or grouped with the hourglass"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        check_tiles(self.tile, self.tile_overlap, self.pad_width if self.padding != "none" else 0)

    def replace(self, **changes) -> "FitConfig":
        """A copy with ``changes`` applied (validated again); ``preset`` is kept."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def settings(self, per_network: bool = True) -> dict:
        """The fields that decide a fit's result, as a dict: all but where and how it runs
        (``device``, ``chunk``: results differ by rounding only) and the preset's name; with
        ``per_network=False`` also without the fields that may differ between the networks of one
        stack (``seed``, ``padding``). What decides whether a saved result may be reused."""
        skip = {"runtime", "name"} | (set() if per_network else {"network"})
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.metadata.get("kind") not in skip}

    def stack_key(self) -> tuple:
        """Configurations with equal keys (and targets of one shape) can be fitted as one stack of
        networks: all fields but the per-network ones (``seed``, ``padding``) and the name."""
        return tuple((f.name, getattr(self, f.name)) for f in dataclasses.fields(self)
                     if f.metadata.get("kind") not in ("network", "name"))

    @classmethod
    def saved(cls, data: dict, fields) -> dict:
        """A configuration dict saved by an earlier version, with each of ``fields`` it lacks at
        its default: a field added since does not make results saved before it stale."""
        defaults = cls().to_dict()
        return {**{k: defaults[k] for k in fields if k not in data}, **data}

    @classmethod
    def from_dict(cls, data: dict) -> "FitConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown configuration keys: {', '.join(sorted(unknown))}")
        return cls(**data)


#: Named presets (docs/design-notes.md, docs/reproduction.md).
#: - ``paper-literal``: every choice as the paper writes it: plain SGD, lr 0.001, summed squared
#:   error, T = 2000, ε = 0.1, h summed without bound, ``z_noise`` ~ N(0, 1), fitted in [0, 1].
#:   It does not denoise (SSIM ≈ 0.08–0.15 at T = 2000; 0.19–0.33 fitted in [-1, 1]); kept so
#:   anyone can see that.
#: - ``paper``: the reading chosen by the study in tanh's range (docs/reproduction.md: 20
#:   variants, CIFAR-10 test images 0–14, on an H100): the image fitted in [-1, 1] (with σ = 0.1
#:   noise added there), plain SGD at lr 0.01 on the *mean* squared error, and otherwise the
#:   literal reading (h summed, ``z_noise`` ~ N(0, 1), ε = 0.1, T = 2000). It is the variant
#:   closest to Table II's means that shows the paper's pattern; SGD at lr 0.001 with momentum 0.9
#:   scores the same within 0.001. Full run (15 images × 3 seeds, results/paper): full SSIM
#:   0.873 / 0.889 / 0.888 (paper 0.863 / 0.877 / 0.878), centre 0.907 / 0.906 / 0.906 (paper
#:   0.900 / 0.876 / 0.871): padding raises the full image as in the paper, but barely lowers the
#:   centre.
#: - ``paper-unit``: the earlier best reading in [0, 1] (Adam, lr 1e-5, mean squared error,
#:   ``z_noise`` std 0.1, h as the running mean of U's outputs, T = 2000): the paper's pattern,
#:   0.06–0.08 SSIM below its level (results/paper-unit).
#: - ``default``: chosen by the comparison and the quality study (docs/comparison.md §1, §4):
#:   Adam lr 1e-3 in tanh's range [-1, 1], stopped by the noise rule (the mean squared error to
#:   the noisy image reaches σ², σ given or estimated), at most 800 iterations, no output
#:   average, and images larger than 32×32 fitted as 32×32 tiles overlapping by 16, each its own
#:   network. Whole 64×64 photograph crops fit far too slowly at any learning rate tried
#:   (McMaster image 1, σ = 25: SSIM 0.30–0.40 after 400 iterations, noisy 0.66); as 32×32
#:   tiles they denoise. In [-1, 1] the noise rule stops about twice as early as in [0, 1] (σ given) at
#:   the same or better SSIM; an overlap of 16 leaves no tile grid (the seam check,
#:   tests/test_engine.py) and costs nothing more on 64×64 crops (9 tiles either way). Fitted
#:   inside the range, in [-0.9, 0.9] (``margin = 0.1``, since 2026-12-01): in [-1, 1]
#:   saturated pixels sit on tanh's asymptotes and tiles full of them never reached σ²
#:   (McMaster 6 at σ = 15: SSIM 0.415; with the margin 0.807); studies/saturation.toml,
#:   docs/comparison.md §6.1.
#: - ``quality``: ``default`` fitted 4 times on shifted tile grids and averaged
#:   (``ensemble = 4``): better than ``default`` on every image set of the study, at 3× its time
#:   on 32×32 images and 6× on 64×64 crops (a shifted grid has 16 tiles there, the unshifted 9);
#:   inside [-0.9, 0.9] +0.02 to +0.07 SSIM, all 39 images won (docs/comparison.md §6.3).
PRESETS: dict[str, FitConfig] = {
    "paper-literal": FitConfig(iters=2000, optimizer="sgd", lr=1e-3, loss_reduction="sum",
                               z_noise_std=1.0, h_mode="sum", preset="paper-literal"),
    "paper": FitConfig(iters=2000, optimizer="sgd", lr=1e-2, loss_reduction="mean",
                       z_noise_std=1.0, h_mode="sum", range="symmetric", preset="paper"),
    "paper-unit": FitConfig(iters=2000, optimizer="adam", lr=1e-5, loss_reduction="mean",
                            z_noise_std=0.1, h_mode="mean", preset="paper-unit"),
    "default": FitConfig(iters=800, optimizer="adam", lr=1e-3, loss_reduction="mean",
                         z_noise_std=0.1, h_mode="sum", stop="noise", tile=32, tile_overlap=16,
                         range="symmetric", margin=0.1, preset="default"),
}
PRESETS["quality"] = PRESETS["default"].replace(ensemble=4, preset="quality")
#: - ``tiles32``: the per-tile design of ``default`` until 2026-12-08 by name (Table I per 32×32
#:   tile), so that every figure made with it can be made again.
#: - ``hourglass``: one multi-scale hourglass per image (the Deep Image Prior's network under
#:   Eq. 1, ε = 0.1, h summed), Adam lr 0.01, in [-0.9, 0.9], the exponential average of its
#:   outputs (0.99) kept where the fit's squared error to the noisy image reaches 0.8 σ²: the best
#:   of a first screen (studies/hourglass-screen.toml, 13 variants on 8 crops of 64×64 at σ = 25,
#:   docs/hourglass.md), not yet confirmed on the full sets nor chosen as ``default``.
PRESETS["tiles32"] = PRESETS["default"].replace(preset="tiles32")
PRESETS["hourglass"] = PRESETS["default"].replace(network="hourglass", tile=0, lr=1e-2, iters=2000, ema=0.99,
                                                  stop_ratio=0.8, preset="hourglass")


def preset(name: str, **changes) -> FitConfig:
    """The preset ``name`` with ``changes`` applied, e.g. ``preset("paper", padding="edge")``."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: use one of {', '.join(PRESETS)}")
    return PRESETS[name].replace(**changes)
