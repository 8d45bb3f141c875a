"""A tiny image folder in MVTec AD's layout and a run trained on it, for the engine tests.

Not a conftest.py: tests/test_inspector.py imports the top-level conftest by name.  A test module
uses the fixtures by naming them: `folder_run, copies = folder_helpers.folder_run, folder_helpers.copies`."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import tiny_cfg
from PIL import Image

from pyramid_lib import data
from pyramid_lib.engine.run_dir import RunDir
from pyramid_lib.engine.trainer import train

SIZE = 32  # input size of the folder runs (the field cases' --input-size 32)


def texture(seed: int, side: int = 40, defect: bool = False) -> np.ndarray:
    """A smooth random RGB texture (uint8 side x side x 3), with a dark square when `defect`."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side]
    base = 128 + 60 * np.sin(xx / 5.0 + rng.uniform(0, 6)) * np.cos(yy / 7.0 + rng.uniform(0, 6))
    img = np.stack([base + rng.normal(0, 8, (side, side)) for _ in range(3)], -1)
    if defect:
        img[side // 3:side // 3 + side // 4, side // 3:side // 3 + side // 4] = 10
    return np.clip(img, 0, 255).astype(np.uint8)


def save_png(arr: np.ndarray, path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)
    return path


def make_folder(root: Path, n_train: int = 12, n_good: int = 2, n_defect: int = 2) -> Path:
    """train/good/000..png, test/good/, test/crack/ (no masks)."""
    for i in range(n_train):
        save_png(texture(i), root / "train" / "good" / f"{i:03d}.png")
    for i in range(n_good):
        save_png(texture(100 + i), root / "test" / "good" / f"{i:03d}.png")
    for i in range(n_defect):
        save_png(texture(200 + i, defect=True), root / "test" / "crack" / f"{i:03d}.png")
    return root


def folder_cfg(root: Path, **kw):
    """1 epoch on the folder at SIZE x SIZE; 12 training images: 10 fit, 2 held-out normals."""
    return tiny_cfg(**{"dataset": "folder", "normal_class": "good", "data_root": str(root), "input_size": SIZE,
                       "epochs": 1, "heldout_fraction": 0.2, **kw})


def load_folder(root: Path) -> data.OneClassData:
    return data.load("folder", "good", str(root), False, SIZE)


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory) -> tuple[Path, RunDir]:
    """(data folder, a finished one-epoch run trained on it); tests work on copies of both."""
    base = tmp_path_factory.mktemp("folder_run")
    root = make_folder(base / "data")
    return root, train(folder_cfg(root), base / "run", progress=False)


@pytest.fixture
def copies(folder_run, tmp_path) -> tuple[Path, RunDir]:
    """A copy of folder_run's data folder (to change) and of its run folder (to evaluate)."""
    root, run = folder_run
    shutil.copytree(root, tmp_path / "data")
    shutil.copytree(run.dir, tmp_path / "run")
    return tmp_path / "data", RunDir(tmp_path / "run")
