"""Where a sweep's runs execute: worker processes on this machine (one per run, a GPU each when
there are several), or submitit (a SLURM job array, or submitit's local executor for testing).

Each worker calls `jobs.run_job`, which holds the run's lock, so two sweeps (or a sweep and a SLURM
array) never run the same run at once.  Workers import the installed package; nothing here edits
PYTHONPATH or sys.path."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..machine import usable_cores
from .jobs import run_job
from .plan import Job

log = logging.getLogger(__name__)

EXECUTORS = ("local", "slurm", "submitit-local")


def _worker(job: Job, run_dir: str, device, threads: int, gpus=None) -> tuple[str, str, float]:
    """Entry point of a worker process (local pool or submitit): limit threads, then run the job;
    with `gpus` (a queue of device names, see gpu_slots), on a GPU taken from it and given back after."""
    if threads:
        torch.set_num_threads(threads)
    if gpus is None:
        return run_job(job, run_dir, device, progress=False)
    dev = gpus.get()
    try:
        return run_job(job, run_dir, dev, progress=False)
    finally:
        gpus.put(dev)


def gpu_slots(device, jobs: int, n_gpus: int | None = None) -> list[str]:
    """The device names that `jobs` parallel runs share when `device` is "auto"/"cuda" and more than
    one GPU is visible: each GPU listed ceil(jobs / n_gpus) times, so runs spread over all of them
    (a process per GPU when jobs == n_gpus).  Empty otherwise: every run uses `device` itself."""
    if device not in (None, "auto", "cuda"):
        return []
    if n_gpus is None:
        n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n_gpus < 2 or jobs < 2:
        return []
    per = -(-jobs // n_gpus)
    return [f"cuda:{i}" for _ in range(per) for i in range(n_gpus)]


def make_executor(base: Path, executor: str, jobs: int, slurm: dict, n_runs: int):
    """(submitit executor, torch threads per run) for "slurm" or "submitit-local"; logs go to base/submitit/."""
    import submitit  # deferred on purpose: only sweeps that use submitit need it

    folder = Path(base) / "submitit" / "%j"
    if executor == "slurm":
        ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
        params = {"timeout_min": int(slurm.get("timeout_min") or 24 * 60), "slurm_array_parallelism": jobs,
                  "cpus_per_task": int(slurm.get("cpus_per_task") or 4), "name": f"pyramid-{Path(base).parent.name}"}
        if slurm.get("gpus_per_node"):
            params["gpus_per_node"] = int(slurm["gpus_per_node"])
        if slurm.get("partition"):
            params["slurm_partition"] = slurm["partition"]
        ex.update_parameters(**params)
        return ex, params["cpus_per_task"]
    ex = submitit.AutoExecutor(folder=folder, cluster="local")
    ex.update_parameters(timeout_min=int(slurm.get("timeout_min") or 24 * 60))
    return ex, max(1, usable_cores() // max(1, min(jobs, n_runs)))


def submit(pending: list[Job], base: Path, executor: str, jobs: int, device, slurm: dict, wait: bool,
           progress: bool) -> list[tuple[str, str, float]]:
    """Submit the runs through submitit: a SLURM job array (executor "slurm"), or submitit's local
    executor ("submitit-local").  With `wait`, block until all end and return their statuses
    (name, status, seconds), as `run_job` gives them; without, "submitted: job <id>" each."""
    ex, threads = make_executor(base, executor, jobs, slurm, len(pending))
    if executor == "submitit-local" and jobs < len(pending):
        # submitit's local executor starts every job at once; submit in waves of `jobs`
        waves = [pending[i:i + jobs] for i in range(0, len(pending), jobs)]
    else:
        waves = [pending]
    statuses = []
    for wave in waves:
        handles = ex.map_array(_worker, wave, [str(base / "runs" / j.name) for j in wave], [device] * len(wave),
                               [threads] * len(wave))
        if progress:
            log.info("  submitted %d run(s) through submitit (%s): job ids %s; logs in %s", len(wave), executor,
                     ", ".join(h.job_id for h in handles), base / "submitit")
        if not wait:
            statuses += [(j.name, f"submitted: job {h.job_id}", 0.0) for j, h in zip(wave, handles)]
            continue
        for j, h in zip(wave, handles):
            try:
                statuses.append(h.result())
            except Exception as e:
                statuses.append((j.name, f"failed: submitit job {h.job_id}: {str(e).splitlines()[-1][:200]}", 0.0))
            if progress:
                log_status(statuses[-1])
    return statuses


def log_status(status: tuple[str, str, float]) -> None:
    """Log one run's (name, status, seconds) as a sweep reports it."""
    log.info("  %s: %s (%.0fs)", *status)
