"""The tables of the results pages, read back from results.csv files: ours beside the paper's
numbers (paper.py), the MVTec TPR/TNR table, ablations and baselines, as frames and markdown.
Reads only; trains and scores nothing.  Used by pages.py (nothing outside the CLI imports reporting)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import paper
from ..experiments.plan import plan, plan_frame
from ..metrics import PIXEL_METRICS

TITLES = {
    "mnist": "MNIST one-class AUROC (paper's Table III)",
    "fmnist": "Fashion-MNIST one-class AUROC (paper's Table II)",
    "mvtec": "MVTec AD (paper's Table IV)",
    "ablation-encoders": "Ablation: number of encoders (paper's Fig. 3 and 4)",
    "ablation-lambda": "Ablation: perceptual loss, lambda 0 vs 1 (paper's Fig. 5)",
    "baselines": "Baselines re-run on the same splits",
}


ORDER = ("mnist", "fmnist", "mvtec", "baselines", "ablation-encoders", "ablation-lambda")


TARGETS = {"mnist": (0.97, 0.02), "fmnist": (0.936, 0.03)}


def md_table(df: pd.DataFrame, floatfmt: str = "{:.3f}") -> str:
    """A DataFrame as a GitHub markdown table (no dependency on tabulate)."""
    def cell(v):
        if isinstance(v, (float, np.floating)):
            return "" if pd.isna(v) else floatfmt.format(v)
        return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _read(path, **kw) -> pd.DataFrame:
    path = Path(path)
    return pd.read_csv(path, **kw) if path.is_file() else pd.DataFrame()


def read_results(base) -> pd.DataFrame:
    return _read(Path(base) / "results.csv", dtype={"normal_class": str})


def planned(base) -> pd.DataFrame:
    """The runs planned for this folder: the experiment's default plan plus any run recorded in plan.csv by a
    sweep; only plan.csv for mvtec (the categories asked for) or when plan.csv shares no run with the default."""
    base = Path(base)
    got = _read(base / "plan.csv", dtype={"normal_class": str})
    if base.parent.name == "mvtec" and len(got):  # only the categories that were asked for (and are here)
        return got
    try:

        default = plan_frame(plan(base.parent.name, base.name))
    except Exception:
        return got
    if len(got) and not set(got["name"]) & set(default["name"]):
        return got  # another dataset than the default (e.g. mnist-sample): only what was asked for
    return pd.concat([default, got], ignore_index=True).drop_duplicates("name", keep="first") if len(got) else default




def baseline_results(out_root, profile: str) -> pd.DataFrame:
    """The baselines experiment's rows for `profile` (empty when none ran)."""
    return read_results(Path(out_root) / "baselines" / profile)


def ours_results(out_root, dataset: str, profile: str) -> pd.DataFrame:
    return read_results(Path(out_root) / dataset / profile)


def auroc_table(experiment: str, res: pd.DataFrame, base_res: pd.DataFrame) -> pd.DataFrame:
    """mnist / fmnist: class, ours, paper, difference, n_runs, re-run baselines, paper's copied columns."""
    df = paper.compare(res, experiment) if len(res) else paper.compare(
        pd.DataFrame({"normal_class": [], "auroc": []}), experiment)
    df = df.rename(columns={"ours": "ours (random weights)", "paper": "paper Ours",
                            "difference": "ours - paper"})
    if len(base_res):
        b = base_res[base_res.dataset == experiment]
        if len(b):
            piv = b.pivot_table(index="normal_class", columns="method", values="auroc", aggfunc="mean")
            for m in ("ae-l2", "ae-ssim", "ocsvm", "kde", "ours-lambda0"):
                if m in piv:
                    col = piv[m].reindex(df["class"].iloc[:-1])
                    vals = list(col.to_numpy())
                    have = [c for c in df["class"].iloc[:-1] if c in piv.index and pd.notna(piv[m].get(c))]
                    vals.append(piv[m].reindex(have).mean() if have else np.nan)
                    df[f"{m} re-run"] = vals
    if experiment == "mnist":
        pb = paper.baselines("mnist")
        for m in ("OC SVM", "KDE", "DAE", "LSA"):
            df[f"paper {m}"] = list(pb[m].reindex(df["class"].iloc[:-1]).to_numpy()) + [paper.TABLE_III_MEAN[m]]
    else:
        for m in ("GPND", "OCGAN"):
            df[f"paper {m}"] = [np.nan] * (len(df) - 1) + [paper.TABLE_II[m]]
        df = df[(df["n_runs"] > 0) | (df["class"] == "mean") | df.iloc[:, 5:].notna().any(axis=1)]
    return df


def base_profile(profile: str) -> str:
    """'cpu' for 'cpu' and for its variants such as 'cpu-epochs20' (reproduce.variant)."""
    return profile.split("-")[0]


def is_variant(profile: str) -> bool:
    return profile != base_profile(profile)


def paired(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Mean AUROC per class of two result frames, on the classes both have (in class order)."""
    ma, mb = a.groupby("normal_class").auroc.mean(), b.groupby("normal_class").auroc.mean()
    common = sorted(set(ma.index) & set(mb.index), key=lambda c: (len(c), c))
    return ma[common], mb[common]


def mvtec_table(res: pd.DataFrame) -> pd.DataFrame:
    cmp = paper.compare(res, "mvtec")
    cmp = cmp[(cmp.n_runs > 0) | (cmp.category == "mean")].copy()
    have = cmp.category != "mean"
    mean = cmp.category == "mean"  # the paper's mean over the same categories, not over its 15
    for c in ("tpr", "tnr"):
        cmp.loc[mean, f"paper_{c}"] = cmp.loc[have, f"paper_{c}"].mean()
        cmp.loc[mean, f"{c}_difference"] = cmp.loc[mean, f"ours_{c}"] - cmp.loc[mean, f"paper_{c}"]
    extra = res.groupby("normal_class")[["heldout_tpr", "heldout_tnr"]].mean()
    cmp["heldout_tpr"] = cmp["category"].map(extra["heldout_tpr"])
    cmp["heldout_tnr"] = cmp["category"].map(extra["heldout_tnr"])
    for c in PIXEL_METRICS:  # where is the defect: ours only; runs evaluated before these existed lack them
        vals = cmp["category"].map(res.groupby("normal_class")[c].mean() if c in res else {})
        n, k = int(have.sum()), int(vals[have].notna().sum())
        vals[mean] = vals[have].mean() if n and k == n else np.nan
        missing = "not measured" if k in (0, n) else f"{k} of {n} categories measured"
        cmp[c] = [f"{v:.3f}" if pd.notna(v) else ("not measured" if h else missing) for v, h in zip(vals, have)]
    return cmp


def ablation_table(experiment: str, res: pd.DataFrame) -> pd.DataFrame:
    key = "encoders" if experiment == "ablation-encoders" else "lambda"
    cols = ["dataset", "normal_class", key, "auroc", "ssim_normal", "youden_accuracy", "heldout_accuracy",
            "auroc_mse", "auroc_perceptual", "epochs", "fit_images"]
    return res[[c for c in cols if c in res]].sort_values(["dataset", "normal_class", key]).reset_index(drop=True)


def baselines_table(res: pd.DataFrame, out_root, profile: str) -> pd.DataFrame:
    """Rows dataset/class; columns: each re-run method's AUROC and our network's (same profile)."""
    rows = []
    for ds, g in res.groupby("dataset"):
        piv = g.pivot_table(index="normal_class", columns="method", values="auroc", aggfunc="mean")
        piv = piv[[m for m in ("ocsvm", "kde", "ae-l2", "ae-ssim", "ours-lambda0") if m in piv] +
                  [m for m in piv if m not in ("ocsvm", "kde", "ae-l2", "ae-ssim", "ours-lambda0")]]
        ours = ours_results(out_root, ds, profile)
        if len(ours):
            piv["ours (lambda=1)"] = ours.groupby("normal_class").auroc.mean().reindex(piv.index)
        piv = piv.sort_index(key=lambda s: s.map(lambda c: (len(c), c)))
        full = piv.dropna()
        piv.loc["mean (classes present)"] = piv.mean()
        if len(full) and len(full) < len(piv) - 1:  # some column lacks classes: the comparable mean too
            piv.loc[f"mean ({len(full)} classes every column has)"] = full.mean()
        piv = piv.reset_index()
        piv.insert(0, "dataset", ds)
        rows.append(piv)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
