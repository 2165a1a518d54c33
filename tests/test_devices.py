"""Where the networks run (rdip.method.devices): the automatic stack size and its memory estimate."""

import pytest
import torch

from rdip import preset
from rdip.method.devices import (
    CPU_CHUNK,
    MAX_ELEMENTS,
    MEMORY_SHARE,
    auto_chunk,
    network_bytes,
)
from rdip.method.model import footprint
from rdip.method.slots import Slots

CUDA = torch.device("cuda")  # auto_chunk only reads the device's type: no GPU needed


def test_on_the_cpu_a_stack_has_the_measured_two_slots():
    assert auto_chunk(torch.device("cpu"), 64, 64, available_mb=1e9) == CPU_CHUNK == 2


def test_on_cuda_a_stack_holds_as_many_networks_as_fit_in_the_memory_share():
    per_mb = network_bytes(32, 32) / 2**20
    chunk = auto_chunk(CUDA, 32, 32, available_mb=24 * 1024)
    assert chunk == int(MEMORY_SHARE * 24 * 1024 // per_mb)
    assert chunk * per_mb <= MEMORY_SHARE * 24 * 1024 < (chunk + 1) * per_mb
    assert auto_chunk(CUDA, 32, 32, available_mb=48 * 1024) in (2 * chunk, 2 * chunk + 1)
    assert auto_chunk(CUDA, 32, 32, formulation="bmm", available_mb=24 * 1024) < chunk  # patches
    assert auto_chunk(CUDA, 32, 32, element_bytes=8, available_mb=24 * 1024) in (chunk // 2, chunk // 2 + 1)
    assert auto_chunk(CUDA, 32, 32, available_mb=1.0) == 1  # one network, even where it may not fit


def test_on_cuda_no_stacked_tensor_passes_32_bit_indexing():
    for formulation in ("grouped", "bmm"):
        chunk = auto_chunk(CUDA, 40, 40, formulation=formulation, available_mb=float("inf"))
        largest = footprint(40, 40, 3, formulation)["largest"]
        assert chunk * largest <= MAX_ELEMENTS < (chunk + 1) * largest


@pytest.mark.parametrize("formulation", ["grouped", "bmm"])
@pytest.mark.parametrize("side", [32, 40])
def test_the_memory_estimate_covers_what_a_step_keeps(rng, formulation, side):
    """What autograd saves for the backward pass of a stack of 2 (counted by storage, hooks on
    the saved tensors), plus weights, gradients and Adam's moments: the estimate is at least that
    and at most twice (the gradients of the activations, temporaries of the update come on top)."""
    cfg = preset("default", device="cpu", formulation=formulation)
    slots = Slots(cfg, torch.device("cpu"), [0, 1], [rng.random((side, side, 3)) for _ in range(2)], [0.1, 0.1])
    weights = {p.data_ptr() for p in slots.model.parameters()}
    saved: dict[int, int] = {}

    def pack(t):
        if t.data_ptr() not in weights:
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out, _ = slots.model(slots.state)
        (out - slots.target).square().mean()
    parameters = sum(p.numel() for p in slots.model.parameters())
    measured = (sum(saved.values()) + parameters * 4 * 4) / 2
    assert measured <= network_bytes(side, side, 3, formulation) <= 2 * measured
    assert parameters == 2 * footprint(side, side)["parameters"]


def test_native_bf16_follows_the_cpu_flags_and_the_override(monkeypatch):
    from rdip.method import devices

    cpu = torch.device("cpu")
    monkeypatch.delenv(devices.NATIVE_BF16_ENV, raising=False)
    devices._cpu_bf16.cache_clear()
    flags = open("/proc/cpuinfo").read().split() if __import__("os").path.exists("/proc/cpuinfo") else None
    if flags is not None:
        assert devices.native_bf16(cpu) == bool(devices.BF16_FLAGS & set(flags))
    for told, expected in (("0", False), ("1", True)):
        monkeypatch.setenv(devices.NATIVE_BF16_ENV, told)
        assert devices.native_bf16(cpu) is expected
    devices.check_dtype("float32", cpu)  # float32 is never refused
    with pytest.raises(ValueError, match="float32"):
        monkeypatch.setenv(devices.NATIVE_BF16_ENV, "0")
        devices.check_dtype("bfloat16", cpu)
