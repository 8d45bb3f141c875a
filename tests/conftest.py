import os
from pathlib import Path

import pytest
import torch
from helpers import tiny_cfg
from kernels import capability, forced

from pyramid_lib import data
from pyramid_lib.engine.run_dir import RunDir
from pyramid_lib.engine.trainer import train

REPO = Path(__file__).resolve().parents[1]


def pytest_report_header(config):
    """Which kernel set the numbers in this run come from (make test-kernels runs a lower one too)."""
    return f"torch {torch.__version__}, CPU kernels {capability()}" + (f" (forced: {forced()})" if forced() else "")


def pytest_sessionstart(session):
    """A forced kernel set that torch did not take would make `make test-kernels` test nothing new."""
    want = os.environ.get("ATEN_CPU_CAPABILITY")
    if want and want.upper() != capability():
        raise pytest.UsageError(f"ATEN_CPU_CAPABILITY={want} but torch runs {capability()} kernels")


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


@pytest.fixture(scope="module")
def tiny():
    """12 training normals (11 fit + 1 held out: 3 batches of 4 per epoch), 12 test images."""
    s = data.load("mnist-sample", 1)
    normal = torch.nonzero(s.test.labels == 0).flatten()[:6]
    anomalous = torch.nonzero(s.test.labels == 1).flatten()[:6]
    return data.OneClassData("mnist-sample", "1", s.train.subset(torch.arange(12)),
                             s.test.subset(torch.cat([normal, anomalous])), 28, data.MNIST_CLASSES)



@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny) -> RunDir:
    """A finished one-epoch run whose checkpoint the checkpoint tests copy and tamper with."""
    return train(tiny_cfg(epochs=1), tmp_path_factory.mktemp("tiny") / "run", data=tiny, progress=False)

