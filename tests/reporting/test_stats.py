"""reporting.stats: seed spread, intervals over classes, paired differences and the verdict words."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from pyramid_lib.reporting.stats import (
    HIGHER,
    LOWER,
    NO_DIFFERENCE,
    against_constant,
    class_mean,
    mean_sd,
    paired,
    seed_summary,
    t_interval,
    verdict,
    with_interval,
)


def runs(values: dict) -> pd.DataFrame:
    """{(class, seed): auroc} -> one row per run."""
    return pd.DataFrame([{"normal_class": c, "seed": s, "auroc": a} for (c, s), a in values.items()])


@pytest.mark.parametrize("lo, hi, word", [(0.01, 0.2, HIGHER), (-0.3, -0.001, LOWER), (-0.1, 0.1, NO_DIFFERENCE),
                                          (0.0, 0.1, NO_DIFFERENCE), (math.nan, math.nan, NO_DIFFERENCE),
                                          (None, None, NO_DIFFERENCE)])
def test_verdict_needs_an_interval_that_excludes_zero(lo, hi, word):
    assert verdict(lo, hi) == word


def test_t_interval_is_students_over_the_units():
    v = [0.80, 0.85, 0.95, 0.90]
    iv = t_interval(v)
    half = sps.t.ppf(0.975, 3) * np.std(v, ddof=1) / 2
    assert iv.n == 4 and iv.mean == pytest.approx(0.875)
    assert (iv.lo, iv.hi) == pytest.approx((0.875 - half, 0.875 + half))
    one = t_interval([0.9])
    assert one.mean == 0.9 and math.isnan(one.lo) and math.isnan(one.hi)
    assert t_interval([]).n == 0


def test_seed_summary_sd_has_ddof_1_and_is_blank_for_one_seed():
    s = seed_summary(runs({("1", 0): 0.9, ("1", 1): 0.8, ("0", 0): 0.7})).set_index("normal_class")
    assert list(s.index) == ["0", "1"]
    assert s.at["1", "sd"] == pytest.approx(np.std([0.9, 0.8], ddof=1)) and s.at["1", "n"] == 2
    assert math.isnan(s.at["0", "sd"])
    assert mean_sd(s.at["0", "mean"], s.at["0", "sd"], s.at["0", "n"]) == "0.7000"  # no "± 0"
    assert mean_sd(s.at["1", "mean"], s.at["1", "sd"], s.at["1", "n"]) == "0.8500 ± 0.0707"
    assert mean_sd(float("nan"), float("nan"), 0) == ""


def test_class_mean_takes_the_classes_as_units():
    r = runs({("0", 0): 0.9, ("0", 1): 0.7, ("1", 0): 0.6})  # class 0's seed mean 0.8, class 1 0.6
    iv = class_mean(r)
    assert iv.n == 2 and iv.mean == pytest.approx(0.7)  # not the mean of the three runs (0.7333)
    assert with_interval(iv).startswith("0.7000 [")


def test_paired_differences_class_by_class_with_seed_intervals_where_seeds_are_shared():
    a = runs({(c, s): 0.9 + 0.01 * s + 0.02 * int(c) for c in "012" for s in range(3)})
    b = runs({(c, s): 0.85 + 0.012 * s + 0.02 * int(c) for c in "012" for s in range(3)})
    p = paired(a, b)
    assert list(p.per_class["normal_class"]) == ["0", "1", "2"]
    assert p.per_class["diff"].to_numpy() == pytest.approx([0.048] * 3)
    assert p.a_better == 3 and p.over_classes.n == 3 and p.verdict_classes == HIGHER
    seed_diffs = [0.05, 0.048, 0.046]  # class 0, seeds 0..2
    lo, hi = t_interval(seed_diffs).lo, t_interval(seed_diffs).hi
    assert (p.per_class.at[0, "seed_lo"], p.per_class.at[0, "seed_hi"]) == pytest.approx((lo, hi))
    assert p.seed_sd_a == pytest.approx(0.01) and p.seed_sd_b == pytest.approx(0.012)


def test_a_method_fitted_once_pairs_with_the_seed_mean_and_gives_no_seed_spread():
    a = runs({(c, s): 0.9 + 0.01 * s for c in "01" for s in range(3)})
    once = runs({("0", 0): 0.91, ("1", 0): 0.89})
    p = paired(a, once)
    assert p.per_class["diff"].to_numpy() == pytest.approx([0.0, 0.02])
    assert p.per_class["seed_lo"].isna().all() and math.isnan(p.seed_sd_a)
    assert p.verdict_classes == NO_DIFFERENCE  # two classes, one at 0: the interval includes 0


def test_only_the_classes_both_have_are_paired():
    p = paired(runs({("0", 0): 0.9, ("1", 0): 0.8, ("2", 0): 0.7}), runs({("1", 0): 0.7, ("2", 0): 0.6}))
    assert list(p.per_class["normal_class"]) == ["1", "2"] and p.over_classes.mean == pytest.approx(0.1)


def test_against_a_printed_mean_shifts_the_interval_of_our_class_mean():
    a = runs({("0", 0): 0.90, ("1", 0): 0.95, ("2", 0): 0.85})
    p = against_constant(a, 0.936)
    iv = class_mean(a)
    assert (p.over_classes.lo, p.over_classes.hi) == pytest.approx((iv.lo - 0.936, iv.hi - 0.936))


def test_over_seeds_takes_the_mean_over_classes_seed_by_seed():
    a = runs({(c, s): 0.9 + 0.01 * s + 0.05 * int(c) for c in "01" for s in range(3)})
    b = runs({(c, s): 0.88 + 0.005 * s + 0.05 * int(c) for c in "01" for s in range(3)})
    p = paired(a, b)
    per_seed = [0.02 + 0.005 * s for s in range(3)]  # A's two-class mean minus B's, seed by seed
    iv = t_interval(per_seed)
    assert p.over_seeds.n == 3 and (p.over_seeds.lo, p.over_seeds.hi) == pytest.approx((iv.lo, iv.hi))
    assert p.verdict_seeds == HIGHER
    once = runs({("0", 0): 0.9, ("1", 0): 0.95})  # fitted once: a fixed number
    fixed = paired(a, once).over_seeds
    assert fixed.n == 3 and fixed.mean == pytest.approx(np.mean([0.925 + 0.01 * s for s in range(3)]) - 0.925)
    const = against_constant(a, 0.9).over_seeds
    assert const.mean == pytest.approx(0.935 - 0.9) and const.n == 3
    single = paired(runs({("0", 0): 0.9, ("1", 0): 0.8}), once)
    assert single.over_seeds.n == 1 and single.verdict_seeds == ""  # one seed: no interval, no verdict
