"""Torch tensors at the API's edge (:func:`rdip.fit_many`, :func:`rdip.fit`, :func:`rdip.denoise`).

A float tensor ``(C, H, W)`` (C = 1 or 3, values in [0, 1], any float dtype, on any device) is
one image; a ``(B, C, H, W)`` tensor is ``B`` of them. Each is copied to the host as a NumPy
``(H, W, C)`` float64 array (``.detach().to("cpu", torch.float64)``: never ``.numpy()`` on a
device tensor) and checked like any array; its result is handed back as a ``(C, H, W)`` tensor
with the input's dtype and device (``.to(device, dtype)``). A configuration whose ``device`` is
``auto`` fits a tensor on the tensor's own device (``cpu``, ``cuda`` or ``cuda:N``; other kinds of
device keep ``auto``). NumPy arrays pass through untouched.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from ..config import FitConfig


@dataclass(frozen=True)
class Form:
    """Where a tensor image came from: what its result is handed back as."""

    dtype: torch.dtype
    device: torch.device


def _items(images, name: str) -> list:
    """A ``(B, C, H, W)`` tensor as its ``B`` images, a ``(C, H, W)`` tensor as one, anything else
    (a list, a generator…) as the list of its items, read before anything is fitted."""
    if isinstance(images, torch.Tensor):
        if images.ndim == 4:
            if len(images) == 0:
                raise ValueError(f"an empty batch of {name}s: a (0, C, H, W) tensor")
            return list(images.unbind(0))
        if images.ndim == 3:
            return [images]
        raise ValueError(f"a tensor of shape {tuple(images.shape)}: give one image (C, H, W) or a "
                         "batch (B, C, H, W), C = 1 or 3")
    if not isinstance(images, Iterable):
        raise TypeError(f"give the {name}s as a list of arrays (or a tensor), got {type(images).__name__}")
    return list(images)


def to_array(tensor: torch.Tensor, name: str) -> np.ndarray:
    """A float ``(C, H, W)`` tensor as a NumPy ``(H, W, C)`` float64 array on the host."""
    if tensor.device.type == "meta":
        raise ValueError(f"{name} is a tensor on the 'meta' device: it has a shape but no values; "
                         "give a tensor that holds the image (on the CPU or a GPU)")
    if not tensor.is_floating_point():
        raise TypeError(f"{name} is a {tensor.dtype} tensor: give floats in [0, 1] "
                        "(e.g. x.float() / 255 for uint8)")
    if tensor.ndim != 3 or tensor.shape[0] not in (1, 3):
        raise ValueError(f"{name} is a tensor of shape {tuple(tensor.shape)}: give (C, H, W) with "
                         "C = 1 or 3 (an (H, W, C) tensor is x.permute(2, 0, 1)), or a batch "
                         "(B, C, H, W) to fit_many or denoise")
    return tensor.detach().to("cpu", torch.float64).numpy().transpose(1, 2, 0)


def arrays(images, name: str = "image") -> tuple[list, list[Form | None]]:
    """``images`` (see :func:`_items`) as a list of NumPy images (arrays as they are, tensors
    converted by :func:`to_array`; None stays None) and, per image, its tensor's :class:`Form`
    or None."""
    items = _items(images, name)
    out, forms = [], []
    for i, x in enumerate(items):
        tensor = isinstance(x, torch.Tensor)
        out.append(to_array(x, f"{name} {i}") if tensor else x)
        forms.append(Form(x.dtype, x.device) if tensor else None)
    return out, forms


def on_device(configs: list[FitConfig], forms: list[Form | None]) -> list[FitConfig]:
    """Each configuration with ``device="auto"`` moved to its tensor's device (cpu or cuda)."""
    return [c.replace(device=str(f.device)) if f is not None and c.device == "auto"
            and f.device.type in ("cpu", "cuda") else c for c, f in zip(configs, forms)]


def give_back(results: list, forms: list[Form | None]) -> list:
    """The results, each ``image`` of a tensor's fit turned into a ``(C, H, W)`` tensor of that
    tensor's dtype and device (the others as they are)."""
    for result, form in zip(results, forms):
        if form is not None:
            chw = np.ascontiguousarray(np.atleast_3d(result.image).transpose(2, 0, 1))
            result.image = torch.from_numpy(chw).to(form.device, form.dtype)
    return results
