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

#: :attr:`Progress.stack` numbers the stacks of one queue ``queue * LANES_PER_QUEUE + lane``.
LANES_PER_QUEUE = 1000


@dataclass
class Progress:
    """What a callback sees of a stack of ``n`` slots (:mod:`rdip.method.slots`), every time the
    engine looks at it (every ``FitConfig.sync_every`` iterations; on the CPU, every iteration).

    ``t``: the iterations the stack has taken; ``iters``: the most a network may run; ``steps``:
    per slot, the iterations its network has taken (networks enter slots as others leave, so
    they differ); ``loss``: tensor ``(n,)`` of each slot's latest loss, on the fitting device
    (``.tolist()`` reads it); ``metrics``: per slot, the scores computed since the last call (a
    clean image was given and an ``eval_every`` iteration passed), else ``None``; ``indices``: per
    slot, the position of its network's image in the caller's list (the tiles of one image,
    ``FitConfig.tile``, repeat it; ``None`` for an empty slot); ``output``: the networks'
    outputs f(z_t), ``(1, n*C, H, W)`` on the fitting device, padded targets' shape, in the
    fitting range (``FitConfig.range``; slot ``i`` owns channels ``i*C … (i+1)*C - 1``); do not
    modify it. ``stopped``: per slot, whether its network has finished (stopped by its rule, or
    at ``iters``): it is taken out of its slot after this call. ``advanced``: network-iterations
    done since the last call, a finished network counting its remaining iterations at once, so
    that they sum to networks × ``iters``. ``stack``: which stack this is, ``queue ×``
    :data:`LANES_PER_QUEUE` ``+ lane`` within one :func:`~rdip.method.engine.fit_many` call (on
    the CPU several stacks of one queue run side by side, each on a thread of its own, and their
    calls interleave).
    """

    t: int
    iters: int
    loss: torch.Tensor
    metrics: list[dict | None] | None
    indices: list[int | None]
    output: torch.Tensor | None = None
    stopped: list[bool] | None = None
    steps: list[int] | None = None
    advanced: int = 0
    stack: int = 0


#: A callback returns True to stop the networks now in the stack's slots (each keeps its current
#: output); the networks still waiting are fitted after them.
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
    its queue's wall time (by the work computed for it; stacks side by side share one clock, so
    the seconds of a call's results add up to its fitting time). ``iters_run``: iterations this network
    was trained; ``stopped_at``: with early stopping (``config.stop``), the iteration whose output
    ``image`` is, else None; for an image fitted as tiles, a summary over its tiles (``min``,
    ``median``, ``max``, ``stopped``, ``networks``). ``work``: network-iterations ``computed`` for
    it (its slot's iterations until the engine took it out, and its share of empty slots) and
    ``needed`` (its own ``iters_run``); summed over the networks of a composed image.
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
    work: dict = field(default_factory=lambda: {"computed": 0.0, "needed": 0})

    def to_dict(self) -> dict:
        """Everything but the image, JSON-ready."""
        return {"config": self.config.to_dict(), "metrics": self.metrics, "history": self.history,
                "loss_first": float(self.loss[0]), "loss_last": float(self.loss[-1]),
                "iters_run": self.iters_run, "stopped_at": self.stopped_at, "seconds": self.seconds,
                "device": self.device, "work": self.work}


def network_result(image: np.ndarray, config: FitConfig, clean, history: list[dict], losses: np.ndarray,
                   ran: int, stopped_at: int | None, device: str) -> FitResult:
    """One network's :class:`FitResult`: its kept ``image``, its losses while it trained (``ran``
    iterations), its history (rows of iterations ≤ ``ran``), and its final scores: computed anew
    where the kept image is not the last one of its trajectory (``stopped_at``), else the last
    row's (a row added where it ended between evaluations)."""
    final = {}
    if clean is not None:
        history = [row for row in history if row["iter"] <= ran]
        if stopped_at is not None:
            final = scores(image, clean)
        else:
            if not (history and history[-1]["iter"] == ran):
                history.append({"iter": ran, **scores(image, clean)})
            final = {k: v for k, v in history[-1].items() if k != "iter"}
    return FitResult(image=image, config=config, loss=losses[:ran], history=history, metrics=final,
                     iters_run=ran, device=device, stopped_at=stopped_at)


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
                     seconds=sum(r.seconds for r in parts), device=parts[0].device,
                     work={"computed": round(sum(r.work["computed"] for r in parts), 2),
                           "needed": sum(r.work["needed"] for r in parts)})
