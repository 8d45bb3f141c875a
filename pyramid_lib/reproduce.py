"""Sweeps that re-run the paper's experiments: train + evaluate over classes, resumable.

Layout: results/<experiment>/<profile>/
    runs/<name>/        one run folder each (see train.py, evaluate.py)
    results.csv         one row per finished run
    comparison.csv      ours beside the paper's numbers (paper.py)
A finished run (metrics.csv present and run.json says finished) is skipped; an interrupted one
resumes from its last complete epoch; nothing finished is ever overwritten.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from . import data as data_mod
from . import profiles
from .errors import ConfigError
from .evaluate import evaluate_run
from .files import atomic_write_csv
from .train import Run, TrainConfig, train

EXPERIMENTS = {
    "mnist": ("mnist", data_mod.MNIST_CLASSES),
    "fmnist": ("fmnist", tuple(str(i) for i in range(10))),
    "mvtec": ("mvtec", data_mod.MVTEC_CATEGORIES),
}


def plan(experiment: str, profile: str = "quick", classes=None, weights: str = "random", data_root=None,
         download: bool = True, **overrides) -> list[tuple[str, TrainConfig]]:
    """The (run name, config) pairs of an experiment."""
    if experiment not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {experiment!r}; choose one of {', '.join(EXPERIMENTS)}")
    dataset, all_classes = EXPERIMENTS[experiment]
    prof = profiles.get(profile)
    prof.pop("weights")
    runs = []
    for c in classes or all_classes:
        cfg = TrainConfig(dataset=dataset, normal_class=str(c), weights=weights, profile=profile, data_root=data_root,
                          download=download, **{**prof, **overrides})
        runs.append((f"{dataset}-{str(c).replace('/', '_')}", cfg.validate()))
    return runs


def run_one(name: str, cfg: TrainConfig, run_dir, device=None, progress: bool = True) -> pd.DataFrame:
    """Train (or resume) and evaluate one run; a finished, evaluated run is read back, not redone."""
    run = Run(run_dir)
    metrics = run.dir / "metrics.csv"
    if run.finished() and metrics.is_file():
        return pd.read_csv(metrics, dtype={"normal_class": str})
    d = data_mod.load(cfg.dataset, cfg.normal_class, cfg.data_root, cfg.download, cfg.input_size)
    train(cfg, run.dir, resume=run.dir.exists(), device=device, progress=progress, data=d)
    return evaluate_run(run.dir, device=device, data=d, progress=progress)


def sweep(experiment: str, profile: str = "quick", classes=None, out_root="results", weights: str = "random",
          data_root=None, download: bool = True, device=None, progress: bool = True, **overrides) -> pd.DataFrame:
    """Run every run of an experiment in turn, then write results.csv and comparison.csv."""
    runs = plan(experiment, profile, classes, weights, data_root, download, **overrides)
    base = Path(out_root) / experiment / profile
    rows = [run_one(name, cfg, base / "runs" / name, device, progress) for name, cfg in runs]
    return collect(experiment, base)


def collect(experiment: str, base) -> pd.DataFrame:
    """Gather every finished run's metrics under `base` into results.csv and comparison.csv."""
    from . import paper

    base = Path(base)
    frames = [pd.read_csv(p, dtype={"normal_class": str}) for p in sorted((base / "runs").glob("*/metrics.csv"))]
    results = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(results):
        atomic_write_csv(base / "results.csv", results)
        table = {"mnist": "mnist", "fmnist": "fmnist", "mvtec": "mvtec"}.get(experiment)
        if table:
            atomic_write_csv(base / "comparison.csv", paper.compare(results, table))
    return results


def with_overrides(cfg: TrainConfig, **kw) -> TrainConfig:
    return replace(cfg, **kw).validate()
