"""The fitting loop: one engine that fits N independent networks in one pass (Eq. 1, §III).

:func:`fit_many` is the engine; :func:`fit` and :func:`denoise` are its one-image forms.
Networks whose padded targets share a shape and whose configurations differ only in seed and
padding mode (:meth:`FitConfig.stack_key`) form one queue, fitted in a stack of ``config.chunk``
slots (:class:`~rdip.method.slots.Slots`: one :class:`~rdip.method.model.RecurrentDIP` of grouped
convolutions). Each slot holds one network at its own iteration; when a network finishes (its
stopping rule, :mod:`.stopping`, or ``iters``) it is taken out and the next network of the queue
takes its slot, so no iteration is computed for a network that has finished but for the at most
``sync_every − 1`` before the engine looks; when the queue runs dry the stack shrinks. The loss of
the stack is the sum of the networks' own losses, and both optimisers (:mod:`.optim`) update each
weight element by element with each network's own step count, so network ``i`` follows exactly
the trajectory it would follow alone.

The pieces: :class:`~rdip.method.slots.Slots` takes one iteration of every slot
(:meth:`~rdip.method.slots.Slots.step`, with no host synchronisation; :class:`~rdip.method.slots.Replay`
runs it eagerly or as a CUDA graph); the stopping rules decide on the device; :class:`_Queue` is the
loop: steps, then every ``sync_every`` iterations a look at the slots (scores, progress, finished
networks out, waiting ones in); :mod:`.outcome` assembles the results.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from ..config import ENSEMBLE_SEED_STEP, PRESETS, FitConfig, preset
from ..images.metrics import scores
from ..images.noise import check_sigma, noise_sigma
from . import tensors
from .devices import auto_sync, check_dtype, chunk_for, lanes_for, resolve_device, shrink_floor
from .inputs import check_image, check_padding, to_range
from .outcome import (
    LANES_PER_QUEUE,
    Callback,
    FitResult,
    Progress,
    composed_result,
    network_result,
)
from .padding import pad
from .slots import Replay, Slots
from .tiling import grids, split


def shrunk(size: int, loaded: int, floor: int = 1) -> int:
    """The stack size for ``loaded`` networks once the queue is dry: the smallest of ``size``,
    ⌊¾·size⌋, ⌊¾·⌊¾·size⌋⌋, … that holds them and is at least ``floor``
    (:func:`~rdip.method.devices.shrink_floor`): a few fixed sizes, so that each can be captured
    once; above the floor at most a third of a stack's slots are ever empty."""
    while size > floor and (smaller := max(1, size * 3 // 4)) >= max(loaded, floor):
        size = smaller
    return size


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
    for dtype, device in {(c.dtype, c.device) for c in configs}:
        check_dtype(dtype, resolve_device(device))
    sigmas = _sigmas(sigma, len(noisy))
    images = [check_image(x, f"image {i}", s) for i, (x, s) in enumerate(zip(noisy, sigmas))]
    cleans = [None if c is None else check_image(c, f"clean image {i}") for i, c in enumerate(cleans)]
    for i, (x, c) in enumerate(zip(images, cleans)):
        if c is not None and c.shape != x.shape:
            raise ValueError(f"clean image {i} has shape {c.shape[:2]}, the noisy one {x.shape[:2]}")
    sigmas = [noise_sigma(x, s) if cfg.stop == "noise" else s  # one σ per image, also when tiled
              for x, s, cfg in zip(images, sigmas, configs)]
    return noisy, images, configs, cleans, sigmas, forms


def fit_many(noisy: Iterable[np.ndarray], config: FitConfig | Sequence[FitConfig] | None = None, *,
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
        Called with a :class:`Progress` every time the engine looks at a stack's slots (every
        ``sync_every`` iterations: on the CPU every iteration); return True to stop the networks
        then in the slots.

    An image larger than its ``config.tile`` is fitted as overlapping tiles, each a network of
    its own (seed ``config.seed + k``), and blended back (:mod:`rdip.method.tiling`); with
    ``config.ensemble`` > 1 it is fitted that many times (on shifted tile grids) and the fits are
    averaged. Such a composed result has the composition's scores and history (the networks'
    kept outputs composed every ``eval_every`` iterations), and ``stopped_at`` summarises where
    its networks stopped.
    """
    noisy, images, configs, cleans, sigmas, forms = _arguments(noisy, config, clean, sigma)
    jobs, layouts = _jobs(images, cleans, configs, sigmas)
    for job in jobs:
        job.snapshot = {} if job.image in layouts and cleans[job.image] is not None else None
    for number, queue in enumerate(_queues(jobs)):
        run_queue(queue, callback, number)
    results = []
    for i in range(len(images)):
        mine = [j for j in jobs if j.image == i]  # in job order: tiles, then ensemble fits
        r = mine[0].result if i not in layouts else composed_result(
            [j.result for j in mine], layouts[i], images[i].shape, configs[i], cleans[i],
            [j.snapshot for j in mine])
        if np.ndim(noisy[i]) == 2:  # grey in, grey out
            r.image = r.image[:, :, 0]
        results.append(r)
    return tensors.give_back(results, forms)


class _Job:
    """One network to fit: the image it belongs to, its padded target in the fitting range, its
    clean reference (None for a part of a composed image: scored once composed), configuration
    and σ; ``snapshot`` (a dict, or None) gets its kept output at every scoring iteration
    (``{t: image}``: the parts of a composed image with a clean reference); ``history``,
    ``result``, ``computed`` are filled in by the fit."""

    def __init__(self, image: int, x: np.ndarray, clean, config: FitConfig, sigma, name: str,
                 padded: bool = False):
        check_padding(x.shape[0], x.shape[1], config, name)
        self.image, self.clean, self.config, self.sigma = image, clean, config, sigma
        fitted = to_range(x, config.range, config.margin)  # ``padded``: x holds its padding (context)
        self.target = fitted if padded else pad(fitted, config.pad_width, config.padding)
        self.snapshot: dict | None = None
        self.history: list[dict] = []
        self.result: FitResult | None = None
        self.computed = 0.0  # slot-iterations spent on it, with its share of empty slots
        self.reported = 0  # network-iterations of progress reported for it


def _jobs(images, cleans, configs, sigmas) -> tuple[list[_Job], dict[int, list]]:
    """The networks to fit, in order, and the layout of every composed image.

    An image is one network, unless it is larger than its configuration's tile (one network per
    tile, tile ``k`` seeded ``seed + k``) or its configuration asks for an ensemble (``ensemble``
    fits, fit ``m`` seeded from ``seed + ENSEMBLE_SEED_STEP × m`` on grid ``m`` of
    :func:`~rdip.method.tiling.grids`). A composed image (tiled, an ensemble, or both) has a
    layout: per fit, its tiles' positions in job order, or None for a fit of the whole image.
    """
    jobs: list[_Job] = []
    layouts: dict[int, list] = {}
    for i, (x, c, cfg, s) in enumerate(zip(images, cleans, configs, sigmas)):
        tiled = bool(cfg.tile) and max(x.shape[:2]) > cfg.tile
        if not tiled and cfg.ensemble == 1:
            jobs.append(_Job(i, x, c, cfg, s, f"image {i}"))
            continue
        layouts[i] = (grids(x.shape[0], x.shape[1], cfg.tile, cfg.tile_overlap, cfg.ensemble)
                      if tiled else [None] * cfg.ensemble)
        for m, where in enumerate(layouts[i]):
            base = cfg.replace(seed=cfg.seed + ENSEMBLE_SEED_STEP * m, tile=0, ensemble=1)
            if where is None:
                jobs.append(_Job(i, x, None, base, s, f"image {i}"))
                continue
            context = cfg.padding == "context"  # each tile with the image around it
            parts, _ = (split(pad(x, cfg.pad_width, "reflect"), cfg.tile + 2 * cfg.pad_width, cfg.tile_overlap, where)
                        if context else split(x, cfg.tile, cfg.tile_overlap, where))
            jobs += [_Job(i, t, None, base.replace(seed=base.seed + k), s, f"image {i} (a tile)", context)
                     for k, t in enumerate(parts)]
    return jobs, layouts


def _queues(jobs: list[_Job]) -> list[list[_Job]]:
    """The jobs that can share a stack (:meth:`FitConfig.stack_key` and the target's shape), in
    order of first appearance."""
    queues: dict[tuple, list[_Job]] = {}
    for job in jobs:
        queues.setdefault((job.target.shape,) + job.config.stack_key(), []).append(job)
    return list(queues.values())


def run_queue(jobs: list[_Job], callback: Callback | None, number: int = 0) -> None:
    """Fit a queue (:class:`_Queue`), in :func:`lanes_for` stacks side by side: lane ``k`` takes
    jobs ``k``, ``k + lanes``, … (so which networks share a stack does not depend on timing), each
    in a thread of its own with one torch thread (the threads' count is restored after); the
    callback is called by one lane at a time. ``number``: the queue's, for :attr:`Progress.stack`."""
    cfg = jobs[0].config
    device = resolve_device(cfg.device)
    lanes = lanes_for(device, len(jobs), chunk_for(cfg, device, *jobs[0].target.shape))
    if lanes == 1:
        _Queue(jobs, callback, number * LANES_PER_QUEUE).run()
        return
    lock, errors, halt = threading.Lock(), [], threading.Event()

    def serial(p):
        with lock:
            return callback(p)

    def lane(k: int) -> None:
        try:
            _Queue(jobs[k::lanes], serial if callback is not None else None, number * LANES_PER_QUEUE + k,
                   halt).run()
        except BaseException as e:  # noqa: BLE001  (raised again in the caller's thread)
            errors.append(e)
            halt.set()  # the other lanes stop at their next look

    threads, started = torch.get_num_threads(), time.perf_counter()
    torch.set_num_threads(1)
    workers = [threading.Thread(target=lane, args=(k,), daemon=True) for k in range(lanes)]
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    except BaseException:  # e.g. Ctrl-C in the caller's thread: the lanes stop at their next look
        halt.set()
        for w in workers:
            w.join()
        raise
    finally:
        torch.set_num_threads(threads)
    if errors:
        raise errors[0]
    _share(jobs, time.perf_counter() - started)  # the lanes ran at once: the queue's wall clock


def _share(jobs: list[_Job], seconds: float) -> None:
    """Each job's result gets its share of ``seconds`` (by the slot-iterations it was given), and
    its work: so that the seconds of a queue's results add up to the queue's wall clock."""
    total = sum(j.computed for j in jobs) or 1.0
    for j in jobs:
        j.result.seconds = seconds * j.computed / total
        j.result.work = {"computed": round(j.computed, 2), "needed": j.result.iters_run}


class _Queue:
    """The loop over one queue of jobs: a stack of slots (:class:`Slots`) steps; every
    ``sync_every`` iterations it is looked at: new scores, the callback, finished networks out
    (their :class:`FitResult`), waiting ones into their slots, and a smaller stack once the queue
    is dry."""

    def __init__(self, jobs: list[_Job], callback: Callback | None, stack: int = 0,
                 halt: threading.Event | None = None):
        cfg = self.cfg = jobs[0].config
        self.stack, self.halt = stack, halt  # halt: set when another lane failed (stop at the next look)
        self.device = resolve_device(cfg.device)
        self.jobs, self.callback, self.t = jobs, callback, 0
        self.watch = any(j.clean is not None or j.snapshot is not None for j in jobs)
        every = cfg.sync_every or auto_sync(self.device)
        self.every = min(every, cfg.eval_every) if self.watch else every
        size = min(len(jobs), chunk_for(cfg, self.device, *jobs[0].target.shape))
        self.waiting = deque(jobs[size:])
        self.held: list[_Job | None] = list(jobs[:size])  # the job in each slot (None: empty)
        first = self.held
        self.slots = Slots(cfg, self.device, [j.config.seed for j in first], [j.target for j in first],
                           [j.sigma for j in first], self.watch)
        self.replay = Replay(self.slots, cfg.capture)
        self.scored = [0] * size  # per slot: the last snapshot iteration read

    def run(self) -> None:
        started = time.perf_counter()
        while any(j is not None for j in self.held):
            if self.halt is not None and self.halt.is_set():
                return
            loaded = sum(j is not None for j in self.held)
            for _ in range(self.every):
                self.replay()
            self.t += self.every
            for j in self.held:
                if j is not None:
                    j.computed += self.every * self.slots.n / loaded
            self._look()
        _share(self.jobs, time.perf_counter() - started)

    def _look(self) -> None:
        """Read the slots: scores of new snapshots, the callback, finished networks out and
        waiting ones in; shrink once the queue is dry."""
        rule, n = self.slots.rule, self.slots.n
        metrics = self._scores() if self.watch else None
        steps = self.slots.state.t.tolist()
        if self.callback is not None:
            finished, ran = rule.finished.tolist(), rule.ran.tolist()
            p = Progress(self.t, self.cfg.iters, self.slots.loss, metrics,
                         [None if j is None else j.image for j in self.held], self.slots.state.f,
                         finished, steps, self._advanced(finished, ran, steps), self.stack)
            if self.callback(p):
                loaded = torch.tensor([j is not None for j in self.held], device=self.device)
                rule.interrupt(loaded, self.slots.state.t, self.slots.estimate().reshape(n, -1))
        finished = rule.finished.tolist()
        for slot, job in enumerate(self.held):
            if job is not None and finished[slot]:
                self._take(slot, job)
                self.held[slot] = self.waiting.popleft() if self.waiting else None
                if self.held[slot] is not None:
                    new = self.held[slot]
                    self.slots.load(slot, new.config.seed, new.target, new.sigma)
                    self.scored[slot] = 0
        loaded = [slot for slot, j in enumerate(self.held) if j is not None]
        if not self.waiting and loaded and (size := shrunk(n, len(loaded), shrink_floor(self.device))) < n:
            keep = loaded + [s for s, j in enumerate(self.held) if j is None][:size - len(loaded)]
            self.slots = self.slots.select(keep)
            self.held = [self.held[s] for s in keep]
            self.scored = [self.scored[s] for s in keep]
            self.replay = Replay(self.slots, self.cfg.capture)

    def _advanced(self, finished: list[bool], ran: list[int], steps: list[int]) -> int:
        """Network-iterations of progress since the last look (see :class:`Progress`)."""
        total = 0
        for slot, job in enumerate(self.held):
            if job is None:
                continue
            done = self.cfg.iters if finished[slot] else min(steps[slot], self.cfg.iters)
            total += done - job.reported
            job.reported = done
        return total

    def _scores(self) -> list[dict | None]:
        """Score each slot's snapshot taken since the last look (its history row; its snapshot of
        a part of a composed image); per slot, the new scores or None."""
        taken = self.slots.snapshot_t.tolist()
        metrics: list[dict | None] = [None] * self.slots.n
        for slot, job in enumerate(self.held):
            if job is None or taken[slot] <= self.scored[slot]:
                continue
            self.scored[slot] = taken[slot]
            image = self.slots.images(self.slots.snapshot[slot:slot + 1], [job.config])[0]
            if job.snapshot is not None:
                job.snapshot[taken[slot]] = image
            if job.clean is not None:
                metrics[slot] = {"iter": taken[slot], **scores(image, job.clean)}
                job.history.append(metrics[slot])
        return metrics

    def _take(self, slot: int, job: _Job) -> None:
        """Take the finished network in ``slot`` out: its :class:`FitResult`."""
        rule = self.slots.rule
        kept = rule.kept[slot:slot + 1]
        ran = int(rule.ran[slot])
        if not bool(torch.isfinite(kept).all()):
            raise FloatingPointError(
                f"the fit diverged: a network has a NaN or infinite output after {ran} iterations "
                f"(lr {self.cfg.lr}, optimizer {self.cfg.optimizer}); lower the learning rate")
        stopped_at = int(rule.chosen[slot]) if bool(rule.stopped[slot]) else None
        image = self.slots.images(kept, [job.config])[0]
        losses = self.slots.losses[:ran, slot].cpu().numpy().copy()  # the slot is reused
        job.result = network_result(image, job.config, job.clean, job.history, losses, ran, stopped_at,
                                    str(self.device))


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
