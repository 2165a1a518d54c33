"""The denoisers a user would pick instead of rdip, behind one signature (docs/comparison.md).

Every method is ``denoise_<method>(noisy, sigma=None, seed=0, **options) -> ndarray``: a float
``(H, W)`` grey or ``(H, W, 3)`` colour image nominally in [0, 1] (noisy values may lie outside) in,
the denoised image of the same shape, float64 clipped to [0, 1], out. ``sigma`` is the noise's
standard deviation; methods that need it estimate it when it is None (:func:`noise_sigma`), the
others ignore it. ``seed`` matters only to the fitted networks (``dip``, ``zsn2n``, ``rdip-*``); they
seed their own generators inside :func:`torch.random.fork_rng`, so equal seeds give equal outputs
on one device and the caller's random state is left untouched. An option a method does not know
raises :class:`TypeError`; a value it cannot use (a range, a name, a device this machine lacks)
raises :class:`ValueError` before any work: :data:`CHECKS` holds each method's check, which
:func:`rdip.experiments.studyfile.check_options` runs before a study's or a comparison's first run.
:data:`METHODS` names them all; :func:`denoise` dispatches by name.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from skimage import restoration
from torch import nn

from ..config import MAX_ITERS, PRESETS
from ..images.metrics import channel_axis
from ..images.noise import noise_sigma
from ..method.devices import resolve_device
from ..method.engine import denoise as fit_denoise

Denoiser = Callable[..., np.ndarray]


def _image(noisy: np.ndarray) -> np.ndarray:
    """Validate ``noisy`` and return it as float64 ``(H, W)`` or ``(H, W, 3)``."""
    a = np.asarray(noisy, dtype=np.float64)
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
        raise ValueError(f"image must be (H, W) grey or (H, W, 3) colour, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("image contains NaN or infinite values")
    return a


#: The largest ``patch_size`` and ``patch_distance`` NL-means takes (scikit-image pads the image
#: by both: larger ones only cost memory and time; negative ones crash the process).
MAX_PATCH = 100
#: The wavelet shrinkage rules of :func:`denoise_wavelet`.
WAVELET_METHODS = ("BayesShrink", "VisuShrink")
#: The profiles of the ``bm3d`` package (``bm3d._select_profile``).
BM3D_PROFILES = ("np", "refilter", "vn", "vn_old", "high", "deb")


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def check_device(device, where: str = "device") -> None:
    """``device`` is ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` and, for CUDA, one this machine has."""
    _need(isinstance(device, str) and (device in ("auto", "cpu", "cuda") or
                                       (device.startswith("cuda:") and device[5:].isdigit())),
          f"{where} must be auto, cpu, cuda or cuda:N, got {device!r}")
    if device.startswith("cuda"):
        _need(torch.cuda.is_available(), f"{where} {device!r}: CUDA is not available on this "
                                         "machine; use device 'cpu' or 'auto'")
        _need(device == "cuda" or int(device[5:]) < torch.cuda.device_count(),
              f"{where} {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")


def check_nlmeans(h_factor: float = 0.8, patch_size: int = 3, patch_distance: int = 5) -> None:
    """The options of :func:`denoise_nlmeans`, checked (a :class:`ValueError` names the bad one)."""
    _need(h_factor > 0, f"nlmeans.h_factor must be > 0, got {h_factor}")
    for key, value in (("patch_size", patch_size), ("patch_distance", patch_distance)):
        _need(1 <= value <= MAX_PATCH, f"nlmeans.{key} must be between 1 and {MAX_PATCH}, got {value}")


def check_tv(weight: float = 0.08) -> None:
    _need(weight > 0, f"tv.weight must be > 0, got {weight}")


def check_wavelet(method: str = "BayesShrink", wavelet: str = "db1") -> None:
    import pywt

    _need(method in WAVELET_METHODS, f"wavelet.method must be one of {', '.join(WAVELET_METHODS)}, "
                                     f"got {method!r}")
    _need(wavelet in pywt.wavelist(kind="discrete"), f"wavelet.wavelet {wavelet!r} is not a discrete "
          "wavelet of PyWavelets; use e.g. db1, db4, sym8, coif2 (pywt.wavelist(kind='discrete'))")


def check_bm3d(profile: str = "np") -> None:
    _need(profile in BM3D_PROFILES, f"bm3d.profile must be one of {', '.join(BM3D_PROFILES)}, got {profile!r}")


def _check_fitted(method: str, iters: int, lr: float, device: str) -> None:
    _need(1 <= iters <= MAX_ITERS, f"{method}.iters must be between 1 and {MAX_ITERS}, got {iters}")
    _need(lr > 0, f"{method}.lr must be > 0, got {lr}")
    check_device(device, f"{method}.device")


def check_dip(iters: int = 1800, lr: float = 0.01, ema: float = 0.99, device: str = "cpu") -> None:
    _check_fitted("dip", iters, lr, device)
    _need(0 <= ema < 1, f"dip.ema must be in [0, 1), got {ema}")


def check_zsn2n(iters: int = 2000, lr: float = 0.001, device: str = "cpu") -> None:
    _check_fitted("zsn2n", iters, lr, device)


def denoise_nlmeans(noisy: np.ndarray, sigma: float | None = None, seed: int = 0, *,
                    h_factor: float = 0.8, patch_size: int = 3, patch_distance: int = 5) -> np.ndarray:
    """Non-local means (Buades, Coll & Morel, CVPR 2005), scikit-image's fast mode, h = 0.8·σ."""
    check_nlmeans(h_factor, patch_size, patch_distance)
    x = _image(noisy)
    s = noise_sigma(x, sigma)
    out = restoration.denoise_nl_means(x, h=h_factor * s, sigma=s, patch_size=patch_size,
                                       patch_distance=patch_distance, fast_mode=True,
                                       channel_axis=channel_axis(x))
    return np.clip(out, 0.0, 1.0)


def denoise_tv(noisy: np.ndarray, sigma: float | None = None, seed: int = 0, *,
               weight: float = 0.08) -> np.ndarray:
    """Total-variation denoising (Rudin, Osher & Fatemi 1992) by Chambolle's projection (2004).
    ``weight`` sets the smoothing; ``sigma`` is not used."""
    check_tv(weight)
    x = _image(noisy)
    out = restoration.denoise_tv_chambolle(x, weight=weight, channel_axis=channel_axis(x))
    return np.clip(out, 0.0, 1.0)


def denoise_wavelet(noisy: np.ndarray, sigma: float | None = None, seed: int = 0, *,
                    method: str = "BayesShrink", wavelet: str = "db1") -> np.ndarray:
    """Wavelet shrinkage: BayesShrink (Chang, Yu & Vetterli 2000) or VisuShrink (Donoho &
    Johnstone 1994); colour images are shrunk in YCbCr."""
    check_wavelet(method, wavelet)
    x = _image(noisy)
    out = restoration.denoise_wavelet(x, sigma=noise_sigma(x, sigma), wavelet=wavelet, method=method,
                                      rescale_sigma=True, convert2ycbcr=x.ndim == 3,
                                      channel_axis=channel_axis(x))
    return np.clip(out, 0.0, 1.0)


def denoise_bm3d(noisy: np.ndarray, sigma: float | None = None, seed: int = 0, *,
                 profile: str = "np") -> np.ndarray:
    """BM3D (Dabov, Foi, Katkovnik & Egiazarian, IEEE TIP 2007; CBM3D for colour, in the opponent
    colour space) through the ``bm3d`` package, an optional extra under a non-commercial licence."""
    check_bm3d(profile)
    try:
        import bm3d
    except ImportError as e:
        raise ImportError("BM3D needs the optional extra: pip install 'rdip[bm3d]' "
                          "(non-commercial licence)") from e
    x = _image(noisy)
    s = noise_sigma(x, sigma)
    out = bm3d.bm3d_rgb(x, sigma_psd=s, profile=profile) if x.ndim == 3 else \
        bm3d.bm3d(x, sigma_psd=s, profile=profile)
    return np.clip(out, 0.0, 1.0)


def _to_tensor(x: np.ndarray, device: torch.device) -> torch.Tensor:
    """``(H, W)`` or ``(H, W, C)`` → float32 ``(1, C, H, W)``."""
    chw = x[None] if x.ndim == 2 else x.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(chw)).float()[None].to(device)


def _to_image(t: torch.Tensor, grey: bool) -> np.ndarray:
    a = t.detach().to("cpu", torch.float64).numpy()[0].transpose(1, 2, 0)
    return np.clip(a[:, :, 0] if grey else a, 0.0, 1.0)


def _block(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """Reflection-padded convolution → BatchNorm → LeakyReLU(0.2)."""
    return nn.Sequential(nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, stride),
                         nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))


class _Hourglass(nn.Module):
    """One level of the DIP encoder–decoder and, recursively, all levels below it.

    The input goes two ways: a 1×1 skip block, and a down block (stride-2 then stride-1 3×3
    convolutions) → the deeper levels → bilinear up-sampling. Both are concatenated, normalised,
    and mixed by the up block (3×3 then 1×1 convolutions).
    """

    def __init__(self, cin: int, channels: int, skip: int, levels: int):
        super().__init__()
        self.skip = _block(cin, skip, 1)
        self.down = nn.Sequential(_block(cin, channels, 3, 2), _block(channels, channels, 3))
        self.deeper = _Hourglass(channels, channels, skip, levels - 1) if levels > 1 else nn.Identity()
        self.up = nn.Sequential(nn.BatchNorm2d(skip + channels), _block(skip + channels, channels, 3),
                                _block(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        deep = F.interpolate(self.deeper(self.down(x)), scale_factor=2, mode="bilinear")
        return self.up(torch.cat([self.skip(x), deep], dim=1))


def denoise_dip(noisy: np.ndarray, sigma: float | None = None, seed: int = 0, *, iters: int = 1800,
                lr: float = 0.01, ema: float = 0.99, device: str = "cpu") -> np.ndarray:
    """Deep Image Prior (Ulyanov, Vedaldi & Lempitsky, CVPR 2018), the paper's denoising setup.

    An hourglass of 5 levels, 128 channels down and up, 4 skip channels per level, sigmoid output,
    maps a fixed input of 32 channels of uniform noise × 0.1, jittered every iteration by Gaussian
    noise of std 1/30, to the image; Adam (``lr``) on the mean squared error to the noisy image
    for ``iters`` iterations. The result is the exponential average (weight ``ema``) of the outputs.
    The image is reflect-padded to sides that are multiples of 32, and at least 64 so that the
    deepest level keeps 2×2 pixels for BatchNorm, and cropped back. ``sigma`` is not used.
    ``device``: ``cpu``, ``cuda`` or ``auto``; CUDA results may vary run to run (non-deterministic
    kernels).
    """
    check_dip(iters, lr, ema, device)
    x = _image(noisy)
    dev = resolve_device(device)
    (h, w), channels = x.shape[:2], 1 if x.ndim == 2 else 3
    ph, pw = (max(64, math.ceil(n / 32) * 32) - n for n in (h, w))
    top, left = ph // 2, pw // 2
    spec = [(top, ph - top), (left, pw - left)] + [(0, 0)] * (x.ndim - 2)
    target = _to_tensor(np.pad(x, spec, mode="reflect"), dev)
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)  # weight initialisation draws from it
        net = nn.Sequential(_Hourglass(32, 128, 4, 5), nn.Conv2d(128, channels, 1), nn.Sigmoid()).to(dev)
    gen = torch.Generator(dev).manual_seed(seed)
    z = torch.rand((1, 32, *target.shape[2:]), generator=gen, device=dev) * 0.1
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    average = torch.zeros_like(target)
    for _ in range(iters):
        out = net(z + torch.randn(z.shape, generator=gen, device=dev) / 30)
        loss = F.mse_loss(out, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        average.lerp_(out.detach(), 1 - ema)
    average /= 1 - ema ** iters  # bias correction, as in :mod:`rdip.method.engine`
    return _to_image(average[:, :, top:top + h, left:left + w], x.ndim == 2)


def _pair_downsample(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ZS-N2N's two half-size sub-images: the means of the anti-diagonal and of the diagonal
    pixels of every 2×2 block, channel by channel."""
    c = x.shape[1]
    anti = x.new_tensor([[0.0, 0.5], [0.5, 0.0]]).expand(c, 1, 2, 2)
    diag = x.new_tensor([[0.5, 0.0], [0.0, 0.5]]).expand(c, 1, 2, 2)
    return F.conv2d(x, anti, stride=2, groups=c), F.conv2d(x, diag, stride=2, groups=c)


def denoise_zsn2n(noisy: np.ndarray, sigma: float | None = None, seed: int = 0, *, iters: int = 2000,
                  lr: float = 0.001, device: str = "cpu") -> np.ndarray:
    """Zero-Shot Noise2Noise (Mansour & Heckel, CVPR 2023).

    A two-hidden-layer network (3×3 convolutions to 48 channels, LeakyReLU 0.2, a 1×1 convolution
    back) predicts the noise, so ``f(y) = y − net(y)``. It is fitted on the pair of sub-images
    ``D1(y), D2(y)`` of :func:`_pair_downsample` with the residual loss
    ``½(‖D1(y) − f(D2(y))‖² + ‖D2(y) − f(D1(y))‖²)`` plus the consistency loss
    ``½(‖f(D1(y)) − D1(f(y))‖² + ‖f(D2(y)) − D2(f(y))‖²)`` (squared norms as means), by Adam at
    ``lr`` halved every 1000 iterations. The result is ``f(y)``. ``sigma`` is not used.
    """
    check_zsn2n(iters, lr, device)
    x = _image(noisy)
    dev = resolve_device(device)
    channels = 1 if x.ndim == 2 else 3
    y = _to_tensor(x, dev)
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        net = nn.Sequential(nn.Conv2d(channels, 48, 3, padding=1), nn.LeakyReLU(0.2),
                            nn.Conv2d(48, 48, 3, padding=1), nn.LeakyReLU(0.2),
                            nn.Conv2d(48, channels, 1)).to(dev)

    def f(t: torch.Tensor) -> torch.Tensor:
        return t - net(t)

    opt = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.StepLR(opt, step_size=1000, gamma=0.5)
    d1, d2 = _pair_downsample(y)
    for _ in range(iters):
        f1, f2 = f(d1), f(d2)
        g1, g2 = _pair_downsample(f(y))
        residual = 0.5 * (F.mse_loss(f2, d1) + F.mse_loss(f1, d2))
        consistency = 0.5 * (F.mse_loss(f1, g1) + F.mse_loss(f2, g2))
        opt.zero_grad(set_to_none=True)
        (residual + consistency).backward()
        opt.step()
        schedule.step()
    with torch.no_grad():
        return _to_image(f(y), x.ndim == 2)


def _rdip(preset: str) -> Denoiser:
    def denoise_rdip(noisy: np.ndarray, sigma: float | None = None, seed: int = 0,
                     **options) -> np.ndarray:
        return fit_denoise(noisy, preset, sigma=sigma, seed=seed, **options)

    denoise_rdip.__name__ = f"denoise_rdip_{preset.replace('-', '_')}"
    denoise_rdip.__doc__ = (f"The recurrent deep image prior (Ho, Alvarez & Marcia), preset "
                            f"``{preset}``; ``options`` are :class:`~rdip.config.FitConfig` fields "
                            f"(e.g. ``iters``, ``device``). ``sigma`` is used only by the "
                            f"``noise`` stopping rule (``stop``).")
    return denoise_rdip


#: Every method by name.
METHODS: dict[str, Denoiser] = {
    "nlmeans": denoise_nlmeans,
    "tv": denoise_tv,
    "wavelet": denoise_wavelet,
    "bm3d": denoise_bm3d,
    "dip": denoise_dip,
    "zsn2n": denoise_zsn2n,
    **{f"rdip-{name}": _rdip(name) for name in ("default", *sorted(set(PRESETS) - {"default"}))},
}


#: Each classical method's check of its options (keywords of its ``denoise_*``; the rdip presets
#: are checked by :class:`~rdip.config.FitConfig`): a :class:`ValueError` names the bad value.
CHECKS: dict[str, Callable[..., None]] = {"nlmeans": check_nlmeans, "tv": check_tv,
                                          "wavelet": check_wavelet, "bm3d": check_bm3d,
                                          "dip": check_dip, "zsn2n": check_zsn2n}


def run_method(method: str, noisy: np.ndarray, /, sigma: float | None = None, seed: int = 0,
               **options) -> np.ndarray:
    """Denoise ``noisy`` with the method named ``method`` (a key of :data:`METHODS`); ``method``
    and ``noisy`` are positional, so that an option may be named ``method`` (wavelet's)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    return METHODS[method](noisy, sigma, seed, **options)
