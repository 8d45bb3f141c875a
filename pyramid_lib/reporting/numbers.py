"""The numbers of results/ANALYSIS.md, each a function of the committed run folders, called from its
template (templates/analysis.md.j2) as `{{ mean("mnist/cpu:epochs=6") | f(4) }}`.  They compute with
the pages' own functions (records.read_runs, stats.paired, paper.paper_mean), so the page and the
tables cannot disagree.

A *selector* names runs: "folder[:method][:column=value...]", e.g. "baselines/cpu:ocsvm:dataset=mnist"
or "ablation-encoders/cpu:encoders=4"; a column is a results.csv column or a config.json field
(`cfg_lr`, written lr); `train_limit=all` selects runs without a limit.  "paper:mnist" selects the
paper's per-class Ours column of Table III as if it were runs.  Each function takes the results
root first (the template gets them bound to it).  Reads only."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from .. import paper
from ..errors import ConfigError
from ..experiments import selection
from .records import read_runs
from .stats import against_constant, class_mean, paired, seed_means, seed_summary, t_interval, verdict
from .tables import is_subset, no_masks
from .tables import planned as planned_runs


def _value(v: str):
    try:
        f = float(v)
        return int(f) if f.is_integer() and "." not in v else f
    except ValueError:
        return v


def _runs(base: Path) -> pd.DataFrame:
    """records.read_runs of `base`, read once per state of its results.csv: a page makes hundreds of
    calls over a few folders."""
    csv = base / "results.csv"
    stamp = csv.stat().st_mtime_ns if csv.is_file() else None
    return _read_runs(str(base), stamp).copy()


@functools.lru_cache(maxsize=64)
def _read_runs(base: str, stamp) -> pd.DataFrame:
    return read_runs(base)


def select(root: Path, selector: str) -> pd.DataFrame:
    """The runs a selector names (see the module doc); ConfigError for a folder without results."""
    folder, *parts = selector.split(":")
    if folder == "paper":
        col = paper.TABLE_III[paper.OURS]
        return pd.DataFrame({"normal_class": col.index, "auroc": col.to_numpy(), "seed": 0, "method": "paper"})
    runs = _runs(Path(root) / folder)
    if not len(runs):
        raise ConfigError(f"claim: no results.csv under {Path(root) / folder}")
    for p in parts:
        key, eq, want = p.partition("=")
        if not eq:
            runs = runs[runs["method"] == key]
            continue
        col = key if key in runs else f"cfg_{key}"
        want = _value(want)
        if want == "all":  # no limit (train_limit, test_limit): recorded as empty
            runs = runs[runs[col].isna() | (runs[col].astype(str) == "all")]
        elif isinstance(want, (int, float)):
            runs = runs[pd.to_numeric(runs[col], errors="coerce") == want]
        else:
            runs = runs[runs[col].astype(str) == want]
    return runs


def over_seeds(root, selector: str, stat: str = "mean", value: str = "auroc"):
    """The mean over classes computed seed by seed, and its t-interval over seeds ('mean', 'lo', 'hi',
    'n' seeds, 'sd': the s.d. of the per-seed means)."""
    r = select(root, selector)
    m = seed_means(r, sorted(set(r["normal_class"])), value)
    return float(m.std(ddof=1)) if stat == "sd" else _stat(t_interval(m), stat)


def _stat(iv, stat: str):
    return {"mean": iv.mean, "lo": iv.lo, "hi": iv.hi, "n": iv.n}[stat]


def mean(root, selector: str, stat: str = "mean", value: str = "auroc"):
    """Mean over classes of the per-class seed means ('lo', 'hi': its 95% interval; 'n': classes)."""
    return _stat(class_mean(select(root, selector), value), stat)


def diff(root, a: str, b: str, stat: str = "mean", value: str = "auroc", value_b: str | None = None):
    """A - B paired class by class (stats.paired): 'mean', 'lo', 'hi', 'n' (classes), 'better' (classes
    where A is higher), 'verdict' (over classes: does it hold across classes), 'seed_sd_a', 'seed_sd_b';
    'seed_lo', 'seed_hi', 'seed_n', 'seed_verdict': the interval over seeds of the difference of the
    means over classes (is A's mean above B's on this benchmark).  `value_b`: B's column when it is not
    A's (two scores of the same runs: diff(s, s, value="auroc_ssim", value_b="auroc"))."""
    p = _paired(Path(root), a, b, value, value_b, _stamp(root, a, b))
    if stat == "better":
        return p.a_better
    return _of(p, stat)


def _stamp(root, *selectors) -> tuple:
    """The state of the results.csv files the selectors read (a cache key)."""
    out = []
    for sel in selectors:
        csv = Path(root) / sel.split(":")[0] / "results.csv"
        out.append(csv.stat().st_mtime_ns if csv.is_file() else None)
    return tuple(out)


@functools.lru_cache(maxsize=512)
def _paired(root: Path, a: str, b: str, value: str, value_b: str | None, stamp: tuple):
    """stats.paired of two selectors, computed once per state of their results (`stamp`)."""
    runs_b = select(root, b)
    if value_b is not None:
        runs_b = runs_b.assign(**{value: runs_b[value_b]})
    return paired(select(root, a), runs_b, value)


def _of(p, stat: str):
    if stat == "verdict":
        return p.verdict_classes
    if stat == "seed_verdict":
        return p.verdict_seeds
    if stat in ("seed_sd_a", "seed_sd_b"):
        return getattr(p, stat)
    if stat.startswith("seed_"):
        return _stat(p.over_seeds, stat.removeprefix("seed_"))
    return _stat(p.over_classes, stat)


def versus_printed(root, selector: str, table: str = "fmnist", stat: str = "mean"):
    """The selected runs' class mean minus a paper's printed mean that has no per-class values
    (Table II): the stats of `diff` ('lo', 'hi': the interval over classes of our class mean, shifted;
    'seed_lo', 'seed_hi': over seeds)."""
    return _of(against_constant(select(root, selector), paper.paper_mean(table)), stat)


def value(root, selector: str, cls: str, column: str = "auroc", stat: str = "mean"):
    """One class's mean (or 'sd', 'n') over its runs."""
    s = seed_summary(select(root, selector), column).set_index("normal_class")
    return s.at[str(cls), stat].item()


def seed_sd(root, selector: str, stat: str = "mean", column: str = "auroc") -> float:
    """The s.d. over seeds (ddof 1) of each class's runs, then its 'mean' or 'max' over the classes
    that have two or more seeds."""
    sd = seed_summary(select(root, selector), column)["sd"].dropna()
    return float({"mean": sd.mean, "max": sd.max}[stat]())


def class_diff(root, a: str, b: str, cls: str, column: str = "auroc", stat: str = "mean"):
    """One class's seed mean in A minus in B ('mean'); or, where both share two or more seeds, the
    seed-paired 95% t-interval of that difference ('lo', 'hi', 'n' seeds) and its 'verdict'."""
    if stat == "mean":
        return value(root, a, cls, column) - value(root, b, cls, column)
    t = _paired(Path(root), a, b, column, None, _stamp(root, a, b)).per_class.set_index("normal_class")
    lo, hi = float(t.at[str(cls), "seed_lo"]), float(t.at[str(cls), "seed_hi"])
    return {"lo": lo, "hi": hi, "n": int(t.at[str(cls), "seed_n"]), "verdict": verdict(lo, hi)}[stat]


def runs(root, selector: str) -> int:
    """How many finished runs a selector names."""
    return len(select(root, selector))


def _auroc(y: np.ndarray, s: np.ndarray) -> float:
    """AUROC by the rank-sum (Mann-Whitney) formula, ties shared: the same value as sklearn's."""
    r = rankdata(s)
    pos = y == 1
    n1, n0 = int(pos.sum()), int((~pos).sum())
    return float((r[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def bootstrap_se(root, selector: str, column: str = "loss", resamples: int = 200, seed: int = 0) -> float:
    """The test-set bootstrap standard error of the mean over classes of one seed's runs: the test
    images (the same images for every class, relabelled) are drawn with replacement `resamples`
    times, each class's AUROC recomputed from its run's scores.csv (`column`: the score), their mean
    over classes taken; the s.d. of that mean over the draws, then the root mean square over seeds.
    Raises ConfigError when a run has no scores.csv."""
    return _bootstrap(Path(root), selector, column, resamples, seed, _stamp(root, selector))


@functools.lru_cache(maxsize=16)
def _bootstrap(root: Path, selector: str, column: str, resamples: int, seed: int, stamp: tuple) -> float:
    runs = select(root, selector)
    folder = Path(root) / selector.split(":")[0] / "runs"
    rng = np.random.default_rng(seed)
    variances = []
    for _, g in runs.groupby("seed"):
        tables = []
        for name in g["run"]:
            path = folder / str(name) / "scores.csv"
            if not path.is_file():
                raise ConfigError(f"bootstrap: {path} is missing")
            t = pd.read_csv(path, usecols=["name", "label", column, "split"])
            tables.append(t[t["split"] == "test"].sort_values("name"))
        names = tables[0]["name"].to_numpy()
        if any(not np.array_equal(t["name"].to_numpy(), names) for t in tables):
            raise ConfigError(f"bootstrap: the runs of {selector} were scored on different test images")
        ys = [t["label"].to_numpy() for t in tables]
        ss = [t[column].to_numpy() for t in tables]
        means = []
        for _ in range(resamples):
            i = rng.integers(0, len(names), len(names))
            means.append(np.mean([_auroc(y[i], s[i]) for y, s in zip(ys, ss)]))
        variances.append(np.var(means, ddof=1))
    return float(np.sqrt(np.mean(variances)))


def extreme(root, selector: str, column: str = "train_seconds", stat: str = "min") -> float:
    """The smallest ('min') or largest ('max') value of a column over the selected runs (run records:
    `train_seconds`, `score_seconds`, ...)."""
    return float(getattr(pd.to_numeric(select(root, selector)[column], errors="coerce"), stat)())


def planned(root, folder: str) -> int:
    """How many runs the folder's plan has (plan.csv and the default plan, as its page counts them)."""
    return len(planned_runs(Path(root) / folder))


def seeds(root, selector: str) -> int:
    """How many different seeds the selected runs have."""
    return int(select(root, selector)["seed"].nunique())


def setting(root, selector: str, column: str) -> str:
    """The selected runs' values of a column or config field, distinct, joined by ' / '."""
    r = select(root, selector)
    col = column if column in r else f"cfg_{column}"
    return " / ".join(dict.fromkeys(f"{v:g}" if isinstance(v, float) else str(v) for v in r[col]))


def same_config(root, a: str, b: str) -> str:
    """'identical' when, class by class and seed by seed, the selected runs' config.json files are equal;
    else 'different'."""
    ra, rb = select(root, a), select(root, b)
    fa, fb = a.split(":")[0], b.split(":")[0]
    pairs = ra.merge(rb, on=["normal_class", "seed"], suffixes=("_a", "_b"))
    if not len(pairs):
        return "different"
    for r in pairs.itertuples():
        ca = json.loads((Path(root) / fa / "runs" / r.run_a / "config.json").read_text())
        cb = json.loads((Path(root) / fb / "runs" / r.run_b / "config.json").read_text())
        if ca != cb:
            return "different"
    return "identical"


def paper_mean(root, table: str, method: str = paper.OURS, column: str = "tpr") -> float:
    """A paper column's mean computed from its per-class values (paper.paper_mean)."""
    return paper.paper_mean(table, method, column=column)


def paper_ablation(root, what: str, category: str, key: str) -> float:
    """A number the paper's Section V states for an ablation (paper.ABLATION[what][category][key]),
    e.g. paper_ablation("ssim", "bottle", "four_encoders_above")."""
    return float(paper.ABLATION[what][category][key])


def printed_mean(root, method: str = paper.OURS) -> float:
    """Table III's Mean row as printed."""
    return float(paper.TABLE_III_MEAN[method])


def table_iv_best(root, ours: str = "mvtec/cpu", others: str = "baselines/cpu:dataset=mvtec", stat: str = "wins"):
    """Table IV's rule for its bold winner, applied to the methods re-run here: per category of `ours`,
    the mean over seeds of (TPR + TNR) / 2 at the paper-style threshold (youden_tpr, youden_tnr) of
    our network and of each method in `others` (the plain autoencoders).  'wins': categories where
    ours is the highest; 'n': categories compared (those where at least one other method ran);
    'list': "category: ours a, ae-l2 b, ae-ssim c" joined by "; "."""
    runs = pd.concat([select(root, ours).assign(method="ours"), select(root, others)], ignore_index=True)
    runs = runs.assign(balanced=(runs["youden_tpr"] + runs["youden_tnr"]) / 2)
    table = runs.groupby(["normal_class", "method"])["balanced"].mean().unstack()
    table = table[table.drop(columns="ours").notna().any(axis=1)] if table.shape[1] > 1 else table.iloc[:0]
    known = [c for c in paper.MVTEC_CATEGORIES if c in table.index]
    order = known + sorted(set(table.index) - set(known))
    table = table.loc[order]
    if stat == "n":
        return len(table)
    if stat == "wins":
        return int((table["ours"] >= table.drop(columns="ours").max(axis=1)).sum())
    return "; ".join(f"{c}: " + ", ".join(f"{m} {v:.3f}" for m, v in row.dropna().items())
                     for c, row in table[["ours", *[m for m in table.columns if m != "ours"]]].iterrows())


def categories(root, selector: str, which: str = "complete") -> str:
    """The MVTec categories of `selector`'s runs, joined by ' and ', that are 'complete' (every test
    image of MVTec AD scored, with ground-truth masks), 'subset' (fewer test images than MVTec AD
    has: tables.is_subset; each with its count), or 'no_masks' (tables.no_masks); 'none' when none."""
    runs = select(root, selector)
    cats = sorted(set(runs["normal_class"]), key=lambda c: (c not in paper.MVTEC_CATEGORIES, c))
    maskless, out = set(no_masks(runs)), []
    for c in cats:
        sub = is_subset(c, runs)
        if which == "subset" and sub:
            out.append(f"{c} ({int(runs.loc[runs.normal_class == c, 'n_test'].max())} test images)")
        elif (which == "no_masks" and c in maskless) or (which == "complete" and not sub and c not in maskless):
            out.append(c)
    return " and ".join(f"`{c}`" if " " not in c else f"`{c.split(' ')[0]}` {c.split(' ', 1)[1]}" for c in out) \
        or "none"


def choice(root, name: str, key: str = "pick"):
    """A committed selection's record (benchmarks/choices/<name>.json beside the results root, read as
    experiments.selection reads it): key "pick" gives the pick ('' while there is none), a candidate's
    name its criterion value (NaN before the pick), "criterion" the criterion's name.  Raises
    ConfigError when the file is missing or malformed."""
    c = selection.load_choice(Path(root).resolve().parent / "benchmarks" / "choices" / f"{name}.json")
    if key == "pick":
        return c["pick"] or ""
    if key in c["candidates"]:
        return float((c.get("criterion_values") or {}).get(key, np.nan))
    return c[key]


FUNCTIONS = {f.__name__: f for f in (mean, over_seeds, bootstrap_se, diff, versus_printed, value, seed_sd,
                                     class_diff, runs, extreme, planned, seeds, setting, same_config, paper_mean,
                                     printed_mean, table_iv_best, paper_ablation, categories, choice)}
"""What the template of results/ANALYSIS.md may call (each bound to the results root)."""
