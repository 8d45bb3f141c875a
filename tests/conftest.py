import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data() -> Path | None:
    """The real data: $PYRAMID_DATA, else ../shared/data beside the clone."""
    for cand in (os.environ.get("PYRAMID_DATA"), REPO.parent / "shared" / "data"):
        if cand and (Path(cand) / "MNIST" / "raw").is_dir():
            return Path(cand)
    return None


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = shared_data()
    if root is None:
        pytest.skip("real data not found: set PYRAMID_DATA to a folder holding MNIST/, FashionMNIST/, mvtec_ad/")
    return root
