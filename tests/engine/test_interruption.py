"""Interrupted training resumes exactly: a stop or a SIGKILL mid-epoch, then --resume.

Training here uses tiny in-memory subsets of the embedded mnist-sample (a dozen images, a few
batches per epoch): the code paths are the real ones, only the data is small.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from helpers import REPO, assert_identical_checkpoints, temp_leftovers, tiny_cfg

from pyramid_lib.engine.run_dir import RunDir, load_checkpoint
from pyramid_lib.engine.trainer import train
from pyramid_lib.errors import (
    ConfigError,
)

# ----------------------------------------------------------------------------------- interruption

@pytest.mark.slow
def test_stop_mid_epoch_then_resume_equals_uninterrupted_incl_bn_stats_and_adam(tmp_path, tiny):
    """Fault: the run stops after 4 optimiser steps (epoch 1 = 3 steps, then 1 step of epoch 2) and a
    kill during a checkpoint write left a temp file.  Resume: identical weights, BN stats, Adam state."""
    cfg = tiny_cfg(epochs=2)
    full = train(cfg, tmp_path / "full", data=tiny, progress=False)
    cut = train(cfg, tmp_path / "cut", data=tiny, progress=False, stop_after_batches=4)
    assert load_checkpoint(cut.checkpoint)["epoch"] == 1
    state = cut.read_state()
    assert state["status"] == "running" and len(state["history"]) == 1
    stale = cut.dir / ".checkpoint.pt.k1ll3d.tmp"  # what a SIGKILL during atomic_torch_save leaves
    stale.write_bytes(b"half a checkpoint")
    with pytest.raises(ConfigError, match="--resume"):  # never silently restarted over
        train(cfg, cut.dir, data=tiny, progress=False)
    train(cfg, cut.dir, resume=True, data=tiny, progress=False)
    assert not stale.exists() and not temp_leftovers(cut.dir)
    assert cut.read_state()["status"] == "finished"
    a, b = load_checkpoint(full.checkpoint), load_checkpoint(cut.checkpoint)
    assert_identical_checkpoints(a, b)
    # the comparison is not vacuous: BN statistics moved and Adam has state for every parameter
    bn = [k for k in a["model"] if k.endswith("running_var")]
    assert bn and any(not torch.equal(a["model"][k], torch.ones_like(a["model"][k])) for k in bn)
    tracked = {int(v) for k, v in a["model"].items() if k.endswith("num_batches_tracked")}
    assert tracked == {6, 6 * cfg.encoders}  # 6 steps; the shared up-sampler's BN runs once per encoder
    adam = a["optimizer"]["state"]
    assert len(adam) == len(a["optimizer"]["param_groups"][0]["params"])
    assert all(float(s["step"]) == 6 and s["exp_avg_sq"].abs().sum() > 0 for s in adam.values())


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_gives_identical_weights(tmp_path):
    """Fault: SIGKILL to `pyramid-ad train` in epoch 2 (after epoch 1's checkpoint).  --resume finishes;
    the weights equal (torch.equal) an uninterrupted run's with the same seed."""
    args = [sys.executable, "-m", "pyramid_lib", "train", "--dataset", "mnist-sample", "--normal-class", "1",
            "--epochs", "3", "--profile", "quick", "--train-limit", "64", "--weights", "none", "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}

    def start(name, *extra):
        log = open(tmp_path / f"{name}.log", "ab")
        return subprocess.Popen(args + ["--out", str(tmp_path / name), *extra], cwd=tmp_path, env=env,
                                stdout=log, stderr=subprocess.STDOUT)

    ref = start("ref")  # the uninterrupted run, alongside
    victim = start("victim")
    logs = [ref.stdout, victim.stdout]
    run = RunDir(tmp_path / "victim")
    deadline = time.monotonic() + 600
    try:
        while True:  # wait for epoch 1's checkpoint: run.json is written right after it, atomically
            assert victim.poll() is None, (tmp_path / "victim.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "epoch 1 never finished"
            hist = run.read_state().get("history", []) if run.state.is_file() else []
            if hist:
                break
            time.sleep(0.05)
        # now in epoch 2 (2 batches of 32): wait about half a batch, then kill
        time.sleep(min(2.0, 0.25 * hist[0]["seconds"]))
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(60) == -signal.SIGKILL
    finally:
        if victim.poll() is None:
            victim.kill()
    state = run.read_state()
    assert state["status"] == "running" and len(state["history"]) == 1, "the kill did not land in epoch 2"
    assert load_checkpoint(run.checkpoint)["epoch"] == 1  # whole and loadable
    resumed = subprocess.run(args + ["--out", str(run.dir), "--resume"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert ref.wait(600) == 0, (tmp_path / "ref.log").read_text()[-2000:]
    assert run.read_state()["status"] == "finished" and not temp_leftovers(run.dir)
    assert_identical_checkpoints(load_checkpoint(tmp_path / "ref" / "checkpoint.pt"),
                                 load_checkpoint(run.checkpoint))
    for f in logs:
        if f:
            f.close()
