import sys
from pathlib import Path

import numpy as np
import pytest

from rdip.cli import run

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
CIFAR_NPZ = DATA / "cifar10" / "cifar10_test_0000-0749.npz"


@pytest.fixture(scope="session")
def cifar():
    """CIFAR-10 test images 0–749 as float64 (N, 32, 32, 3) in [0, 1] (from ../shared/data)."""
    if not CIFAR_NPZ.exists():
        pytest.skip(f"{CIFAR_NPZ} not found")
    with np.load(CIFAR_NPZ) as d:
        return d["images"].astype(np.float64) / 255.0


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
