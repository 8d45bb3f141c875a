"""The statistics of the results pages, in one place: spread over seeds, means over classes with
95% intervals, paired differences, and `verdict`, the only source of words such as "higher".

Units.  A run is one (setting, class, seed).  Per class we report the mean over its seeds and
their standard deviation (ddof 1; NaN with one seed, never 0).  A mean over classes takes the
classes as the units: the 95% Student t-interval of the per-class means (n - 1 degrees of
freedom), so the seed noise is inside it and the class-to-class spread dominates.  A paired
difference compares two settings class by class (A's seed mean minus B's; a deterministic
baseline has one seed) and gives the t-interval of those differences over classes.  Per class,
where both settings have two or more runs with the same seeds (same data split and batch order),
the seed-paired differences give a per-class t-interval; and where every class has two or more
seeds on both sides, the pooled seed s.d. of each side is reported too.

Two questions, two intervals.  The ten classes of MNIST or Fashion-MNIST are the whole benchmark,
not a sample of classes, so "is our ten-class mean above B's on this benchmark" is uncertain only
through the seeds: `Paired.over_seeds` is the t-interval over seeds of the difference of the
ten-class means (paired by seed where both sides have seeds; a side with one run per class, or a
paper's column, is a fixed number).  "Does it hold across classes" is answered by the interval over
classes, `Paired.over_classes`.  `verdict_seeds` and `verdict_classes` are their verdicts.

Reads nothing and writes nothing: frames in, frames and dataclasses out."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

LEVEL = 0.95


HIGHER, LOWER, NO_DIFFERENCE = "higher", "lower", "no difference shown"


def verdict(lo: float, hi: float) -> str:
    """'higher' when the interval [lo, hi] lies above 0, 'lower' when below, else (0 inside, or an
    interval that could not be computed: NaN) 'no difference shown'.  The pages' only verdict words."""
    if lo is not None and hi is not None and not (math.isnan(lo) or math.isnan(hi)):
        if lo > 0:
            return HIGHER
        if hi < 0:
            return LOWER
    return NO_DIFFERENCE


@dataclass(frozen=True)
class Interval:
    """A mean with its 95% t-interval over `n` units (lo, hi NaN when n < 2; everything NaN when n = 0)."""

    mean: float
    lo: float
    hi: float
    n: int


def t_interval(values) -> Interval:
    """Mean and 95% Student t-interval of `values` (1-d, NaN dropped); bounds NaN for fewer than 2."""
    v = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce").dropna(), dtype=float)
    n = len(v)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    m = float(v.mean())
    if n < 2:
        return Interval(m, math.nan, math.nan, 1)
    half = float(sps.t.ppf(0.5 + LEVEL / 2, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return Interval(m, m - half, m + half, n)


def class_order(c) -> tuple:
    """Sort key: digits numerically ("2" < "10"), then names."""
    s = str(c)
    return (0, int(s), "") if s.isdigit() else (1, 0, s)


def seed_summary(runs: pd.DataFrame, value: str = "auroc", by=("normal_class",)) -> pd.DataFrame:
    """Per group of `by` (default: class): mean, sd (ddof 1, NaN for one run) and n of `value` over
    the group's runs (seeds).  Columns: *by, mean, sd, n; sorted by class."""
    by = list(by)
    if not len(runs) or value not in runs:
        return pd.DataFrame(columns=[*by, "mean", "sd", "n"])
    v = runs.assign(_v=pd.to_numeric(runs[value], errors="coerce")).dropna(subset=["_v"])
    g = v.groupby(by, sort=False)["_v"]
    out = pd.DataFrame({"mean": g.mean(), "sd": g.std(ddof=1), "n": g.size()}).reset_index()
    return out.sort_values(by, key=lambda s: s.map(class_order)).reset_index(drop=True)


def class_mean(runs: pd.DataFrame, value: str = "auroc") -> Interval:
    """Mean over classes of the per-class seed means, with the t-interval over classes."""
    return t_interval(seed_summary(runs, value)["mean"])


@dataclass(frozen=True)
class Paired:
    """A - B, class by class.  `per_class`: normal_class, a, a_sd, a_n, b, b_sd, b_n, diff, and where
    both sides share two or more seeds, seed_lo / seed_hi (the seed-paired t-interval of that class's
    difference) and seed_n.  `over_classes`: the t-interval of `diff` over classes.  `a_better`: classes
    where A's mean is above B's.  `seed_sd_a`, `seed_sd_b`: pooled s.d. of one run (root mean
    within-class variance), given only when every class has two or more seeds on both sides."""

    per_class: pd.DataFrame
    over_classes: Interval
    a_better: int
    seed_sd_a: float
    seed_sd_b: float
    over_seeds: Interval = Interval(math.nan, math.nan, math.nan, 0)

    @property
    def verdict_classes(self) -> str:
        """Whether the difference holds across classes (the interval over classes)."""
        return verdict(self.over_classes.lo, self.over_classes.hi)

    @property
    def verdict_seeds(self) -> str:
        """Whether A's mean over these classes is above B's on this benchmark (the interval over seeds);
        '' when there are fewer than two seeds to judge it by."""
        return verdict(self.over_seeds.lo, self.over_seeds.hi) if self.over_seeds.n >= 2 else ""


def _by_seed(runs: pd.DataFrame, value: str) -> pd.DataFrame:
    if "seed" not in runs:
        return pd.DataFrame(columns=["normal_class", "seed", value])
    return runs[["normal_class", "seed", value]].dropna()


def seed_means(runs: pd.DataFrame, classes, value: str) -> pd.Series:
    """Per seed, the mean over `classes` of that seed's runs; only seeds that have every class."""
    if "seed" not in runs or not len(classes):
        return pd.Series(dtype=float)
    r = runs[runs["normal_class"].isin(classes)].dropna(subset=[value])
    per = r.groupby(["seed", "normal_class"])[value].mean().unstack("normal_class")
    return per.dropna().mean(axis=1) if set(classes) <= set(per.columns) else pd.Series(dtype=float)


def over_seeds(a: pd.DataFrame, b: pd.DataFrame | float, classes, value: str = "auroc") -> Interval:
    """The t-interval over seeds of (A's mean over `classes`) minus B's, seed by seed.  B with two or
    more seeds is paired with A by seed (the seeds both have); B with one run per class (a method
    fitted once, a paper's column) or a number (a printed mean) is a fixed value.  n: the seeds used."""
    sa = seed_means(a, classes, value)
    if isinstance(b, (int, float)):
        d = sa - float(b)
    elif "seed" in b and b["seed"].nunique() >= 2:
        d = (sa - seed_means(b, classes, value)).dropna()
    else:
        d = sa - float(b[b["normal_class"].isin(classes)].groupby("normal_class")[value].mean().mean())
    return t_interval(d)


def paired(a: pd.DataFrame, b: pd.DataFrame, value: str = "auroc") -> Paired:
    """A - B on the classes both have.  `a`, `b`: one row per run with normal_class, `value` and
    (for the per-class seed intervals) seed."""
    sa, sb = seed_summary(a, value), seed_summary(b, value)
    t = sa.merge(sb, on="normal_class", suffixes=("_a", "_b"))
    t = t.rename(columns={"mean_a": "a", "sd_a": "a_sd", "n_a": "a_n", "mean_b": "b", "sd_b": "b_sd", "n_b": "b_n"})
    t["diff"] = t["a"] - t["b"]
    lo, hi, ns = [], [], []
    pa, pb = _by_seed(a, value), _by_seed(b, value)
    for c in t["normal_class"]:
        m = pa[pa.normal_class == c].groupby("seed")[value].mean().to_frame("a").join(
            pb[pb.normal_class == c].groupby("seed")[value].mean().to_frame("b"), how="inner")
        iv = t_interval(m["a"] - m["b"]) if len(m) >= 2 else Interval(math.nan, math.nan, math.nan, len(m))
        lo.append(iv.lo)
        hi.append(iv.hi)
        ns.append(iv.n)
    t["seed_lo"], t["seed_hi"], t["seed_n"] = lo, hi, ns
    every = len(t) > 0 and bool((t["a_n"] >= 2).all() and (t["b_n"] >= 2).all())
    sd_a = float(np.sqrt((t["a_sd"] ** 2).mean())) if every else math.nan
    sd_b = float(np.sqrt((t["b_sd"] ** 2).mean())) if every else math.nan
    seeds = over_seeds(a, b, list(t["normal_class"]), value)
    return Paired(t.reset_index(drop=True), t_interval(t["diff"]), int((t["diff"] > 0).sum()), sd_a, sd_b, seeds)


def against_constant(a: pd.DataFrame, constant: float, value: str = "auroc") -> Paired:
    """A's class mean minus a fixed number (a paper's printed mean that has no per-class values):
    the interval is that of A's class mean, shifted."""
    s = seed_summary(a, value)
    t = s.rename(columns={"mean": "a", "sd": "a_sd", "n": "a_n"}).assign(b=constant, b_sd=math.nan, b_n=0)
    t["diff"] = t["a"] - constant
    t["seed_lo"], t["seed_hi"], t["seed_n"] = math.nan, math.nan, 0
    seeds = over_seeds(a, float(constant), list(t["normal_class"]), value)
    return Paired(t, t_interval(t["diff"]), int((t["diff"] > 0).sum()), math.nan, math.nan, seeds)


# ---------------------------------------------------------------------------------- formatting

DIGITS = 4


def num(v, digits: int = DIGITS, sign: bool = False) -> str:
    """A number for a table cell; blank for NaN/None."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or pd.isna(v):
        return ""
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


def mean_sd(mean, sd, n, digits: int = DIGITS) -> str:
    """'0.9256 ± 0.0120' for two or more seeds, '0.9256' for one (s.d. blank, not 0), '' for none."""
    if not n or pd.isna(mean):
        return ""
    return num(mean, digits) + (f" ± {num(sd, digits)}" if n >= 2 and pd.notna(sd) else "")


def with_interval(iv: Interval, digits: int = DIGITS, sign: bool = False) -> str:
    """'0.9256 [0.8950, 0.9562]'; only the mean when the interval could not be computed."""
    if not iv.n:
        return ""
    out = num(iv.mean, digits, sign)
    return out + (f" [{num(iv.lo, digits, sign)}, {num(iv.hi, digits, sign)}]" if iv.n >= 2 else "")
