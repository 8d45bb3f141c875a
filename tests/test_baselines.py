"""Baselines re-run on the same splits: OC-SVM, KDE, plain AE (L2, SSIM) on a tiny split."""

import numpy as np
import pandas as pd
import pytest
import torch

from pyramid_lib import baselines as bl
from pyramid_lib import data as dm
from pyramid_lib.config import TrainConfig
from pyramid_lib.engine.trainer import fit_and_heldout
from pyramid_lib.errors import ConfigError


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
    m = bl.metrics_from_scores(d.test.labels.numpy(), s_test, s_held)
    assert m["auroc"] > 0.8  # digit 1 against the rest is easy for both


@pytest.mark.parametrize("method", ["ae-l2", "ae-ssim"])
def test_ae_baseline_run_folder(method, tiny, tmp_path):
    cfg, d = tiny
    frame = bl.run_baseline(method, cfg, tmp_path / method, data=d)
    row = frame.iloc[0]
    assert row.method == method and row.epochs == 2 and 0 <= row.auroc <= 1
    assert row.fit_images == 60
    for f in ("config.json", "run.json", "scores.csv", "metrics.csv"):
        assert (tmp_path / method / f).is_file()
    s = pd.read_csv(tmp_path / method / "scores.csv")
    assert (s.split == "test").sum() == len(d.test) and np.isfinite(s.score).all()


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
    from pyramid_lib.errors import PyramidError

    with pytest.raises(PyramidError):
        bl.metrics_from_scores([0, 0], [0.1, 0.2])
    m = bl.metrics_from_scores([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], held_out=[0.1, 0.15])
    assert m["auroc"] == 1.0 and m["youden_tpr"] == 1.0 and m["heldout_tnr"] == 0.5  # 0.2 >= q95(0.1, 0.15)
