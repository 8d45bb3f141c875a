"""The tutorial notebooks and their helpers (pyramid_lib/tutorial.py).

The notebooks: committed without outputs, one parameters cell (PROFILE, DEVICE, DATA_ROOT, WORK)
handed to `nb.setup`, no quick switch read from the environment, no path relative to notebooks/.
The helpers: the default profile, `setup`, `Setup.config`, the run cache of `train_cached`,
`committed_results` and `made_by` (experiments.results), the stand-ins of `load_data`.

Executing the notebooks is nbmake's job, not this file's: `make test-notebooks` runs every
notebook top to bottom in the quick profile, then tests/test_notebook_outputs.py reads what they
printed."""

import importlib
import re
from dataclasses import asdict, fields, replace
from importlib.util import find_spec
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pandas as pd
import pytest
import torch

from pyramid_lib import data, tutorial
from pyramid_lib.config import PROFILES, TrainConfig
from pyramid_lib.data import splits
from pyramid_lib.errors import ConfigError, DataError
from pyramid_lib.experiments import results
from pyramid_lib.files import safe_torch_load
from pyramid_lib.tutorial import committed_results, default_profile, load_data, made_by, run_dir, setup, train_cached

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
EXPECTED = ["00_tour", "01_architecture", "02_losses", "03_mnist", "04_fashion_mnist", "05_mvtec",
            "06_results_vs_paper", "07_inspector", "08_ablations"]
TINY = dict(epochs=1, train_limit=24, test_limit=24, batch_size=8)  # a run of a few seconds


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
def test_opens_with_one_parameters_cell_handed_to_setup(path):
    """The first code cell, and only it, is tagged `parameters` and sets PROFILE, DEVICE,
    DATA_ROOT and WORK; the next one hands them, in that order, to nb.setup with the notebook's
    name."""
    code = code_cells(path)
    tagged = [i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])]
    assert tagged == [0], f"{path.name}: the first code cell, and only it, must be tagged `parameters`"
    for name in ("PROFILE", "DEVICE", "DATA_ROOT", "WORK"):
        assert re.search(rf"^{name} = ", code[0].source, re.M), f"{path.name}: the parameters cell lacks {name}"
    assert re.search(r"^PROFILE = None\b", code[0].source, re.M), f"{path.name}: PROFILE must default to None"
    call = rf'nb\.setup\(PROFILE, DEVICE, DATA_ROOT, WORK, notebook="{path.stem}"\)'
    assert re.search(call, code[1].source), f"{path.name}: the second code cell must call {call}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_names_no_path_beside_the_notebooks(path):
    """No path relative to notebooks/ (nbmake runs copies elsewhere)."""
    src = "\n".join(c.source for c in code_cells(path))
    assert not re.search(r"[\"']\.\./", src), f"{path.name} names a path relative to notebooks/"
    assert not re.search(r"[\"'][./]*results\b", src), f"{path.name} names results/ (use nb.committed_results)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_imports_only_what_the_library_has(path):
    """Every `from pyramid_lib... import name` of a notebook names a module or attribute that
    exists (nbmake would find it too, but minutes later)."""
    for cell in code_cells(path):
        for mod, names in re.findall(r"^from (pyramid_lib[\w.]*) import ([\w, ]+)$", cell.source, re.M):
            m = importlib.import_module(mod)
            for name in (n.split(" as ")[0].strip() for n in names.split(",")):
                assert hasattr(m, name) or find_spec(f"{mod}.{name}"), f"{path.name}: {mod}.{name}"


def test_default_profile_is_laptop_on_a_gpu_too_unless_the_environment_names_one(monkeypatch):
    """A GPU never starts the paper profile (600 epochs, ImageNet weights) unasked (issue 28)."""
    assert default_profile({"PYRAMID_PROFILE": "quick"}) == "quick"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_profile({}) == "laptop"
    assert default_profile({"PYRAMID_PROFILE": ""}) == "laptop"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_profile({}) == "laptop"
    assert default_profile({"PYRAMID_PROFILE": "paper"}) == "paper"
    assert default_profile({"PYRAMID_PROFILE": "cpu"}) == "cpu"
    monkeypatch.setenv("PYRAMID_PROFILE", "laptop")
    assert default_profile() == "laptop"


def test_setup_takes_the_profile_from_the_environment_and_rejects_unknown_names(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PYRAMID_PROFILE", "quick")
    s = setup(None, "cpu", tmp_path / "data", tmp_path / "work", notebook="t")
    assert (s.profile, s.device, s.weights, s.work) == ("quick", "cpu", "random", tmp_path / "work")
    assert "profile: quick (10 epochs" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="--profile must be one of quick, laptop, cpu, paper, got 'fast'"):
        setup("fast", "cpu", tmp_path, tmp_path)
    monkeypatch.setenv("PYRAMID_PROFILE", "QUICK")
    with pytest.raises(ConfigError, match="got 'QUICK'"):
        setup(None, "cpu", tmp_path, tmp_path)


def test_setup_defaults_to_the_kits_data_and_a_per_user_cache_wherever_the_notebook_runs(tmp_path, monkeypatch):
    """The runs go to the user's cache folder (platformdirs), not into the kit: a kit on a
    read-only or shared disk still works (issue 28)."""
    import platformdirs

    monkeypatch.delenv("PYRAMID_DATA", raising=False)
    monkeypatch.delenv("PYRAMID_WORK", raising=False)
    monkeypatch.chdir(tmp_path)  # as a copy of a notebook executed elsewhere
    s = setup("quick", "cpu")
    assert s.data_root == tutorial.KIT / "data" and s.work == platformdirs.user_cache_path("pyramid-ad", False)
    assert tutorial.KIT not in s.work.parents
    monkeypatch.setenv("PYRAMID_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("PYRAMID_WORK", str(tmp_path / "w"))
    s = setup("quick", "cpu")
    assert (s.data_root, s.work) == (tmp_path / "d", tmp_path / "w")


def test_the_long_profiles_print_their_time_on_a_cpu_before_the_weights_are_fetched(tmp_path, monkeypatch, capsys):
    """cpu and paper on a CPU: the estimate comes first; paper then fails without ImageNet weights
    (simulated: no download is tried)."""
    from pyramid_lib.errors import WeightsUnavailable

    def unavailable(choice):
        print("RESOLVING")
        if choice == "imagenet":
            raise WeightsUnavailable("no ImageNet weights (test)")
        return "random"

    monkeypatch.setattr(tutorial.weights, "resolve", unavailable)
    real = tutorial.estimate
    monkeypatch.setattr(tutorial, "estimate", lambda cfg, *a: SimpleNamespace(describe=lambda: f"{cfg.epochs} epochs"))
    with pytest.raises(WeightsUnavailable):
        setup("paper", "cpu", tmp_path, tmp_path)
    out = capsys.readouterr().out
    assert out.index("ESTIMATED TIME on this CPU now: one MNIST run of the paper profile takes 600 epochs") < out.index(
        "RESOLVING")
    monkeypatch.setattr(tutorial, "estimate", real)  # measured: a few steps of the cpu profile's network
    s = setup("cpu", "cpu", tmp_path, tmp_path)
    out = capsys.readouterr().out
    assert s.weights == "random" and "cpu profile takes about" in out and "RANDOM weights" in out
    setup("laptop", "cpu", tmp_path, tmp_path)
    assert "ESTIMATED" not in capsys.readouterr().out


@pytest.mark.parametrize("profile", ["quick", "laptop", "cpu"])
def test_setup_config_gives_the_profiles_settings(profile, tmp_path, monkeypatch):
    monkeypatch.setattr(tutorial.weights, "resolve", lambda choice: "random")
    monkeypatch.setattr(tutorial, "estimate", lambda *a, **k: SimpleNamespace(describe=lambda: "1 s (test)"))
    s = setup(profile, "cuda" if torch.cuda.is_available() else "cpu", tmp_path / "data", tmp_path / "work")
    d = data.load("mnist-sample", "3")
    cfg = s.config(d)
    for key, value in PROFILES[profile].items():
        assert getattr(cfg, key) == (s.weights if key == "weights" else value), key
    assert (cfg.profile, cfg.dataset, cfg.normal_class, cfg.data_root) == (profile, "mnist-sample", "3",
                                                                           str(tmp_path / "data"))
    assert s.config(d, epochs=2, lambda_=0.0).epochs == 2
    with pytest.raises(ConfigError, match="--epochs"):
        s.config(d, epochs=0)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    root = tmp_path_factory.mktemp("tutorial")
    s = setup("quick", "cpu", root / "empty", root / "work", notebook="t")
    d, _ = load_data("mnist-sample", "1", s)
    return s, d


def test_the_cache_names_a_run_by_its_config_and_its_datas_content_not_its_path(quick):
    """Two equal configs on the same images share a folder; changing any one field (a value of its
    type) gives another, except where the data lies (data_root, download); other images give another."""
    s, d = quick
    cfg = s.config(d, **TINY)
    run = run_dir(s, cfg, d)
    assert run.dir.parent == s.work / "runs" and run.name.startswith("mnist-sample-1-quick-")
    assert run_dir(s, s.config(d, **TINY), d).dir == run.dir
    for place in ({"data_root": "/elsewhere"}, {"download": not cfg.download}):
        assert run_dir(s, TrainConfig(**{**asdict(cfg), **place}), d).dir == run.dir, place
    fewer = replace(d, train=d.train.subset(torch.arange(len(d.train) - 1)))
    assert run_dir(s, cfg, fewer).dir != run.dir
    other = {"dataset": "mnist", "normal_class": "2", "input_size": 32, "encoders": 2, "pyramid": "spatial",
             "lr_schedule": "constant", "weights": "imagenet", "profile": "laptop", "train_limit": 41,
             "test_limit": None}
    for f in fields(TrainConfig):
        if f.name in ("data_root", "download"):
            continue
        v = getattr(cfg, f.name)
        changed = other.get(f.name, (not v) if isinstance(v, bool) else v * 2 + 1 if isinstance(v, (int, float))
                            else None)
        assert changed != v, f.name
        assert run_dir(s, TrainConfig(**{**asdict(cfg), f.name: changed}), d).dir != run.dir, f.name


@pytest.mark.slow
def test_train_cached_reuses_a_finished_run_and_trains_a_changed_one(quick, capsys):
    s, d = quick
    cfg = s.config(d, **TINY)
    first = train_cached(cfg, d, s)
    out = capsys.readouterr().out
    assert "trained 1 epochs" in out and f"{len(first.test)} test images scored" in out
    assert out.index("estimated time on this machine now: about") < out.index("trained 1 epochs")
    assert not first.reused
    assert first.run.trained and first.run.evaluated and len(first.history) == 1
    assert first.test["label"].nunique() == 2 and len(first.test) <= TINY["test_limit"] + 2
    ckpt = first.run.checkpoint
    assert safe_torch_load(ckpt)["optimizer"] is None  # dropped once finished: weights only
    before = (ckpt.stat().st_mtime_ns, ckpt.read_bytes())

    again = train_cached(s.config(d, **TINY), d, s)  # a cell run again, or another notebook
    out = capsys.readouterr().out
    assert f"REUSED the run made {again.made}" in out and "nothing was trained now" in out
    assert again.reused and "estimated" not in out
    assert again.run.dir == first.run.dir and (ckpt.stat().st_mtime_ns, ckpt.read_bytes()) == before
    pd.testing.assert_frame_equal(again.test, first.test)
    assert again.metrics.auroc == first.metrics.auroc and again.model.training is False

    other = train_cached(s.config(d, **{**TINY, "seed": 1}), d, s)
    assert "trained 1 epochs" in capsys.readouterr().out and other.run.dir != first.run.dir
    assert (ckpt.stat().st_mtime_ns, ckpt.read_bytes()) == before
    assert sorted(p.name for p in (s.work / "runs").iterdir() if p.is_dir()) == sorted(
        [first.run.name, other.run.name])


def write_results(root: Path, experiment: str, profile: str, frame: pd.DataFrame) -> None:
    folder = root / experiment / profile
    folder.mkdir(parents=True)
    frame.to_csv(folder / "results.csv", index=False)


def test_committed_results_and_how_they_were_made(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS", tmp_path)
    frame = pd.DataFrame({"normal_class": ["0", "1", "0"], "auroc": [0.9, 0.8, 0.85], "profile": "cpu",
                          "epochs": [6, 6, 6], "weights": "random", "seed": [0, 0, 1], "device": "cpu"})
    write_results(tmp_path, "mnist", "cpu", frame)
    got = committed_results("mnist")
    assert got["normal_class"].tolist() == ["0", "1", "0"] and got["auroc"].tolist() == [0.9, 0.8, 0.85]
    assert made_by(got) == "3 runs; profile cpu; epochs 6; weights random; seeds 0, 1; device cpu"
    assert made_by(got.drop(columns=["device", "seed"])).endswith("seeds not recorded; device not recorded")
    assert "epochs 6, 10;" in made_by(pd.concat([got, got.assign(epochs=10)]))  # in numeric order
    # runs made with an earlier version of a profile are said to be (the committed cpu runs: 10 epochs)
    assert "EARLIER VERSION" not in made_by(got)
    assert made_by(got.assign(epochs=10)).endswith(
        "(AN EARLIER VERSION of the profile: epochs 10 where the cpu profile now has 6)")
    assert "train_limit 1000 where the quick profile now has 500" in made_by(
        got.assign(profile="quick", epochs=10, train_limit=1000))

    # a folder holding runs of today's profile beside an earlier version's: today's are read, and it says so
    (tmp_path / "mnist" / "cpu" / "results.csv").unlink()
    (tmp_path / "mnist" / "cpu").rmdir()
    write_results(tmp_path, "mnist", "cpu", pd.concat([frame.assign(epochs=10, seed=0), frame]))
    now = committed_results("mnist")
    assert len(now) == 3 and now["epochs"].eq(6).all()
    assert made_by(now) == ("3 runs; profile cpu; epochs 6; weights random; seeds 0, 1; device cpu "
                            "(3 runs of an earlier version of the profile left out)")
    both = committed_results("mnist", runs="all")
    assert len(both) == 6 and made_by(both).endswith("(AN EARLIER VERSION of the profile: epochs 10 where the "
                                                     "cpu profile now has 6)")
    old_only = frame.assign(epochs=10)
    (tmp_path / "mnist" / "cpu" / "results.csv").write_text(old_only.to_csv(index=False))
    assert len(committed_results("mnist")) == 3 and "EARLIER VERSION" in made_by(committed_results("mnist"))

    write_results(tmp_path, "mnist", "paper", frame.assign(profile="paper", epochs=600, weights="imagenet"))
    with pytest.raises(DataError, match="name the profile"):
        committed_results("mnist")
    assert committed_results("mnist", "paper")["epochs"].eq(600).all()
    with pytest.raises(DataError, match="found none"):
        committed_results("fmnist")


def test_stratified_test_subset_keeps_both_labels():
    d = data.load("mnist-sample", 3)
    idx = splits.stratified_subset(d.test.labels, 50)
    y = d.test.labels[idx]
    assert len(idx) <= 52 and (y == 0).sum() >= 2 and (y == 1).sum() >= 2
    assert set(d.test.subset(idx).names) <= set(d.test.names)
    assert splits.stratified_subset(d.test.labels, 50).tolist() == idx.tolist()  # seeded
    assert len(splits.stratified_subset(d.test.labels, None)) == len(d.test)


def test_missing_data_falls_back_to_announced_stand_ins(tmp_path, capsys):
    s = setup("quick", "cpu", tmp_path / "empty", tmp_path / "out", notebook="t")
    d, note = load_data("fmnist", "4", s)
    assert d.dataset == "mnist-sample" and d.normal_class == "4" and "STAND-IN" in note
    assert s.config(d).test_limit == PROFILES["quick"]["test_limit"]
    d, note = load_data("mvtec", "carpet", s)
    assert d.dataset == "folder" and "NOT MVTec" in note
    assert d.test.masks is not None and d.test.masks.sum() > 0 and set(d.test.classes) == {"good", "scratch", "blob"}
    cfg = s.config(d)
    assert Path(cfg.data_root).name == "carpet" and cfg.weights == "random" and cfg.profile == "quick"
    assert "STAND-IN" in capsys.readouterr().out
    d, note = load_data("mnist-sample", "2", s)
    assert note == "" and d.dataset == "mnist-sample"
