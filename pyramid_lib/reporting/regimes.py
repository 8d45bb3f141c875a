"""Training regimes: which runs may be pooled as seeds of one setting, and which baselines pair with them.

A run's regime is its config.json settings in REGIME_FIELDS (`regime`); runs that differ in one are
never pooled.  Methods fitted once (OC-SVM, KDE) have none and pair with any regime of the same data
settings; a trained baseline pairs with a regime that differs only in the settings its tuning chose
(`in_regime`).  read_runs (records.py) gives every run its `regime` column."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..baselines import DETERMINISTIC

REGIME_FIELDS = ("weights", "profile", "epochs", "lr", "lr_schedule", "batch_size", "train_limit", "test_limit",
                 "weight_decay", "heldout_fraction", "input_size", "pyramid", "precision")
"""config.json fields that make a training regime: runs that differ in one of them are never
pooled as seeds of one setting (seed, class, encoders and lambda are what the experiments vary)."""


FIT_ONCE = DETERMINISTIC
"""Methods with no training regime of their own: paired with any regime whose data settings
(DATA_FIELDS) are theirs."""


DATA_FIELDS = ("train_limit", "test_limit", "heldout_fraction", "input_size")


@dataclass(frozen=True)
class Regime:
    """A run's training regime: its settings as (field, value as text) pairs in REGIME_FIELDS order;
    empty (false) for methods fitted once, which pair with any regime of the same data settings.
    `str()` is the text the pages show: 'epochs 6, lr 0.003, ...'."""

    settings: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.settings)

    def __bool__(self) -> bool:
        return bool(self.settings)

    def get(self, field: str) -> str | None:
        return dict(self.settings).get(field)

    def only(self, fields) -> Regime:
        """The same regime restricted to `fields` (e.g. DATA_FIELDS)."""
        return Regime(tuple((k, v) for k, v in self.settings if k in fields))


def regime(row, fields=REGIME_FIELDS) -> Regime:
    """A run's training regime (empty for methods fitted once); with `fields`, only those settings."""
    if row.get("method") in FIT_ONCE and fields == REGIME_FIELDS:
        return Regime()
    parts = []
    for k in fields:
        v = row.get(f"cfg_{k}")
        if v is None or (isinstance(v, float) and np.isnan(v)):
            v = "all" if k in ("train_limit", "test_limit") else "?"
        parts.append((k, f"{v:g}" if isinstance(v, float) else str(v)))
    return Regime(tuple(parts))


def trained(runs: pd.DataFrame) -> pd.Series:
    """True for the runs that have a training regime of their own (not fitted once)."""
    return runs["regime"].map(bool) if "regime" in runs else pd.Series(False, index=runs.index)


def first_regime(runs: pd.DataFrame, trained_only: bool = False) -> Regime:
    """The regime of the first run in `runs` (with `trained_only`, of the first trained run); an
    empty Regime when there is none."""
    if not len(runs) or "regime" not in runs:
        return Regime()
    picked = runs.loc[trained(runs), "regime"] if trained_only else runs["regime"]
    return picked.iloc[0] if len(picked) else Regime()


def regimes(runs: pd.DataFrame) -> list[Regime]:
    """The regimes of the trained runs in `runs`, most runs first (ties by their text)."""
    if not len(runs) or "regime" not in runs:
        return [Regime()]
    counts = runs.loc[trained(runs), "regime"].value_counts()
    return sorted(counts.index, key=lambda r: (-counts[r], str(r))) or [Regime()]


def in_regime(runs: pd.DataFrame, reg: Regime) -> pd.DataFrame:
    """The runs of regime `reg`; those fitted once on the same data settings; and a trained baseline
    whose regime is `reg` but for the settings its tuning chose (config.json `baseline_settings`, e.g.
    the autoencoders' learning rate: its method's own setting, as nu is the OC-SVM's)."""
    if not len(runs) or "regime" not in runs or not reg:
        return runs
    tuned = runs["tuned"].fillna("").astype(str) if "tuned" in runs else pd.Series("", index=runs.index)

    def same(r: Regime, free: str) -> bool:
        keep = [k for k in REGIME_FIELDS if k not in free.split(",")]
        return r == reg or (bool(free) and bool(r) and r.only(keep) == reg.only(keep))

    match = pd.Series([same(r, t) for r, t in zip(runs["regime"], tuned)], index=runs.index, dtype=bool)
    return runs[match | (~trained(runs) & (runs["data_regime"] == reg.only(DATA_FIELDS)))]


def regime_difference(regs: list[Regime]) -> dict[Regime, str]:
    """For several regimes, each one's settings that differ from the others ('epochs 10, lr 0.001')."""
    regs = [r for r in regs if r]
    keys = [k for k in REGIME_FIELDS if len({r.get(k) for r in regs}) > 1]
    return {r: ", ".join(f"{k} {r.get(k)}" for k in keys) for r in regs}
