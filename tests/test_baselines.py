"""Baselines re-run on the same splits: OC-SVM, KDE, plain AE (L2, SSIM) on a tiny split."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from pyramid_lib import baselines as bl
from pyramid_lib import data as dm
from pyramid_lib import metrics
from pyramid_lib.config import TrainConfig
from pyramid_lib.data.splits import fit_and_heldout
from pyramid_lib.engine import trainer
from pyramid_lib.errors import ConfigError, PyramidError
from pyramid_lib.experiments import plan as plan_mod
from pyramid_lib.files import read_json


def baseline_summary(y, s, held_out=None):
    """metrics.summarize as run_baseline calls it: one `score` column."""
    held = None if held_out is None else pd.DataFrame({"score": np.asarray(held_out, dtype=float)})
    return metrics.summarize(pd.DataFrame({"label": np.asarray(y), "score": np.asarray(s, dtype=float)}), held,
                             score="score", scores=("score",))


@pytest.fixture(scope="module")
def tiny():
    d = dm.load("mnist-sample", "1")
    cfg = TrainConfig(dataset="mnist-sample", normal_class="1", epochs=2, train_limit=60, batch_size=16, lr=1e-3,
                      profile="quick")
    return cfg.validate(), d


@pytest.mark.parametrize("method", ["ocsvm", "kde"])
def test_sklearn_baselines_separate_digit_one(method, tiny):
    cfg, d = tiny
    fit, held = fit_and_heldout(d, cfg)
    (s_test, s_held), info = bl.sklearn_scores(method, fit, [d.test, held], limit=50)
    assert s_test.shape == (len(d.test),) and s_held.shape == (len(held),)
    assert info["fit_images"] == 50
    m = baseline_summary(d.test.labels.numpy(), s_test, s_held)
    assert m["auroc"] > 0.8  # digit 1 against the rest is easy for both


@pytest.mark.slow
@pytest.mark.parametrize("method", ["ae-l2", "ae-ssim"])
def test_ae_baseline_run_folder(method, tiny, tmp_path):
    cfg, d = tiny
    frame = bl.run_baseline(method, cfg, tmp_path / method, data=d)
    row = frame.iloc[0]
    assert row.method == method and row.epochs == 2
    assert row.fit_images == 60
    for f in ("config.json", "run.json", "scores.csv", "metrics.csv"):
        assert (tmp_path / method / f).is_file()
    s = pd.read_csv(tmp_path / method / "scores.csv")
    test = s[s.split == "test"]
    assert len(test) == len(d.test) and np.isfinite(s.score).all()
    assert row.auroc == pytest.approx(roc_auc_score(test.label, test.score), abs=1e-6)  # the AUROC of its scores


def test_plain_ae_shapes():
    for size in (28, 120):
        x = torch.rand(2, 3, size, size)
        with torch.no_grad():
            y = bl.PlainAE(size)(x)
        assert y.shape == x.shape and 0 <= float(y.min()) and float(y.max()) <= 1


def test_bad_method_and_lambda0_is_not_a_baseline_run(tiny, tmp_path):
    cfg, _ = tiny
    with pytest.raises(ConfigError):
        bl.check_method("svm")
    with pytest.raises(ConfigError):
        bl.run_baseline("ours-lambda0", cfg, tmp_path)


def test_metrics_need_both_labels():
    with pytest.raises(PyramidError):
        baseline_summary([0, 0], [0.1, 0.2])
    m = baseline_summary([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], held_out=[0.1, 0.15])
    assert m["auroc"] == 1.0 and m["youden_tpr"] == 1.0 and m["heldout_tnr"] == 0.5  # 0.2 >= q95(0.1, 0.15)
    with pytest.raises(PyramidError, match="NaN or infinite"):
        baseline_summary([0, 0, 1, 1], [0.1, np.nan, 0.8, 0.9])


BASELINE_COLUMNS = ["auroc", "youden_threshold", "youden_tpr", "youden_tnr", "youden_accuracy", "heldout_threshold",
                    "heldout_tpr", "heldout_tnr", "heldout_accuracy", "n_test", "n_normal", "n_anomalous"]


def test_baselines_and_our_network_share_one_summary(tiny, tmp_path, monkeypatch):
    """run_baseline and evaluate_run both call metrics.summarize; the columns are those of before."""
    cfg, d = tiny
    calls = []
    real = metrics.summarize

    def spy(test, *a, **k):
        calls.append(k.get("scores", metrics.SCORE_NAMES))
        return real(test, *a, **k)

    monkeypatch.setattr(bl, "summarize", spy)
    row = bl.run_baseline("kde", cfg, tmp_path / "kde", data=d).iloc[0]
    assert calls == [("score",)]
    i = list(row.index).index("auroc")
    assert list(row.index)[i:i + len(BASELINE_COLUMNS)] == BASELINE_COLUMNS
    ours = real(pd.DataFrame({"label": [0, 0, 1, 1], **{k: [0.1, 0.2, 0.8, 0.9] for k in metrics.SCORE_NAMES}}))
    assert list(ours) == [f"auroc_{k}" for k in metrics.SCORE_NAMES] + BASELINE_COLUMNS[:-3] + ["ssim_normal"] \
        + BASELINE_COLUMNS[-3:]


@pytest.mark.slow
def test_plain_ae_trains_with_the_shared_step(tiny, monkeypatch):
    """train_ae goes through engine.trainer's loop: one trainer.step per batch."""
    cfg, d = tiny
    fit, _ = fit_and_heldout(d, cfg)
    real, n = trainer.step, {"steps": 0}

    def counting(*a, **k):
        n["steps"] += 1
        return real(*a, **k)

    monkeypatch.setattr(trainer, "step", counting)
    model, hist = bl.train_ae("ae-l2", cfg, fit)
    per_epoch = sum(1 for _ in trainer.batches(torch.arange(len(fit)), cfg.batch_size))
    assert n["steps"] == cfg.epochs * per_epoch and [h["epoch"] for h in hist] == [1, 2]


@pytest.mark.slow
def test_plain_ae_stops_on_a_nonfinite_loss(tiny, monkeypatch):
    cfg, d = tiny
    fit, _ = fit_and_heldout(d, cfg)
    monkeypatch.setattr(bl, "ae_loss", lambda method, x_hat, x: (x_hat - x).flatten(1).mean(1) * float("nan"))
    with pytest.raises(PyramidError, match=r"ae-l2: loss became nan in epoch 1"):
        bl.train_ae("ae-l2", cfg, fit)


@pytest.mark.parametrize("method", ["ocsvm", "kde"])
def test_sklearn_baselines_fit_every_image_our_network_fits_and_record_their_settings(method, tiny, tmp_path):
    cfg, d = tiny
    fit, _ = fit_and_heldout(d, cfg)
    row = bl.run_baseline(method, cfg, tmp_path / method, data=d).iloc[0]
    assert row.fit_images == len(fit) == 60
    saved = read_json(tmp_path / method / "config.json")
    assert saved["baseline_settings"] == bl.settings(cfg.dataset, method) == bl.DEFAULTS[method]
    assert "tuned=False" in row.settings


def test_gamma_scale_one_is_scikit_learns_scale(tiny):
    from sklearn.svm import OneClassSVM

    cfg, d = tiny
    fit, _ = fit_and_heldout(d, cfg)
    x = bl._flat(fit)
    (ours,), info = bl.sklearn_scores("ocsvm", fit, [d.test], params={"nu": 0.2, "gamma_scale": 1.0})
    theirs = -OneClassSVM(kernel="rbf", nu=0.2, gamma="scale").fit(x).decision_function(bl._flat(d.test))
    assert np.allclose(ours, theirs, atol=1e-6) and info["nu"] == 0.2
    (wider,), _ = bl.sklearn_scores("ocsvm", fit, [d.test], params={"nu": 0.2, "gamma_scale": 0.1})
    assert not np.allclose(wider, ours)
    with pytest.raises(ConfigError, match="'bandwidth' missing"):
        bl.sklearn_scores("kde", fit, [d.test], params={"nu": 0.1})


def test_tuned_settings_reach_the_runs_and_a_run_fitted_otherwise_is_refused(tiny, tmp_path, monkeypatch):
    cfg, d = tiny
    monkeypatch.setattr(bl, "TUNED", {"mnist-sample": {"kde": {"bandwidth": 2.0}, "ae-l2": {"lr": 0.01}}})
    row = bl.run_baseline("kde", cfg, tmp_path / "runs" / "k", data=d).iloc[0]
    assert "bandwidth=2;" in row.settings and "tuned=True" in row.settings
    assert bl.config_overrides("ae-l2", "mnist-sample") == {"lr": 0.01}
    assert bl.config_overrides("ae-ssim", "mnist") == {}
    job = plan_mod.Job("k", "kde", cfg, "kde")
    plan_mod.check_finished_runs(tmp_path, [job])  # the same settings: fine
    monkeypatch.setattr(bl, "TUNED", {"mnist-sample": {"kde": {"bandwidth": 0.5}}})
    with pytest.raises(ConfigError, match="fitted with other baseline settings"):
        plan_mod.check_finished_runs(tmp_path, [job])


def test_the_baselines_plan_trains_an_autoencoder_with_its_tuned_learning_rate(monkeypatch):
    monkeypatch.setattr(bl, "TUNED", {"fmnist": {"ae-ssim": {"lr": 0.001}}})
    jobs = plan_mod.plan("baselines", "cpu", classes=["6"], datasets=["fmnist", "mnist"], methods=["ae-ssim", "ocsvm"])
    lr = {(j.cfg.dataset, j.method): j.cfg.lr for j in jobs}
    assert lr[("fmnist", "ae-ssim")] == 0.001 and lr[("mnist", "ae-ssim")] == lr[("fmnist", "ocsvm")] == 3e-3
