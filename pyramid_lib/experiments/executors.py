"""Sweeps that re-run the paper's experiments: independent runs, resumable, in parallel or on SLURM.

Experiments (`EXPERIMENTS`):
    mnist, fmnist        Table III / Table II: one run per normal class
    mvtec                Table IV: one run per category (only what is under <data>/mvtec_ad/)
    ablation-encoders    Fig. 3-4: 1, 2, 4, 6 encoders on two classes (paper: MVTec bottle, carpet;
                         default here: Fashion-MNIST classes 0 and 4 as a stand-in, `--dataset mvtec`
                         for the real thing)
    ablation-lambda      Fig. 5: lambda 0 (MSE only) and 1 (MSE + perceptual) on the same two classes
    baselines            OC-SVM, KDE, plain AE (L2, SSIM) and our network with lambda = 0, re-run on
                         the same splits (baselines.py); default datasets MNIST and Fashion-MNIST

Layout: results/<experiment>/<profile>/ (or <profile>-<setting><value>... when options such as
--epochs 30 or --lambda 0 change the profile's runs: `variant`, so that they never mix with, or
are silently skipped as, the profile's own finished runs)
    runs/<name>/        one run folder each (train.py, evaluate.py, baselines.py)
    results.csv         one row per finished run (the per-run metrics.csv rows, combined)
    comparison.csv      ours beside the paper's numbers (paper.py), where the paper has a table
    sweeps.csv          one row per sweep invocation: command, commit, start/end, runs done/skipped/failed
    *.png, README.md    figures and the results page (report.py)

Idempotent and resumable: a run is finished when its metrics.csv exists (written last); a finished
run is never redone nor overwritten.  An interrupted network run resumes from its last complete
epoch; an interrupted baseline is redone (seconds to minutes).  Each run holds an exclusive lock
(`fcntl.flock` on runs/<name>/.lock) while it works, so two sweeps started at once (or a sweep
and a SLURM array) never train the same run twice: the second one skips it as busy.

Parallelism: `jobs` runs at once on this machine, a fresh process per run
(`concurrent.futures.ProcessPoolExecutor`, spawn, one task per child), each with
cores // jobs torch threads and, on a machine with several GPUs, its own GPU (`gpu_slots`); or
`executor="slurm"`, which submits the same runs as a job array through `submitit`
(`executor="submitit-local"` does the same with submitit's local executor, for testing without
a cluster)."""

from __future__ import annotations

import os
from pathlib import Path

from .jobs import run_job
from .plan import Job

EXECUTORS = ("local", "slurm", "submitit-local")


def _worker(job: Job, run_dir: str, device, threads: int, gpus=None) -> tuple[str, str, float]:
    """Entry point of a worker process (local pool or submitit): limit threads, then run the job;
    with `gpus` (a queue of device names, see gpu_slots), on a GPU taken from it and given back after."""
    import torch

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
        import torch

        n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n_gpus < 2 or jobs < 2:
        return []
    per = -(-jobs // n_gpus)
    return [f"cuda:{i}" for _ in range(per) for i in range(n_gpus)]


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _ensure_importable():
    """Let worker processes (spawned, or submitit's) import pyramid_lib even when it is not installed."""
    root = str(Path(__file__).resolve().parents[1])
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([root, *parts])


def make_executor(base: Path, executor: str, jobs: int, slurm: dict, n_runs: int):
    """(submitit executor, torch threads per run) for "slurm" or "submitit-local"; logs go to base/submitit/."""
    import submitit

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
    return ex, max(1, _cores() // max(1, min(jobs, n_runs)))


def submit(pending: list[Job], base: Path, executor: str, jobs: int, device, slurm: dict, wait: bool,
           progress: bool) -> list[tuple[str, str, float]]:
    """Submit the runs through submitit: a SLURM job array (executor "slurm"), or submitit's local
    executor ("submitit-local").  With `wait`, block until all end and return their statuses."""
    _ensure_importable()
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
            print(f"  submitted {len(wave)} run(s) through submitit ({executor}): job ids "
                  f"{', '.join(h.job_id for h in handles)}; logs in {base / 'submitit'}", flush=True)
        if not wait:
            statuses += [(j.name, f"submitted: job {h.job_id}", 0.0) for j, h in zip(wave, handles)]
            continue
        for j, h in zip(wave, handles):
            try:
                statuses.append(h.result())
            except Exception as e:
                statuses.append((j.name, f"failed: submitit job {h.job_id}: {str(e).splitlines()[-1][:200]}", 0.0))
            if progress:
                print(f"  {statuses[-1][0]}: {statuses[-1][1]} ({statuses[-1][2]:.0f}s)", flush=True)
    return statuses
