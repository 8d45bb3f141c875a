"""Whether a finding of the paper is reproduced, judged by the paper's own measure with an interval,
in one sentence per finding (notebooks 05, 06 and 08 print them).

    against_level(values, level, claim, what)       seeds' values vs a level the paper states
    against_proportion(k, n, level, what)           one run's rate (k of n images) vs the paper's
    against_difference(mean, lo, hi, claim, what)   a paired difference vs the direction the paper states
    rate_spread(runs, ...)                          why a row's rates swing between seeds, or do not

The interval is `stats.t_interval` over seeds (or, for one run's rate beside the paper's,
Newcombe's interval of the difference of two proportions), and its words come from
`stats.verdict`: a finding is REPRODUCED when the interval lies on the paper's side of its level
(or, for a value the paper printed, contains it and is no wider than +-AT_WITHIN), NOT
REPRODUCED when it lies on the other side (or excludes the printed value), and NOT DECIDED when
it straddles the level, is too wide, or cannot be computed (one seed).
"""

from __future__ import annotations

import math

import pandas as pd
from scipy import stats as sps

from . import stats

REPRODUCED, NOT_REPRODUCED, NOT_DECIDED = "REPRODUCED", "NOT REPRODUCED", "NOT DECIDED"
CLAIMS = ("below", "above", "at")


# a printed value counts as reproduced only by an interval that contains it and is at most this wide on
# either side: an interval of +-0.5 contains almost any rate and says nothing
AT_WITHIN = 0.1


def _judge(v: str, claim: str, lo: float = 0.0, hi: float = 0.0) -> str:
    if claim not in CLAIMS:
        raise ValueError(f"claim must be one of {CLAIMS}, got {claim!r}")
    if claim == "at":
        if v != stats.NO_DIFFERENCE:
            return NOT_REPRODUCED
        return REPRODUCED if (hi - lo) / 2 <= AT_WITHIN else NOT_DECIDED
    if v == stats.NO_DIFFERENCE:
        return NOT_DECIDED
    return REPRODUCED if (v == stats.LOWER) == (claim == "below") else NOT_REPRODUCED


def _sentence(what, mean, lo, hi, how, claim, level, outcome, v) -> str:
    paper = {"below": "says below", "above": "says above", "at": "printed"}[claim]
    if math.isnan(lo):
        return (f"{what}: ours {mean:.3f} ({how}: no interval), the paper {paper} {level:.3f}: "
                f"{NOT_DECIDED} (one run cannot tell)")
    side = {stats.HIGHER: "above it", stats.LOWER: "below it", stats.NO_DIFFERENCE: "contains it"}[v]
    if claim == "at" and outcome == NOT_DECIDED:
        side += f" but is wider than +-{AT_WITHIN:g}, too wide to tell"
    return (f"{what}: ours {mean:.3f} [{lo:.3f}, {hi:.3f}] ({how}), the paper {paper} {level:.3f}; the interval "
            f"{side}: {outcome}")


def against_level(values, level: float, claim: str, what: str) -> tuple[str, str]:
    """Values over seeds (one class, one setting) against a level the paper states: `claim` "below"
    or "above" (the paper: "remained below 0.65"), or "at" (a value the paper printed).  Returns
    (outcome, sentence); outcome is REPRODUCED, NOT_REPRODUCED or NOT_DECIDED (module docstring).
    Raises ValueError for another claim."""
    iv = stats.t_interval(values)
    v = stats.verdict(iv.lo - level, iv.hi - level)
    outcome = _judge(v, claim, iv.lo, iv.hi) if iv.n >= 2 else NOT_DECIDED
    how = f"95% t-interval over {iv.n} seeds" if iv.n >= 2 else "one seed"
    return outcome, _sentence(what, iv.mean, iv.lo, iv.hi, how, claim, level, outcome, v)


def _wilson(k: int, n: int) -> tuple[float, float]:
    ci = sps.binomtest(int(k), int(n)).proportion_ci(confidence_level=stats.LEVEL, method="wilson")
    return ci.low, ci.high


def against_proportion(k: int, n: int, level: float, what: str, n_paper: int | None = None) -> tuple[str, str]:
    """One run's rate, `k` of `n` images (a TPR over the defective test images, a TNR over the good
    ones), against the rate the paper printed, measured on `n_paper` images (default `n`: the same
    test split).  Both rates are uncertain, so the difference ours - paper gets Newcombe's 95%
    interval (from the two Wilson intervals; Newcombe 1998, method 10) and is judged as
    `against_level` with claim "at": REPRODUCED when it contains 0 and is within +-AT_WITHIN,
    NOT REPRODUCED when it excludes 0, else NOT DECIDED."""
    if n < 1:
        return NOT_DECIDED, f"{what}: no images to measure it on"
    m = int(n_paper or n)
    p1, p2 = k / n, level
    l1, u1 = _wilson(k, n)
    l2, u2 = _wilson(round(level * m), m)
    d = p1 - p2
    lo, hi = d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)
    v = stats.verdict(lo, hi)
    outcome = _judge(v, "at", lo, hi)
    side = {stats.HIGHER: "excludes 0", stats.LOWER: "excludes 0", stats.NO_DIFFERENCE: "contains 0"}[v]
    if outcome == NOT_DECIDED:
        side += f" but is wider than +-{AT_WITHIN:g}, too wide to tell"
    return outcome, (f"{what}: ours {p1:.3f} ({k} of {n} images), the paper printed {p2:.3f} (on {m}); difference "
                     f"{d:+.3f}, 95% interval [{lo:+.3f}, {hi:+.3f}] (Newcombe, from both rates' Wilson intervals), "
                     f"which {side}: {outcome}")


def against_difference(mean: float, lo: float, hi: float, claim: str, what: str, n: int = 0) -> tuple[str, str]:
    """A difference A - B with its interval (e.g. `stats.paired(...).per_class`' seed_lo / seed_hi)
    against the direction the paper states: `claim` "higher" (the paper: A better) or "lower".
    REPRODUCED when the interval excludes 0 on that side, NOT_REPRODUCED when on the other (the
    opposite found), NOT_DECIDED when it contains 0 or is missing."""
    if claim not in (stats.HIGHER, stats.LOWER):
        raise ValueError(f"claim must be {stats.HIGHER!r} or {stats.LOWER!r}, got {claim!r}")
    v = stats.verdict(lo, hi)
    seeds = f" over {n} paired seeds" if n else ""
    if v == stats.NO_DIFFERENCE:
        outcome = NOT_DECIDED
        found = ("no interval (one seed)" if lo is None or (isinstance(lo, float) and math.isnan(lo))
                 else f"[{lo:+.3f}, {hi:+.3f}]{seeds} contains 0: no difference shown")
    else:
        outcome = REPRODUCED if v == claim else NOT_REPRODUCED
        found = f"[{lo:+.3f}, {hi:+.3f}]{seeds}: {v}" + (", the opposite" if outcome == NOT_REPRODUCED else "")
    return outcome, f"{what}: ours {mean:+.3f}, 95% interval {found}; the paper: {claim}: {outcome}"


SWING_ABOVE = 0.2  # s.d. over seeds of a Youden rate above this: the rate swings between seeds


def rate_spread(runs: pd.DataFrame, rate: str = "youden_tpr", other: str = "youden_tnr") -> str:
    """Why a Table IV row's rates swing between seeds, or do not move at all, from the runs of one
    class and method: '' when neither holds (or fewer than two seeds)."""
    if len(runs) < 2:
        return ""
    sd_rate, sd_auroc = runs[rate].std(), runs["auroc"].std()
    if runs[[rate, other, "auroc"]].std().max() < 1e-9:  # float noise of equal values
        return (f"its {len(runs)} seeds gave the same AUROC, TPR and TNR (s.d. 0): on these {int(runs.n_test.iloc[0])} "
                "test images the seeds did not change the ranking of the scores")
    if sd_rate > SWING_ABOVE:
        hi, lo = runs.loc[runs[rate].idxmax()], runs.loc[runs[rate].idxmin()]
        return (f"its Youden rates swing between seeds (TPR s.d. {sd_rate:.2f}: TPR {lo[rate]:.2f} with TNR "
                f"{lo[other]:.2f} in one seed, {hi[rate]:.2f} with {hi[other]:.2f} in another) while its AUROC "
                f"moves by s.d. {sd_auroc:.3f}: where the ROC is near the diagonal many thresholds give about the "
                "same Youden J = TPR + TNR - 1, so a small change of the scores moves the chosen one far")
    return ""


def paired_finding(runs: pd.DataFrame, setting: str, a, b, cls: str, claim: str, what: str,
                   value: str = "auroc") -> tuple[str, str]:
    """The paper's claim that setting `a` gives a `claim` ("higher"/"lower") `value` than `b` on class
    `cls`, judged by the seed-paired interval of `stats.paired` (`against_difference`)."""
    p = stats.paired(runs[runs[setting] == a], runs[runs[setting] == b], value).per_class
    row = p[p.normal_class == cls]
    if row.empty:
        return NOT_DECIDED, f"{what}: no runs of class {cls} with both settings"
    r = row.iloc[0]
    return against_difference(r["diff"], r.get("seed_lo", math.nan), r.get("seed_hi", math.nan), claim, what,
                              int(r.get("seed_n", 0) or 0))
