"""RunDir, the one run abstraction: its two states, one checkpoint load per RunDir (and per
command), the lock that turns a second holder away, and evaluate_run's columns and test subset."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pandas as pd
import pytest
from helpers import tiny_cfg

from pyramid_lib.data import splits
from pyramid_lib.engine import run_dir as run_dir_mod
from pyramid_lib.engine.evaluate import evaluate_run, run_columns
from pyramid_lib.engine.run_dir import RunDir
from pyramid_lib.engine.trainer import train
from pyramid_lib.experiments import jobs


@pytest.fixture
def count_loads(monkeypatch):
    """Counts checkpoint reads by RunDir.load (train's own resume read is not one)."""
    real, n = run_dir_mod.load_checkpoint, {"loads": 0}

    def counting(path, cfg=None):
        n["loads"] += 1
        return real(path, cfg)

    monkeypatch.setattr(run_dir_mod, "load_checkpoint", counting)
    return n


@pytest.mark.slow
def test_states_trained_then_evaluated(tmp_path, tiny, count_loads):
    run = RunDir(tmp_path / "r")
    assert not run.trained and not run.evaluated and run.read_state() == {}
    assert train(tiny_cfg(epochs=1), run.dir, data=tiny, progress=False).trained
    assert run.trained and not run.evaluated
    frame = evaluate_run(run, data=tiny, progress=False, figures=True)
    assert run.trained and run.evaluated
    assert count_loads["loads"] == 1  # scores, metrics and both figures from one load
    for f in (run.scores, run.metrics, run.dir / "roc.png", run.dir / "reconstructions.png"):
        assert f.is_file(), f
    assert run.read_metrics().auroc.iloc[0] == pytest.approx(frame.auroc.iloc[0])
    test, held = run.read_scores()
    assert len(test) == len(tiny.test) and len(held) == 1
    assert run.load() is run.load() and count_loads["loads"] == 1  # evaluate_run's load, kept by the RunDir
    other = RunDir(run.dir)
    assert other.load() is other.load() and count_loads["loads"] == 2  # another RunDir: one load of its own


def test_a_baseline_folder_is_evaluated_without_being_trained(tmp_path):
    run = RunDir(tmp_path / "b")
    run.dir.mkdir()
    run.state.write_text('{"status": "finished"}')
    run.metrics.write_text("normal_class,auroc\n0,0.5\n")
    assert run.evaluated and not run.trained  # no checkpoint
    assert run.read_metrics().normal_class.iloc[0] == "0"


@pytest.mark.slow
def test_run_one_loads_the_checkpoint_once_and_reads_back_a_done_run(tmp_path, tiny, monkeypatch, count_loads):
    monkeypatch.setattr(jobs.data_mod, "load", lambda *a, **k: tiny)
    m = jobs.run_one("r", tiny_cfg(epochs=1), tmp_path / "r", progress=False)
    assert count_loads["loads"] == 1
    assert (tmp_path / "r" / "reconstructions.png").is_file()
    again = jobs.run_one("r", tiny_cfg(epochs=1), tmp_path / "r", progress=False)
    assert count_loads["loads"] == 1  # trained and evaluated: read back, nothing loaded
    assert again.auroc.iloc[0] == pytest.approx(m.auroc.iloc[0])


@pytest.mark.slow  # starts a Python that imports the kit (5-8 s): the full gate runs it
def test_lock_refuses_a_second_holder_in_this_and_another_process(tmp_path):
    run = RunDir(tmp_path / "r")
    probe = textwrap.dedent(f"""
        from pyramid_lib.engine.run_dir import RunDir
        with RunDir({str(run.dir)!r}).lock() as got:
            print("got" if got else "busy")
    """)
    with run.lock() as got:
        assert got
        with RunDir(run.dir).lock() as second:
            assert second is False
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
        assert out.stdout.strip() == "busy", out.stderr[-2000:]
    with RunDir(run.dir).lock() as again:  # released on exit
        assert again


def test_run_columns_say_fast():
    cfg = tiny_cfg()
    assert run_columns(cfg, {})["fast"] is True
    cfg.fast = False
    assert run_columns(cfg, {})["fast"] is False


@pytest.mark.slow
def test_evaluate_scores_only_the_test_limit_subset(tmp_path, tiny):
    if not hasattr(tiny_cfg(), "test_limit"):
        pytest.skip("TrainConfig has no test_limit in this version")
    cfg = tiny_cfg(epochs=1, test_limit=6)
    run = train(cfg, tmp_path / "r", data=tiny, progress=False)
    row = evaluate_run(run, data=tiny, progress=False).iloc[0]
    want = splits.stratified_subset(tiny.test.labels, 6, cfg.seed)
    assert row.n_test == len(want) < len(tiny.test)
    names = pd.read_csv(run.scores).query("split == 'test'").name.tolist()
    assert names == [tiny.test.names[i] for i in want.tolist()]
