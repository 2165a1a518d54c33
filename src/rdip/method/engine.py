"""The fitting loop: one engine that fits N independent networks in one pass (Eq. 1, §III).

:func:`fit_many` is the engine; :func:`fit` and :func:`denoise` are its one-image forms.
Networks whose padded targets share a shape and whose configurations differ only in seed and
padding mode (:meth:`FitConfig.stack_key`) run as one stack, ``config.chunk`` networks at a time,
as one :class:`~rdip.method.model.RecurrentDIP` of grouped convolutions. The loss of the stack is
the sum of the networks' own losses, and both optimisers (SGD, Adam) update each weight element by
element, so network ``i`` follows exactly the trajectory it would follow alone.

The pieces: :class:`Stack` holds a stack's model, Eq. 1's state, target and optimiser, and takes
one training step (:meth:`Stack.step`: forward, loss, backward, optimiser step); the stopping rules
(:mod:`.stopping`) say which networks are done and which output each keeps; :func:`_fit_stack` is
the loop over iterations; :mod:`.outcome` assembles the results.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from ..config import ENSEMBLE_SEED_STEP, PRESETS, FitConfig, preset
from ..images.metrics import scores
from ..images.noise import check_sigma, noise_sigma
from . import tensors
from .inputs import check_image, check_padding, from_range, to_range
from .model import RecurrentDIP
from .outcome import Callback, FitResult, Progress, composed_result, stack_results
from .padding import crop, pad
from .stopping import rule_for
from .tiling import grids, split


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


class Stack:
    """``n`` networks fitted together to same-shape padded targets ``(H, W, C)`` (fitting range).

    Holds the model, Eq. 1's :class:`~rdip.method.model.State`, the target ``(1, n*C, H, W)``
    (network ``i`` owns channels ``i*C … (i+1)*C - 1``), the optimiser, the output average
    (``ema``) and the per-iteration losses. :meth:`step` is one iteration, with no host
    synchronisation: the unit a CUDA graph can capture.
    """

    def __init__(self, targets: Sequence[np.ndarray], configs: Sequence[FitConfig]):
        cfg = self.cfg = configs[0]
        self.configs, self.n = list(configs), len(targets)
        height, width, channels = targets[0].shape
        self.device = resolve_device(cfg.device)
        self.dtype = torch.float64 if cfg.dtype == "float64" else torch.float32
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes for T iterations: autotune once
        self.model = RecurrentDIP(channels, [c.seed for c in configs], epsilon=cfg.epsilon,
                                  h_mode=cfg.h_mode, h_leak=cfg.h_leak).to(self.device, self.dtype)
        self.state = self.model.initial_state(height, width, cfg.z_noise_std)
        self.target = torch.cat([torch.from_numpy(t.transpose(2, 0, 1).copy()) for t in targets])
        self.target = self.target[None].to(self.device, self.dtype)
        params = self.model.parameters()
        self.opt = (torch.optim.Adam(params, lr=cfg.lr) if cfg.optimizer == "adam"
                    else torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum))
        self.average = torch.zeros_like(self.target) if cfg.ema > 0 else None
        self.losses = torch.zeros((cfg.iters, self.n), device=self.device, dtype=torch.float32)

    def step(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One iteration: Eq. 1's time step, the squared error to the target, back-propagation
        and the optimiser's step; the state and average move on. Returns each network's loss
        ``(n,)`` (reduced as ``loss_reduction`` says) and mean squared error ``(n,)``."""
        cfg = self.cfg
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.dtype == "bfloat16"):
            out, h_t = self.model(self.state)
        err = (out.to(self.dtype) - self.target).square().reshape(self.n, -1)
        loss = err.sum(1) if cfg.loss_reduction == "sum" else err.mean(1)
        self.opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        self.opt.step()
        self.state = self.model.advance(self.state, out.to(self.dtype), h_t.to(self.dtype))
        self.losses[self.state.t - 1] = loss.detach()
        if self.average is not None:
            self.average.mul_(cfg.ema).add_(self.state.f, alpha=1 - cfg.ema)
        return loss.detach(), err.detach().mean(1)

    def estimate(self) -> torch.Tensor:
        """The current output, or its bias-corrected exponential average (``ema``)."""
        if self.average is None:
            return self.state.f
        return self.average / (1 - self.cfg.ema ** self.state.t)

    def images(self, x: torch.Tensor) -> list[np.ndarray]:
        """Outputs ``(1, n*C, H, W)`` as one ``(h, w, C)`` image per network: back in [0, 1]
        units, clipped, padding cropped."""
        channels, height, width = x.shape[1] // self.n, x.shape[2], x.shape[3]
        arr = x.detach().to("cpu", torch.float64).numpy().reshape(self.n, channels, height, width)
        return [crop(np.clip(from_range(a.transpose(1, 2, 0), c.range), 0.0, 1.0), c.pad_width, c.padding)
                for a, c in zip(arr, self.configs)]


def _fit_stack(targets, configs, cleans, sigmas, indices, callback, snapshot=None) -> list[FitResult]:
    """Fit ``n`` networks to same-shape padded targets ``(H, W, C)`` as one :class:`Stack`.

    ``snapshot``: per network, None or a dict that gets its kept output at every scoring
    iteration (``{t: image}``): the tiles of an image with a clean reference, scored once blended.
    """
    started = time.perf_counter()
    stack, cfg = Stack(targets, configs), configs[0]
    snapshot = snapshot or [None] * stack.n
    rule = rule_for(cfg, sigmas, stack.target.shape, stack.device, stack.dtype)
    histories: list[list[dict]] = [[] for _ in configs]
    t = 0
    for t in range(1, cfg.iters + 1):
        loss, mse = stack.step()
        active = (~rule.done).tolist()  # scored this iteration: the networks not stopped before
        rule.update(t, stack.state.f, stack.estimate(), mse)
        metrics = None
        if (not rule.all_done and any(c is not None or s is not None for c, s in zip(cleans, snapshot))
                and (t % cfg.eval_every == 0 or t == cfg.iters)):
            images = stack.images(rule.kept(stack.estimate()))
            metrics = [None if c is None or not a else {"iter": t, **scores(img, c)}
                       for img, c, a in zip(images, cleans, active)]
            for history, m in zip(histories, metrics):
                if m is not None:
                    history.append(m)
            for image, keep in zip(images, snapshot):
                if keep is not None:
                    keep[t] = image
        if callback is not None and callback(Progress(t, cfg.iters, loss, metrics, indices, stack.state.f,
                                                      rule.done.tolist())):
            break
        if rule.all_done:  # after the callback: it sees the last iteration too
            break
    kept = rule.kept(stack.estimate())
    finite = torch.isfinite(kept.reshape(stack.n, -1)).all(1).cpu()
    if not finite.all():
        raise FloatingPointError(
            f"the fit diverged: {int((~finite).sum())} of {stack.n} networks have a NaN or infinite "
            f"output after {t} iterations (lr {cfg.lr}, optimizer {cfg.optimizer}); lower the learning rate")
    seconds = (time.perf_counter() - started) / stack.n
    return stack_results(stack.images(kept), configs, cleans, histories, rule,
                         stack.losses[:t].cpu().numpy(), t, seconds, str(stack.device))


def _configs(config, count: int) -> list[FitConfig]:
    if config is None:
        config = PRESETS["default"]
    if isinstance(config, FitConfig):
        return [config] * count
    if isinstance(config, (list, tuple)) and all(isinstance(c, FitConfig) for c in config):
        return list(config)
    raise TypeError(f"config must be a FitConfig (e.g. rdip.preset('default')) or a list of "
                    f"them, got {type(config).__name__}")


def _sigmas(sigma, count: int) -> list:
    sigmas = [sigma] * count if sigma is None or np.ndim(sigma) == 0 else list(sigma)
    if len(sigmas) != count:
        raise ValueError("give one sigma (or one for each image)")
    return [None if s is None else check_sigma(s) for s in sigmas]


def _arguments(noisy, config, clean, sigma) -> tuple:
    """:func:`fit_many`'s arguments, checked before anything is fitted: the noisy images as given
    (tensors as arrays, :mod:`.tensors`), checked (:func:`check_image`, with their σ where it is
    given), one configuration each (``auto`` on a tensor's device), the checked clean images, one σ
    each (estimated for the noise rule) and the tensors' forms."""
    noisy, forms = tensors.arrays(noisy)
    cleans = [None] * len(noisy) if clean is None else tensors.arrays(clean, "clean image")[0]
    configs = tensors.on_device(_configs(config, len(noisy)), forms)
    if len(configs) != len(noisy) or len(cleans) != len(noisy):
        raise ValueError("give one config (or one for each image) and one clean image per image")
    sigmas = _sigmas(sigma, len(noisy))
    images = [check_image(x, f"image {i}", s) for i, (x, s) in enumerate(zip(noisy, sigmas))]
    cleans = [None if c is None else check_image(c, f"clean image {i}") for i, c in enumerate(cleans)]
    for i, (x, c) in enumerate(zip(images, cleans)):
        if c is not None and c.shape != x.shape:
            raise ValueError(f"clean image {i} has shape {c.shape[:2]}, the noisy one {x.shape[:2]}")
    sigmas = [noise_sigma(x, s) if cfg.stop == "noise" else s  # one σ per image, also when tiled
              for x, s, cfg in zip(images, sigmas, configs)]
    return noisy, images, configs, cleans, sigmas, forms


def fit_many(noisy: Sequence[np.ndarray], config: FitConfig | Sequence[FitConfig] | None = None, *,
             clean: Sequence[np.ndarray | None] | None = None,
             sigma: float | Sequence[float | None] | None = None,
             callback: Callback | None = None) -> list[FitResult]:
    """Fit one network to each noisy image, many at once; return one :class:`FitResult` each.

    Parameters
    ----------
    noisy:
        Images ``(H, W)`` or ``(H, W, 3)``, floats in [0, 1] but for noise (or uint8/uint16,
        scaled by their type's range), each at least 25×25; any iterable of them (read before
        anything is fitted). Or torch tensors (:mod:`rdip.method.tensors`): a ``(B, C, H, W)``
        float tensor, or a list of ``(C, H, W)`` ones, in [0, 1] on any device; each result's
        ``image`` is then a ``(C, H, W)`` tensor of the input's dtype and device.
    config:
        One :class:`FitConfig` for all, or one per image (e.g. other seeds or paddings).
        Default: the ``default`` preset. A tensor is fitted on its own device where the
        configuration's ``device`` is ``auto``.
    clean:
        Optional clean references (one per image, or None; arrays or tensors as ``noisy``) for
        SSIM/PSNR during and after fitting.
    sigma:
        The noise's standard deviation in [0, 1] units (one for all, or one per image; None =
        estimated by :func:`rdip.images.noise.noise_sigma`); used only by the ``noise`` stopping rule.
    callback:
        Called after every iteration of every stack with a :class:`Progress`; return True to stop
        that stack.

    An image larger than its ``config.tile`` is fitted as overlapping tiles, each a network of
    its own (seed ``config.seed + k``), and blended back (:mod:`rdip.method.tiling`); with
    ``config.ensemble`` > 1 it is fitted that many times (on shifted tile grids) and the fits are
    averaged. Such a composed result has the composition's scores and history (the networks'
    kept outputs composed every ``eval_every`` iterations), and ``stopped_at`` summarises where
    its networks stopped.
    """
    noisy, images, configs, cleans, sigmas, forms = _arguments(noisy, config, clean, sigma)
    jobs, layouts = _jobs(images, cleans, configs)
    fitted: list[list[FitResult]] = [[] for _ in images]  # per image: its networks' results
    snapshots: list[list[dict]] = [[] for _ in images]  # per composed image with a clean reference
    for part in _stacks(jobs):
        keep = [{} if j.image in layouts and cleans[j.image] is not None else None for j in part]
        done = _fit_stack([j.target for j in part], [j.config for j in part], [j.clean for j in part],
                          [sigmas[j.image] for j in part], [j.image for j in part], callback, keep)
        for j, r, k in zip(part, done, keep):
            fitted[j.image].append(r)  # a stack holds each image's networks in job order
            snapshots[j.image].append(k)
    results = []
    for i, mine in enumerate(fitted):
        r = mine[0] if i not in layouts else composed_result(mine, layouts[i], images[i].shape, configs[i],
                                                             cleans[i], snapshots[i])
        if np.ndim(noisy[i]) == 2:  # grey in, grey out
            r.image = r.image[:, :, 0]
        results.append(r)
    return tensors.give_back(results, forms)


class _Job:
    """One network to fit: the image it belongs to, its padded target in the fitting range, its
    clean reference (None for a part of a composed image: scored once composed) and configuration."""

    def __init__(self, image: int, x: np.ndarray, clean, config: FitConfig, name: str):
        check_padding(x.shape[0], x.shape[1], config, name)
        self.image, self.clean, self.config = image, clean, config
        self.target = pad(to_range(x, config.range), config.pad_width, config.padding)


def _jobs(images, cleans, configs) -> tuple[list[_Job], dict[int, list]]:
    """The networks to fit, in order, and the layout of every composed image.

    An image is one network, unless it is larger than its configuration's tile (one network per
    tile, tile ``k`` seeded ``seed + k``) or its configuration asks for an ensemble (``ensemble``
    fits, fit ``m`` seeded from ``seed + ENSEMBLE_SEED_STEP × m`` on grid ``m`` of
    :func:`~rdip.method.tiling.grids`). A composed image (tiled, an ensemble, or both) has a
    layout: per fit, its tiles' positions in job order, or None for a fit of the whole image.
    """
    jobs: list[_Job] = []
    layouts: dict[int, list] = {}
    for i, (x, c, cfg) in enumerate(zip(images, cleans, configs)):
        tiled = bool(cfg.tile) and max(x.shape[:2]) > cfg.tile
        if not tiled and cfg.ensemble == 1:
            jobs.append(_Job(i, x, c, cfg, f"image {i}"))
            continue
        layouts[i] = (grids(x.shape[0], x.shape[1], cfg.tile, cfg.tile_overlap, cfg.ensemble)
                      if tiled else [None] * cfg.ensemble)
        for m, where in enumerate(layouts[i]):
            base = cfg.replace(seed=cfg.seed + ENSEMBLE_SEED_STEP * m, tile=0, ensemble=1)
            if where is None:
                jobs.append(_Job(i, x, None, base, f"image {i}"))
                continue
            parts, _ = split(x, cfg.tile, cfg.tile_overlap, where)
            jobs += [_Job(i, t, None, base.replace(seed=base.seed + k), f"image {i} (a tile)")
                     for k, t in enumerate(parts)]
    return jobs, layouts


def _stacks(jobs: list[_Job]):
    """The jobs that can be fitted together (:meth:`FitConfig.stack_key` and the target's shape),
    ``chunk`` at a time, in order of first appearance."""
    stacks: dict[tuple, list[_Job]] = {}
    for job in jobs:
        stacks.setdefault((job.target.shape,) + job.config.stack_key(), []).append(job)
    for members in stacks.values():
        cfg = members[0].config
        chunk = cfg.chunk or auto_chunk(resolve_device(cfg.device))
        for start in range(0, len(members), chunk):
            yield members[start:start + chunk]


def fit(noisy: np.ndarray, config: FitConfig | None = None, *, clean: np.ndarray | None = None,
        sigma: float | None = None, callback: Callback | None = None) -> FitResult:
    """Fit one network to one noisy image (:func:`fit_many` with one image)."""
    return fit_many([noisy], config, clean=None if clean is None else [clean], sigma=sigma,
                    callback=callback)[0]


def denoise(noisy: np.ndarray | torch.Tensor, config: FitConfig | str | None = None, *,
            sigma: float | None = None, **changes) -> np.ndarray | torch.Tensor:
    """Denoise one image (or a batch of tensors) with the recurrent deep image prior; arrays in,
    array out, tensors in, tensor out.

    Parameters
    ----------
    noisy:
        ``(H, W)`` or ``(H, W, 3)`` floats in [0, 1] but for noise (or uint8/uint16), at least
        25×25; or a float tensor ``(C, H, W)``, or a batch ``(B, C, H, W)`` (one
        :func:`fit_many` call), in [0, 1] on any device.
    config:
        A :class:`FitConfig` or a preset name (``default``, ``paper``, ``paper-unit``,
        ``paper-literal``).
    sigma:
        The noise's standard deviation in [0, 1] units, for the ``noise`` stopping rule
        (None = estimated).
    **changes:
        Fields of :class:`FitConfig` to override, e.g. ``padding="edge", seed=1``.

    Returns
    -------
    The denoised image, same shape, float64 in [0, 1]; for a tensor, a tensor of its shape, dtype
    and device (fitted there unless ``config.device`` says otherwise).
    """
    if config is None or isinstance(config, str):
        config = preset(config or "default", **changes)
    elif not isinstance(config, FitConfig):
        raise TypeError(f"config must be a preset name or a FitConfig, got {type(config).__name__}")
    elif changes:
        config = config.replace(**changes)
    if isinstance(noisy, torch.Tensor) and noisy.ndim == 4:  # a batch: one fit_many call
        return torch.stack([r.image for r in fit_many(noisy, config, sigma=sigma)])
    return fit(noisy, config, sigma=sigma).image
