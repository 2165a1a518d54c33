"""The fitting loop: one engine that fits N independent networks in one pass (Eq. 1, §III).

:func:`fit_many` is the engine; :func:`fit` and :func:`denoise` are its one-image forms.
Networks whose padded targets share a shape and whose configurations differ only in seed and
padding mode run as one group, ``config.chunk`` networks at a time, as one stacked
:class:`~rdip.model.RecurrentDIP` (grouped convolutions). The loss of the stack is the sum of the
networks' own losses, and both optimisers (SGD, Adam) update each weight element by element, so
network ``i`` follows exactly the trajectory it would follow alone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..config import PRESETS, RANGES, FitConfig
from ..images.metrics import scores
from ..method.model import MIN_SIZE, RecurrentDIP
from ..images.noise import check_sigma, noise_sigma
from ..method.padding import crop, pad
from ..method.tiling import blend, split


@dataclass
class Progress:
    """What a callback sees after each iteration of a group of ``n`` networks.

    ``t`` (1-based) of ``iters``; ``loss``: tensor ``(n,)`` on the fitting device (call
    ``.tolist()`` to read it; that waits for the device); ``metrics``: per network, the
    scores of this iteration when they were computed (``eval_every``) and a clean image was given,
    else ``None``; ``indices``: per network, the position of its image in the caller's list (the
    tiles of one image, ``FitConfig.tile``, repeat it);
    ``output``: the networks' outputs f(z_t), ``(1, n*C, H, W)`` on the fitting device, padded
    targets' shape, in the fitting range (``FitConfig.range``; network ``i`` owns channels
    ``i*C … (i+1)*C - 1``); do not modify it.
    """

    t: int
    iters: int
    loss: torch.Tensor
    metrics: list[dict] | None
    indices: list[int]
    output: torch.Tensor | None = None


#: A callback returns True to stop the group early.
Callback = Callable[[Progress], "bool | None"]


@dataclass
class FitResult:
    """The outcome of one fit.

    ``image``: the denoised image, the input's shape, float64 clipped to [0, 1].
    ``loss``: per iteration, in the fitting range's units (``FitConfig.range``: a squared error in
    [-1, 1] is 4× the same error in [0, 1]). ``history``: ``{"iter", "ssim_full", "ssim_centre", "psnr"}`` rows
    every ``eval_every`` iterations (empty without a clean reference). ``metrics``: final scores
    (empty without a clean reference). ``seconds``: this fit's share of its group's wall time.
    ``iters_run``: iterations this network was trained; ``stopped_at``: with early stopping
    (``config.stop``), the iteration whose output ``image`` is, else None.
    """

    image: np.ndarray
    config: FitConfig
    loss: np.ndarray
    history: list[dict] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    iters_run: int = 0
    seconds: float = 0.0
    device: str = "cpu"
    stopped_at: int | None = None

    def to_dict(self) -> dict:
        """Everything but the image, JSON-ready."""
        return {"config": self.config.to_dict(), "metrics": self.metrics, "history": self.history,
                "loss_first": float(self.loss[0]), "loss_last": float(self.loss[-1]),
                "iters_run": self.iters_run, "stopped_at": self.stopped_at, "seconds": self.seconds,
                "device": self.device}


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without CUDA → an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("CUDA is not available on this machine: use device 'cpu' or 'auto'")
    return torch.device(name)


def auto_chunk(device: torch.device) -> int:
    """Networks per pass when ``chunk=0``: grouped convolutions pay on a GPU (launch-bound), while
    on 2 CPU cores stacks of 2 were fastest and stacks of 15 slower than one at a time."""
    return 256 if device.type == "cuda" else 2


#: Integer sample types and the value that stands for white (scikit-image's ``img_as_float``).
INTEGER_WHITE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
#: Float images may stray this far outside [0, 1] (noise does: 3σ of σ = 0.3) in all but 0.1% of
#: their values; 0-255 data lies far beyond.
FLOAT_MARGIN = 1.0


def check_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Validate an image array and return it as float64 ``(H, W, C)`` in [0, 1] units, C in {1, 3}.

    ``uint8`` and ``uint16`` arrays are scaled by their type's range (255, 65535); floats are
    taken as they are and must lie in [0, 1] but for noise: a float image whose values run more
    than :data:`FLOAT_MARGIN` outside [0, 1] (beyond its 0.1% and 99.9% quantiles) is refused,
    as are other integer types, booleans, NaN and infinity.
    """
    a = np.asarray(image)
    if a.dtype in INTEGER_WHITE:
        a = a / INTEGER_WHITE[a.dtype]
    elif not np.issubdtype(a.dtype, np.floating) or a.dtype.itemsize > 8:
        raise TypeError(f"{name} has samples of type {a.dtype}: give floats in [0, 1], or uint8 "
                        "(0-255) or uint16 (0-65535), which are scaled by their type's range")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3):
        raise ValueError(f"{name} must be (H, W) grey or (H, W, 3) colour, got shape {np.shape(image)}")
    if min(a.shape[:2]) < MIN_SIZE:
        raise ValueError(f"{name} is {a.shape[0]}×{a.shape[1]}: the network needs at least "
                         f"{MIN_SIZE}×{MIN_SIZE} pixels")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if a.min() < -FLOAT_MARGIN or a.max() > 1 + FLOAT_MARGIN:
        low, high = np.quantile(a, [0.001, 0.999])
        if low < -FLOAT_MARGIN or high > 1 + FLOAT_MARGIN:
            raise ValueError(f"{name} has values from {a.min():.4g} to {a.max():.4g}: rdip expects "
                             "floats in [0, 1] (noise may take a few outside); divide 0-255 data by "
                             "255, or pass uint8/uint16 arrays, which are scaled by their type's range")
    return a


def check_padding(height: int, width: int, config: FitConfig, name: str = "the image") -> None:
    """Refuse a pad width larger than the ``height×width`` target it pads (it would only cost)."""
    if config.padding != "none" and config.pad_width > max(height, width):
        raise ValueError(f"{name}: pad width {config.pad_width} exceeds its {height}×{width} pixels; "
                         f"pad by at most {max(height, width)} (the paper pads 32×32 images by 4)")


_SHARED_EXCEPT = ("seed", "padding", "preset")


def to_range(image: np.ndarray, name: str) -> np.ndarray:
    """An image in [0, 1] moved to the fitting range ``name`` (:data:`rdip.config.RANGES`)."""
    low, high = RANGES[name]
    return image * (high - low) + low


def from_range(image: np.ndarray, name: str) -> np.ndarray:
    """Undo :func:`to_range`: an image in the fitting range ``name`` back to [0, 1] units."""
    low, high = RANGES[name]
    return (image - low) / (high - low)


def _group_key(cfg: FitConfig, shape: tuple) -> tuple:
    d = cfg.to_dict()
    return (shape,) + tuple((k, v) for k, v in sorted(d.items()) if k not in _SHARED_EXCEPT)


def fit_many(noisy: Sequence[np.ndarray], config: FitConfig | Sequence[FitConfig] | None = None, *,
             clean: Sequence[np.ndarray | None] | None = None,
             sigma: float | Sequence[float | None] | None = None,
             callback: Callback | None = None) -> list[FitResult]:
    """Fit one network to each noisy image, many at once; return one :class:`FitResult` each.

    Parameters
    ----------
    noisy:
        Images ``(H, W)`` or ``(H, W, 3)``, floats nominally in [0, 1], each at least 25×25.
    config:
        One :class:`FitConfig` for all, or one per image (e.g. other seeds or paddings).
        Default: the ``default`` preset.
    clean:
        Optional clean references (one per image, or None) for SSIM/PSNR during and after fitting.
    sigma:
        The noise's standard deviation (one for all, or one per image; None = estimated by
        :func:`rdip.noise.noise_sigma`); used only by the ``noise`` stopping rule.
    callback:
        Called after every iteration of every group with a :class:`Progress`; return True to stop
        that group.

    An image larger than its ``config.tile`` is fitted as overlapping tiles, each a network of
    its own (seed ``config.seed + k``), and blended back (:mod:`rdip.tiling`); its result has the
    blend's scores and no ``history``.
    """
    images = [check_image(x, f"image {i}") for i, x in enumerate(noisy)]
    if config is None:
        config = PRESETS["default"]
    if isinstance(config, FitConfig):
        configs = [config] * len(images)
    elif isinstance(config, (list, tuple)) and all(isinstance(c, FitConfig) for c in config):
        configs = list(config)
    else:
        raise TypeError(f"config must be a FitConfig (e.g. rdip.preset('default')) or a list of "
                        f"them, got {type(config).__name__}")
    cleans = list(clean) if clean is not None else [None] * len(images)
    if len(configs) != len(images) or len(cleans) != len(images):
        raise ValueError("give one config (or one for each image) and one clean image per image")
    cleans = [None if c is None else check_image(c, f"clean image {i}") for i, c in enumerate(cleans)]
    sigmas = [sigma] * len(images) if sigma is None or np.ndim(sigma) == 0 else list(sigma)
    if len(sigmas) != len(images):
        raise ValueError("give one sigma (or one for each image)")
    sigmas = [None if s is None else check_sigma(s) for s in sigmas]
    sigmas = [noise_sigma(x, s) if cfg.stop == "noise" else s  # one σ per image, also when tiled
              for x, s, cfg in zip(images, sigmas, configs)]
    for i, (x, c) in enumerate(zip(images, cleans)):
        if c is not None and c.shape != x.shape:
            raise ValueError(f"clean image {i} has shape {c.shape[:2]}, the noisy one {x.shape[:2]}")

    # Jobs: one network each, an image or a tile of an image larger than its config's tile.
    jobs: list[tuple[int, np.ndarray, np.ndarray | None, FitConfig]] = []
    tiled: dict[int, list[tuple[int, int]]] = {}  # image → tile positions, in job order
    for i, (x, c, cfg) in enumerate(zip(images, cleans, configs)):
        if cfg.tile and max(x.shape[:2]) > cfg.tile:
            parts, tiled[i] = split(x, cfg.tile, cfg.tile_overlap)  # tiles are scored only when blended
            jobs += [(i, t, None, cfg.replace(seed=cfg.seed + k, tile=0)) for k, t in enumerate(parts)]
        else:
            jobs.append((i, x, c, cfg))

    for i, x, _, cfg in jobs:
        check_padding(x.shape[0], x.shape[1], cfg, f"image {i}{' (a tile)' if i in tiled else ''}")
    targets = [pad(to_range(x, cfg.range), cfg.pad_width, cfg.padding) for _, x, _, cfg in jobs]
    groups: dict[tuple, list[int]] = {}
    for j, (tgt, (_, _, _, cfg)) in enumerate(zip(targets, jobs)):
        groups.setdefault(_group_key(cfg, tgt.shape), []).append(j)

    fitted: list[list[FitResult]] = [[] for _ in images]  # per image: its result, or its tiles'
    for members in groups.values():
        cfg = jobs[members[0]][3]
        chunk = cfg.chunk or auto_chunk(resolve_device(cfg.device))
        for start in range(0, len(members), chunk):
            part = members[start:start + chunk]
            done = _fit_group([targets[j] for j in part], [jobs[j][3] for j in part],
                              [jobs[j][2] for j in part], [sigmas[jobs[j][0]] for j in part],
                              [jobs[j][0] for j in part], callback)
            for j, r in zip(part, done):
                fitted[jobs[j][0]].append(r)  # a group holds each image's tiles in job order

    results = []
    for i, mine in enumerate(fitted):
        r = mine[0] if i not in tiled else _blended(mine, tiled[i], images[i].shape, configs[i], cleans[i])
        if np.ndim(noisy[i]) == 2:  # grey in, grey out
            r.image = r.image[:, :, 0]
        results.append(r)
    return results


def _blended(parts: list[FitResult], where, shape, config: FitConfig, clean) -> FitResult:
    """One image's result from its tiles' results: the blended image, scored against ``clean``;
    the tiles' mean loss over the iterations all of them ran; the most iterations any ran; the
    tiles' summed fitting time; no ``history`` (tiles are not scored one by one)."""
    image = blend([r.image for r in parts], where, shape, config.tile_overlap)
    common = min(len(r.loss) for r in parts)  # with early stopping, tiles stop on their own
    return FitResult(image=image, config=config, loss=np.mean([r.loss[:common] for r in parts], axis=0),
                     metrics=scores(image, clean) if clean is not None else {},
                     iters_run=max(r.iters_run for r in parts),
                     seconds=sum(r.seconds for r in parts), device=parts[0].device)


def _fit_group(targets, configs, cleans, sigmas, indices, callback) -> list[FitResult]:
    """Fit ``n`` networks to same-shape padded targets ``(H, W, C)`` in one stacked model."""
    cfg = configs[0]
    n, (height, width, channels) = len(targets), targets[0].shape
    device = resolve_device(cfg.device)
    dtype = torch.float64 if cfg.dtype == "float64" else torch.float32
    autocast = cfg.dtype == "bfloat16"
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes for T iterations: autotune once
    started = time.perf_counter()

    model = RecurrentDIP(channels, [c.seed for c in configs]).to(device=device, dtype=dtype)
    # (1, n*C, H, W): network i owns channels i*C … (i+1)*C - 1.
    target = torch.cat([torch.from_numpy(t.transpose(2, 0, 1).copy()) for t in targets])
    target = target[None].to(device=device, dtype=dtype)
    z_noise = torch.cat([
        torch.randn((channels, height, width), generator=torch.Generator().manual_seed(c.seed + 2**32),
                    dtype=torch.float64) * c.z_noise_std for c in configs])[None].to(device, dtype)
    f = torch.zeros_like(target)  # f(z_0): no output before the first step
    h = torch.zeros(model.hidden_shape(height, width), device=device, dtype=dtype)
    if cfg.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)

    losses = torch.zeros((cfg.iters, n), device=device, dtype=torch.float32)
    average = torch.zeros_like(target) if cfg.ema > 0 else None
    history: list[list[dict]] = [[] for _ in range(n)]

    def estimate() -> torch.Tensor:
        if average is None:
            return f
        return average / (1 - cfg.ema ** t)  # bias-corrected exponential average

    def to_images(x: torch.Tensor) -> list[np.ndarray]:
        arr = x.detach().to("cpu", torch.float64).numpy().reshape(n, channels, height, width)
        out = []
        for a, c in zip(arr, configs):
            img = np.clip(from_range(a.transpose(1, 2, 0), c.range), 0.0, 1.0)
            out.append(crop(img, c.pad_width, c.padding))
        return out

    stopper = _Stopper(cfg, sigmas, target.shape, device, dtype) if cfg.stop != "none" else None
    t = 0
    for t in range(1, cfg.iters + 1):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            out, h_new = model.step(z_noise, f, h, cfg.epsilon, cfg.h_mode, t, cfg.h_leak)
        err = (out.to(dtype) - target).square().reshape(n, -1)
        per_net = err.sum(1) if cfg.loss_reduction == "sum" else err.mean(1)
        opt.zero_grad(set_to_none=True)
        per_net.sum().backward()
        opt.step()
        f, h = out.detach().to(dtype), h_new.detach().to(dtype)
        losses[t - 1] = per_net.detach()
        if average is not None:
            average.mul_(cfg.ema).add_(f, alpha=1 - cfg.ema)
        active = [True] * n if stopper is None else (~stopper.done).tolist()
        all_stopped = stopper is not None and stopper.update(t, f, estimate(), err.detach().mean(1))
        metrics = None
        if (not all_stopped and any(c is not None for c in cleans)
                and (t % cfg.eval_every == 0 or t == cfg.iters)):
            metrics = [None if c is None or not a else {"iter": t, **scores(img, c)}
                       for img, c, a in zip(to_images(estimate()), cleans, active)]
            for hist, m in zip(history, metrics):
                if m is not None:
                    hist.append(m)
        if callback is not None and callback(Progress(t, cfg.iters, per_net.detach(), metrics, indices, f)):
            break
        if all_stopped:  # after the callback: it sees the last iteration too
            break

    kept = estimate() if stopper is None else stopper.result(estimate())
    finite = torch.isfinite(kept.reshape(n, -1)).all(1).cpu()
    if not finite.all():
        raise FloatingPointError(
            f"the fit diverged: {int((~finite).sum())} of {n} networks have a NaN or infinite output "
            f"after {t} iterations (lr {cfg.lr}, optimizer {cfg.optimizer}); lower the learning rate")
    images = to_images(kept)
    seconds = (time.perf_counter() - started) / n
    loss_np = losses[:t].cpu().numpy()
    results = []
    for i, (img, c, clean) in enumerate(zip(images, configs, cleans)):
        stopped = None if stopper is None or not stopper.done[i] else int(stopper.chosen[i])
        ran = t if stopped is None else int(stopper.ran[i])
        final = {}
        if clean is not None:
            history[i] = [row for row in history[i] if row["iter"] <= ran]
            if stopped is not None:  # the kept output is not the last one of the trajectory
                final = scores(img, clean)
            else:
                if not (history[i] and history[i][-1]["iter"] == t):  # stopped between evaluations
                    history[i].append({"iter": t, **scores(img, clean)})
                final = {k: v for k, v in history[i][-1].items() if k != "iter"}
        results.append(FitResult(image=img, config=c, loss=loss_np[:ran, i], history=history[i],
                                 metrics=final, iters_run=ran, seconds=seconds, device=str(device),
                                 stopped_at=stopped))
    return results


class _Stopper:
    """Early stopping without a clean image, per network of a stack (``FitConfig.stop``).

    ``noise``: a network stops at the first iteration whose mean squared error to its (padded)
    noisy target is at most σ² and keeps that iteration's output. ``wmv`` (ES-WMV, Wang et al.
    2021, "Early stopping for deep image prior"): the variance over the last ``stop_window``
    outputs f(z_t), per pixel, averaged; a network stops once that variance has not reached a new
    minimum for ``stop_patience`` iterations, and keeps the output (or its running average, with
    ``ema``) of the iteration of the minimum. Stopped networks train on with the stack (they are
    independent of the others), but their kept outputs no longer change; the stack stops when all
    have stopped.
    """

    def __init__(self, cfg: FitConfig, sigmas, shape, device, dtype):
        n = len(sigmas)
        self.cfg, self.n = cfg, n
        self.done = torch.zeros(n, dtype=torch.bool)
        self.ran = torch.full((n,), cfg.iters)
        self.chosen = torch.full((n,), cfg.iters)
        self.kept = torch.zeros(shape, device=device, dtype=dtype).reshape(n, -1)
        if cfg.stop == "noise":  # σ is in [0, 1] units, the error in the fitting range's
            low, high = RANGES[cfg.range]
            self.threshold = torch.tensor([(s * (high - low)) ** 2 for s in sigmas], device=device,
                                          dtype=dtype)
        else:
            self.ring = torch.zeros((cfg.stop_window,) + self.kept.shape, device=device, dtype=dtype)
            self.best = torch.full((n,), float("inf"), dtype=torch.float64)
            self.best_t = torch.zeros(n, dtype=torch.long)
            self.candidate = torch.zeros_like(self.kept)

    def update(self, t: int, f: torch.Tensor, estimate: torch.Tensor, mse: torch.Tensor) -> bool:
        """Take iteration ``t``'s outputs; return True when every network has stopped."""
        est = estimate.reshape(self.n, -1)
        if self.cfg.stop == "noise":
            newly = (mse <= self.threshold).cpu() & ~self.done
            self.chosen[newly] = t
            self._keep(newly, est, t)
        else:
            window = self.cfg.stop_window
            self.ring[(t - 1) % window] = f.reshape(self.n, -1)
            if t < window:
                return False
            var = self.ring.var(0, unbiased=False).mean(1).to("cpu", torch.float64)
            better = (var < self.best) & ~self.done
            self.best = torch.where(better, var, self.best)
            self.best_t[better] = t
            if better.any():
                self.candidate[better.to(est.device)] = est[better.to(est.device)]
            newly = (t - self.best_t >= self.cfg.stop_patience) & ~self.done
            self.chosen[newly] = self.best_t[newly]
            self._keep(newly, self.candidate, t)
        return bool(self.done.all())

    def _keep(self, newly: torch.Tensor, source: torch.Tensor, t: int) -> None:
        """Networks ``newly`` stop at iteration ``t`` and keep their rows of ``source``."""
        if newly.any():
            self.kept[newly.to(source.device)] = source[newly.to(source.device)]
        self.ran[newly] = t
        self.done |= newly

    def result(self, estimate: torch.Tensor) -> torch.Tensor:
        """The kept outputs of stopped networks, the current ``estimate`` of the others."""
        est = estimate.reshape(self.n, -1)
        out = torch.where(self.done.to(est.device)[:, None], self.kept, est)
        return out.reshape(estimate.shape)


def fit(noisy: np.ndarray, config: FitConfig | None = None, *, clean: np.ndarray | None = None,
        sigma: float | None = None, callback: Callback | None = None) -> FitResult:
    """Fit one network to one noisy image (:func:`fit_many` with one image)."""
    return fit_many([noisy], config, clean=None if clean is None else [clean], sigma=sigma,
                    callback=callback)[0]


def denoise(noisy: np.ndarray, config: FitConfig | str | None = None, *, sigma: float | None = None,
            **changes) -> np.ndarray:
    """Denoise one image with the recurrent deep image prior; arrays in, array out.

    Parameters
    ----------
    noisy:
        ``(H, W)`` or ``(H, W, 3)`` floats nominally in [0, 1], at least 25×25.
    config:
        A :class:`FitConfig` or a preset name (``default``, ``paper``, ``paper-literal``).
    sigma:
        The noise's standard deviation, for the ``noise`` stopping rule (None = estimated).
    **changes:
        Fields of :class:`FitConfig` to override, e.g. ``padding="edge", seed=1``.

    Returns
    -------
    The denoised image, same shape, float64 in [0, 1].
    """
    from ..config import preset

    if config is None or isinstance(config, str):
        config = preset(config or "default", **changes)
    elif not isinstance(config, FitConfig):
        raise TypeError(f"config must be a preset name or a FitConfig, got {type(config).__name__}")
    elif changes:
        config = config.replace(**changes)
    return fit(noisy, config, sigma=sigma).image
