"""The committed results of an experiment and how they were made: the one place that decides
which runs were made with an earlier version of their profile, read by the results pages
(reporting/) and the notebooks (tutorial.py) alike.

    committed_results(experiment, profile, runs)   results/<experiment>/<profile>/results.csv
    earlier_version(results)                       per run and setting: not the profile's value today
    made_by(results)                               one sentence on how a results frame was made
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..config import PROFILES, get_profile
from ..errors import DataError

RESULTS = Path(__file__).resolve().parents[2] / "results"  # the clone's committed results


def committed_results(experiment: str, profile: str | None = None, runs: str = "current",
                      root=None) -> pd.DataFrame:
    """The committed full results of an experiment (results/<experiment>/<profile>/results.csv:
    one row per run; mnist, fmnist, mvtec, ablation-lambda, ablation-encoders), with the columns
    that say how they were made (profile, epochs, weights, seed, device).  `profile`: None takes
    the one folder there (DataError when there are several or none).  A folder may hold runs of an
    earlier version of its profile beside runs of today's: runs="current" (default) keeps only
    today's when there are any (`made_by` says which were kept), runs="all" keeps every row.
    `root`: the results folder (default: the clone's results/).  Raises DataError, ValueError."""
    base = Path(root or RESULTS) / experiment
    found = sorted(p.parent for p in base.glob("*/results.csv"))
    if profile is not None:
        found = [p for p in found if p.name == profile]
    if len(found) != 1:
        raise DataError(f"{base}: expected one results/<profile>/results.csv, found "
                        f"{[str(p) for p in found] or 'none'}; name the profile")
    if runs not in ("current", "all"):
        raise ValueError(f"runs={runs!r}: 'current' or 'all'")
    frame = pd.read_csv(found[0] / "results.csv", dtype={"normal_class": str})
    now = ~earlier_version(frame).any(axis=1)
    if runs == "current" and now.any() and not now.all():
        frame = frame[now].reset_index(drop=True)
        frame.attrs["left_out"] = f"{int((~now).sum())} runs of an earlier version of the profile left out"
    return frame


def _datasets(results: pd.DataFrame) -> pd.Series:
    """Each row's dataset, None where not recorded (its profile's MNIST-size settings then apply)."""
    col = results["dataset"] if "dataset" in results else pd.Series(None, index=results.index, dtype=object)
    return col.map(lambda d: d if isinstance(d, str) else None)


def earlier_version(results: pd.DataFrame) -> pd.DataFrame:
    """Per row and per setting (epochs, train_limit): True where the run's value is not what its
    profile (PROFILES) has today; a missing value is today's."""
    out = pd.DataFrame(False, index=results.index, columns=["epochs", "train_limit"])
    for c in out.columns:
        if c not in results or "profile" not in results:
            continue
        datasets = _datasets(results)
        today = pd.Series([get_profile(p, d)[c] if p in PROFILES else None
                           for p, d in zip(results["profile"], datasets)], index=results.index)
        known = results["profile"].isin(list(PROFILES)) & results[c].notna()
        out[c] = known & (results[c].astype(object) != today.astype(object))
    return out


def made_by(results: pd.DataFrame) -> str:
    """One sentence on how a results frame was made, from its own columns (profile, epochs, weights,
    seeds, device; epochs or train_limit other than the profile's today: an earlier version; runs
    `committed_results` left out)."""
    def values(col, frame=results):
        if col not in frame:
            return "not recorded"
        v = [str(x) for x in sorted(set(frame[col].dropna()))]  # numbers in numeric order
        return ", ".join(v) if v else "not recorded"
    early = earlier_version(results)
    profiles = results["profile"] if "profile" in results else pd.Series("", index=results.index)
    datasets = _datasets(results)
    old = [f"{c} {values(c, results[early[c]])} where the {p} profile now has {get_profile(p, d)[c]}"
           for c in early.columns for p, d in sorted(set(zip(profiles[early[c]], datasets[early[c]])), key=str)]
    left_out = results.attrs.get("left_out")
    return (f"{len(results)} run{'s' * (len(results) != 1)}; profile {values('profile')}; "
            f"epochs {values('epochs')}; weights {values('weights')}; seeds {values('seed')}; device {values('device')}"
            + (f" (AN EARLIER VERSION of the profile: {'; '.join(old)})" if old else "")
            + (f" ({left_out})" if left_out else ""))
