"""The numbers of ANALYSIS.md's claims table that numbers.py does not give: ours against another
method's printed number (the ranking a claim states, not ours against the paper's own), per-class
wins against Table III's methods, a class mean against a level the paper states (Figs. 3, 4), the
unpaired (Welch) interval over seeds and the test-image bootstrap interval of a difference, and the
commits that made a set of runs.  Called from the template like numbers.py's functions (each takes
the results root first; analysis_page.analysis_text binds it).  Reads only."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from .. import paper
from ..errors import ConfigError
from .numbers import _auroc, _stamp, _stat, select
from .stats import LEVEL, seed_means, t_interval, verdict


def _printed(table: str, method: str) -> float:
    """A method's mean as the paper prints it: Table II (Fashion-MNIST) or Table III's Mean row (MNIST)."""
    if table == "fmnist":
        return float(paper.TABLE_II[method])
    if table == "mnist":
        return float(paper.TABLE_III_MEAN[method])
    raise ConfigError(f"claims: no printed means for table {table!r}")


def versus_method(root, selector: str, table: str, method: str, stat: str = "mean"):
    """Our mean over the classes minus `method`'s mean as printed in the paper's `table`: 'mean', 'lo',
    'hi', 'n' (the t-interval over seeds of the per-seed class means, shifted), 'verdict', 'printed'."""
    runs = select(root, selector)
    classes = sorted(set(runs["normal_class"]))
    printed = _printed(table, method)
    iv = t_interval(seed_means(runs, classes, "auroc") - printed)
    if stat == "printed":
        return printed
    return verdict(iv.lo, iv.hi) if stat == "verdict" else _stat(iv, stat)


def class_wins(root, selector: str, stat: str = "mean", claimed: int = 6):
    """MNIST, Table III: per seed, on how many digits ours is at or above every other method's printed
    per-class AUROC (a tie counts as best, as the paper's own "6 of 10" counts its column).  'mean',
    'lo', 'hi', 'n' of that count over seeds; 'verdict' of (count - `claimed`); 'paper': the count of
    the paper's own Ours column; 'list': the digits ours wins in the mean over seeds."""
    runs = select(root, selector)
    others = paper.TABLE_III.drop(columns=[paper.OURS]).max(axis=1)
    others.index = others.index.astype(str)
    if stat == "paper":
        ours = paper.TABLE_III[paper.OURS]
        return int((ours.to_numpy() >= others.to_numpy()).sum())
    per = runs.groupby(["seed", "normal_class"])["auroc"].mean().unstack("normal_class").dropna()
    wins = (per >= others.reindex(per.columns).to_numpy()).sum(axis=1)
    if stat == "list":
        mean = per.mean()
        return ", ".join(c for c in mean.index if mean[c] >= others[c]) or "none"
    iv = t_interval(wins - claimed)
    if stat == "verdict":
        return verdict(iv.lo, iv.hi)
    return _stat(t_interval(wins), stat)


def versus_level(root, selector: str, cls: str, column: str, level: float, stat: str = "mean"):
    """One class's runs' `column` minus a level the paper states (Figs. 3, 4): 'mean', 'lo', 'hi', 'n'
    (the t-interval over seeds of value - level), 'verdict', 'value' (the mean itself)."""
    runs = select(root, selector)
    v = pd.to_numeric(runs.loc[runs["normal_class"].astype(str) == str(cls), column], errors="coerce").dropna()
    if stat == "value":
        return float(v.mean())
    iv = t_interval(v - level)
    return verdict(iv.lo, iv.hi) if stat == "verdict" else _stat(iv, stat)


def welch(root, a: str, b: str, cls: str, column: str = "auroc", stat: str = "mean"):
    """One class's A minus B, the runs not paired by seed: Welch's t-interval ('lo', 'hi'), its degrees
    of freedom ('df'), 'verdict'; and 'paired_df': the seed-paired interval's degrees of freedom."""
    va, vb = (pd.to_numeric(r.loc[r["normal_class"].astype(str) == str(cls), column], errors="coerce").dropna()
              .to_numpy() for r in (select(root, a), select(root, b)))
    if stat == "paired_df":
        return min(len(va), len(vb)) - 1
    d = va.mean() - vb.mean()
    qa, qb = va.var(ddof=1) / len(va), vb.var(ddof=1) / len(vb)
    df = (qa + qb) ** 2 / (qa ** 2 / (len(va) - 1) + qb ** 2 / (len(vb) - 1))
    half = float(sps.t.ppf(0.5 + LEVEL / 2, df) * math.sqrt(qa + qb))
    out = {"mean": d, "lo": d - half, "hi": d + half, "df": df}
    return verdict(out["lo"], out["hi"]) if stat == "verdict" else out[stat]


def image_bootstrap(root, a: str, b: str, cls: str, stat: str = "lo", score: str = "loss", resamples: int = 1000):
    """One class's A minus B (AUROC of `score`, the seed-paired mean over the seeds both have), with
    the test images drawn with replacement: the 95% percentile interval ('lo', 'hi') and 'verdict'.
    It answers "would another test set of this size change the sign", which the seed interval does not."""
    lo, hi = _image_bootstrap(Path(root), a, b, str(cls), score, resamples, _stamp(root, a, b))
    return {"lo": lo, "hi": hi, "verdict": verdict(lo, hi)}[stat]


def _scores(root: Path, selector: str, cls: str) -> dict[int, pd.DataFrame]:
    runs = select(root, selector)
    runs = runs[runs["normal_class"].astype(str) == cls]
    folder = root / selector.split(":")[0] / "runs"
    out = {}
    for name, seed in zip(runs["run"], runs["seed"]):
        path = folder / str(name) / "scores.csv"
        if not path.is_file():
            raise ConfigError(f"bootstrap: {path} is missing")
        t = pd.read_csv(path)
        out[int(seed)] = t[t["split"] == "test"].sort_values("name").reset_index(drop=True)
    return out


@functools.lru_cache(maxsize=16)
def _image_bootstrap(root: Path, a: str, b: str, cls: str, score: str, resamples: int, stamp: tuple):
    sa, sb = _scores(root, a, cls), _scores(root, b, cls)
    seeds = sorted(set(sa) & set(sb))
    names = sa[seeds[0]]["name"].to_numpy()
    if any(not np.array_equal(t["name"].to_numpy(), names) for t in [*sa.values(), *sb.values()]):
        raise ConfigError(f"bootstrap: the runs of {a} and {b} were scored on different test images")
    y = sa[seeds[0]]["label"].to_numpy()
    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(resamples):
        i = rng.integers(0, len(names), len(names))
        if y[i].min() == y[i].max():
            continue
        diffs.append(np.mean([_auroc(y[i], sa[s][score].to_numpy()[i]) - _auroc(y[i], sb[s][score].to_numpy()[i])
                              for s in seeds]))
    return float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))


def commits(root, selector: str) -> str:
    """The commits that made the selected runs, each with its count ("abc1234+dirty (2)"); a copied run
    counts under the commit of the run it was copied from (its run.json `versions`)."""
    runs = select(root, selector)
    c = runs["commit"].dropna().astype(str).str.replace(r"^([0-9a-f]{7})[0-9a-f]*", r"\1", regex=True)
    return ", ".join(f"{k} ({v})" for k, v in c.value_counts(sort=False).items()) or "not recorded"


def one_commit(root, *selectors: str) -> str:
    """'one clean commit' when every run of the selectors was made at one commit without "+dirty",
    else 'not one clean commit' (several commits, a dirty one, or a run that records none)."""
    runs = pd.concat([select(root, s) for s in selectors], ignore_index=True)
    c = runs["commit"]
    clean = len(runs) and c.notna().all() and c.nunique() == 1 and not c.astype(str).str.contains("dirty").any()
    return "one clean commit" if clean else "not one clean commit"


FUNCTIONS = {f.__name__: f for f in (versus_method, class_wins, versus_level, welch, image_bootstrap, commits,
                                     one_commit)}
"""What the template of results/ANALYSIS.md may call besides numbers.FUNCTIONS."""
