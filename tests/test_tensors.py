"""Torch tensors in and out of rdip.denoise / rdip.fit / rdip.fit_many (rdip.method.tensors)."""

import numpy as np
import pytest
import torch
from conftest import smooth_image

import rdip
from rdip import FitConfig
from rdip.method import engine
from rdip.method.tensors import Form, on_device

CPU = FitConfig(iters=3, device="cpu", dtype="float64")
AUTO = FitConfig(iters=3, dtype="float64")  # device auto: the tensor's


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_a_chw_tensor_comes_back_as_a_tensor_of_its_shape_dtype_and_device(rng, dtype):
    image = rng.random((26, 27, 3))
    tensor = torch.from_numpy(image.transpose(2, 0, 1).copy()).to(dtype)
    out = rdip.denoise(tensor, AUTO)
    assert isinstance(out, torch.Tensor) and out.shape == (3, 26, 27)
    assert out.dtype == dtype and out.device == tensor.device
    expected = rdip.denoise(tensor.to(torch.float64).numpy().transpose(1, 2, 0), CPU)  # the same fit on NumPy
    tolerance = 1e-6 if dtype == torch.float64 else 1e-2
    np.testing.assert_allclose(out.to(torch.float64).numpy().transpose(1, 2, 0), expected, atol=tolerance)


def test_a_batch_is_one_fit_many_call_and_comes_back_as_a_batch(rng, monkeypatch):
    calls = []
    real = engine.fit_many
    monkeypatch.setattr(engine, "fit_many", lambda *a, **k: calls.append(1) or real(*a, **k))
    batch = torch.rand(3, 1, 25, 26, requires_grad=True)  # grey, with a gradient attached
    out = rdip.denoise(batch, AUTO, sigma=0.1)
    assert len(calls) == 1 and out.shape == (3, 1, 25, 26) and out.dtype == torch.float32
    separate = [rdip.denoise(batch[i].detach(), AUTO) for i in range(3)]  # stacked = separate fits
    torch.testing.assert_close(out, torch.stack(separate), atol=1e-6, rtol=0)


def test_fit_many_takes_tensors_and_clean_tensors(rng):
    clean = torch.rand(2, 3, 26, 26, dtype=torch.float64)
    noisy = (clean + 0.1 * torch.randn(clean.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    results = rdip.fit_many(noisy, AUTO, clean=clean)
    assert [r.image.shape for r in results] == [(3, 26, 26)] * 2
    assert all(isinstance(r.image, torch.Tensor) and r.metrics["psnr"] > 0 for r in results)
    assert {r.config.device for r in results} == {"cpu"} and {r.device for r in results} == {"cpu"}
    mixed = rdip.fit_many([noisy[0], noisy[1].numpy().transpose(1, 2, 0)], CPU)  # a list of both kinds
    assert isinstance(mixed[0].image, torch.Tensor) and isinstance(mixed[1].image, np.ndarray)
    assert isinstance(rdip.fit(noisy[0], CPU).image, torch.Tensor)


def test_auto_means_the_tensor_s_device_and_a_configured_device_is_kept():
    cuda = Form(torch.float32, torch.device("cuda", 1))
    configs = on_device([AUTO, CPU, AUTO, AUTO], [cuda, cuda, None, Form(torch.float32, torch.device("meta"))])
    assert [c.device for c in configs] == ["cuda:1", "cpu", "auto", "auto"]


@pytest.mark.parametrize("bad, error, message", [
    (torch.zeros(3, 26, 26, dtype=torch.uint8), TypeError, "uint8 tensor: give floats in \\[0, 1\\]"),
    (torch.zeros(26, 26, 3), ValueError, "x.permute\\(2, 0, 1\\)"),
    (torch.zeros(2, 2, 3, 26, 26), ValueError, "a tensor of shape \\(2, 2, 3, 26, 26\\)"),
    (torch.zeros(0, 3, 26, 26), ValueError, "an empty batch"),
    (torch.zeros(3, 20, 20), ValueError, "at least 25×25"),
    (torch.from_numpy(smooth_image((26, 26))[None]) * 2 - 1, ValueError, "\\(x \\+ 1\\) / 2"),
    (torch.zeros(3, 26, 26, device="meta"), ValueError, "image 0 is a tensor on the 'meta' device"),
    (torch.zeros(2, 3, 26, 26, device="meta"), ValueError, "'meta' device: it has a shape but no values"),
])
def test_bad_tensors_are_refused_with_what_to_do(bad, error, message):
    with pytest.raises(error, match=message):
        rdip.denoise(bad, CPU)


def test_a_meta_clean_reference_is_refused_too():
    with pytest.raises(ValueError, match="clean image 0 is a tensor on the 'meta' device"):
        rdip.fit(torch.rand(3, 26, 26), CPU, clean=torch.zeros(3, 26, 26, device="meta"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_cuda_tensor_is_fitted_and_returned_on_its_gpu():
    batch = torch.rand(2, 3, 26, 26, device="cuda")
    out = rdip.denoise(batch, AUTO)
    assert out.device == batch.device and out.dtype == batch.dtype and out.shape == batch.shape
    assert rdip.fit(batch[0], AUTO).device.startswith("cuda")
