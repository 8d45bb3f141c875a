"""The tutorial notebooks: committed without outputs, parameterised, reading their settings from the
environment, and writing runs only under PYRAMID_WORK.

Executing them is nbmake's job, not this file's: `make test` runs every notebook top to bottom as
a pytest item in quick mode (`PYRAMID_QUICK=1 pytest --nbmake notebooks/`), failing on any error."""

import importlib
import re
from importlib.util import find_spec
from pathlib import Path

import nbformat
import pytest

from pyramid_lib import data
from pyramid_lib.data import splits
from pyramid_lib.tutorial import (
    QUICK_MVTEC_RUN,
    QUICK_RUN,
    QUICK_SWEEP,
    QUICK_SWEEP_TEST_LIMIT,
    QUICK_TEST_LIMIT,
    load_data,
    quick_from_env,
    run_dir,
    setup,
)

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
EXPECTED = ["00_tour", "01_architecture", "02_losses", "03_mnist", "04_fashion_mnist", "05_mvtec",
            "06_results_vs_paper", "07_inspector", "08_ablations"]
TRAINING = ("03_mnist", "04_fashion_mnist", "05_mvtec", "07_inspector", "08_ablations")


def code_cells(path):
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


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
    code = code_cells(path)
    tagged = [i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])]
    assert tagged == [0], f"{path.name}: the first code cell, and only it, must be tagged `parameters`"
    src = code[0].source
    for name in ("QUICK", "DEVICE", "DATA_ROOT", "OUT_DIR"):
        assert f"{name} =" in src, f"{path.name}: the parameters cell lacks {name}"
    assert 'os.environ.get("PYRAMID_DATA"' in src and 'os.environ.get("CI")' in src
    assert 'os.environ.get("PYRAMID_QUICK")' in src and 'os.environ.get("PYRAMID_WORK"' in src


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_imports_only_what_the_library_has(path):
    """Every `from pyramid_lib... import name` of a notebook names a module or attribute that
    exists (nbmake would find it too, but minutes later)."""
    for cell in code_cells(path):
        for mod, names in re.findall(r"^from (pyramid_lib[\w.]*) import ([\w, ]+)$", cell.source, re.M):
            m = importlib.import_module(mod)
            for name in (n.split(" as ")[0].strip() for n in names.split(",")):
                assert hasattr(m, name) or find_spec(f"{mod}.{name}"), f"{path.name}: {mod}.{name}"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem in TRAINING], ids=lambda p: p.stem)
def test_training_notebooks_write_runs_under_out_dir(path):
    """Runs go under OUT_DIR (PYRAMID_WORK), through the Setup built from it, never into results/."""
    src = "\n".join(c.source for c in code_cells(path))
    assert re.search(r"nb\.setup\(QUICK, DEVICE, DATA_ROOT, OUT_DIR", src), f"{path.name}: setup without OUT_DIR"
    assert "train_and_score(" in src, f"{path.name} trains nothing"
    assert not re.search(r"[\"'][./]*results\b", src) and "RESULTS_ROOT" not in src, f"{path.name} names results/"


def test_runs_are_named_under_the_setup_out_dir(tmp_path):
    s = setup(True, "cpu", tmp_path / "empty", tmp_path / "work", notebook="03_mnist")
    d, _ = load_data("mnist-sample", "0", s)
    cfg = s.config_for(d)
    run = run_dir(s, cfg)
    assert run.dir.parent == tmp_path / "work" / "03_mnist"
    assert run_dir(s, cfg).dir == run.dir  # the same settings reuse the folder
    assert run_dir(s, s.config_for(d, epochs=cfg.epochs + 1)).dir != run.dir
    assert run_dir(s, s.config_for(d, test_limit=None)).dir != run.dir


def test_quick_flag_follows_the_environment():
    assert quick_from_env({"CI": "true"})
    assert quick_from_env({"PYRAMID_QUICK": "1"})
    assert not quick_from_env({})
    assert not quick_from_env({"PYRAMID_QUICK": "0"})


def test_quick_settings_cut_the_test_splits_with_the_recorded_option(tmp_path):
    """Quick runs and sweeps score a seeded subset (TrainConfig.test_limit, recorded in
    config.json): no library function is replaced while they run."""
    s = setup(True, "cpu", tmp_path / "empty", tmp_path / "out", notebook="t")
    assert s.sweep["test_limit"] == QUICK_SWEEP["test_limit"] == QUICK_SWEEP_TEST_LIMIT
    d, _ = load_data("mnist-sample", "0", s)
    assert s.config_for(d).test_limit == QUICK_RUN["test_limit"] == QUICK_TEST_LIMIT
    assert QUICK_MVTEC_RUN["test_limit"] is None  # MVTec test splits are small: scored whole
    assert s.config_for(d, test_limit=30).test_limit == 30


def test_stratified_test_subset_keeps_both_labels():
    d = data.load("mnist-sample", 3)
    idx = splits.stratified_subset(d.test.labels, 50)
    y = d.test.labels[idx]
    assert len(idx) <= 52 and (y == 0).sum() >= 2 and (y == 1).sum() >= 2
    assert set(d.test.subset(idx).names) <= set(d.test.names)
    assert splits.stratified_subset(d.test.labels, 50).tolist() == idx.tolist()  # seeded
    assert len(splits.stratified_subset(d.test.labels, None)) == len(d.test)


def test_missing_data_falls_back_to_stand_ins(tmp_path, capsys):
    s = setup(True, "cpu", tmp_path / "empty", tmp_path / "out", notebook="t")
    d, note = load_data("fmnist", "4", s)
    assert d.dataset == "mnist-sample" and "STAND-IN" in note
    assert len(splits.stratified_subset(d.test.labels, s.config_for(d).test_limit)) <= QUICK_TEST_LIMIT + 2
    d, note = load_data("mvtec", "carpet", s)
    assert d.dataset == "folder" and "NOT MVTec" in note
    assert d.test.masks is not None and d.test.masks.sum() > 0 and set(d.test.classes) == {"good", "scratch", "blob"}
    cfg = s.config_for(d)
    assert Path(cfg.data_root).name == "carpet" and cfg.weights == "random" and cfg.profile == "quick"
    assert "STAND-IN" in capsys.readouterr().out
