import os
from pathlib import Path

import pytest
import torch
from helpers import tiny_cfg
from kernels import capability, forced

from pyramid_lib import baselines, data
from pyramid_lib.engine import trainer
from pyramid_lib.engine.run_dir import RunDir
from pyramid_lib.engine.trainer import train
from pyramid_lib.machine import usable_cores

REPO = Path(__file__).resolve().parents[1]

# Under `pytest -n N` each worker gets its share of the cores: N workers with every core's worth of
# torch threads each oversubscribe the machine, and OpenMP threads spinning for a core run a
# network pass 10-20x slower than one thread (measured: 25 s against 1.5 s per shape test).
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    torch.set_num_threads(max(1, usable_cores() // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))


def pytest_report_header(config):
    """Which kernel set the numbers in this run come from (make test-kernels runs a lower one too)."""
    return f"torch {torch.__version__}, CPU kernels {capability()}" + (f" (forced: {forced()})" if forced() else "")


def pytest_sessionstart(session):
    """A forced kernel set that torch did not take would make `make test-kernels` test nothing new."""
    want = os.environ.get("ATEN_CPU_CAPABILITY")
    if want and want.upper() != capability():
        raise pytest.UsageError(f"ATEN_CPU_CAPABILITY={want} but torch runs {capability()} kernels")


# ---------------------------------------------------------------- every test that trains is marked slow
# `make test-fast` (-m "not slow") must stay a loop of a minute or two, so a test that trains is
# marked slow, and this checks it: every training loop of the kit (our network, the plain
# autoencoders, the benchmarks) runs its epochs through `trainer.epoch_steps`, counted here; a test
# not marked slow during whose setup or call an epoch ran fails, naming the count.  Tests using
# the fixtures that train (module-scoped: whichever test comes first pays) are marked slow below.
EPOCHS = [0]
_epoch_steps = trainer.epoch_steps


def _counted_epoch_steps(*a, **k):
    EPOCHS[0] += 1
    yield from _epoch_steps(*a, **k)


trainer.epoch_steps = baselines.epoch_steps = _counted_epoch_steps
TRAINING_FIXTURES = {"tiny_run", "grid_run", "folder_run", "evaluated", "lecturer"}


def pytest_collection_modifyitems(items):
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    item.stash[_BEFORE] = EPOCHS[0]
    yield


_BEFORE = pytest.StashKey[int]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    trained = EPOCHS[0] - item.stash.get(_BEFORE, EPOCHS[0])
    if call.when == "call" and trained and report.passed and item.get_closest_marker("slow") is None:
        report.outcome = "failed"
        report.longrepr = (f"{item.nodeid} trained {trained} epoch(s) but is not marked slow: mark it "
                           "@pytest.mark.slow (or give its training fixture to TRAINING_FIXTURES in tests/conftest.py)")


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

