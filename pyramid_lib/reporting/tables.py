"""The tables of the results pages, as frames of display strings read back from results.csv files:
ours beside the paper's numbers (paper.py), the MVTec TPR/TNR table, ablations and baselines.

Every per-class cell is the mean over seeds with their s.d. (`stats.mean_sd`: blank s.d. for one
seed); every mean row is the mean over classes of the per-class means with its 95% t-interval over
classes (`stats.with_interval`; classes are the units).  Column names come from the runs' records
(`records.weights_label`).  Reads only; trains and scores nothing.  Used by pages.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import paper
from ..baselines import METHODS
from ..data import registry
from ..data.mvtec import MVTEC_SIZES
from ..experiments.plan import plan, plan_frame, read_variant
from ..metrics import PIXEL_METRICS
from .records import read_runs, sorted_classes, weights_label
from .stats import Interval, class_mean, mean_sd, seed_summary, t_interval, with_interval

TITLES = {
    **{name: f"{registry.get(name).table_title} (paper's {registry.get(name).paper_table})"
       for name in registry.with_paper_table()},
    "ablation-encoders": "Ablation: number of encoders (paper's Fig. 3 and 4)",
    "ablation-lambda": "Ablation: perceptual loss, lambda 0 vs 1 (paper's Fig. 5)",
    "baselines": "Baselines re-run on the same splits",
}


ORDER = ("mnist", "fmnist", "mvtec", "baselines", "ablation-encoders", "ablation-lambda")


BASELINE_METHODS = METHODS


MEAN = "mean over classes [95% CI over classes]"


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
        return got  # another dataset than the default, or a plan over seeds: only what was asked for
    return pd.concat([default, got], ignore_index=True).drop_duplicates("name", keep="first") if len(got) else default


def base_profile(folder) -> str:
    """The profile a results folder's runs were made in: 'cpu' for results/mnist/cpu and for a variant
    such as results/mnist/cpu-epochs20 (its variant.json, plan.record_variant)."""
    return read_variant(folder)[0]


def is_variant(folder) -> bool:
    """Whether a results folder's runs change some of its profile's settings (plan.record_variant)."""
    return bool(read_variant(folder)[1])


def baseline_runs(out_root, profile: str) -> pd.DataFrame:
    """The baselines experiment's runs (with records) for `profile`; empty when none ran."""
    return read_runs(Path(out_root) / "baselines" / profile)


def _column(runs: pd.DataFrame, classes: list[str], value: str = "auroc", digits: int = 4) -> list[str]:
    """Per class 'mean ± s.d.' over the runs, then the mean over the classes it has, with its interval
    (and '(k classes)' when it lacks some of `classes`)."""
    s = seed_summary(runs, value).set_index("normal_class") if len(runs) else pd.DataFrame()
    cells = [mean_sd(s.at[c, "mean"], s.at[c, "sd"], s.at[c, "n"], digits) if c in s.index else "" for c in classes]
    have = [c for c in classes if c in s.index]
    iv = t_interval(s.loc[have, "mean"]) if have else t_interval([])
    mean = with_interval(iv, digits)
    return cells + [mean + (f" ({len(have)} classes)" if mean and len(have) < len(classes) else "")]


def _seeds(runs: pd.DataFrame, classes: list[str]) -> list[str]:
    n = runs.groupby("normal_class").size() if len(runs) else pd.Series(dtype=int)
    return [str(int(n[c])) if c in n.index else "0" for c in classes] + [str(int(n.sum())) if len(n) else "0"]


def auroc_table(experiment: str, runs: pd.DataFrame, base_runs: pd.DataFrame) -> pd.DataFrame:
    """mnist / fmnist: one row per class and a mean row.  Columns: ours (mean ± s.d. over seeds),
    runs, the paper's column, ours - paper, every re-run baseline, the columns the paper copied."""
    cmp = paper.compare(runs if len(runs) else pd.DataFrame({"normal_class": [], "auroc": []}), experiment)
    per = cmp[cmp["class"] != "mean"]
    classes = [c for c in per["class"] if c in set(runs.get("normal_class", []))] or list(per["class"])
    if experiment == "fmnist":
        classes = sorted_classes(runs["normal_class"]) if len(runs) else classes
    df = pd.DataFrame({"class": [*classes, MEAN]})
    ours = f"ours ({weights_label(runs)})"
    df[ours] = _column(runs, classes)
    df["runs"] = _seeds(runs, classes)
    p = per.set_index("class")
    mrow = cmp[cmp["class"] == "mean"].iloc[0]
    df["paper Ours"] = [f"{p.at[c, 'paper']:.3f}" if pd.notna(p["paper"].get(c)) else "" for c in classes] + \
        [(f"{mrow.paper:.4f}" if experiment == "mnist" else f"{mrow.paper:.3f} (printed, 10 classes)")
         if pd.notna(mrow.paper) else ""]
    if experiment == "mnist":
        d = runs.assign(paper=runs["normal_class"].map(paper.TABLE_III[paper.OURS]))
        d = d.assign(auroc=d["auroc"] - d["paper"])
        df["ours - paper"] = _column(d, classes)
        df.loc[df["class"] != MEAN, "ours - paper"] = [
            f"{p.at[c, 'difference']:+.4f}" if pd.notna(p["difference"].get(c)) else "" for c in classes]
    for m in BASELINE_METHODS:
        b = base_runs[(base_runs.dataset == experiment) & (base_runs.method == m)] if len(base_runs) else []
        if len(b):
            df[f"{m} re-run"] = _column(b, classes)
    if experiment == "mnist":
        for m in ("OC SVM", "KDE", "DAE", "LSA"):
            col = paper.TABLE_III[m]
            df[f"paper {m}"] = [f"{col[c]:.3f}" if c in col.index else "" for c in classes] + \
                [f"{paper.paper_mean('mnist', m, classes):.4f}"]
        printed = {"class": "paper's Mean row as printed", "paper Ours": f"{paper.TABLE_III_MEAN[paper.OURS]:g}",
                   **{f"paper {m}": f"{paper.TABLE_III_MEAN[m]:g}" for m in ("OC SVM", "KDE", "DAE", "LSA")}}
        df = pd.concat([df, pd.DataFrame([printed])], ignore_index=True).fillna("")
    else:
        for m in ("GPND", "OCGAN"):
            df[f"paper {m}"] = [""] * len(classes) + [f"{paper.TABLE_II[m]:.3f} (printed)"]
    return df


def per_class_table(runs: pd.DataFrame, columns, digits: int = 3) -> pd.DataFrame:
    """One row per class (and a mean row) of several results.csv columns, each 'mean ± s.d.'."""
    classes = sorted_classes(runs["normal_class"])
    df = pd.DataFrame({"class": [*classes, MEAN]})
    for c in columns:
        if c in runs and runs[c].notna().any():
            df[c] = _column(runs, classes, c, digits)
    df["runs"] = _seeds(runs, classes)
    return df


def mvtec_table(res: pd.DataFrame) -> pd.DataFrame:
    """Table IV beside ours: one row per category we ran and the mean row of `paper.compare` (the same
    computation as comparison.csv: ours and the paper's over the categories we ran), its interval over
    categories beside ours.  Pixel AUROC and AUPRO where the runs measured them; 'no masks' where the runs'
    evaluation computed them and found no ground-truth mask (`no_masks`); else 'not measured' (evaluated
    before the kit computed them)."""
    cmp = paper.compare(res, "mvtec")
    cmp = cmp[(cmp.n_runs > 0) | (cmp.category == "mean")].reset_index(drop=True)
    have, mean = cmp.category != "mean", cmp.category == "mean"
    out = pd.DataFrame({"category": cmp["category"]})
    res = res.assign(normal_class=[paper.normalize_class(c, "mvtec") for c in res["normal_class"]])
    for col in ("ours_tpr", "ours_tnr"):
        iv = t_interval(cmp.loc[have, col])
        out[col] = [mean_sd(m, s, n, 3) for m, s, n in zip(cmp[col], cmp[f"{col}_sd"], cmp["n_runs"])]
        out.loc[mean, col] = with_interval(Interval(cmp.loc[mean, col].iloc[0], iv.lo, iv.hi, iv.n), 3)
    for c in ("paper_tpr", "paper_tnr", "tpr_difference", "tnr_difference"):
        out[c] = [f"{v:+.3f}" if "diff" in c and pd.notna(v) else f"{v:.3f}" if pd.notna(v) else "" for v in cmp[c]]
    out["n_runs"] = cmp["n_runs"].astype(int)
    for c in ("auroc", "heldout_tpr", "heldout_tnr"):
        if c in res:
            s = seed_summary(res, c).set_index("normal_class")
            cells = [mean_sd(s.at[k, "mean"], s.at[k, "sd"], s.at[k, "n"], 3) if k in s.index else ""
                     for k in cmp.category[have]]
            out[f"ours_{c}" if c == "auroc" else c] = cells + [with_interval(t_interval(s["mean"]), 3)]
    for c in PIXEL_METRICS:  # where is the defect: ours only; runs evaluated before these existed lack them
        vals = cmp["category"].map(res.groupby("normal_class")[c].mean() if c in res else {})
        n, k = int(have.sum()), int(vals[have].notna().sum())
        vals[mean] = vals[have].mean() if n and k == n else np.nan
        missing = "not measured" if k in (0, n) else f"{k} of {n} categories measured"
        maskless = set(no_masks(res))
        out[c] = [f"{v:.3f}" if pd.notna(v) else ("no masks" if cat in maskless else "not measured") if h else missing
                  for v, h, cat in zip(vals, have, cmp["category"])]
    out["category"] = [subset_label(c, res) for c in out["category"]]
    return out


def no_masks(runs: pd.DataFrame) -> list[str]:
    """The categories whose every run computed the pixel metrics (`pixel_evaluated`: metrics.csv has the
    column) and got none: their test split has no ground-truth masks."""
    if "pixel_evaluated" not in runs or "pixel_auroc" not in runs:
        return []
    cats = runs.assign(normal_class=[paper.normalize_class(c, "mvtec") for c in runs["normal_class"]])
    out = []
    for cat, r in cats.groupby("normal_class", sort=True):
        if (r["pixel_evaluated"] == True).all() and r["pixel_auroc"].isna().all():  # noqa: E712 (NaN is not False)
            out.append(cat)
    return out


def is_subset(category: str, runs: pd.DataFrame) -> bool:
    """Whether `category`'s runs scored fewer test images than MVTec AD has (the one subset rule)."""
    full = MVTEC_SIZES.get(paper.normalize_class(category, "mvtec"))
    got = runs.loc[runs["normal_class"] == category, "n_test"] if "n_test" in runs else pd.Series(dtype=float)
    return bool(full and len(got) and int(got.max()) < full[1])


def subset_label(category: str, runs: pd.DataFrame) -> str:
    """`category`, or `category (subset)` when `is_subset`."""
    return f"{category} (subset)" if is_subset(category, runs) else category


PAPER_MVTEC_NAMES = {"ours": paper.OURS, "ae-l2": "AE L2", "ae-ssim": "AE SSIM"}


def mvtec_methods_table(ours: pd.DataFrame, base: pd.DataFrame) -> pd.DataFrame:
    """Table IV method by method: per category, our network and the re-run plain autoencoders (L2,
    SSIM; the two baselines of the paper's Table IV that are reconstruction methods), each with its
    image AUROC, TPR/TNR at the paper-style threshold (Youden's J on test labels) and at the held-out
    threshold ('mean ± s.d.' over seeds), beside the paper's TPR/TNR for the same method."""
    runs = pd.concat([ours.assign(method="ours"), base[base["dataset"] == "mvtec"]], ignore_index=True) \
        if len(base) else ours.assign(method="ours")
    runs = runs.assign(category=[paper.normalize_class(c, "mvtec") for c in runs["normal_class"]])
    table = paper.paper_table("mvtec").set_index(["category", "method"])
    rows = []
    order = [c for c in paper.MVTEC_CATEGORIES if c in set(runs.category)]
    for cat in order + sorted(set(runs.category) - set(order)):
        for m in [m for m in PAPER_MVTEC_NAMES if m in set(runs.method)]:
            g = runs[(runs.category == cat) & (runs.method == m)]
            if not len(g):
                continue
            key = (cat, PAPER_MVTEC_NAMES[m])
            row = {"category": cat, "method": m, "runs": len(g)}
            for c in ("auroc", "youden_tpr", "youden_tnr", "heldout_tpr", "heldout_tnr"):
                row[c] = mean_sd(g[c].mean(), g[c].std(ddof=1), g[c].notna().sum(), 3) if c in g else ""
            for c in ("tpr", "tnr"):
                row[f"paper_{c}"] = f"{table.at[key, c]:.2f}" if key in table.index else ""
            rows.append(row)
    out = pd.DataFrame(rows)
    if len(out):
        out["category"] = [subset_label(c, ours.assign(normal_class=[paper.normalize_class(x, "mvtec")
                                                                     for x in ours["normal_class"]]))
                           for c in out["category"]]
    return out


def ablation_table(experiment: str, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset, class and setting (encoders or lambda): AUROC, SSIM of normal
    reconstructions and the two accuracies, each 'mean ± s.d.' over seeds; then, per dataset and
    setting, the mean over classes with its interval."""
    key = "encoders" if experiment == "ablation-encoders" else "lambda"
    cols = [c for c in ("auroc", "ssim_normal", "youden_accuracy", "heldout_accuracy") if c in runs]
    rows = []
    for (ds, k), g in runs.groupby(["dataset", key]):
        for c in sorted_classes(g["normal_class"]):
            r = g[g.normal_class == c]
            rows.append({"dataset": ds, "class": c, key: f"{k:g}", "runs": len(r),
                         **{col: mean_sd(r[col].mean(), r[col].std(ddof=1), r[col].notna().sum(), 3)
                            for col in cols}})
        rows.append({"dataset": ds, "class": MEAN, key: f"{k:g}", "runs": len(g),
                     **{col: with_interval(class_mean(g, col), 3) for col in cols}})
    return pd.DataFrame(rows)


def baselines_table(runs: pd.DataFrame, ours: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Rows dataset/class (and each dataset's mean row); columns: each re-run method's AUROC and our
    network's (`ours`: dataset -> its runs of the same regime), 'mean ± s.d.' over seeds."""
    frames = []
    for ds, g in runs.groupby("dataset"):
        mine = ours.get(ds, pd.DataFrame())
        classes = sorted_classes([*g["normal_class"], *mine.get("normal_class", [])])
        t = pd.DataFrame({"dataset": ds, "class": [*classes, MEAN]})
        methods = [m for m in BASELINE_METHODS if m in set(g["method"])] + \
            sorted(set(g["method"]) - set(BASELINE_METHODS))
        for m in methods:
            t[m] = _column(g[g.method == m], classes)
        if len(mine):
            t[f"ours ({weights_label(mine)}, lambda 1)"] = _column(mine, classes)
        frames.append(t)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def experiment_folders(out_root="results") -> list[tuple[str, str, Path]]:
    """(experiment, profile folder's name, its path) of every results folder with runs under `out_root`, in ORDER."""
    out_root = Path(out_root)
    found = []
    for exp in ORDER:
        for prof_dir in sorted((out_root / exp).glob("*")) if (out_root / exp).is_dir() else []:
            if prof_dir.is_dir() and (prof_dir / "runs").is_dir():
                found.append((exp, prof_dir.name, prof_dir))
    return found
