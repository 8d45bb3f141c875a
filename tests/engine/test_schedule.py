"""The learning-rate schedule of the CPU profiles, and the perceptual network a run saves.

The cosine schedule is a function of the step number only (so a resumed run replays it); a run's
random VGG11 is orthogonally initialised and saved in its checkpoint, so scoring never draws it
again (issue 13a)."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_identical_checkpoints, same_state, tiny_cfg

from pyramid_lib.config import PROFILES, TrainConfig
from pyramid_lib.engine.run_dir import RunDir, load_checkpoint
from pyramid_lib.engine.trainer import learning_rate, steps_per_epoch, train
from pyramid_lib.errors import CheckpointError, ConfigError
from pyramid_lib.files import atomic_torch_save, safe_torch_load
from pyramid_lib.model.loss import PerceptualFeatures


def test_cosine_schedule_is_torchs_cosine_annealing_in_closed_form():
    cfg = tiny_cfg(lr=3e-3, lr_schedule="cosine")
    total = 37
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=0.0)
    for step in range(total):
        assert learning_rate(cfg, step, total) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9, abs=1e-15)
        opt.step()
        sched.step()
    assert learning_rate(cfg, 0, total) == cfg.lr and learning_rate(cfg, total, total) == 0.0
    assert learning_rate(tiny_cfg(lr=3e-3), 20, total) == 3e-3  # constant: Table I


def test_steps_per_epoch_counts_the_batches_train_makes():
    assert [steps_per_epoch(n, 4) for n in (8, 9, 10, 11)] == [2, 2, 3, 3]  # a last batch of 1 is dropped


def test_profiles_use_the_measured_regime_and_the_paper_profile_stays_table_i():
    for name in ("quick", "laptop", "cpu"):
        cfg = TrainConfig.from_profile(name, dataset="mnist").validate()
        assert (cfg.lr_schedule, cfg.lr, cfg.batch_size) == ("cosine", 3e-3, 32)
    paper = TrainConfig.from_profile("paper", dataset="mnist")
    assert (paper.lr_schedule, paper.lr, paper.batch_size, paper.epochs) == ("constant", 1e-4, 120, 600)
    assert set(PROFILES) == {"quick", "laptop", "cpu", "paper"}
    with pytest.raises(ConfigError, match="--lr-schedule"):
        tiny_cfg(lr_schedule="linear").validate()


@pytest.mark.slow
def test_cosine_run_ends_at_the_last_steps_rate_and_resumes_exactly(tmp_path, tiny):
    cfg = tiny_cfg(epochs=2, lr=3e-3, lr_schedule="cosine")
    full = train(cfg, tmp_path / "full", data=tiny, progress=False)
    ckpt = load_checkpoint(full.checkpoint)
    total = 2 * steps_per_epoch(11, 4)  # 11 fit images (1 of 12 held out), batches of 4
    assert ckpt["optimizer"]["param_groups"][0]["lr"] == pytest.approx(learning_rate(cfg, total - 1, total))
    cut = train(cfg, tmp_path / "cut", data=tiny, progress=False, stop_after_batches=4)
    train(cfg, cut.dir, resume=True, data=tiny, progress=False)
    assert_identical_checkpoints(ckpt, load_checkpoint(cut.checkpoint))
    const = load_checkpoint(train(tiny_cfg(epochs=2), tmp_path / "const", data=tiny, progress=False).checkpoint)
    assert same_state(const["model"], ckpt["model"])  # the schedule changed what was learnt


def test_random_perceptual_network_is_orthogonal():
    torch.manual_seed(0)
    f = PerceptualFeatures(None).features
    convs = [m for m in f if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 2
    for conv in convs:
        w = conv.weight.flatten(1)  # out x (in * 3 * 3)
        small = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
        assert torch.allclose(small, torch.eye(len(small)), atol=1e-5)
        assert torch.count_nonzero(conv.bias) == 0


@pytest.mark.slow
def test_a_run_scores_with_the_perceptual_network_it_trained_with(tmp_path, tiny):
    run = train(tiny_cfg(epochs=1), tmp_path / "run", data=tiny, progress=False)
    saved = load_checkpoint(run.checkpoint)["perceptual"]
    torch.manual_seed(12345)  # whatever the generator holds now, nothing is drawn again
    _, _, loss = RunDir(run.dir).load("cpu")
    got = loss.features.state_dict()
    assert saved.keys() == got.keys() and all(torch.equal(saved[k], got[k]) for k in saved)
    # a checkpoint of a random-weight run without F's weights cannot be scored exactly: refused
    ckpt = safe_torch_load(run.checkpoint)
    del ckpt["perceptual"]
    atomic_torch_save(run.checkpoint, ckpt)
    with pytest.raises(CheckpointError, match="perceptual network"):
        RunDir(run.dir).load("cpu")
