"""One job of a sweep: train and evaluate a network run, or fit a baseline, under its RunDir's lock."""

from __future__ import annotations

import os
import shutil
import time
import traceback
from dataclasses import fields, replace
from pathlib import Path

import pandas as pd

from .. import baselines as bl
from .. import data as data_mod
from ..config import TrainConfig
from ..engine.evaluate import evaluate_run
from ..engine.run_dir import RunDir, check_compatible
from ..engine.trainer import train
from ..errors import CheckpointError
from ..files import atomic_write_json, atomic_write_text, read_json, temp_files
from .plan import Job


def run_one(name: str, cfg: TrainConfig, run_dir, device=None, progress: bool = True,
            data: data_mod.OneClassData | None = None, figures: bool = True) -> pd.DataFrame:
    """Train (or resume) and evaluate one network run into `run_dir` (a RunDir or a folder); return
    its metrics row (a 1-row frame).  The one train-or-reuse path: sweeps (`run_job`), the demo
    and the notebooks (`tutorial.train_cached`) all come through here.  A run that is already
    evaluated (`RunDir.evaluated`, the one reuse rule) is read back, not redone.  Evaluation
    writes scores.csv and metrics.csv,
    and with `figures` roc.png and reconstructions.png, from one load of the checkpoint
    (`evaluate_run`); a failed figure only logs a warning.
    Both hold the folder's lock through `run` (RunBusy when another process holds it; reentrant
    under `run_job`, which holds it through the same RunDir).
    `data`: the run's dataset when already loaded (else it is loaded here).  `name` labels the job."""
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    if run.evaluated:  # the one reuse rule (RunDir.evaluated)
        return run.read_metrics()
    d = data or data_mod.load_for(cfg)
    train(cfg, run, resume=run.dir.exists() and (run.checkpoint.exists() or run.state.exists()),
          device=device, progress=progress, data=d)  # the same RunDir: its lock, if held here, is reentrant
    return evaluate_run(run, device=device, data=d, progress=progress, figures=figures)


# the settings that decide what a run computes: every field but `download`
_COMPARED = tuple(f.name for f in fields(TrainConfig) if f.name != "download")


def _same_run(config: dict, cfg: TrainConfig) -> bool:
    """Whether a run made with config.json `config` computes what `cfg` asks for (check_compatible)."""
    if cfg.weights == "none":  # a request; config.json holds what it resolved to
        cfg = replace(cfg, weights="random")
    try:
        check_compatible(config, cfg, "", names=_COMPARED)
        return True
    except CheckpointError:
        return False


def twin_run(run_dir, cfg: TrainConfig) -> Path | None:
    """A finished network run elsewhere under the same results root whose config.json equals `cfg`
    (every field but `download`), or None.  `run_dir` is <root>/<experiment>/<variant>/runs/<name>;
    the twin is looked for in <root>/*/*/runs/*, an original before a copy.  Such a run is what this
    job would compute: the lambda-1 and 4-encoder runs of the ablations are the Table II runs of
    the same classes and seeds, and two trainings of one config at different commits can differ
    (float rounding) by more than the effect they are compared on."""
    run_dir = Path(run_dir).resolve()
    root = run_dir.parents[3]
    found = []
    for config in sorted(root.glob("*/*/runs/*/config.json")):
        other = RunDir(config.parent)
        if other.dir.resolve() == run_dir or not (other.evaluated and other.trained):
            continue
        try:
            if _same_run(read_json(config), cfg):
                found.append((bool(other.read_state().get("copied_from")), config.parent))
        except (OSError, ValueError):
            continue
    return min(found)[1] if found else None  # an original before a copy of it


def copy_run(src, run: RunDir) -> str:
    """Copy a finished run's files into `run` (held locked by the caller): the checkpoint hard-linked
    where the file system allows, metrics.csv last (so the copy counts as done only when complete),
    and run.json given `copied_from`: the source's path relative to the results root, returned."""
    src = Path(src)
    run.dir.mkdir(parents=True, exist_ok=True)
    skip = {".lock", "metrics.csv", "error.log", *(p.name for p in temp_files(src))}
    for f in sorted(src.iterdir()):
        if not f.is_file() or f.name in skip or f.name.startswith("."):
            continue
        tmp = run.dir / f".{f.name}.copy"
        tmp.unlink(missing_ok=True)
        try:
            os.link(f, tmp) if f.name == "checkpoint.pt" else shutil.copy2(f, tmp)
        except OSError:
            shutil.copy2(f, tmp)
        os.replace(tmp, run.dir / f.name)
    state = read_json(run.state)
    state["copied_from"] = src.resolve().relative_to(run.dir.resolve().parents[3]).as_posix()
    atomic_write_json(run.state, state)
    tmp = run.dir / ".metrics.csv.copy"
    shutil.copy2(src / "metrics.csv", tmp)
    os.replace(tmp, run.metrics)
    return state["copied_from"]


def run_job(job: Job, run_dir, device=None, progress: bool = False) -> tuple[str, str, float]:
    """Run one job under its RunDir's lock.  Returns (name, status, seconds); status is "done",
    "skipped" (evaluated before), "busy" (another process holds the lock), "copied from <path>"
    (a network job whose twin, `twin_run`, is finished: its files are copied, nothing is trained)
    or "failed: <reason>" (the traceback is in run_dir/error.log)."""
    t0 = time.perf_counter()
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    with run.lock() as got:
        if not got:
            return job.name, "busy", 0.0
        if run.evaluated:  # the one reuse rule, as in run_one
            return job.name, "skipped", 0.0
        try:
            twin = twin_run(run.dir, job.cfg) if job.kind == "pyramid" and not run.state.exists() else None
            if twin is not None:
                return job.name, f"copied from {copy_run(twin, run)}", time.perf_counter() - t0
            if job.kind == "pyramid":
                run_one(job.name, job.cfg, run, device, progress)
            else:
                bl.run_baseline(job.kind, job.cfg, run, device=device or "cpu", progress=progress)
        except Exception as e:
            atomic_write_text(run.dir / "error.log", traceback.format_exc())
            return job.name, f"failed: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}", \
                time.perf_counter() - t0
    return job.name, "done", time.perf_counter() - t0
