"""rdip: zero-shot image denoising with a recurrent deep image prior.

Ho, Alvarez and Marcia, "Convolution Padding in Recurrent Neural Networks for Image Denoising with
Limited Data". Arrays in, arrays out: images are NumPy ``(H, W)`` or ``(H, W, 3)`` floats in [0, 1].
"""

from importlib.metadata import PackageNotFoundError, version

from .config import PRESETS, FitConfig, preset
from .images.metrics import psnr, scores, ssim, ssim_centre
from .images.noise import add_noise
from .method.engine import FitResult, denoise, fit, fit_many

try:
    __version__ = version("rdip")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["FitConfig", "FitResult", "PRESETS", "add_noise", "denoise", "fit", "fit_many", "preset",
           "psnr", "scores", "ssim", "ssim_centre", "__version__"]
