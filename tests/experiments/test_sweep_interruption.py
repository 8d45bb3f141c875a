"""A sweep killed midway resumes and skips its finished runs.

Training here uses tiny in-memory subsets of the embedded mnist-sample (a dozen images, a few
batches per epoch): the code paths are the real ones, only the data is small.
"""

from __future__ import annotations

import inspect

import pytest
from helpers import temp_leftovers

from pyramid_lib import data
from pyramid_lib.engine import evaluate as evaluate_mod
from pyramid_lib.engine import trainer as trainer_mod
from pyramid_lib.engine.run_dir import RunDir, load_checkpoint
from pyramid_lib.experiments import jobs as jobs_mod
from pyramid_lib.experiments import sweep as sweep_mod


def sweep_kwargs(**kw):
    """Options for reproduce.sweep; figures off (and one job) where this version of it has them."""
    params = inspect.signature(sweep_mod.sweep).parameters
    kw.update({k: v for k, v in (("figures", False), ("jobs", 1)) if k in params})
    return kw


@pytest.mark.slow
def test_sweep_killed_midway_resumes_and_skips_finished_runs(tmp_path, tiny, monkeypatch):
    """Fault: a sweep dies (KeyboardInterrupt, like a kill) in the middle of its second run.  Run again:
    the finished run is not retrained (files untouched), the partial one resumes from epoch 1."""
    monkeypatch.setattr(data, "load_for", lambda *a, **k: tiny)
    real_train, calls = trainer_mod.train, []

    def dying_train(cfg, out, **kw):
        calls.append((cfg.normal_class, bool(kw.get("resume"))))
        if cfg.normal_class == "2" and len(calls) == 2:
            real_train(cfg, out, **{**kw, "stop_after_batches": 4})  # epoch 1 saved, then 1 step of epoch 2
            raise KeyboardInterrupt
        return real_train(cfg, out, **kw)

    monkeypatch.setattr(jobs_mod, "train", dying_train)
    monkeypatch.setattr(evaluate_mod, "run_figures", lambda *a, **k: None)  # not the subject here
    opts = sweep_kwargs(out_root=tmp_path, weights="random", download=False, progress=False, epochs=2,
                        batch_size=4, train_limit=None)
    with pytest.raises(KeyboardInterrupt):
        sweep_mod.sweep("mnist", "quick", ["1", "2"], **opts)
    runs = tmp_path / "mnist" / "quick-epochs2-batch_size4" / "runs"  # reproduce.variant
    done, partial = RunDir(runs / "mnist-1"), RunDir(runs / "mnist-2")
    assert (done.dir / "metrics.csv").is_file() and done.read_state()["status"] == "finished"
    assert load_checkpoint(partial.checkpoint)["epoch"] == 1 and not (partial.dir / "metrics.csv").exists()
    epoch1 = partial.read_state()["history"][0]
    before = {f.name: f.stat().st_mtime_ns for f in done.dir.iterdir() if f.is_file()}

    calls.clear()
    res = sweep_mod.sweep("mnist", "quick", ["1", "2"], **opts)
    assert calls == [("2", True)], calls  # mnist-1 not retrained; mnist-2 resumed
    assert {f.name: f.stat().st_mtime_ns for f in done.dir.iterdir() if f.is_file() and f.name in before} == before
    hist = partial.read_state()["history"]
    assert [h["epoch"] for h in hist] == [1, 2] and hist[0] == epoch1  # continued, not restarted
    assert sorted(res["normal_class"]) == ["1", "2"] and (runs.parent / "results.csv").is_file()
    assert not temp_leftovers(runs.parent)
