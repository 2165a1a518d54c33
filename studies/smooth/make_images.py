"""The flat and slowly varying test images of studies/smooth.toml, written as 8-bit colour PNG:

- ``flat``: mid-grey (0.5, 0.5, 0.5), 64×64;
- ``gradient``: a diagonal ramp from dark blue-grey to light, blurred (Gaussian σ = 4), 64×64;
- ``sky``: scikit-image's ``rocket``, rows 16–79 and columns 288–351 (the evening sky);
- ``wall``: scikit-image's ``astronaut``, rows 128–191 and columns 288–351 (the plain backdrop);
- ``bokeh``: scikit-image's ``chelsea``, rows 32–95 and columns 384–447 (the blurred background).

The three crops are the 64×64 windows of least fine detail in those photographs (the smallest
standard deviation of the image less its Gaussian blur at σ = 2, on a grid of 16 pixels).

    python studies/smooth/make_images.py      # writes studies/smooth/images/*.png
"""

from pathlib import Path

import imagecodecs
import numpy as np
from scipy.ndimage import gaussian_filter
from skimage import data

OUT = Path(__file__).parent / "images"


def images() -> dict[str, np.ndarray]:
    """The test images, float in [0, 1], (64, 64, 3)."""
    y, x = np.mgrid[0:64, 0:64] / 63.0
    ramp = (x + y) / 2
    gradient = np.stack([0.25 + 0.5 * ramp, 0.3 + 0.45 * ramp, 0.4 + 0.35 * ramp], axis=2)
    return {
        "flat": np.full((64, 64, 3), 0.5),
        "gradient": gaussian_filter(gradient, (4, 4, 0), mode="nearest"),
        "sky": data.rocket()[16:80, 288:352] / 255.0,
        "wall": data.astronaut()[128:192, 288:352] / 255.0,
        "bokeh": data.chelsea()[32:96, 384:448] / 255.0,
    }


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, image in images().items():
        (OUT / f"{name}.png").write_bytes(imagecodecs.png_encode(np.round(image * 255).astype(np.uint8)))
        print(f"wrote {OUT / name}.png")


if __name__ == "__main__":
    main()
