"""Sweeps: run every run of a plan (plan.py), resumable, in parallel or on SLURM, then collect them.

Layout: results/<experiment>/<profile>/ (or <profile>-<setting><value>... when options such as
--epochs 30 or --lambda 0 change the profile's runs: `variant`, so that they never mix with, or
are silently skipped as, the profile's own finished runs)
    runs/<name>/        one run folder each, a RunDir (engine/trainer.py, engine/evaluate.py, baselines.py)
    results.csv         one row per finished run (the per-run metrics.csv rows, combined)
    comparison.csv      ours beside the paper's numbers, one block per training regime (written by reporting/pages.py)
    sweeps.csv          one row per sweep invocation: command, commit, start/end, runs done/skipped/failed
    plan.csv            the planned runs (experiments/plan.py)
    *.png, README.md    figures and the results page (reporting/pages.py, written by the CLI)

Idempotent and resumable: a run is done when it is `evaluated` (RunDir: its metrics.csv, written
last, exists); such a run is never redone nor overwritten.  An interrupted network run resumes
from its last complete epoch; an interrupted baseline is redone (seconds to minutes).  Each run
holds an exclusive lock (`RunDir.lock`, filelock on runs/<name>/.lock) while it works, so two
sweeps started at once (or a sweep and a SLURM array) never train the same run twice: the second
one skips it as busy.  A network run whose settings equal those of a finished run of another
experiment under the same results root (the lambda-1 and 4-encoder runs of the ablations are the
Table II runs of their classes and seeds) is copied from it, not trained again; its run.json says
`copied_from` (`jobs.twin_run`).  To train such a run anew, sweep into another --out.

Parallelism: `jobs` runs at once on this machine, a fresh process per run
(`concurrent.futures.ProcessPoolExecutor`, spawn, one task per child), each with
cores // jobs torch threads and, on a machine with several GPUs, its own GPU (`gpu_slots`); or
`executor="slurm"`, which submits the same runs as a job array through `submitit`
(`executor="submitit-local"` does the same with submitit's local executor, for testing without
a cluster); see executors.py.  Progress goes to this package's loggers (logging, INFO)."""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing as mp
import shlex
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import pandas as pd
from filelock import FileLock

from ..engine.build import git_commit
from ..engine.run_dir import RunDir
from ..errors import ConfigError
from ..files import atomic_write_csv, atomic_write_json, read_json
from ..machine import usable_cores
from .executors import EXECUTORS, _worker, gpu_slots, log_status, submit
from .jobs import run_job
from .plan import check_finished_runs, plan_and_dir, record_plan, record_variant

log = logging.getLogger(__name__)


def sweep(experiment: str, profile: str = "quick", classes=None, out_root="results", weights: str = "random",
          data_root=None, download: bool = True, device=None, progress: bool = True, jobs: int = 1,
          executor: str = "local", datasets=None, methods=None, command: str | None = None,
          slurm: dict | None = None, wait: bool = True, seeds=None, **overrides) -> pd.DataFrame:
    """Run every unfinished run of an experiment (`jobs` at a time, or on SLURM), then collect the
    results and write plan.csv, sweeps.csv, results.csv and comparison.csv under
    out_root/<experiment>/<variant>/ (the profile's name, plus the settings that overrides change:
    `variant`).  `seeds`: one run per seed of every setting (`plan`).  Returns the combined
    results; `.attrs["base"]` is that folder."""
    if executor not in EXECUTORS:
        raise ConfigError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"--jobs must be a positive integer, got {jobs!r}")
    todo, base, changed = plan_and_dir(experiment, profile, classes, out_root, weights, data_root, download,
                                       datasets, methods, seeds, **overrides)
    check_finished_runs(base, todo)
    # the commit of the code this sweep imported, not HEAD at its end
    started, commit = dt.datetime.now(dt.timezone.utc), git_commit()
    command = command or "python -c 'pyramid_lib.sweep(...)'"

    record_plan(base, todo)  # so that results pages list what is still missing while this sweep runs
    record_variant(base, profile, changed)
    pending = [j for j in todo if not RunDir(base / "runs" / j.name).evaluated]
    skipped = len(todo) - len(pending)
    if progress:
        log.info("%s/%s: %d runs, %d finished before, %d to run (%s, jobs=%d)", experiment, profile, len(todo),
                 skipped, len(pending), executor, jobs)
    threads = max(1, usable_cores() // jobs)
    statuses: list[tuple[str, str, float]] = []
    if pending and executor == "local" and jobs == 1:
        for j in pending:
            statuses.append(run_job(j, base / "runs" / j.name, device, progress))
            if progress:
                log_status(statuses[-1])
    elif pending and executor == "local":
        ctx = mp.get_context("spawn")
        slots, gpus = gpu_slots(device, jobs), None
        if slots:  # several GPUs: each run takes one from the queue and gives it back when done
            gpus = ctx.Manager().Queue()
            for d in slots:
                gpus.put(d)
            if progress:
                log.info("  %d runs at once on %d GPUs (%s)", jobs, len(set(slots)), ", ".join(sorted(set(slots))))
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, max_tasks_per_child=1) as ex:
            futs = {ex.submit(_worker, j, str(base / "runs" / j.name), device, threads, gpus): j for j in pending}
            for f in as_completed(futs):
                try:
                    statuses.append(f.result())
                except Exception as e:  # the worker process died (killed, out of memory)
                    statuses.append((futs[f].name, f"failed: worker died ({type(e).__name__}: {e})", 0.0))
                if progress:
                    log_status(statuses[-1])
    elif pending:
        statuses = submit(pending, base, executor, jobs, device, slurm or {}, wait, progress)
    ended = dt.datetime.now(dt.timezone.utc)
    record_command(base, statuses, command)
    log_sweep(base, command, started, ended, executor, jobs, len(todo), skipped, statuses, commit)
    results = collect(experiment, base)
    failed = [s for s in statuses if s[1].startswith("failed")]
    if failed and progress:
        for name, st, _ in failed:
            log.error("  FAILED %s: %s (see %s)", name, st, base / "runs" / name / "error.log")
    results.attrs["base"] = str(base)  # where the sweep wrote (out_root/<experiment>/<variant>)
    return results


def record_command(base: Path, statuses, command: str) -> None:
    """Write the command that made each run this sweep trained or copied into its run.json (`command`),
    so that every run records its own command, not only the sweeps.csv of its folder."""
    for name, status, _ in statuses:
        state = Path(base) / "runs" / name / "run.json"
        if (status == "done" or status.startswith("copied")) and state.is_file():
            atomic_write_json(state, {**read_json(state), "command": command})


def log_sweep(base: Path, command: str, started, ended, executor: str, jobs: int, n: int, skipped: int,
              statuses, commit: str) -> None:
    """Append one row per sweep invocation to sweeps.csv; `commit` is the library's commit when the sweep
    started (a sweep may last hours, and HEAD may move meanwhile)."""
    path = Path(base) / "sweeps.csv"
    row = {"started_utc": started.isoformat(timespec="seconds"), "ended_utc": ended.isoformat(timespec="seconds"),
           "wall_seconds": round((ended - started).total_seconds(), 1), "command": command,
           "git_commit": commit, "executor": executor, "jobs": jobs, "runs": n,
           "finished_before": skipped, "done": sum(s[1] == "done" for s in statuses),
           "busy": sum(s[1] == "busy" for s in statuses),
           "copied": sum(s[1].startswith("copied") for s in statuses),
           "failed": sum(s[1].startswith("failed") for s in statuses),
           "submitted": sum(s[1].startswith("submitted") for s in statuses)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path.parent / ".sweeps.lock"):  # two sweeps may end at once: wait for the other
        old = pd.read_csv(path) if path.is_file() else pd.DataFrame()
        atomic_write_csv(path, pd.concat([old, pd.DataFrame([row])], ignore_index=True))


def collect(experiment: str, base) -> pd.DataFrame:
    """Gather every finished run's metrics under `base` into results.csv.  Adds a `method` and a `run`
    column.  comparison.csv is written by the results pages (reporting), which know each run's
    training regime and never pool two regimes as seeds of one setting."""

    base = Path(base)
    frames = []
    for p in sorted((base / "runs").glob("*/metrics.csv")):
        f = pd.read_csv(p, dtype={"normal_class": str})
        f.insert(0, "run", p.parent.name)
        if "method" not in f:
            f.insert(1, "method", ["ours" if lambda_ else "ours-lambda0" for lambda_ in f["lambda"]])
        frames.append(f)
    results = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(results):
        atomic_write_csv(base / "results.csv", results)
    return results


def shell_command(argv) -> str:
    """The command line `argv` as one shell-quoted `pyramid-ad ...` string (recorded in sweeps.csv)."""
    return "pyramid-ad " + " ".join(shlex.quote(str(a)) for a in argv)
