"""The paper's mean rows computed from its per-class values, the printed ones only labelled as such
(paper.paper_mean, paper.compare, tables.auroc_table): issue 13, items c and d."""

import math

import numpy as np
import pandas as pd
import pytest

from pyramid_lib import paper
from pyramid_lib.reporting.tables import MEAN, auroc_table


def results(values: dict, seeds: int = 1) -> pd.DataFrame:
    return pd.DataFrame([{"normal_class": c, "auroc": a + 0.01 * s, "seed": s, "weights": "random"}
                         for c, a in values.items() for s in range(seeds)])


def test_paper_means_are_computed_from_the_per_class_values():
    assert paper.paper_mean("mnist") == pytest.approx(paper.TABLE_III["Ours"].mean())
    assert round(paper.paper_mean("mnist"), 4) == 0.9702 and paper.TABLE_III_MEAN["Ours"] == 0.97
    assert paper.paper_mean("mnist", "LSA", ["0", "8"]) == pytest.approx((0.993 + 0.953) / 2)
    assert paper.paper_mean("fmnist") == 0.936  # Table II has no per-class values: its printed mean
    ours4 = paper.TABLE_IV[paper.TABLE_IV.method == "Ours"].set_index("category")
    assert paper.paper_mean("mvtec", classes=["grid"], column="tnr") == ours4.at["grid", "tnr"]


def test_compare_mnist_mean_row_pairs_the_same_classes_and_keeps_the_printed_mean_apart():
    df = paper.compare(results({"3": 0.9, "8": 0.8}, seeds=2), "mnist").set_index("class")
    assert df.at["3", "ours"] == pytest.approx(0.905) and df.at["3", "ours_sd"] == pytest.approx(np.std([0.9, 0.91],
                                                                                                         ddof=1))
    assert df.at["mean", "paper"] == pytest.approx((0.966 + 0.895) / 2)  # the paper over digits 3 and 8
    assert df.at["mean", "difference"] == pytest.approx(0.855 - (0.966 + 0.895) / 2)
    assert df.at["mean", "paper_printed"] == 0.97 and math.isnan(df.at["3", "paper_printed"])


def test_compare_fmnist_difference_only_against_all_ten_classes():
    part = paper.compare(results({"0": 0.9}), "fmnist").set_index("class")
    assert part.at["mean", "paper"] == 0.936 and math.isnan(part.at["mean", "difference"])
    full = paper.compare(results({str(c): 0.9 for c in range(10)}), "fmnist").set_index("class")
    assert full.at["mean", "difference"] == pytest.approx(0.9 - 0.936)


def test_compare_mvtec_mean_row_is_over_the_categories_we_ran():
    ours = pd.DataFrame({"normal_class": ["grid", "Metal nut", "grid"], "youden_tpr": [0.9, 1.0, 0.7],
                         "youden_tnr": [0.5, 0.5, 0.5]})
    d = paper.compare(ours, "mvtec").set_index("category")
    assert d.at["mean", "ours_tpr"] == pytest.approx((0.8 + 1.0) / 2) and d.at["mean", "n_runs"] == 2
    assert d.at["mean", "paper_tpr"] == pytest.approx((0.86 + 0.98) / 2)
    assert d.at["mean", "tpr_difference"] == pytest.approx(0.9 - 0.92)
    assert d.at["grid", "ours_tpr_sd"] == pytest.approx(np.std([0.9, 0.7], ddof=1))


def test_the_mnist_table_shows_computed_means_and_the_printed_row_labelled():
    t = auroc_table("mnist", results({str(c): 0.9 for c in range(10)}), pd.DataFrame()).set_index("class")
    mean = t.loc[MEAN]
    assert mean["paper Ours"] == "0.9702" and mean["paper OC SVM"] == "0.9513" and mean["paper KDE"] == "0.8143"
    assert mean["paper DAE"] == "0.9420" and mean["paper LSA"] == "0.9745"
    printed = t.loc["paper's Mean row as printed"]
    assert (printed["paper Ours"], printed["paper OC SVM"], printed["paper KDE"]) == ("0.97", "0.95", "0.81")
    assert mean["ours (random weights)"] == "0.9000 [0.9000, 0.9000]"
