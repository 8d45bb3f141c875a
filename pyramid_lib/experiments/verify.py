"""Did a committed number reproduce?  Re-run committed runs from their config.json and set each metric
beside the committed one, with a tolerance taken from data (`pyramid-ad verify`).

The tolerance of a metric is the larger of

- **twice the seed spread of its table**: the s.d. over seeds of that metric among the runs of the
  same folder, method, epochs and training-image limit, pooled over the classes that have two or more
  seeds (the root of the mean per-class variance).  Two runs of one seed on two machines differ by
  rounding alone, yet rounding in a few hundred optimiser steps moves a run about as far as another
  seed does (benchmarks/README.md), and the difference of two such draws has s.d. sqrt(2) times one;
- **the rounding range** that `benchmarks/stability.py` measured: the largest max - min of the AUROC
  over its rounding variants (the same seed, kernels and layouts switched) in the
  benchmarks/results-stability-*.log of the run's profile (of any profile when none matches).  It
  applies to the AUROC-like metrics, the ones stability.py measures.

A metric whose committed value is missing (NaN: no masks, not measured) is shown and not judged.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import baselines as bl
from ..config import TrainConfig
from ..engine.run_dir import RunDir
from ..errors import ConfigError
from ..files import read_json
from .jobs import run_one

METRICS = ("auroc", "auroc_mse", "auroc_perceptual", "auroc_ssim", "ssim_normal", "pixel_auroc", "aupro",
           "heldout_tpr", "heldout_tnr")
ROUNDED = ("auroc", "auroc_mse", "auroc_perceptual", "auroc_ssim", "pixel_auroc", "aupro")
LOGS = Path(__file__).resolve().parents[2] / "benchmarks"  # a source checkout's stability logs


@dataclass(frozen=True)
class Check:
    """One metric of one run: the committed value, the re-run's, the tolerance and where it came from."""

    metric: str
    committed: float
    rerun: float
    tolerance: float
    source: str

    @property
    def judged(self) -> bool:
        return math.isfinite(self.committed)

    @property
    def ok(self) -> bool:
        return not self.judged or abs(self.rerun - self.committed) <= self.tolerance

    def line(self) -> str:
        if not self.judged:
            return f"  {self.metric:<16} committed     n/a  re-run {self.rerun:.4f}  (no committed value: not judged)"
        return (f"  {self.metric:<16} committed {self.committed:.4f}  re-run {self.rerun:.4f}  "
                f"|diff| {abs(self.rerun - self.committed):.4f}  tolerance {self.tolerance:.4f} ({self.source})  "
                + ("ok" if self.ok else "NOT within tolerance"))


def rounding_ranges(folder=LOGS) -> dict[str, float]:
    """{profile: the largest AUROC range over rounding variants} from stability.py's printed logs
    (benchmarks/results-stability-*.log: a header 'profile P, ...' and lines '... range R')."""
    out: dict[str, float] = {}
    for log in sorted(Path(folder).glob("results-stability-*.log")) if Path(folder).is_dir() else []:
        profile = None
        for line in log.read_text().splitlines():
            if m := re.match(r"profile (\w[\w-]*),", line):
                profile = m.group(1)
            elif (m := re.search(r"variants .*: AUROC .*range (\d+\.\d+)", line)) and profile:
                out[profile] = max(out.get(profile, 0.0), float(m.group(1)))
    return out


def seed_spread(results: pd.DataFrame, row: pd.Series, metric: str) -> tuple[float, int]:
    """(pooled within-class s.d. over seeds, classes it pools) of `metric` among the runs of `results`
    with `row`'s method, epochs and training-image limit; (nan, 0) when no class has two seeds."""
    same = results
    for col in ("method", "epochs", "train_limit"):
        if col in same and col in row:
            same = same[(same[col] == row[col]) | (same[col].isna() & pd.isna(row[col]))]
    if metric not in same or not len(same):
        return math.nan, 0
    var = same.groupby(same["normal_class"].astype(str))[metric].var(ddof=1).dropna()
    return (float(np.sqrt(var.mean())), len(var)) if len(var) else (math.nan, 0)


def tolerance(results: pd.DataFrame, row: pd.Series, metric: str, ranges: dict[str, float]) -> tuple[float, str]:
    sd, k = seed_spread(results, row, metric)
    parts, tol = [], 0.0
    if k:
        tol, parts = 2 * sd, [f"2 x seed s.d. {sd:.4f} over {k} class(es)"]
    if metric in ROUNDED and ranges:
        profile = str(row.get("profile", ""))
        r = ranges.get(profile, max(ranges.values()))
        parts.append(f"rounding range {r:.4f}" + ("" if profile in ranges else " (another profile's)"))
        tol = max(tol, r)
    return tol, "; ".join(parts) or "no seed spread or rounding range measured: must match exactly"


def choose(results_dir, n: int | None = None, names=()) -> list[str]:
    """The runs to verify: `names`, or the `n` cheapest finished runs trained here (not copied), by
    recorded training seconds.  Raises ConfigError for a name without a finished run."""
    base = Path(results_dir)
    done = sorted(p.parent.name for p in (base / "runs").glob("*/metrics.csv"))
    if names:
        missing = [x for x in names if x not in done]
        if missing:
            raise ConfigError(f"no finished run {', '.join(missing)} under {base / 'runs'}")
        return list(names)
    cost, unusable = {}, []
    for name in done:
        if read_json(base / "runs" / name / "run.json").get("copied_from") if (base / "runs" / name / "run.json"
                                                                               ).is_file() else False:
            continue
        if (why := not_rerunnable(base / "runs" / name)) is not None:
            unusable.append(f"{name} ({why})")
            continue
        m = pd.read_csv(base / "runs" / name / "metrics.csv")
        cost[name] = float(m.get("train_seconds", pd.Series([math.inf])).iloc[0])
    if unusable:
        warnings.warn(f"{base}: {len(unusable)} run(s) not chosen, today's code cannot re-run them as recorded: "
                      + "; ".join(unusable[:3]) + (" ..." if len(unusable) > 3 else ""), UserWarning, stacklevel=2)
    if not cost:
        raise ConfigError(f"{base}: no finished run that today's code can re-run as recorded")
    return sorted(cost, key=lambda x: (cost[x], x))[: n or 3]


# The commit that made the random VGG11 start orthogonal (it was Kaiming-initialised before) and, with
# the same change, made run.json record "init": a network run without that record started otherwise.
INIT_CHANGED = "7cc5e7c"


def not_rerunnable(run_dir) -> str | None:
    """Why today's code cannot re-run the run in `run_dir` as it was made, or None: a baseline fitted with
    settings other than today's (or none recorded: made before the kit recorded them), or a network run
    with random weights and no "init" in run.json (trained before INIT_CHANGED: another initialisation)."""
    config = read_json(Path(run_dir) / "config.json")
    method = config.get("method", "ours")
    if method in bl.SKLEARN_METHODS:
        today = bl.settings(config.get("dataset"), method)
        if config.get("baseline_settings") != today:
            return f"recorded with settings {config.get('baseline_settings')}, today's are {today}"
    elif method not in bl.AE_METHODS and config.get("weights") != "imagenet":
        state = Path(run_dir) / "run.json"
        if not (state.is_file() and isinstance(read_json(state).get("init"), dict)):
            return (f"trained before {INIT_CHANGED} (run.json records no initialisation), whose random VGG11 "
                    "started Kaiming-initialised; today's starts orthogonal, so a re-run trains another network")
    return None


def rerun(run_dir, work, data_root=None, device=None, progress: bool = False) -> pd.Series:
    """Train and evaluate again, into `work`, the run whose config.json is in `run_dir`; its metrics row.
    `data_root` replaces the recorded one (a path of the machine that made it); torch uses the number of
    threads the run recorded (run.json `machine`)."""
    config = read_json(Path(run_dir) / "config.json")
    state = read_json(Path(run_dir) / "run.json") if (Path(run_dir) / "run.json").is_file() else {}
    threads = (state.get("machine") or {}).get("torch_threads")
    if isinstance(threads, int) and threads > 0:
        torch.set_num_threads(threads)  # the recorded count: it changes the float rounding
    cfg = TrainConfig.from_dict(config)
    cfg = replace(cfg, data_root=str(data_root) if data_root else cfg.data_root, download=False).validate()
    method = config.get("method", "ours")
    if (why := not_rerunnable(run_dir)) is not None:
        raise ConfigError(f"{run_dir}: {why}: not the same run")
    if method in bl.SKLEARN_METHODS or method in bl.AE_METHODS:
        return bl.run_baseline(method, cfg, RunDir(work), device=device or "cpu", progress=progress).iloc[0]
    return run_one(Path(run_dir).name, cfg, RunDir(work), device, progress, figures=False).iloc[0]


def verify(results_dir, names, data_root=None, work=None, device=None, logs=LOGS, echo=print) -> bool:
    """Re-run each named run of `results_dir` (a folder holding runs/ and results.csv) and print one line
    per metric and a verdict per run; True when every judged metric of every run is within tolerance."""
    base = Path(results_dir)
    results = pd.read_csv(base / "results.csv", dtype={"normal_class": str}) if (base / "results.csv").is_file() \
        else pd.concat([pd.read_csv(p, dtype={"normal_class": str}) for p in (base / "runs").glob("*/metrics.csv")])
    ranges = rounding_ranges(logs)
    echo("rounding ranges (benchmarks/results-stability-*.log): "
         + (", ".join(f"{p} {r:.4f}" for p, r in sorted(ranges.items())) or "none found"))
    every = True
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        for name in names:
            committed = pd.read_csv(base / "runs" / name / "metrics.csv", dtype={"normal_class": str}).iloc[0]
            echo(f"{name}: re-running from {base / 'runs' / name / 'config.json'}")
            new = rerun(base / "runs" / name, Path(tmp) / name, data_root, device)
            checks = []
            for metric in METRICS:
                if metric in committed and metric in new:
                    tol, source = tolerance(results, committed, metric, ranges)
                    checks.append(Check(metric, float(committed[metric]), float(new[metric]), tol, source))
            for c in checks:
                echo(c.line())
            bad = [c.metric for c in checks if not c.ok]
            echo(f"{name}: " + ("reproduced within tolerance" if not bad else f"NOT reproduced: {', '.join(bad)}"))
            every &= not bad
    return every


def add_verify_parser(sub, positive_int) -> None:
    """`pyramid-ad verify` on arguments.py's subparsers (`positive_int`: its argument type)."""
    p = sub.add_parser("verify", help="re-run committed runs from their config.json; each metric beside the committed "
                       "one, with a tolerance from the data", description="Re-trains and re-evaluates runs of "
                       "RESULTS_DIR (a folder holding runs/ and results.csv, e.g. results/mnist/cpu) from their "
                       "recorded config.json, prints each metric beside the committed value with its tolerance (twice "
                       "the table's seed s.d., or the rounding range benchmarks/stability.py measured, the larger) and "
                       "a verdict per run. Exit status 1 when a run is not reproduced.")
    p.add_argument("results_dir", metavar="RESULTS_DIR")
    p.add_argument("names", nargs="*", metavar="NAME", help="runs to verify (default: the --runs cheapest)")
    p.add_argument("--runs", type=positive_int, metavar="N", default=None, help="verify the N cheapest runs (3)")
    p.add_argument("--data-root", default=None, help="the data (default: $PYRAMID_DATA, else the recorded root)")
    p.add_argument("--work", default=None, help="a folder for the re-runs (default: a temporary one)")
    p.add_argument("--device", default=None)


def cmd_verify(a) -> int:
    """`pyramid-ad verify`: exit 0 when every chosen run reproduced within tolerance, else 1."""
    if a.names and a.runs:
        raise ConfigError("give --runs N or run names, not both")
    names = choose(a.results_dir, a.runs, a.names)
    return 0 if verify(a.results_dir, names, a.data_root or os.environ.get("PYRAMID_DATA"), a.work, a.device) else 1
