import sys
from pathlib import Path

import numpy as np
import pytest

from rdip.cli import run

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
CIFAR_NPZ = DATA / "cifar10" / "cifar10_test_0000-0749.npz"


@pytest.fixture(scope="session")
def cifar():
    """CIFAR-10 test images as float64 (N, 32, 32, 3) in [0, 1]: 0–749 from ../shared/data where
    it is there, else the 15 (0–14) bundled with rdip, as a user's clone has them."""
    if CIFAR_NPZ.exists():
        with np.load(CIFAR_NPZ) as d:
            return d["images"].astype(np.float64) / 255.0
    from rdip.images.cifar10 import load_cifar10

    return load_cifar10(range(15))[0].astype(np.float64) / 255.0


def write_png(path, array: np.ndarray) -> None:
    """Save a uint8 or uint16, grey or RGB array as PNG (test inputs; libpng via imagecodecs)."""
    import imagecodecs

    Path(path).write_bytes(imagecodecs.png_encode(np.ascontiguousarray(array)))


def quiet(*_) -> None:
    """A ``log`` that prints nothing."""


def manifest_rows(out) -> list[dict]:
    """The rows of ``out/manifest.jsonl`` (rdip batch), in order."""
    import json

    return [json.loads(line) for line in (Path(out) / "manifest.jsonl").read_text().splitlines()]


@pytest.fixture
def make_folder(tmp_path):
    """A factory: ``make_folder({name: content})`` writes each file into ``tmp_path/in`` (an array
    as PNG for ``.png``, with ``np.save`` for ``.npy``; bytes or text as they are) and returns the
    folder."""

    def make(files: dict) -> Path:
        folder = tmp_path / "in"
        folder.mkdir(exist_ok=True)
        for name, content in files.items():
            path = folder / name
            if isinstance(content, bytes):
                path.write_bytes(content)
            elif isinstance(content, str):
                path.write_text(content)
            elif name.endswith(".npy"):
                np.save(path, content)
            else:
                write_png(path, content)
        return folder

    return make


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run ``rdip ARGS…`` in this process; return (exit code, stdout, stderr)."""

    def call(*args):
        monkeypatch.setattr(sys, "argv", ["rdip", *map(str, args)])
        with pytest.raises(SystemExit) as exit_:
            run()
        out, err = capsys.readouterr()
        return exit_.value.code, out, err

    return call


def smooth_image(shape=(32, 32, 3), sigma: float = 0.05, seed: int = 0) -> np.ndarray:
    """A clean-looking image in [0, 1] (a ramp and a bright disc, values 0.1-0.9) with Gaussian
    noise of ``sigma``, not clipped: what a photograph with synthetic noise looks like to the
    noise estimate (random pixels look like noise of σ ≈ 0.3)."""
    h, w = shape[:2]
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    clean = 0.1 + 0.5 * (x + y) / 2 + 0.3 * ((x - 0.5) ** 2 + (y - 0.5) ** 2 < 0.1)
    if len(shape) == 3:
        clean = np.repeat(clean[:, :, None], shape[2], axis=2) * np.linspace(0.8, 1.0, shape[2])
    return clean + np.random.default_rng(seed).normal(0, sigma, clean.shape)
