"""The paper's numbers as data, and `compare()` to set a results frame beside them.

Source: Mishra, Piciarelli, Foresti, "Image Anomaly Detection by aggregating deep pyramidal
representations", ICPR 2020 (text in shared/paper/pyramidal_anomaly_detection_icpr2020.txt):
    TABLE_II    Fashion-MNIST, mean AUROC over the 10 classes           (paper's Table II)
    TABLE_III   MNIST, AUROC per normal digit, plus the printed means    (paper's Table III)
    TABLE_IV    MVTec AD, TPR and TNR per category                       (paper's Table IV)
    ABLATION    the numbers quoted in section V (number of encoders)
Only the "Ours" / "ours" columns are the authors' own results.  Every other method's numbers
were copied by the authors from other papers: Table II from OCGAN [6] and GPND [32], Table III
from LSA [21], Table IV from the MVTec AD paper [7].  Values are transcribed as printed; the
few repairs are listed in TRANSCRIPTION_NOTES.

Public API:
    compare(ours, table, ...)   ours beside the paper: one row per class plus a "mean" row
    paper_mean(table, method)   a column's mean computed from its per-class values (not the printed one)
    baselines(table)            the other methods' numbers, for plots
    paper_table(table)          the whole table, "Ours" included
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import ConfigError

TABLES = ("mnist", "fmnist", "mvtec")
OURS = "Ours"

TRANSCRIPTION_NOTES = [
    'Table III, Deep SVDD, class 1: printed "0.0.997", read as 0.997.',
    'Table III, Deep SVDD, class 8: printed "0.0.939", read as 0.939.',
    'Table III, Deep SVDD, class 9: printed "0.0.965", read as 0.965.',
    'Table III, Deep SVDD, class 0: printed "0.98" (two decimals), kept as 0.98.',
    "Table III, Mean row: most means are printed with two decimals (0.95, 0.81, ..., 0.97); kept as "
    "printed in TABLE_III_MEAN. The mean of the per-class Ours values is 0.9702.",
    'Table IV, column "ours": leather TNR printed "0.625" (three decimals) and toothbrush TPR '
    'printed "0.8"; both kept as printed.',
    'Table IV, methods renamed: "AE (L2)" -> "AE L2", "Ano Gan" -> "AnoGAN", "CNN Feat. Dict." -> '
    '"CNN Feature Dictionary", "ours" -> "Ours"; categories renamed to MVTec folder names '
    '("Metal nut" -> "metal_nut", the rest lowercased).',
    'Table IV, each cell "a b" is read as TPR = a, TNR = b, following the caption ("EACH CELL SHOWS '
    'THE BEST TNR (BOTTOM) AND TPR (TOP)"). Unverified here: the MVTec AD paper [7], where the '
    "baseline numbers come from, may list anomaly-free (TNR) first; if so the baselines' TPR and TNR "
    "are swapped relative to their source.",
    "Table IV lists 15 categories although the text says 16 (MVTec AD has 15). The text's claims "
    'hold for the transcription: Ours has the highest mean of TPR and TNR in 9 categories, and in '
    'Table III the best (ties included) AUROC on 6 of the 10 digits.',
]

# ------------------------------------------------------------------------------ Table II (FMNIST)

TABLE_II = {"GPND": 0.933, "OCGAN": 0.924, OURS: 0.936}
"""Fashion-MNIST: AUROC averaged over the 10 classes. The paper gives no per-class values."""

# ------------------------------------------------------------------------------ Table III (MNIST)

MNIST_METHODS = ("OC SVM", "KDE", "DAE", "VAE", "Pix CNN GAN", "LSA", "Deep SVDD", OURS)

_MNIST_ROWS = {
    #     OC SVM  KDE    DAE    VAE    PixCNN LSA    DSVDD  Ours
    "0": (0.988, 0.885, 0.991, 0.994, 0.531, 0.993, 0.98, 0.995),
    "1": (0.999, 0.996, 0.999, 0.999, 0.995, 0.999, 0.997, 0.999),  # Deep SVDD printed 0.0.997
    "2": (0.902, 0.710, 0.891, 0.962, 0.476, 0.959, 0.917, 0.941),
    "3": (0.950, 0.693, 0.935, 0.947, 0.517, 0.966, 0.919, 0.966),
    "4": (0.955, 0.844, 0.921, 0.965, 0.739, 0.956, 0.949, 0.960),
    "5": (0.968, 0.776, 0.937, 0.963, 0.542, 0.964, 0.885, 0.972),
    "6": (0.978, 0.861, 0.981, 0.995, 0.592, 0.994, 0.983, 0.992),
    "7": (0.965, 0.884, 0.964, 0.974, 0.789, 0.980, 0.946, 0.993),
    "8": (0.853, 0.669, 0.841, 0.905, 0.340, 0.953, 0.939, 0.895),  # Deep SVDD printed 0.0.939
    "9": (0.955, 0.825, 0.960, 0.978, 0.662, 0.981, 0.965, 0.989),  # Deep SVDD printed 0.0.965
}
TABLE_III = pd.DataFrame.from_dict(_MNIST_ROWS, orient="index", columns=list(MNIST_METHODS))
TABLE_III.index.name = "class"
"""MNIST AUROC: index = normal digit "0".."9", one column per method (MNIST_METHODS)."""

TABLE_III_MEAN = pd.Series([0.95, 0.81, 0.94, 0.97, 0.62, 0.97, 0.948, 0.97], index=list(MNIST_METHODS),
                           name="mean")
"""The "Mean" row exactly as printed (mostly two decimals): for display beside the computed means
(`paper_mean`), never in their place; the printed means are rounded (Ours: printed 0.97, mean 0.9702)."""

# ------------------------------------------------------------------------------ Table IV (MVTec AD)

MVTEC_METHODS = ("AE SSIM", "AE L2", "AnoGAN", "CNN Feature Dictionary", OURS)

_MVTEC_ROWS = {  # category: ((TPR, TNR) for each of MVTEC_METHODS)
    "carpet":     ((0.43, 0.90), (0.57, 0.42), (0.82, 0.16), (0.89, 0.36), (0.42, 0.72)),
    "grid":       ((0.38, 1.00), (0.57, 0.98), (0.90, 0.12), (0.57, 0.33), (0.86, 0.53)),
    "leather":    ((0.00, 0.92), (0.06, 0.82), (0.91, 0.12), (0.63, 0.71), (0.62, 0.625)),
    "tile":       ((1.00, 0.04), (1.00, 0.54), (0.97, 0.05), (0.97, 0.44), (0.44, 0.85)),
    "wood":       ((0.84, 0.82), (1.00, 0.47), (0.89, 0.47), (0.79, 0.88), (0.85, 0.95)),
    "bottle":     ((0.85, 0.90), (0.70, 0.89), (0.95, 0.43), (1.00, 0.06), (0.84, 1.00)),
    "cable":      ((0.74, 0.48), (0.93, 0.18), (0.98, 0.07), (0.97, 0.24), (0.58, 0.89)),
    "capsule":    ((0.78, 0.43), (1.00, 0.24), (0.96, 0.20), (0.78, 0.03), (0.62, 0.74)),
    "hazelnut":   ((1.00, 0.07), (0.93, 0.84), (0.83, 0.16), (0.90, 0.07), (0.90, 0.89)),
    "metal_nut":  ((1.00, 0.08), (0.68, 0.77), (0.86, 0.13), (0.55, 0.74), (0.98, 0.55)),
    "pill":       ((0.92, 0.28), (1.00, 0.23), (1.00, 0.24), (0.85, 0.06), (0.76, 0.62)),
    "screw":      ((0.95, 0.06), (0.98, 0.39), (0.41, 0.28), (0.73, 0.13), (0.73, 0.71)),
    "toothbrush": ((0.75, 0.73), (1.00, 0.97), (1.00, 0.13), (1.00, 0.03), (0.8, 0.92)),
    "transistor": ((1.00, 0.03), (0.97, 0.45), (0.98, 0.35), (1.00, 0.15), (0.60, 0.89)),
    "zipper":     ((1.00, 0.60), (0.97, 0.63), (0.78, 0.40), (0.78, 0.29), (0.64, 0.82)),
}
MVTEC_CATEGORIES = tuple(_MVTEC_ROWS)  # in the paper's order: textures, then objects
TABLE_IV = pd.DataFrame(
    [(cat, method, tpr, tnr) for cat, cells in _MVTEC_ROWS.items()
     for method, (tpr, tnr) in zip(MVTEC_METHODS, cells)],
    columns=["category", "method", "tpr", "tnr"])
"""MVTec AD, long format: one row per (category, method) with the cell's TPR and TNR."""

# ------------------------------------------------------------------------------ Section V (ablation)

ABLATION = {
    "encoders_tested": (1, 2, 4, 6),
    "encoders_chosen": 4,
    "categories": ("bottle", "carpet"),
    "ssim": {  # average SSIM of normal-class reconstructions
        "bottle": {"one_or_two_encoders_below": 0.65, "four_encoders_above": 0.68},
        "carpet": {"one_or_two_encoders_below": 0.40, "four_encoders_above": 0.53},
        "quote": "While average SSIM obtained from configuration having 1 and 2 encoders remained below "
                 "0.65 for bottle and 0.40 for carpet, for the normal class, the average SSIM obtained "
                 "with 4 encoders remained above 0.68 for bottle and 0.53 for carpet.",
    },
    "accuracy": {  # fractions; the paper prints percent
        "bottle": {"one_or_two_encoders_below": 0.85, "four_encoders": 0.93},
        "carpet": {"one_or_two_encoders_below": 0.36, "four_encoders": 0.57},
        "quote": "The accuracy with configuration having 1 and 2 encoders remained below 85% and 36% for "
                 "bottle and carpet respectively in compare to 93% and 57% obtained with 4 encoder "
                 "configuration for bottle and carpet respectively.",
    },
    "six_encoders": "As with the 6 autoencoder configuration the results did not improve much and "
                    "remained pretty much same.",
    "perceptual_loss": "Figure 5 only (AUC of MSE-only vs MSE + perceptual on bottle and carpet); the "
                       "text gives no numbers, only that the perceptual loss 'greatly enhanced' results.",
}


# ------------------------------------------------------------------------------ lookups


def _check_table(table: str) -> str:
    key = str(table).lower()
    if key not in TABLES:
        raise ConfigError(f"unknown paper table {table!r}; choose one of {', '.join(TABLES)} "
                          "(mnist = Table III, fmnist = Table II, mvtec = Table IV)")
    return key


def paper_table(table: str) -> pd.DataFrame:
    """The paper's whole table, "Ours" included (a copy).

    mnist: index class "0".."9", one column per MNIST_METHODS.  fmnist: one row "mean", one column
    per method.  mvtec: long frame with columns category, method, tpr, tnr.
    """
    key = _check_table(table)
    if key == "mnist":
        return TABLE_III.copy()
    if key == "fmnist":
        return pd.DataFrame([TABLE_II], index=pd.Index(["mean"], name="class"))
    return TABLE_IV.copy()


def baselines(table: str) -> pd.DataFrame:
    """The other methods' numbers (every column but "Ours"), shaped as in `paper_table`.

    They were copied by the paper's authors from other papers; see the module docstring.
    """
    df = paper_table(table)
    if "method" in df.columns:
        return df[df["method"] != OURS].reset_index(drop=True)
    return df.drop(columns=OURS)


def paper_mean(table: str, method: str = OURS, classes=None, column: str = "tpr") -> float:
    """The mean of a paper column over `classes` (default: all of the table's), computed from its
    per-class values.  mnist: Table III's AUROC (Ours over 10 digits: 0.9702; printed 0.97, see
    TABLE_III_MEAN); mvtec: Table IV's `column` ("tpr" or "tnr").  fmnist has no per-class values:
    Table II's printed mean, whatever `classes`.  Raises ConfigError for an unknown table, KeyError
    for an unknown method."""
    key = _check_table(table)
    if key == "fmnist":
        return float(TABLE_II[method])
    if key == "mnist":
        col = TABLE_III[method]
    else:
        t = TABLE_IV[TABLE_IV["method"] == method].set_index("category")
        if not len(t):
            raise KeyError(method)
        col = t[column]
    if classes is not None:
        col = col.reindex([c for c in col.index if c in set(map(str, classes))])
    return float(col.mean()) if len(col) else float("nan")


# ------------------------------------------------------------------------------ compare


def normalize_class(value, key: str) -> str:
    """A class name as the paper's tables index it: '3' for 3 or 3.0; MVTec folder names ('metal_nut')."""
    s = str(value).strip()
    if key == "mvtec":
        return s.lower().replace(" ", "_").replace("-", "_")
    try:  # 3, 3.0, "3" -> "3"
        f = float(s)
        return str(int(f)) if f.is_integer() else s
    except ValueError:
        return s


def _ours_by_class(ours: pd.DataFrame, key: str, class_column: str, columns: dict) -> pd.DataFrame:
    """Mean and s.d. (ddof 1; NaN for one run) of each wanted column per class over its runs (seeds),
    and n_runs."""
    need = [class_column, *columns]
    missing = [c for c in need if c not in ours.columns]
    if missing:
        raise ConfigError(f"compare({key!r}): the results frame lacks column(s) {', '.join(missing)}; "
                          f"it has {', '.join(map(str, ours.columns)) or 'no columns'}")
    df = ours[need].copy()
    df[class_column] = [normalize_class(v, key) for v in df[class_column]]
    for c in columns:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    g = df.groupby(class_column, sort=False)
    out = g[list(columns)].mean().rename(columns=columns)
    sd = g[list(columns)].std(ddof=1).rename(columns={k: f"{v}_sd" for k, v in columns.items()})
    out = out.join(sd)
    out["n_runs"] = g.size()
    return out


def _with_extra_classes(paper_classes, got) -> list[str]:
    """The paper's classes in its order, then any class found only in our results."""
    return list(paper_classes) + [c for c in got.index if c not in paper_classes]


def compare(ours: pd.DataFrame, table: str, *, class_column: str = "normal_class", auroc: str = "auroc",
            tpr: str = "youden_tpr", tnr: str = "youden_tnr") -> pd.DataFrame:
    """Our results beside the paper's, one row per class (every class of the paper, found or not),
    then classes found only in `ours`, then a "mean" row.

    `ours` holds one row per run: `class_column` and, for "mnist"/"fmnist", the `auroc` column;
    for "mvtec", the `tpr` and `tnr` columns (and `auroc`, optional). Several runs of a class
    (seeds) are averaged; `*_sd` is their s.d. (ddof 1, NaN for one run), n_runs how many. A class
    without a run gets NaN for ours.

    mnist, fmnist -> columns class, ours, paper, difference (= ours - paper), n_runs, ours_sd,
        paper_printed.  fmnist: the paper gives only the mean, so per-class paper values are NaN.
    mvtec -> columns category, ours_tpr, ours_tnr, paper_tpr, paper_tnr, tpr_difference,
        tnr_difference, n_runs, (ours_auroc,) ours_tpr_sd, ours_tnr_sd, (ours_auroc_sd).
    The "mean" row (the one computation that the results pages show too): ours = mean over the
    paper's classes that have a run of their per-class means (n_runs = how many classes); paper =
    the mean of the paper's per-class values over the same classes (`paper_mean`), so that the
    difference compares like with like; paper_printed = the mean the paper printed over all its
    classes (mnist 0.97, rounded; fmnist 0.936, Table II's only number).  fmnist's mean-row paper
    value is the printed mean, and its difference is given only when all 10 classes have a run.
    Raises ConfigError for an unknown table or a missing column.
    """
    key = _check_table(table)
    if key == "mvtec":
        return _compare_mvtec(ours, class_column, auroc, tpr, tnr)
    got = _ours_by_class(ours, key, class_column, {auroc: "ours"})
    if key == "mnist":
        paper_per_class, printed = TABLE_III[OURS], TABLE_III_MEAN[OURS]
    else:
        paper_per_class, printed = pd.Series(np.nan, index=TABLE_III.index), TABLE_II[OURS]
    classes = _with_extra_classes(paper_per_class.index, got)
    df = pd.DataFrame({"class": classes,
                       "ours": got["ours"].reindex(classes).to_numpy(),
                       "paper": paper_per_class.reindex(classes).to_numpy(),
                       "n_runs": got["n_runs"].reindex(classes).fillna(0).astype(int).to_numpy(),
                       "ours_sd": got["ours_sd"].reindex(classes).to_numpy()})
    have = (df["n_runs"] > 0) & df["class"].isin(paper_per_class.index)
    ran = list(df.loc[have, "class"])
    complete = len(ran) == len(paper_per_class.index)
    paper_same = paper_mean(key, OURS, ran) if key == "mnist" else printed
    mean = {"class": "mean", "ours": df.loc[have, "ours"].mean(), "paper": paper_same, "n_runs": len(ran),
            "ours_sd": np.nan, "paper_printed": printed}
    df = pd.concat([df, pd.DataFrame([mean])], ignore_index=True)
    df.insert(3, "difference", df["ours"] - df["paper"])
    if key == "fmnist" and not complete:  # a mean over some classes against the printed 10-class mean
        df.loc[df["class"] == "mean", "difference"] = np.nan
    return df


def _compare_mvtec(ours, class_column, auroc, tpr, tnr) -> pd.DataFrame:
    wanted = {tpr: "ours_tpr", tnr: "ours_tnr"}
    with_auroc = auroc in ours.columns
    if with_auroc:
        wanted[auroc] = "ours_auroc"
    got = _ours_by_class(ours, "mvtec", class_column, wanted)
    paper = TABLE_IV[TABLE_IV["method"] == OURS].set_index("category")
    classes = _with_extra_classes(paper.index, got)
    df = pd.DataFrame({"category": classes,
                       "ours_tpr": got["ours_tpr"].reindex(classes).to_numpy(),
                       "ours_tnr": got["ours_tnr"].reindex(classes).to_numpy(),
                       "paper_tpr": paper["tpr"].reindex(classes).to_numpy(),
                       "paper_tnr": paper["tnr"].reindex(classes).to_numpy()})
    df["tpr_difference"] = df["ours_tpr"] - df["paper_tpr"]
    df["tnr_difference"] = df["ours_tnr"] - df["paper_tnr"]
    df["n_runs"] = got["n_runs"].reindex(classes).fillna(0).astype(int).to_numpy()
    for c in wanted.values():
        if c == "ours_auroc":
            df[c] = got[c].reindex(classes).to_numpy()
    for c in wanted.values():
        df[f"{c}_sd"] = got[f"{c}_sd"].reindex(classes).to_numpy()
    have = (df["n_runs"] > 0) & df["category"].isin(paper.index)
    ran = list(df.loc[have, "category"])
    mean = df.loc[have].drop(columns=[c for c in df if c.endswith("_sd")]).mean(numeric_only=True).to_dict()
    mean.update(category="mean", n_runs=len(ran),  # the paper's mean over the categories we ran
                paper_tpr=paper_mean("mvtec", OURS, ran, "tpr"), paper_tnr=paper_mean("mvtec", OURS, ran, "tnr"))
    mean["tpr_difference"] = mean.get("ours_tpr", np.nan) - mean["paper_tpr"]
    mean["tnr_difference"] = mean.get("ours_tnr", np.nan) - mean["paper_tnr"]
    return pd.concat([df, pd.DataFrame([mean]).reindex(columns=df.columns)], ignore_index=True)
