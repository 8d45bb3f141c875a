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
a cluster).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import shlex
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from . import baselines as bl
from . import data as data_mod
from . import profiles
from .errors import ConfigError
from .files import atomic_write_csv, atomic_write_text
from .train import Run, TrainConfig

MAIN = {"mnist": ("mnist", data_mod.MNIST_CLASSES),
        "fmnist": ("fmnist", tuple(str(i) for i in range(10))),
        "mvtec": ("mvtec", data_mod.MVTEC_CATEGORIES)}
ABLATIONS = ("ablation-encoders", "ablation-lambda")
EXPERIMENTS = (*MAIN, *ABLATIONS, "baselines")
EXECUTORS = ("local", "slurm", "submitit-local")
# Fashion-MNIST stand-ins for the paper's bottle and carpet: T-shirt/top and Coat, two classes of
# middle difficulty (neither at the AUROC ceiling like Trouser nor at the floor like Shirt).
ABLATION_DEFAULT = {"fmnist": ("0", "4"), "mnist": ("2", "8"), "mvtec": ("bottle", "carpet")}
ABLATION_ENCODERS = (1, 2, 4, 6)
ABLATION_LAMBDAS = (0.0, 1.0)
BASELINE_DATASETS = ("mnist", "fmnist")
STAND_IN_NOTE = ("Fashion-MNIST classes stand in for the paper's MVTec bottle and carpet (not here); "
                 "run with --dataset mvtec for the real thing.")


@dataclass(frozen=True)
class Job:
    """One independent run of a sweep: a network run (kind "pyramid") or a baseline method."""

    name: str
    kind: str  # "pyramid" or one of baselines.METHODS other than ours-lambda0
    cfg: TrainConfig
    method: str  # how tables name it: "ours", "ours-lambda0", "ocsvm", ...


def _classes_of(dataset: str) -> tuple[str, ...]:
    if dataset == "mvtec":
        return data_mod.MVTEC_CATEGORIES
    return tuple(str(i) for i in range(10))


def _safe(c) -> str:
    return str(c).replace("/", "_").replace(" ", "_")


def plan(experiment: str, profile: str = "quick", classes=None, weights: str = "random", data_root=None,
         download: bool = True, datasets=None, methods=None, **overrides) -> list[Job]:
    """The independent runs of an experiment, each validated (no data is read here)."""
    if experiment not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {experiment!r}; choose one of {', '.join(EXPERIMENTS)}")
    prof = profiles.get(profile)
    prof.pop("weights")
    base = {**prof, **{k: v for k, v in overrides.items() if v is not None}}

    def cfg(dataset, c, **kw):
        return TrainConfig(dataset=dataset, normal_class=str(c), weights=weights, profile=profile,
                           data_root=data_root, download=download, **{**base, **kw}).validate()

    if datasets is not None and isinstance(datasets, str):
        datasets = [datasets]
    jobs: list[Job] = []
    if experiment in MAIN:
        dataset, all_classes = MAIN[experiment]
        dataset = (datasets or [dataset])[0]
        for c in classes or all_classes:
            jobs.append(Job(f"{dataset}-{_safe(c)}", "pyramid", cfg(dataset, c), "ours"))
    elif experiment in ABLATIONS:
        for dataset in datasets or ["fmnist"]:
            for c in classes or ABLATION_DEFAULT.get(dataset, _classes_of(dataset)[:2]):
                if experiment == "ablation-encoders":
                    for k in ABLATION_ENCODERS:
                        jobs.append(Job(f"{dataset}-{_safe(c)}-enc{k}", "pyramid", cfg(dataset, c, encoders=k),
                                        f"ours, {k} encoder{'s' * (k > 1)}"))
                else:
                    for lam in ABLATION_LAMBDAS:
                        jobs.append(Job(f"{dataset}-{_safe(c)}-lambda{lam:g}", "pyramid", cfg(dataset, c, lam=lam),
                                        "ours" if lam else "ours-lambda0"))
    else:  # baselines: the cheap ones first, then the autoencoders, then our network with lambda = 0
        methods = [bl.check_method(m) for m in (methods or bl.METHODS)]
        for m in sorted(methods, key=bl.METHODS.index):
            for dataset in datasets or BASELINE_DATASETS:
                for c in classes or _classes_of(dataset):
                    kind = "pyramid" if m == "ours-lambda0" else m
                    extra = {"lam": 0.0} if m == "ours-lambda0" else {}
                    jobs.append(Job(f"{dataset}-{_safe(c)}-{m}", kind, cfg(dataset, c, **extra), m))
    return jobs


# ------------------------------------------------------------------------------ one run


_VARIANT_LABELS = {"lam": "lambda", "input_size": "size"}
_VARIANT_FIELDS = ("epochs", "encoders", "pyramid", "lam", "input_size", "seed", "lr", "batch_size", "train_limit")


def variant(profile: str, todo: list[Job], plain: list[Job]) -> str:
    """The results folder name of a sweep: the profile's name, plus `-<setting><value>` for each
    setting in which the planned runs differ from the same plan without overrides (e.g.
    `cpu-epochs30`, `quick-lambda0-seed1`)."""
    changed = [k for k in _VARIANT_FIELDS
               if any(getattr(j.cfg, k) != getattr(p.cfg, k) for j, p in zip(todo, plain))]

    def fmt(v):
        return "none" if v is None else f"{v:g}" if isinstance(v, float) else str(v)

    return "-".join([profile, *(f"{_VARIANT_LABELS.get(k, k)}{fmt(getattr(todo[0].cfg, k))}" for k in changed)])


def plan_and_dir(experiment: str, profile: str = "quick", classes=None, out_root="results", weights: str = "random",
                 data_root=None, download: bool = True, datasets=None, methods=None,
                 **overrides) -> tuple[list[Job], Path]:
    """A sweep's runs and where it writes: out_root/<experiment>/<variant>."""
    todo = plan(experiment, profile, classes, weights, data_root, download, datasets, methods, **overrides)
    plain = plan(experiment, profile, classes, weights, data_root, download, datasets, methods)
    return todo, Path(out_root) / experiment / variant(profile, todo, plain)


def check_finished_runs(base: Path, todo: list[Job]) -> None:
    """Refuse a sweep whose planned runs were finished before with other settings (another
    --weights, or a profile that changed): skipping them would report those settings as these."""
    from .errors import CheckpointError
    from .files import read_json
    from .train import RUN_FIELDS, check_compatible

    for j in todo:
        run_dir = base / "runs" / j.name
        if not finished(run_dir) or not (run_dir / "config.json").is_file():
            continue
        try:
            check_compatible(read_json(run_dir / "config.json"), j.cfg, run_dir, names=(*RUN_FIELDS, "epochs"))
        except (CheckpointError, ValueError, OSError) as e:
            raise ConfigError(f"{str(e).rstrip('.')}. It is finished, so this sweep would skip it and report its "
                              "settings as yours (remove the run folder to redo it)") from None


def finished(run_dir) -> bool:
    """A run is finished when its metrics.csv exists: it is written last, atomically."""
    return (Path(run_dir) / "metrics.csv").is_file()


@contextlib.contextmanager
def run_lock(run_dir):
    """Hold an exclusive, non-blocking lock on run_dir/.lock; yields False when another process has it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read_metrics(run_dir) -> pd.DataFrame:
    return pd.read_csv(Path(run_dir) / "metrics.csv", dtype={"normal_class": str})


def run_one(name: str, cfg: TrainConfig, run_dir, device=None, progress: bool = True) -> pd.DataFrame:
    """Train (or resume) and evaluate one network run; a finished, evaluated run is read back, not redone."""
    from .evaluate import evaluate_run
    from .train import train

    run = Run(run_dir)
    if run.finished() and finished(run.dir):
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
    from .evaluate import read_scores
    from .plots import run_figures
    from .train import load_run

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


# ------------------------------------------------------------------------------ sweep


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


def git_commit(path=None) -> str:
    """HEAD's commit of the repository holding `path` (with "+dirty" when tracked files changed)."""
    cwd = Path(path or Path(__file__).resolve().parent)
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "."],
                               cwd=cwd, capture_output=True, text=True, timeout=10).stdout.strip()
        return (head or "unknown") + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def sweep(experiment: str, profile: str = "quick", classes=None, out_root="results", weights: str = "random",
          data_root=None, download: bool = True, device=None, progress: bool = True, jobs: int = 1,
          executor: str = "local", datasets=None, methods=None, command: str | None = None,
          slurm: dict | None = None, wait: bool = True, figures: bool = True, **overrides) -> pd.DataFrame:
    """Run every unfinished run of an experiment (`jobs` at a time, or on SLURM), then collect the
    results and write results.csv, comparison.csv, figures and README.md under
    out_root/<experiment>/<variant>/ (the profile's name, plus the settings that overrides change:
    `variant`).  Returns the combined results; `.attrs["base"]` is that folder."""
    if executor not in EXECUTORS:
        raise ConfigError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"--jobs must be a positive integer, got {jobs!r}")
    todo, base = plan_and_dir(experiment, profile, classes, out_root, weights, data_root, download, datasets,
                              methods, **overrides)
    label = base.name
    check_finished_runs(base, todo)
    started, commit = dt.datetime.now(dt.timezone.utc), git_commit()  # the code this sweep imported, not HEAD at its end
    command = command or "python -c 'pyramid_lib.reproduce.sweep(...)'"
    from .report import record_plan

    record_plan(base, todo)  # so that results pages list what is still missing while this sweep runs
    pending = [j for j in todo if not finished(base / "runs" / j.name)]
    skipped = len(todo) - len(pending)
    if progress:
        print(f"{experiment}/{profile}: {len(todo)} runs, {skipped} finished before, {len(pending)} to run "
              f"({executor}, jobs={jobs})", flush=True)
    threads = max(1, _cores() // jobs)
    statuses: list[tuple[str, str, float]] = []
    if pending and executor == "local" and jobs == 1:
        for j in pending:
            statuses.append(run_job(j, base / "runs" / j.name, device, progress))
            if progress:
                print(f"  {statuses[-1][0]}: {statuses[-1][1]} ({statuses[-1][2]:.0f}s)", flush=True)
    elif pending and executor == "local":
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        _ensure_importable()
        ctx = mp.get_context("spawn")
        slots, gpus = gpu_slots(device, jobs), None
        if slots:  # several GPUs: each run takes one from the queue and gives it back when done
            gpus = ctx.Manager().Queue()
            for d in slots:
                gpus.put(d)
            if progress:
                print(f"  {jobs} runs at once on {len(set(slots))} GPUs ({', '.join(sorted(set(slots)))})", flush=True)
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, max_tasks_per_child=1) as ex:
            futs = {ex.submit(_worker, j, str(base / "runs" / j.name), device, threads, gpus): j for j in pending}
            for f in as_completed(futs):
                try:
                    statuses.append(f.result())
                except Exception as e:  # the worker process died (killed, out of memory)
                    statuses.append((futs[f].name, f"failed: worker died ({type(e).__name__}: {e})", 0.0))
                if progress:
                    print(f"  {statuses[-1][0]}: {statuses[-1][1]} ({statuses[-1][2]:.0f}s)", flush=True)
    elif pending:
        statuses = submit(pending, base, executor, jobs, device, slurm or {}, wait, progress)
    ended = dt.datetime.now(dt.timezone.utc)
    log_sweep(base, command, started, ended, executor, jobs, len(todo), skipped, statuses, commit)
    results = collect(experiment, base)
    if figures:
        from . import report

        report.experiment_outputs(experiment, label, base, todo, out_root=out_root)
    failed = [s for s in statuses if s[1].startswith("failed")]
    if failed and progress:
        for name, st, _ in failed:
            print(f"  FAILED {name}: {st} (see {base / 'runs' / name / 'error.log'})", file=sys.stderr)
    results.attrs["base"] = str(base)  # where the sweep wrote (out_root/<experiment>/<variant>)
    return results


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
           "failed": sum(s[1].startswith("failed") for s in statuses),
           "submitted": sum(s[1].startswith("submitted") for s in statuses)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / ".sweeps.lock", "a+") as lock:  # two sweeps may end at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            old = pd.read_csv(path) if path.is_file() else pd.DataFrame()
            atomic_write_csv(path, pd.concat([old, pd.DataFrame([row])], ignore_index=True))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def collect(experiment: str, base) -> pd.DataFrame:
    """Gather every finished run's metrics under `base` into results.csv (and comparison.csv where
    the paper has a table).  Adds a `method` and a `run` column."""
    from . import paper

    base = Path(base)
    frames = []
    for p in sorted((base / "runs").glob("*/metrics.csv")):
        f = pd.read_csv(p, dtype={"normal_class": str})
        f.insert(0, "run", p.parent.name)
        if "method" not in f:
            f.insert(1, "method", ["ours" if lam else "ours-lambda0" for lam in f["lambda"]])
        frames.append(f)
    results = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(results):
        atomic_write_csv(base / "results.csv", results)
        if experiment in MAIN:
            table = experiment if results["dataset"].iloc[0] in ("mnist", "fmnist", "mvtec") else None
            if table:
                atomic_write_csv(base / "comparison.csv", paper.compare(results, table))
    return results


def shell_command(argv) -> str:
    return "pyramid-ad " + " ".join(shlex.quote(str(a)) for a in argv)


def with_overrides(cfg: TrainConfig, **kw) -> TrainConfig:
    return replace(cfg, **kw).validate()
