"""The MVTec page's table (reporting.tables.mvtec_table): pixel AUROC and AUPRO where the runs
measured them, `not measured` where they did not, never a made-up number."""

import pandas as pd

from pyramid_lib.reporting.tables import md_table, mvtec_table


def results(**pixel) -> pd.DataFrame:
    base = {"normal_class": ["grid", "bottle"], "auroc": [0.6, 0.7], "youden_tpr": [0.5, 0.6],
            "youden_tnr": [0.7, 0.8], "heldout_tpr": [0.1, 0.2], "heldout_tnr": [0.9, 1.0]}
    return pd.DataFrame({**base, **pixel})


def rows(t: pd.DataFrame) -> dict:
    return {r.category: (r.pixel_auroc, r.aupro) for r in t.itertuples()}


def test_measured_runs_show_their_values_and_the_mean():
    t = mvtec_table(results(pixel_auroc=[0.8, 0.9], aupro=[0.25, 0.5]))
    assert rows(t) == {"grid": ("0.800", "0.250"), "bottle": ("0.900", "0.500"), "mean": ("0.850", "0.375")}
    assert "| pixel_auroc | aupro |" in md_table(t)


def test_runs_without_the_columns_say_not_measured():
    t = mvtec_table(results())  # metrics.csv of runs evaluated before the kit measured pixels
    assert set(rows(t).values()) == {("not measured", "not measured")}


def test_a_partly_measured_table_gives_no_mean():
    t = mvtec_table(results(pixel_auroc=[0.8, float("nan")], aupro=[0.25, float("nan")]))
    got = rows(t)
    assert got["grid"] == ("0.800", "0.250") and got["bottle"] == ("not measured", "not measured")
    assert got["mean"] == ("1 of 2 categories measured", "1 of 2 categories measured")


def test_a_category_whose_evaluation_found_no_masks_says_no_masks_not_not_measured():
    t = mvtec_table(results(pixel_auroc=[0.8, float("nan")], aupro=[0.25, float("nan")],
                            pixel_evaluated=[True, True]))  # bottle's metrics.csv has the columns, empty
    assert rows(t)["bottle"] == ("no masks", "no masks")
    t = mvtec_table(results(pixel_auroc=[0.8, float("nan")], aupro=[0.25, float("nan")],
                            pixel_evaluated=[True, False]))  # evaluated before the columns existed
    assert rows(t)["bottle"] == ("not measured", "not measured")
