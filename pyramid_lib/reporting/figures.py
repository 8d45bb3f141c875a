"""The figures of the results pages (PNG, matplotlib): AUROC per class, ROC overlays (from the
runs' scores.csv), MVTec TPR/TNR, the encoder and lambda ablations, baselines.
Reads only; trains and scores nothing."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..files import atomic_save_figure
from ..plots import roc_axes
from .tables import (
    TARGETS,
    TITLES,
    auroc_table,
    baseline_results,
    baselines_table,
    mvtec_table,
)


def _plt():
    """pyplot, on the non-interactive Agg backend when it can still be chosen (pages are files)."""
    matplotlib.use("Agg", force=False)
    return plt


def _save(fig, path):
    atomic_save_figure(path, fig, dpi=110, bbox_inches="tight")
    _plt().close(fig)


def _roc_overlay(base, res, path, title):

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    for run in res["run"] if "run" in res else []:
        p = Path(base) / "runs" / run / "scores.csv"
        if not p.is_file():
            continue
        s = pd.read_csv(p, dtype={"class": str})
        s = s[s.split == "test"]
        col = "loss" if "loss" in s else "score"
        roc_axes(ax, s.label, s[col], run, lw=1)
    ax.set_title(title, fontsize="medium")
    _save(fig, path)


FIGURES = {"mnist": ("auroc_by_class.png", "roc_curves.png"), "fmnist": ("auroc_by_class.png", "roc_curves.png"),
           "mvtec": ("tpr_tnr.png", "roc_curves.png"), "ablation-encoders": ("encoders.png",),
           "ablation-lambda": ("lambda.png",), "baselines": ("baselines.png",)}


def figures(experiment: str, base: Path, res: pd.DataFrame, out_root, profile: str) -> list[str]:
    """Write the experiment's figures into `base`; return their file names."""
    plt = _plt()
    out = []
    if not len(res):
        return out
    note = " [random weights]" if (res.get("weights", pd.Series(["random"])) == "random").any() else ""
    if experiment in ("mnist", "fmnist"):
        t = auroc_table(experiment, res, baseline_results(out_root, profile))
        t = t[t["class"] != "mean"]
        cols = [c for c in t.columns if c == "ours (random weights)" or c == "paper Ours" or c.endswith("re-run")]
        fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(t) + 2), 4))
        x = np.arange(len(t))
        w = 0.8 / max(1, len(cols))
        for i, c in enumerate(cols):
            ax.bar(x + i * w - 0.4 + w / 2, t[c].astype(float), w, label=c)
        ax.axhline(TARGETS[experiment][0], ls="--", c="k", lw=0.8, label=f"paper's mean {TARGETS[experiment][0]}")
        ax.set_xticks(x, t["class"])
        ax.set(ylim=(0.3, 1.0), ylabel="AUROC", xlabel="normal class", title=f"{TITLES[experiment]}{note}")
        ax.legend(fontsize="x-small", ncol=2, loc="lower right")
        _save(fig, base / "auroc_by_class.png")
        out.append("auroc_by_class.png")
        _roc_overlay(base, res, base / "roc_curves.png", f"ROC per normal class, {profile} profile{note}")
        out.append("roc_curves.png")
    elif experiment == "mvtec":
        t = mvtec_table(res)
        t = t[t.category != "mean"]
        fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(t) + 2), 4))
        x = np.arange(len(t))
        for i, (c, lab) in enumerate([("ours_tpr", "ours TPR (Youden)"), ("ours_tnr", "ours TNR (Youden)"),
                                      ("paper_tpr", "paper TPR"), ("paper_tnr", "paper TNR")]):
            ax.bar(x + i * 0.2 - 0.3, t[c].astype(float), 0.2, label=lab)
        ax.set_xticks(x, t["category"])
        ax.set(ylim=(0, 1.05), title=f"MVTec AD: TPR/TNR at the test-set (Youden) threshold{note}")
        ax.legend(fontsize="x-small")
        _save(fig, base / "tpr_tnr.png")
        out.append("tpr_tnr.png")
        _roc_overlay(base, res, base / "roc_curves.png", f"ROC per category{note}")
        out.append("roc_curves.png")
    elif experiment == "ablation-encoders":
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
        for (ds, c), g in res.groupby(["dataset", "normal_class"]):
            g = g.sort_values("encoders")
            for ax, col in zip(axes, ("ssim_normal", "youden_accuracy", "auroc")):
                ax.plot(g.encoders, g[col], marker="o", label=f"{ds} {c}")
        for ax, lab in zip(axes, ("mean SSIM of normal reconstructions (Fig. 3)",
                                  "accuracy at the Youden threshold (Fig. 4)", "AUROC")):
            ax.set(xlabel="encoders", xticks=[1, 2, 4, 6], title=lab)
            ax.title.set_fontsize("small")
            ax.legend(fontsize="x-small")
        fig.suptitle(f"Encoders ablation{note}", fontsize="medium")
        _save(fig, base / "encoders.png")
        out.append("encoders.png")
    elif experiment == "ablation-lambda":
        g = res.pivot_table(index=["dataset", "normal_class"], columns="lambda", values="auroc")
        fig, ax = plt.subplots(figsize=(6, 4))
        x = np.arange(len(g))
        for i, lambda_ in enumerate(g.columns):
            label = f"lambda = {lambda_:g}" + (" (MSE only)" if lambda_ == 0 else "")
            ax.bar(x + i * 0.35 - 0.175, g[lambda_], 0.35, label=label)
        ax.set_xticks(x, [f"{d} {c}" for d, c in g.index])
        ax.set(ylim=(0.3, 1.0), ylabel="AUROC", title=f"Perceptual loss ablation (Fig. 5){note}")
        ax.legend(fontsize="small")
        _save(fig, base / "lambda.png")
        out.append("lambda.png")
    elif experiment == "baselines":
        t = baselines_table(res, out_root, profile)
        rows = t[t.normal_class.astype(str).str.startswith("mean")]
        # per dataset: the mean over the classes every column has where columns differ, else the plain mean
        means = rows.groupby("dataset").tail(1).set_index("dataset").drop(columns="normal_class")
        fig, ax = plt.subplots(figsize=(7, 4))
        x = np.arange(len(means))
        w = 0.8 / max(1, len(means.columns))
        for i, m in enumerate(means.columns):
            ax.bar(x + i * w - 0.4 + w / 2, means[m].astype(float), w, label=m)
        ax.set_xticks(x, means.index)
        ax.set(ylim=(0.3, 1.0), ylabel="mean AUROC (last mean row of the table)",
               title=f"Re-run baselines, {profile} profile")
        ax.legend(fontsize="x-small")
        _save(fig, base / "baselines.png")
        out.append("baselines.png")
    return out
