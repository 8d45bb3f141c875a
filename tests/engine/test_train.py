import json

import numpy as np
import pandas as pd
import pytest
import torch

from pyramid_lib import data, threshold
from pyramid_lib.config import TrainConfig
from pyramid_lib.engine.evaluate import evaluate_run
from pyramid_lib.engine.run_dir import RunDir
from pyramid_lib.engine.trainer import train
from pyramid_lib.errors import CheckpointError, ConfigError
from pyramid_lib.metrics import summarize


@pytest.fixture(scope="module")
def sample():
    return data.load("mnist-sample", 1)


def tiny(**kw):
    base = dict(dataset="mnist-sample", normal_class="1", epochs=1, train_limit=48, batch_size=16, lr=1e-3)
    return TrainConfig(**{**base, **kw})


def test_checkpoint_round_trip_and_resume(tmp_path, sample):
    run = train(tiny(), tmp_path / "r", data=sample, progress=False)
    state = run.read_state()
    assert state["status"] == "finished" and len(state["history"]) == 1
    assert json.loads((tmp_path / "r" / "config.json").read_text())["weights"] == "random"
    cfg, model, _ = RunDir(run.dir).load()
    ckpt = torch.load(run.checkpoint, weights_only=True)
    for k, v in model.state_dict().items():
        assert torch.equal(v, ckpt["model"][k]), k
    # an existing run is never overwritten without --resume
    with pytest.raises(ConfigError, match="--resume"):
        train(tiny(), run.dir, data=sample, progress=False)
    # resume with more epochs continues from epoch 1
    train(tiny(epochs=2), run.dir, resume=True, data=sample, progress=False)
    hist = run.read_state()["history"]
    assert [h["epoch"] for h in hist] == [1, 2] and hist[0] == state["history"][0]
    # a run with another network shape is refused, naming the setting
    with pytest.raises(CheckpointError, match="encoders"):
        train(tiny(epochs=3, encoders=2), run.dir, resume=True, data=sample, progress=False)


def test_same_seed_same_weights(tmp_path, sample):
    a = train(tiny(), tmp_path / "a", data=sample, progress=False)
    b = train(tiny(), tmp_path / "b", data=sample, progress=False)
    sa, sb = a.load()[1].state_dict(), b.load()[1].state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    c = train(tiny(seed=1), tmp_path / "c", data=sample, progress=False)
    sc = c.load()[1].state_dict()
    assert not torch.equal(sa["decoder.net.0.0.weight"], sc["decoder.net.0.0.weight"])


def test_evaluate_writes_scores_and_metrics(tmp_path, sample):
    run = train(tiny(), tmp_path / "r", data=sample, progress=False)
    m = evaluate_run(run.dir, data=sample, progress=False)
    row = m.iloc[0]
    assert row.weights == "random" and row.n_test == 1000 and row.n_normal == 100
    for k in ("auroc", "auroc_mse", "auroc_perceptual", "auroc_ssim", "youden_tpr", "youden_tnr", "heldout_tpr"):
        assert 0 <= row[k] <= 1, k
    scores = pd.read_csv(run.dir / "scores.csv")
    assert (scores.split == "test").sum() == 1000 and (scores.split == "held-out normal").sum() == 40
    assert pd.read_csv(run.dir / "metrics.csv").auroc.iloc[0] == pytest.approx(row.auroc)


def test_threshold_rules_on_a_hand_made_case():
    y = np.array([0, 0, 0, 0, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.6, 0.5, 0.7, 0.9])
    t = threshold.youden(y, s)
    assert t == pytest.approx(0.5)  # TPR 1, FPR 0.25: the best J
    r = threshold.rates(y, s, t)
    assert (r["tp"], r["fn"], r["tn"], r["fp"]) == (3, 0, 3, 1)
    assert r["tpr"] == 1 and r["tnr"] == 0.75
    assert threshold.from_normals([0.0, 1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    frame = pd.DataFrame({"label": y, "loss": s, "mse": s, "perceptual": s, "ssim": s})
    out = summarize(frame, pd.DataFrame({"loss": [0.05, 0.15, 0.25]}), quantile=1.0)
    assert out["youden_tpr"] == 1 and out["heldout_threshold"] == pytest.approx(0.25)
    assert out["heldout_tnr"] == 0.5 and out["auroc"] == pytest.approx(11 / 12)


@pytest.mark.slow
def test_demo_end_to_end_beats_chance(tmp_path, capsys):
    """`pyramid-ad demo` with a fixed seed: trains on mnist-sample, writes every file, AUROC >> 0.5."""
    from pyramid_lib.cli import main
    from pyramid_lib.experiments.demo import DEMO_EPOCHS

    assert main(["demo", "--out", str(tmp_path / "demo"), "--weights", "none"]) == 0
    out = capsys.readouterr().out
    for f in ("metrics.csv", "roc.png", "reconstructions.png", "summary.md", "run/scores.csv"):
        assert (tmp_path / "demo" / f).is_file(), f
    m = pd.read_csv(tmp_path / "demo" / "metrics.csv").iloc[0]
    assert m.weights == "random" and m.epochs == DEMO_EPOCHS and m.profile == "laptop"
    assert m.auroc > 0.95, m.auroc  # chance is 0.5; this seed gives about 0.99 (benchmarks/REGIME.md)
    assert f"AUROC {m.auroc:.4f}" in out
    assert "random weights" in (tmp_path / "demo" / "summary.md").read_text()
