"""Figures: ROC curves, reconstructions with error maps, score histograms (matplotlib)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


def weights_note(weights: str) -> str:
    """The label every figure made without pretrained weights carries."""
    return "" if weights == "imagenet" else " [random weights, not ImageNet]"


def roc_axes(ax, labels, scores, label: str = "", **kw):
    """Draw one ROC curve (AUROC in the legend) on `ax`; return the AUROC.  labels: 1 = anomalous.
    Raises ValueError (sklearn) when only one label is present."""
    fpr, tpr, _ = roc_curve(labels, scores)
    auc = roc_auc_score(labels, scores)
    ax.plot(fpr, tpr, label=f"{label} (AUROC {auc:.3f})".strip(), **kw)
    ax.plot([0, 1], [0, 1], ls=":", c="grey", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize="small")
    return auc


def roc_figure(curves: dict[str, tuple], title: str = ""):
    """ROC curves of several runs in one figure: {label: (labels, scores)}, labels 1 = anomalous,
    higher score = more anomalous.  Returns the matplotlib Figure."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, (y, s) in curves.items():
        roc_axes(ax, y, s, name)
    ax.set_title(title, fontsize="medium")
    fig.tight_layout()
    return fig


def image_array(t):
    """A C x H x W tensor in [0, 1] -> an H x W x C array for imshow, or H x W when the image is
    grey (one channel, or three equal ones); values clamped to [0, 1]."""
    a = t.detach().cpu().float().clamp(0, 1).numpy()
    return a[0] if a.shape[0] == 1 or np.allclose(a[0], a[1]) and np.allclose(a[0], a[2]) else a.transpose(1, 2, 0)


def reconstructions_figure(x, x_hat, maps=None, titles=None, masks=None, title: str = ""):
    """Rows: input, reconstruction, [error map], [ground-truth mask]; one column per image.

    x, x_hat: B x 3 x S x S in [0, 1]; maps: B x S x S (one colour scale for all); masks:
    B x S x S in {0, 1}; titles: B strings.  Returns the matplotlib Figure."""
    n = len(x)
    rows = 2 + (maps is not None) + (masks is not None)
    fig, axes = plt.subplots(rows, n, figsize=(1.6 * n, 1.7 * rows), squeeze=False)
    vmax = float(maps.max()) if maps is not None else None
    for j in range(n):
        axes[0, j].imshow(image_array(x[j]), cmap="gray", vmin=0, vmax=1)
        axes[1, j].imshow(image_array(x_hat[j]), cmap="gray", vmin=0, vmax=1)
        r = 2
        if maps is not None:
            axes[r, j].imshow(maps[j].cpu().numpy(), cmap="inferno", vmin=0, vmax=vmax)
            r += 1
        if masks is not None:
            axes[r, j].imshow(masks[j].cpu().numpy(), cmap="gray", vmin=0, vmax=1)
        if titles is not None:
            axes[0, j].set_title(titles[j], fontsize="small")
    names = ["input", "reconstruction"] + ["error map"] * (maps is not None) + ["ground truth"] * (masks is not None)
    for i, name in enumerate(names):
        axes[i, 0].set_ylabel(name, fontsize="small")
    for ax in axes.flat:
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    return fig


def score_histogram(ax, labels, scores, threshold=None, bins: int = 50):
    """Histogram of normal and anomalous scores, with the threshold as a vertical line."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    edges = np.histogram_bin_edges(scores, bins=bins)
    ax.hist(scores[labels == 0], bins=edges, alpha=0.6, label="normal", density=True)
    ax.hist(scores[labels == 1], bins=edges, alpha=0.6, label="anomalous", density=True)
    if threshold is not None:
        ax.axvline(threshold, c="k", ls="--", label=f"threshold {threshold:.4g}")
    ax.set(xlabel="anomaly score", ylabel="density")
    ax.legend(fontsize="small")
    return ax


def pick_examples(test_scores, n: int = 8, score: str = "loss") -> list[int]:
    """Row positions (at most n, sorted) of a few test images to show: the lowest and highest
    scored normals and anomalies of a scores frame with `label` and `score` columns."""
    s = test_scores[score].to_numpy()
    y = test_scores["label"].to_numpy()
    k = max(1, n // 4)
    picks = []
    for lab in (0, 1):
        idx = np.flatnonzero(y == lab)
        order = idx[np.argsort(s[idx])]
        picks += list(order[:k]) + list(order[-k:])
    return sorted(set(int(i) for i in picks))[:n]
