"""The tutorial notebooks: committed without outputs, parameterised, and each one executed top to
bottom in quick mode (papermill, offline, PYRAMID_DATA), failing on any error."""

import os
from pathlib import Path

import nbformat
import pytest
from conftest import shared_data

from pyramid_lib import data
from pyramid_lib.notebook_runner import execute, notebooks
from pyramid_lib.tutorial import (
    QUICK_TEST_LIMIT,
    limited_test_split,
    load_data,
    paper_decoder,
    quick_from_env,
    setup,
    size_trace,
    subset_test,
)

NOTEBOOKS = notebooks()
EXPECTED = ["00_tour", "01_architecture", "02_losses", "03_mnist", "04_fashion_mnist", "05_mvtec",
            "06_results_vs_paper", "07_inspector", "08_ablations"]


def test_the_numbered_notebooks_are_all_there():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{path.name}: cells {dirty} have outputs or execution counts; run `make strip`"
    assert "widgets" not in nb.metadata, f"{path.name}: widget state saved in the notebook; run `make strip`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_opens_with_one_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])]
    assert tagged == [0], f"{path.name}: the first code cell, and only it, must be tagged `parameters`"
    src = code[0].source
    for name in ("QUICK", "DEVICE", "DATA_ROOT", "OUT_DIR"):
        assert f"{name} =" in src, f"{path.name}: the parameters cell lacks {name}"
    assert 'os.environ.get("PYRAMID_DATA"' in src and 'os.environ.get("CI")' in src


def test_quick_flag_follows_the_environment():
    assert quick_from_env({"CI": "true"})
    assert quick_from_env({"PYRAMID_QUICK": "1"})
    assert not quick_from_env({})
    assert not quick_from_env({"PYRAMID_QUICK": "0"})


def test_stratified_test_subset_keeps_both_labels():
    d = data.load("mnist-sample", 3)
    small = subset_test(d, 50)
    y = small.test.labels
    assert len(small.test) <= 52 and (y == 0).sum() >= 2 and (y == 1).sum() >= 2
    assert set(small.test.names) <= set(d.test.names)
    assert subset_test(d, 50).test.names == small.test.names  # seeded
    assert subset_test(d, None) is d


def test_missing_data_falls_back_to_stand_ins(tmp_path, capsys):
    s = setup(True, "cpu", tmp_path / "empty", tmp_path / "out", notebook="t")
    d, note = load_data("fmnist", "4", s)
    assert d.dataset == "mnist-sample" and "STAND-IN" in note and len(d.test) <= QUICK_TEST_LIMIT + 2
    d, note = load_data("mvtec", "carpet", s)
    assert d.dataset == "folder" and "NOT MVTec" in note
    assert d.test.masks is not None and d.test.masks.sum() > 0 and set(d.test.classes) == {"good", "scratch", "blob"}
    cfg = s.config_for(d)
    assert Path(cfg.data_root).name == "carpet" and cfg.weights == "random" and cfg.profile == "quick"
    assert "STAND-IN" in capsys.readouterr().out


def test_paper_decoder_sizes_as_printed():
    assert size_trace(paper_decoder("mvtec"), 1024, 4) == [4, 7, 13, 28, 56]
    assert size_trace(paper_decoder("mnist"), 64, 1)[-1] == 21
    assert size_trace(paper_decoder("mnist"), 64, 8)[-1] == 28


def test_limited_test_split_applies_and_restores():
    load = data.load
    with limited_test_split(30):
        assert len(data.load("mnist-sample", 0).test) <= 32
    assert data.load is load


def kernel_threads() -> int:
    """Torch threads per notebook kernel: at most half the cores, shared among pytest-xdist
    workers.  On 2 cores that is 1: two threads gain little on these tiny models and lose
    badly when anything else runs (OpenMP threads spin while they wait)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    return max(1, (os.cpu_count() or 1) // max(2, workers))


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_quick_mode(path, tmp_path):
    """Execute the notebook top to bottom, as CI and `make notebooks` do (papermill)."""
    root = os.environ.get("PYRAMID_DATA") or shared_data() or (tmp_path / "no-data")
    threads = str(kernel_threads())
    env = {"PYRAMID_QUICK": "1", "PYRAMID_DATA": str(root), "PYRAMID_WORK": str(tmp_path / "work"),
           "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    out = tmp_path / path.name
    execute(path, out, quick=True, timeout=600, env=env)
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors[0]
    written = [p for p in (tmp_path / "work").rglob("config.json")]
    if path.stem in ("03_mnist", "04_fashion_mnist", "05_mvtec", "07_inspector", "08_ablations"):
        assert written, f"{path.name} trained nothing under PYRAMID_WORK"  # runs go there, not into results/
