from pathlib import Path

import numpy as np
import pytest

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
