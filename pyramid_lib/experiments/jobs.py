"""One job of a sweep: train and evaluate a network run, or fit a baseline, under its RunDir's lock."""

from __future__ import annotations

import time
import traceback

import pandas as pd

from .. import baselines as bl
from .. import data as data_mod
from ..config import TrainConfig
from ..engine.evaluate import evaluate_run
from ..engine.run_dir import RunDir
from ..engine.trainer import train
from ..files import atomic_write_text
from .plan import Job


def run_one(name: str, cfg: TrainConfig, run_dir, device=None, progress: bool = True,
            data: data_mod.OneClassData | None = None) -> pd.DataFrame:
    """Train (or resume) and evaluate one network run into `run_dir` (a RunDir or a folder); return
    its metrics row (a 1-row frame).  A run that is already trained and evaluated is read back, not
    redone.  Evaluation writes scores.csv, roc.png, reconstructions.png and metrics.csv from one
    load of the checkpoint (`evaluate_run(..., figures=True)`); a failed figure only logs a warning.
    Both hold the folder's lock through `run` (RunBusy when another process holds it; reentrant
    under `run_job`, which holds it through the same RunDir).
    `data`: the run's dataset when already loaded (else it is loaded here).  `name` labels the job."""
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    if run.trained and run.evaluated:
        return run.read_metrics()
    d = data or data_mod.load(cfg.dataset, cfg.normal_class, cfg.data_root, cfg.download, cfg.input_size)
    train(cfg, run, resume=run.dir.exists() and (run.checkpoint.exists() or run.state.exists()),
          device=device, progress=progress, data=d)  # the same RunDir: its lock, if held here, is reentrant
    return evaluate_run(run, device=device, data=d, progress=progress, figures=True)


def run_job(job: Job, run_dir, device=None, progress: bool = False) -> tuple[str, str, float]:
    """Run one job under its RunDir's lock.  Returns (name, status, seconds); status is "done",
    "skipped" (evaluated before), "busy" (another process holds the lock) or "failed: <reason>"
    (the traceback is in run_dir/error.log)."""
    t0 = time.perf_counter()
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    with run.lock() as got:
        if not got:
            return job.name, "busy", 0.0
        if run.evaluated:
            return job.name, "skipped", 0.0
        try:
            if job.kind == "pyramid":
                run_one(job.name, job.cfg, run, device, progress)
            else:
                bl.run_baseline(job.kind, job.cfg, run, device=device or "cpu", progress=progress)
        except Exception as e:
            atomic_write_text(run.dir / "error.log", traceback.format_exc())
            return job.name, f"failed: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}", \
                time.perf_counter() - t0
    return job.name, "done", time.perf_counter() - t0
