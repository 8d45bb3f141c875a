"""Paired comparisons for the pages, as tables of numbers: ours against the paper and against every
re-run baseline (the headline), one ablation setting against another, a variant folder against its
base profile.  Each row is a `stats.paired` difference with its 95% interval over classes; the
verdict column is `stats.verdict` of that interval, the pages' only verdict words.  No prose: the
interpretation is hand-written in results/ANALYSIS.md.  Reads results.csv and run records only."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import paper
from ..experiments.plan import read_variant
from .records import read_runs
from .regimes import REGIME_FIELDS, first_regime, in_regime, regime_difference, regimes
from .stats import Paired, against_constant, num, paired, verdict, with_interval
from .tables import BASELINE_METHODS, baseline_runs

SEEDS = "A - B [95% CI over seeds]"
CI = "A - B [95% CI over classes]"
VERDICT_SEEDS = "verdict (over seeds)"
VERDICT_CLASSES = "across classes"


def row(comparison: str, a: str, b: str, p: Paired) -> dict:
    """One comparison as a table row: A's and B's class means; A - B with its interval over seeds (is
    A's mean over these classes above B's on this benchmark?) and its verdict; A - B with its interval
    over classes (does it hold from class to class?) and that verdict."""
    t = p.per_class
    seed = f"{num(p.seed_sd_a)} / {num(p.seed_sd_b)}" if pd.notna(p.seed_sd_a) else ""
    seeds = with_interval(p.over_seeds, sign=True) + (f" ({p.over_seeds.n} seeds)" if p.over_seeds.n >= 2 else "")
    return {"dataset": comparison, "A": a, "B": b, "classes": len(t),
            "A mean": num(t["a"].mean()) if len(t) else "", "B mean": num(t["b"].mean()) if len(t) else "",
            SEEDS: seeds if p.over_seeds.n >= 2 else "one seed: none",
            VERDICT_SEEDS: p.verdict_seeds,
            CI: with_interval(p.over_classes, sign=True), "A higher on": f"{p.a_better} of {len(t)}",
            "seed s.d. A / B": seed, VERDICT_CLASSES: p.verdict_classes}


def per_class(p: Paired, digits: int = 4) -> pd.DataFrame:
    """A paired comparison class by class: A, B, A - B and, where both share two or more seeds, the
    seed-paired 95% interval of that class's difference and its verdict."""
    t = p.per_class
    return pd.DataFrame({
        "class": t["normal_class"], "A": [num(v, digits) for v in t["a"]], "B": [num(v, digits) for v in t["b"]],
        "A - B": [num(v, digits, True) for v in t["diff"]],
        "seed-paired 95% CI": [f"[{num(lo, digits, True)}, {num(hi, digits, True)}] ({n} seeds)" if pd.notna(lo)
                               else "" for lo, hi, n in zip(t["seed_lo"], t["seed_hi"], t["seed_n"])],
        "verdict (seeds)": [verdict(lo, hi) if pd.notna(lo) else "" for lo, hi in zip(t["seed_lo"], t["seed_hi"])]})


def labelled(runs: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(label, runs of one regime) for each regime; the label names what differs when there are several."""
    regs = regimes(runs)
    diff = regime_difference(regs) if len(regs) > 1 else {}
    return [(diff.get(r, ""), in_regime(runs, r)) for r in regs]


def against_all(dataset: str, ours: pd.DataFrame, base: pd.DataFrame, name: str = "") -> list[dict]:
    """Rows: our runs of one regime (`ours`, method "ours") against the paper's column and against every
    re-run baseline in `base` (the baselines folder's runs) of the same regime (OC-SVM and KDE, fitted
    once, pair with any)."""
    name = name or dataset
    if dataset == "mnist":
        pp = paper.TABLE_III[paper.OURS]
        rows = [row(name, "ours", "paper Ours (Table III)",
                    paired(ours, pd.DataFrame({"normal_class": pp.index, "auroc": pp.to_numpy()})))]
    elif dataset == "fmnist":
        rows = [row(name, "ours", "paper Ours (Table II, printed mean)",
                    against_constant(ours, paper.TABLE_II[paper.OURS]))]
    else:
        rows = []
    b = base[base["dataset"] == dataset] if len(base) else base
    reg = first_regime(ours)
    for m in BASELINE_METHODS:
        bm = in_regime(b[b["method"] == m], reg) if len(b) else b
        if len(bm):
            rows.append(row(name, "ours", f"{m} (re-run)", paired(ours, bm)))
    return rows


def headline(out_root, profile: str) -> pd.DataFrame:
    """Our network (lambda 1) against the paper and every re-run baseline of results/baselines/<profile>,
    for MNIST and Fashion-MNIST, paired class by class within one training regime.  Empty when nothing ran."""
    rows = []
    base = baseline_runs(out_root, profile)
    for ds in ("mnist", "fmnist"):
        runs = read_runs(Path(out_root) / ds / profile)
        if len(runs):
            for label, ours in labelled(runs[runs["method"] == "ours"]):
                rows += against_all(ds, ours, base, ds + (f" ({label})" if label else ""))
    return pd.DataFrame(rows)


ABLATION_PAIRS = {"ablation-encoders": ("encoders", ((4, 1), (4, 2), (6, 4))),
                  "ablation-lambda": ("lambda", ((1.0, 0.0),))}


def ablation_pairs(experiment: str, runs: pd.DataFrame) -> list[tuple[str, str, str, Paired]]:
    """(name, A, B, A - B) for each dataset and pair of settings (4 vs 1, 4 vs 2 and 6 vs 4 encoders;
    lambda 1 vs 0), within one regime."""
    key, pairs = ABLATION_PAIRS[experiment]
    out = []
    for label, r in labelled(runs):
        for ds, g in r.groupby("dataset"):
            for a, b in pairs:
                ga, gb = g[g[key] == a], g[g[key] == b]
                if len(ga) and len(gb):
                    name = ds + (f" ({label})" if label else "")
                    out.append((name, f"{key} {a:g}", f"{key} {b:g}", paired(ga, gb)))
    return out


def ablation_table(experiment: str, runs: pd.DataFrame) -> pd.DataFrame:
    """The ablation's paired comparisons, one row each (see `row`)."""
    return pd.DataFrame([row(*pair) for pair in ablation_pairs(experiment, runs)])


def variant_pairs(experiment: str, profile: str, runs: pd.DataFrame, out_root) -> list[tuple[str, str, str, Paired]]:
    """A variant folder (e.g. mnist/cpu-epochs20) against the base profile's runs of the same classes
    whose regime differs only in the settings the variant changes (its variant.json)."""
    ref_profile, changed = read_variant(Path(out_root) / experiment / profile)  # the settings it changes
    ref = read_runs(Path(out_root) / experiment / ref_profile)
    if not len(ref) or not len(runs):
        return []
    out = []
    for reg in regimes(runs):
        for ref_reg in regimes(ref):
            if {k for k in REGIME_FIELDS if reg.get(k) != ref_reg.get(k)} <= set(changed):
                p = paired(in_regime(runs, reg), in_regime(ref, ref_reg))
                if len(p.per_class):
                    out.append((experiment, profile, ref_profile, p))
    return out
