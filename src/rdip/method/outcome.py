"""What a fit gives back: :class:`FitResult` per image, :class:`Progress` to callbacks during the
fit, and the assembly of results from a finished stack of networks or from an image's tiles."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..config import FitConfig
from ..images.metrics import scores
from .tiling import blend


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
    ``i*C … (i+1)*C - 1``); do not modify it. ``stopped``: per network, whether it has stopped
    (its kept output no longer changes, ``FitConfig.stop``).
    """

    t: int
    iters: int
    loss: torch.Tensor
    metrics: list[dict] | None
    indices: list[int]
    output: torch.Tensor | None = None
    stopped: list[bool] | None = None


#: A callback returns True to stop the group early.
Callback = Callable[[Progress], "bool | None"]


@dataclass
class FitResult:
    """The outcome of one fit.

    ``image``: the denoised image, the input's shape, float64 clipped to [0, 1] (from
    :func:`~rdip.method.engine.fit_many` given a tensor: a ``(C, H, W)`` tensor of its dtype and
    device, :mod:`rdip.method.tensors`).
    ``loss``: per iteration, in the fitting range's units (``FitConfig.range``: a squared error in
    [-1, 1] is 4× the same error in [0, 1]). ``history``: ``{"iter", "ssim_full", "ssim_centre",
    "psnr"}`` rows every ``eval_every`` iterations (empty without a clean reference).
    ``metrics``: final scores (empty without a clean reference). ``seconds``: this fit's share of
    its group's wall time. ``iters_run``: iterations this network was trained; ``stopped_at``: with
    early stopping (``config.stop``), the iteration whose output ``image`` is, else None; for an
    image fitted as tiles, a summary over its tiles (``min``, ``median``, ``max``, ``stopped``,
    ``tiles``).
    """

    image: np.ndarray
    config: FitConfig
    loss: np.ndarray
    history: list[dict] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    iters_run: int = 0
    seconds: float = 0.0
    device: str = "cpu"
    stopped_at: int | dict | None = None

    def to_dict(self) -> dict:
        """Everything but the image, JSON-ready."""
        return {"config": self.config.to_dict(), "metrics": self.metrics, "history": self.history,
                "loss_first": float(self.loss[0]), "loss_last": float(self.loss[-1]),
                "iters_run": self.iters_run, "stopped_at": self.stopped_at, "seconds": self.seconds,
                "device": self.device}


def stack_results(images: Sequence[np.ndarray], configs: Sequence[FitConfig], cleans, histories,
                  rule, losses: np.ndarray, t: int, seconds: float, device: str) -> list[FitResult]:
    """One :class:`FitResult` per network of a stack that ran ``t`` iterations: its kept image,
    its losses while it trained (``losses`` ``(t, n)``), its history up to then, and its final
    scores (computed anew where the kept image is not the last scored one)."""
    results = []
    for i, (image, config, clean, history) in enumerate(zip(images, configs, cleans, histories)):
        stopped = int(rule.chosen[i]) if rule.done[i] else None
        ran = t if stopped is None else int(rule.ran[i])
        final = {}
        if clean is not None:
            history = [row for row in history if row["iter"] <= ran]
            if stopped is not None:  # the kept output is not the last one of the trajectory
                final = scores(image, clean)
            else:
                if not (history and history[-1]["iter"] == t):  # stopped between evaluations
                    history.append({"iter": t, **scores(image, clean)})
                final = {k: v for k, v in history[-1].items() if k != "iter"}
        results.append(FitResult(image=image, config=config, loss=losses[:ran, i], history=history,
                                 metrics=final, iters_run=ran, seconds=seconds, device=device,
                                 stopped_at=stopped))
    return results


def compose(images: Sequence[np.ndarray], layout: Sequence, shape, overlap: int) -> np.ndarray:
    """One image from its networks' outputs (job order): each fit of ``layout`` (tile positions,
    or None for a fit of the whole image) blended from its tiles, then the fits averaged."""
    fits, k = [], 0
    for where in layout:
        n = 1 if where is None else len(where)
        part = images[k:k + n]
        fits.append(part[0] if where is None else blend(part, where, shape, overlap))
        k += n
    return fits[0] if len(fits) == 1 else np.mean(fits, axis=0)


def composed_result(parts: Sequence[FitResult], layout: Sequence, shape, config: FitConfig, clean,
                    snapshots: Sequence[dict | None] = ()) -> FitResult:
    """One image's result from its networks' results (tiles, ensemble fits or both, as
    ``layout`` says, :func:`compose`): the composed image, scored against ``clean``, with a
    history of the composition (each network's snapshot at that iteration, ``{t: image}``, or its
    final image where it has none: it had stopped; a last row where the last network ended); the
    networks' mean loss over the iterations all of them ran; the most iterations any ran;
    ``stopped_at`` as ``{"min", "median", "max", "stopped", "networks"}`` over the networks that
    stopped (None when none did); the networks' summed time."""
    def made(images):
        return compose(images, layout, shape, config.tile_overlap)

    image = made([r.image for r in parts])
    common = min(len(r.loss) for r in parts)  # with early stopping, networks stop on their own
    history = []
    if clean is not None and snapshots and all(s is not None for s in snapshots):
        for t in sorted(set().union(*snapshots)):
            history.append({"iter": t, **scores(made([s.get(t, r.image) for s, r in zip(snapshots, parts)]),
                                                 clean)})
    ran = max(r.iters_run for r in parts)
    if clean is not None and not (history and history[-1]["iter"] == ran):
        history.append({"iter": ran, **scores(image, clean)})  # where the last network ended
    stops = [r.stopped_at for r in parts if r.stopped_at is not None]
    stopped = ({"min": min(stops), "median": float(np.median(stops)), "max": max(stops),
                "stopped": len(stops), "networks": len(parts)} if stops else None)
    return FitResult(image=image, config=config, loss=np.mean([r.loss[:common] for r in parts], axis=0),
                     history=history, metrics=scores(image, clean) if clean is not None else {},
                     iters_run=ran, stopped_at=stopped,
                     seconds=sum(r.seconds for r in parts), device=parts[0].device)
