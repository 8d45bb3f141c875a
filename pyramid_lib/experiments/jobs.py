"""One job of a sweep: train and evaluate a network run, or fit a baseline, under the run folder's lock."""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

import pandas as pd

from .. import baselines as bl
from .. import data as data_mod
from ..config import TrainConfig
from ..engine.evaluate import evaluate_run, run_figures
from ..engine.run_dir import (
    Run,
    finished,
    load_run,
    read_metrics,
    read_scores,
    run_lock,
)
from ..engine.trainer import train
from ..files import atomic_write_text
from .plan import Job


def run_one(name: str, cfg: TrainConfig, run_dir, device=None, progress: bool = True) -> pd.DataFrame:
    """Train (or resume) and evaluate one network run; a finished, evaluated run is read back, not redone."""

    run = Run(run_dir)
    if run.trained and finished(run.dir):
        return read_metrics(run.dir)
    d = data_mod.load(cfg.dataset, cfg.normal_class, cfg.data_root, cfg.download, cfg.input_size)
    train(cfg, run.dir, resume=run.dir.exists() and (run.checkpoint.exists() or run.state.exists()),
          device=device, progress=progress, data=d)
    m = evaluate_run(run.dir, device=device, data=d, progress=progress)  # scores.csv, then metrics.csv
    try:
        _run_figures(run.dir, d, device)
    except Exception as e:  # a figure is never worth losing a run for
        print(f"warning: {name}: figures failed ({type(e).__name__}: {e})", file=sys.stderr)
    return m


def _run_figures(run_dir, d, device):

    cfg, model, loss = load_run(run_dir, device)
    test, _ = read_scores(run_dir)
    run_figures(run_dir, model, loss, d, test, cfg.weights)


def run_job(job: Job, run_dir, device=None, progress: bool = False) -> tuple[str, str, float]:
    """Run one job under its lock. Returns (name, status, seconds); status is "done", "skipped"
    (finished before), "busy" (another process holds it) or "failed: <reason>"."""
    t0 = time.perf_counter()
    with run_lock(run_dir) as got:
        if not got:
            return job.name, "busy", 0.0
        if finished(run_dir):
            return job.name, "skipped", 0.0
        try:
            if job.kind == "pyramid":
                run_one(job.name, job.cfg, run_dir, device, progress)
            else:
                bl.run_baseline(job.kind, job.cfg, run_dir, device=device or "cpu", progress=progress)
        except Exception as e:
            tb = traceback.format_exc()
            atomic_write_text(Path(run_dir) / "error.log", tb)
            return job.name, f"failed: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}", \
                time.perf_counter() - t0
    return job.name, "done", time.perf_counter() - t0
