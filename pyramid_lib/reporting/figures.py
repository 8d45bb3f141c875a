"""The figures of the results pages (PNG, matplotlib): AUROC per class, ROC overlays (from the
runs' scores.csv), MVTec TPR/TNR, the encoder and lambda ablations, baselines.  Bars are means
over seeds with their s.d. as error bars (none for one seed); the baselines' bars are means over
classes with their 95% t-interval over classes.  Titles say which weights the runs used, from
their records.  Reads only; trains and scores nothing."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import paper
from ..files import atomic_save_figure
from ..plots import roc_axes
from .records import read_runs, sorted_classes, weights_label
from .regimes import first_regime, in_regime, regime_difference, regimes
from .stats import class_mean, seed_summary
from .tables import BASELINE_METHODS, TITLES, base_profile, baseline_runs


def _plt():
    """pyplot, on the non-interactive Agg backend when it can still be chosen (pages are files)."""
    matplotlib.use("Agg", force=False)
    return plt


def _save(fig, path):
    atomic_save_figure(path, fig, dpi=110, bbox_inches="tight")
    _plt().close(fig)


def _roc_overlay(base, res, path, title):
    fig, ax = _plt().subplots(figsize=(5.5, 5.5))
    for run in res["run"] if "run" in res else []:
        p = Path(base) / "runs" / run / "scores.csv"
        if not p.is_file():
            continue
        s = pd.read_csv(p, dtype={"class": str})
        s = s[s.split == "test"]
        col = "loss" if "loss" in s else "score"
        roc_axes(ax, s.label, s[col], run, lw=1)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="xx-small", ncol=2 if len(res) > 12 else 1)
    ax.set_title(title, fontsize="medium")
    _save(fig, path)


def _bars(ax, groups: list[tuple[str, pd.DataFrame]], classes: list[str], value: str = "auroc"):
    """One bar per class for each (label, runs): mean over seeds, s.d. error bars where two or more."""
    x, w = np.arange(len(classes)), 0.8 / max(1, len(groups))
    for i, (label, runs) in enumerate(groups):
        s = seed_summary(runs, value).set_index("normal_class").reindex(classes)
        ax.bar(x + i * w - 0.4 + w / 2, s["mean"], w, yerr=s["sd"].where(s["n"] >= 2), capsize=2, label=label)
    ax.set_xticks(x, classes)


def class_bar_groups(experiment: str, ours: pd.DataFrame, out_root, profile: str) -> list[tuple[str, pd.DataFrame]]:
    """The bars of auroc_by_class.png, as (label, runs): our runs (one training regime), then each
    re-run baseline of results/baselines/<profile> on the same dataset and in the same regime
    (`regimes.in_regime`: OC-SVM and KDE, fitted once, where their data settings are ours); a
    baseline with no such runs has no bar."""
    reg = first_regime(ours)
    b = baseline_runs(out_root, base_profile(Path(out_root) / experiment / profile))
    b = in_regime(b[b["dataset"] == experiment], reg) if len(b) else b
    groups = [("ours", ours)] + [(f"{m} re-run", b[b["method"] == m]) for m in BASELINE_METHODS if len(b)]
    return [g for g in groups if len(g[1])]


FIGURES = {"mnist": ("auroc_by_class.png", "roc_curves.png"), "fmnist": ("auroc_by_class.png", "roc_curves.png"),
           "mvtec": ("tpr_tnr.png", "roc_curves.png"), "ablation-encoders": ("encoders.png",),
           "ablation-lambda": ("lambda.png",), "baselines": ("baselines.png",)}


def figures(experiment: str, base: Path, res: pd.DataFrame, out_root, profile: str) -> list[str]:
    """Write the experiment's figures into `base` (`res`: its runs, records.read_runs); return their names."""
    plt = _plt()
    if not len(res):
        return []
    regs = regimes(res)
    if len(regs) > 1:  # one training regime per figure (the one with most runs), never pooled as seeds
        res = in_regime(res, regs[0])
    note = f" [{weights_label(res[res['method'].isin(['ours', 'ours-lambda0'])])}]" if "method" in res else ""
    if len(regs) > 1:
        note += f" [{regime_difference(regs)[regs[0]]}]"
    if experiment in ("mnist", "fmnist"):
        ours = res[res["method"] == "ours"]
        classes = sorted_classes(ours["normal_class"])
        groups = class_bar_groups(experiment, ours, out_root, profile)
        fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(classes) + 2), 4))
        _bars(ax, groups, classes)
        if experiment == "mnist":
            ax.scatter(np.arange(len(classes)), paper.TABLE_III[paper.OURS].reindex(classes), marker="_", s=200,
                       c="k", zorder=3, label="paper Ours")
        else:
            ax.axhline(paper.TABLE_II[paper.OURS], ls="--", c="k", lw=0.8, label="paper's printed mean")
        ax.set(ylim=(0.3, 1.0), ylabel="AUROC (mean over seeds, s.d. bars)", xlabel="normal class",
               title=f"{TITLES[experiment]}{note}")
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1))
        _save(fig, base / "auroc_by_class.png")
        _roc_overlay(base, ours, base / "roc_curves.png", f"ROC of every run, {profile} profile{note}")
    elif experiment == "mvtec":
        cmp = paper.compare(res, "mvtec")
        t = cmp[(cmp.n_runs > 0) & (cmp.category != "mean")]
        fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(t) + 2), 4))
        x = np.arange(len(t))
        for i, (c, lab) in enumerate([("ours_tpr", "ours TPR (Youden)"), ("ours_tnr", "ours TNR (Youden)"),
                                      ("paper_tpr", "paper TPR"), ("paper_tnr", "paper TNR")]):
            err = t[f"{c}_sd"] if f"{c}_sd" in t else None
            ax.bar(x + i * 0.2 - 0.3, t[c].astype(float), 0.2, yerr=err, capsize=2, label=lab)
        ax.set_xticks(x, t["category"])
        ax.set(ylim=(0, 1.05), title=f"MVTec AD: TPR/TNR at the test-set (Youden) threshold{note}")
        ax.legend(fontsize="x-small")
        _save(fig, base / "tpr_tnr.png")
        _roc_overlay(base, res, base / "roc_curves.png", f"ROC of every run{note}")
    elif experiment == "ablation-encoders":
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
        for (ds, c), g in res.groupby(["dataset", "normal_class"]):
            for ax, col in zip(axes, ("ssim_normal", "youden_accuracy", "auroc")):
                s = seed_summary(g, col, by=("encoders",))
                ax.errorbar(s["encoders"], s["mean"], yerr=s["sd"].where(s["n"] >= 2), marker="o", capsize=2,
                            label=f"{ds} {c}")
        for ax, lab in zip(axes, ("mean SSIM of normal reconstructions (Fig. 3)",
                                  "accuracy at the Youden threshold (Fig. 4)", "AUROC")):
            ax.set(xlabel="encoders", xticks=[1, 2, 4, 6], title=lab)
            ax.title.set_fontsize("small")
            ax.legend(fontsize="x-small")
        fig.suptitle(f"Encoders ablation (mean over seeds, s.d. bars){note}", fontsize="medium")
        _save(fig, base / "encoders.png")
    elif experiment == "ablation-lambda":
        keys = sorted_classes((res["dataset"] + " " + res["normal_class"]).unique())
        r = res.assign(normal_class=res["dataset"] + " " + res["normal_class"])
        fig, ax = plt.subplots(figsize=(6, 4))
        _bars(ax, [(f"lambda = {lam:g}" + (" (MSE only)" if lam == 0 else ""), g)
                   for lam, g in r.groupby("lambda")], keys)
        ax.set(ylim=(0.3, 1.0), ylabel="AUROC (mean over seeds, s.d. bars)",
               title=f"Perceptual loss ablation (Fig. 5){note}")
        ax.legend(fontsize="small")
        _save(fig, base / "lambda.png")
    elif experiment == "baselines":
        datasets = sorted(set(res["dataset"]))
        methods = [m for m in BASELINE_METHODS if m in set(res["method"])]
        reg = first_regime(res, trained_only=True)
        ours = pd.concat([in_regime(read_runs(Path(out_root) / d / profile), reg) for d in datasets])
        if len(ours) and "method" in ours:
            res = pd.concat([res, ours[ours["method"] == "ours"]])
            methods.append("ours")
        fig, ax = plt.subplots(figsize=(7, 4))
        x, w = np.arange(len(datasets)), 0.8 / max(1, len(methods))
        for i, m in enumerate(methods):
            ivs = [class_mean(res[(res.dataset == d) & (res.method == m)]) for d in datasets]
            mean = np.array([iv.mean for iv in ivs])
            err = np.array([[iv.mean - iv.lo, iv.hi - iv.mean] for iv in ivs]).T
            ax.bar(x + i * w - 0.4 + w / 2, mean, w, yerr=err, capsize=2, label=m)
        ax.set_xticks(x, datasets)
        ax.set(ylim=(0.3, 1.0), ylabel="mean AUROC over classes (95% CI)", title=f"Re-run baselines, {profile} profile")
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1))
        _save(fig, base / "baselines.png")
    return [f for f in FIGURES.get(experiment, ()) if (base / f).is_file()]
