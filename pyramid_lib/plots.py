"""Figures: ROC curves, reconstructions with error maps, score histograms (matplotlib)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from .metrics import SCORE_NAMES

# Figures for a projector (`pyramid-ad slides`, `reporting/slides.py`): `with plt.rc_context(SLIDE_STYLE):`
# around any figure of this module, saved at SLIDE_DPI; sizes in points, so a figure of the same inches
# carries text about 1.6 times matplotlib's default (10 pt).
SLIDE_DPI = 200
SLIDE_STYLE = {"font.size": 16, "axes.titlesize": 18, "axes.labelsize": 16, "xtick.labelsize": 14,
               "ytick.labelsize": 14, "legend.fontsize": 14, "legend.title_fontsize": 14, "figure.titlesize": 20,
               "lines.linewidth": 2.5, "axes.linewidth": 1.2, "savefig.dpi": SLIDE_DPI}


def weights_note(weights: str, precision: str | None = None) -> str:
    """The label every figure title carries: which backbone and perceptual weights made it
    (" [ImageNet weights]", or " [random weights, not ImageNet]" for anything else) and, for a
    run, the arithmetic it trained in (" [random weights, not ImageNet; trained in fp32]")."""
    what = "ImageNet weights" if weights == "imagenet" else "random weights, not ImageNet"
    return f" [{what}; trained in {precision}]" if precision else f" [{what}]"


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


def reconstructions_figure(x, x_hat, maps=None, titles=None, masks=None, title: str = "",
                           map_label: str = "error map", vmax: float | None = None):
    """Rows: input, reconstruction, [error map], [ground-truth mask]; one column per image.

    x, x_hat: B x 3 x S x S in [0, 1]; maps: B x S x S, drawn on one colour scale, 0 to `vmax`
    (default: the largest value of all maps; a smaller one, e.g. a 99th percentile, draws the
    pixels above it in the top colour and the bar says so), with one colour bar labelled
    `map_label`; masks: B x S x S in {0, 1}; titles: B strings (column headers).  Returns the
    matplotlib Figure (constrained layout)."""
    n = len(x)
    rows = 2 + (maps is not None) + (masks is not None)
    fig, axes = plt.subplots(rows, n, figsize=(1.55 * n + 1.3, 1.6 * rows + 0.9), squeeze=False,
                             layout="constrained")
    clipped = maps is not None and vmax is not None and float(maps.max()) > vmax
    if maps is not None:
        vmax = max(float(maps.max()) if vmax is None else float(vmax), 1e-12)
    im = None
    for j in range(n):
        axes[0, j].imshow(image_array(x[j]), cmap="gray", vmin=0, vmax=1)
        axes[1, j].imshow(image_array(x_hat[j]), cmap="gray", vmin=0, vmax=1)
        r = 2
        if maps is not None:
            im = axes[r, j].imshow(maps[j].cpu().numpy(), cmap="inferno", vmin=0, vmax=vmax)
            r += 1
        if masks is not None:
            axes[r, j].imshow(masks[j].cpu().numpy(), cmap="gray", vmin=0, vmax=1)
        if titles is not None:
            axes[0, j].set_title(titles[j], fontsize="x-small")
    names = ["input", "reconstruction"] + ["error map"] * (maps is not None) + ["ground truth"] * (masks is not None)
    for i, name in enumerate(names):
        axes[i, 0].set_ylabel(name, fontsize="small")
    for ax in axes.flat:
        ax.set_xticks([]), ax.set_yticks([])
    if im is not None:  # one scale for every map: one bar, beside the map row
        bar = fig.colorbar(im, ax=list(axes[2, :]), fraction=0.05, pad=0.02, aspect=8,
                           extend="max" if clipped else "neither")
        bar.set_label(map_label + (f"\n(above {vmax:.3g}: top colour)" if clipped else ""), fontsize="small")
        bar.ax.tick_params(labelsize="x-small")
    fig.suptitle(title, fontsize="medium")
    return fig


def score_histogram(ax, labels, scores, threshold=None, bins: int = 50, score: str = "loss"):
    """Histogram of normal and anomalous scores, with the threshold(s) as vertical lines.

    `threshold`: a value (labelled "threshold"), or {label: value} for several (NaN ones left
    out); `score`: the score's name, for the axis label (`score_label`).  The legend sits outside
    the axes, to their right, so that it covers no bar."""
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=float)
    edges = np.histogram_bin_edges(scores, bins=bins)
    ax.hist(scores[labels == 0], bins=edges, alpha=0.6, label="normal", density=True)
    ax.hist(scores[labels == 1], bins=edges, alpha=0.6, label="anomalous", density=True)
    lines = {} if threshold is None else threshold if isinstance(threshold, dict) else {"threshold": threshold}
    styles = [("k", "--"), ("tab:green", ":"), ("tab:red", "-.")]
    for (name, t), (c, ls) in zip(lines.items(), styles):
        if t is not None and np.isfinite(t):
            ax.axvline(t, c=c, ls=ls, lw=1.5, label=f"{name} {t:.4g}")
    ax.set(xlabel=f"anomaly score: {score_label(score)}", ylabel="density")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    return ax


# Which end of each label's scores `pick_labelled` shows, and how a column says so.
EXAMPLE_ROLES = {(0, "low"): "best-scored normal", (0, "high"): "worst-scored normal",
                 (1, "low"): "worst-scored anomaly", (1, "high"): "best-scored anomaly"}


def pick_labelled(test_scores, n: int = 8, score: str = "loss") -> list[tuple[int, str]]:
    """(row position, role) of at most n test images to show, in this order: the best-scored
    normals (lowest score), the worst-scored normals (highest: the nearest false alarms), the
    worst-scored anomalies (lowest: the nearest misses), the best-scored anomalies (highest);
    n // 4 of each, each group by ascending score, no row twice.  `test_scores`: a frame with
    `label` (1 = anomalous) and `score` columns.  Roles: EXAMPLE_ROLES."""
    s = test_scores[score].to_numpy()
    y = test_scores["label"].to_numpy()
    k = max(1, n // 4)
    picks: list[tuple[int, str]] = []
    for lab in (0, 1):
        idx = np.flatnonzero(y == lab)
        order = idx[np.argsort(s[idx], kind="stable")]
        for rows, end in ((order[:k], "low"), (order[max(k, len(order) - k):], "high")):
            picks += [(int(i), EXAMPLE_ROLES[lab, end]) for i in rows]
    return picks[:n]


def history_figure(history, title: str = ""):
    """Training loss per epoch (log scale): the total (Eq. 1) and its two terms.  `history`: a frame
    with `epoch` and some of `loss`, `mse`, `perceptual` (RunDir.history).  Returns the Figure."""
    fig, ax = plt.subplots(figsize=(6.2, 3.2), layout="constrained")
    names = {"loss": "loss = MSE + lambda perceptual", "mse": "MSE", "perceptual": "perceptual"}
    for col, name in names.items():
        if col in history:
            ax.plot(history["epoch"], history[col], marker="o", label=name)
    ax.set(xlabel="epoch", ylabel="mean training loss (log scale)", yscale="log")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    ax.set_title(title, fontsize="small")
    return fig


def scores_figure(test, thresholds: dict, note: str = "", scores=("loss", "mse", "perceptual", "ssim")):
    """Left: histogram of the normal and anomalous test `loss` scores with `thresholds`
    ({label: value}).  Right: the ROC curve of every score in `scores` (the paper's is `loss`), each
    named by `score_label` ("ssim" -> "1 - SSIM").  `test`: a scores frame (label, every score).
    Returns the Figure."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4), layout="constrained", width_ratios=(1.1, 1))
    score_histogram(a, test["label"], test["loss"], thresholds)
    a.set_title("test images: the paper's score", fontsize="small")
    for name in scores:
        roc_axes(b, test["label"], test[name], score_label(name), lw=2.0 if name == "loss" else 1.0)
    b.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)  # off the curves
    b.set_title(f"ROC of every score{note}", fontsize="small")
    return fig


# How figures name the per-image scores of model/anomaly_map.py (the kit's `ssim` score is 1 - SSIM).
SCORE_LABELS = {"loss": "loss (MSE + lambda perceptual)", "mse": "MSE", "perceptual": "perceptual", "ssim": "1 - SSIM"}


def score_label(name: str) -> str:
    """The name a figure gives score `name` ("ssim" -> "1 - SSIM"); unknown names unchanged."""
    return SCORE_LABELS.get(name, name)


def drawable(text: str) -> str:
    """`text` with each character that the figures' font has no glyph for (CJK in a file name, ...)
    replaced by "?", so that matplotlib draws it without a missing-glyph warning."""
    from matplotlib.font_manager import FontProperties, findfont, get_font

    chars = set(get_font(findfont(FontProperties())).get_charmap())
    return "".join(c if c == "\n" or ord(c) in chars else "?" for c in text)


def overlay_axes(ax, x, amap, vmax: float, mask=None, cmap: str = "inferno", alpha: float = 0.5):
    """Draw image x (C x S x S in [0, 1]) with its anomaly map (S x S, colour scale 0..vmax) on top, at
    `alpha`, and the outline of a ground-truth mask (S x S, 0/1) in cyan when it marks any pixel.
    Returns the map's colour normaliser and colour map, for `map_colorbar`."""
    ax.imshow(image_array(x), cmap="gray", vmin=0, vmax=1)
    im = ax.imshow(np.asarray(amap, dtype=float), cmap=cmap, vmin=0, vmax=vmax, alpha=alpha)
    if mask is not None and np.asarray(mask).any():
        ax.contour(np.asarray(mask, dtype=float), levels=[0.5], colors="cyan", linewidths=0.8)
    ax.set_xticks([]), ax.set_yticks([])
    return im.norm, im.get_cmap()


def map_colorbar(fig, norm, cmap, ax, label: str):
    """A colour bar of the anomaly map's scale (drawn opaque, not at the overlay's alpha)."""
    from matplotlib.cm import ScalarMappable

    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, fraction=0.046, pad=0.04)
    bar.set_label(label, fontsize="small")
    return bar


def _mask_legend(ax):
    from matplotlib.lines import Line2D

    ax.legend(handles=[Line2D([], [], color="cyan", lw=1.2, label="ground-truth mask")], loc="lower left",
              fontsize="x-small", framealpha=0.7)


def prediction_figure(x, x_hat, amap, vmax: float, mask=None, title: str = "", map_label: str = "anomaly map"):
    """One scored image: input, reconstruction, the anomaly map over the input (colour bar 0..vmax,
    shared by every image of a call), and the ground-truth mask (outline on the map, own panel) when
    given.  x, x_hat: C x S x S in [0, 1]; amap: S x S; mask: S x S in {0, 1} or None.  Returns the
    Figure (constrained layout; the caller closes it)."""
    n = 3 + (mask is not None)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n + 0.6, 3.2), layout="constrained")
    axes[0].imshow(image_array(x), cmap="gray", vmin=0, vmax=1)
    axes[0].set_title("input", fontsize="small")
    axes[1].imshow(image_array(x_hat), cmap="gray", vmin=0, vmax=1)
    axes[1].set_title("reconstruction", fontsize="small")
    norm, cmap = overlay_axes(axes[2], x, amap, vmax, mask)
    axes[2].set_title(f"{map_label} over the input", fontsize="small")
    map_colorbar(fig, norm, cmap, axes[2], map_label)
    if mask is not None:
        if np.asarray(mask).any():
            _mask_legend(axes[2])
        axes[3].imshow(np.asarray(mask, dtype=float), cmap="gray", vmin=0, vmax=1)
        axes[3].set_title("ground-truth mask", fontsize="small")
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(drawable(title), fontsize="small")
    return fig


def top_sheet(xs, amaps, vmax: float, titles, masks=None, title: str = "", map_label: str = "anomaly map",
              cols: int = 4):
    """The highest-scored images on one sheet: for each, the input beside its anomaly map over the
    input (one colour bar, 0..vmax), `cols` images a row.  xs: N x C x S x S in [0, 1]; amaps:
    N x S x S; titles: N strings; masks: N masks (S x S, 0/1) or None each, or None.  Returns the
    Figure (the caller closes it)."""
    n = len(xs)
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, 2 * cols, figsize=(2.9 * cols + 1.0, 1.75 * rows + 0.6), squeeze=False,
                             layout="constrained")
    norm = cmap = None
    for i in range(rows * cols):
        a, b = axes[i // cols, 2 * (i % cols)], axes[i // cols, 2 * (i % cols) + 1]
        if i >= n:
            a.axis("off"), b.axis("off")
            continue
        a.imshow(image_array(xs[i]), cmap="gray", vmin=0, vmax=1)
        a.set_xticks([]), a.set_yticks([])
        a.set_title(drawable(titles[i]), fontsize="x-small", loc="left")
        norm, cmap = overlay_axes(b, xs[i], amaps[i], vmax, None if masks is None else masks[i])
    map_colorbar(fig, norm, cmap, axes, map_label)
    fig.suptitle(drawable(title), fontsize="small")
    return fig


# The notebooks' figures of a run (`tutorial.RunResult`: its test scores, metrics, history, model)


def show_images(images, idx, titles=None, title: str = "", masks: bool = False):
    """A row of images `idx` of an ImageSet (and, with masks=True, their ground-truth masks below);
    returns the matplotlib Figure."""
    idx = list(idx)
    rows = 2 if masks and images.masks is not None else 1
    fig, axes = plt.subplots(rows, len(idx), figsize=(1.5 * len(idx), 1.6 * rows), squeeze=False)
    x = images.batch(torch.tensor(idx))
    for j, i in enumerate(idx):
        a = x[j].permute(1, 2, 0).numpy()
        axes[0, j].imshow(a[..., 0] if images.images.shape[1] == 1 else a, cmap="gray", vmin=0, vmax=1)
        axes[0, j].set_title(titles[j] if titles else images.classes[i], fontsize="small")
        if rows == 2:
            axes[1, j].imshow(images.masks[i].numpy(), cmap="gray", vmin=0, vmax=1)
    for ax in axes.flat:
        ax.set_axis_off()
    fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    return fig


def plot_history(result):
    """Training loss per epoch (log scale) of a `tutorial.RunResult`: the total (Eq. 1) and its two
    terms (`history_figure`)."""
    return history_figure(result.history, f"training {result.cfg.dataset}:{result.cfg.normal_class}{result.note}")


def plot_scores(result):
    """Of a `tutorial.RunResult`: left, histogram of the test scores (`loss`) with both thresholds
    (Youden, chosen on the test labels; held-out normals, no test label).  Right: the ROC of every
    score, `ssim` shown as "1 - SSIM" (`scores_figure`)."""
    m = result.metrics
    return scores_figure(result.test, {"Youden (test labels)": m.youden_threshold,
                                       "held-out normals": m.heldout_threshold}, result.note, SCORE_NAMES)


def plot_reconstructions(result, data, rows=None, n: int = 8, score: str = "loss", vmax: float | None = None):
    """Of a `tutorial.RunResult` on its data (`tutorial.load_data`): input, reconstruction, error
    map of `score` (one colour scale, one colour bar) and mask (where the data has masks) of rows
    `rows` of result.test; default: `pick_labelled`'s best- and worst-scored normals and
    anomalies, each column saying which.  `vmax`: the top of the maps' colour scale
    (`reconstructions_figure`).  One `result.predict` call; `data` must hold the scored test
    images (looked up by name)."""
    t = result.test
    picks = pick_labelled(t, n, score) if rows is None else \
        [(r, "anomaly" if t.label.iloc[r] else "normal") for r in rows]
    index = {name: i for i, name in enumerate(data.test.names)}
    idx = torch.tensor([index[t["name"].iloc[r]] for r, _ in picks])
    x = data.test.batch(idx, next(result.model.parameters()).device)
    p = result.predict(x)
    masks = None if data.test.masks is None else data.test.masks[idx]
    titles = ["{}\n{}: {:.3g}".format(role.replace(" ", "\n", 1), t["class"].iloc[r], t[score].iloc[r])
              for r, role in picks]
    short = score_label(score).split(" (")[0]
    what = " (\"best\": lowest for a normal, highest for an anomaly)" if rows is None else ""
    return reconstructions_figure(x.cpu(), p.reconstruction.cpu(), p.maps[score].cpu(), titles, masks,
                                  title=f"each column: role, class and {short}{what}{result.note}",
                                  map_label=f"{short} map", vmax=vmax)


def auroc_barplot(comparison, title: str = "", class_names=None):
    """Per-class AUROC of a `paper.compare` frame (a DataFrame), ours beside the paper's, classes in its order (the
    paper's), the best and worst of ours labelled, the legend beside the axes; error bars where a
    class has several runs (its `ours_sd`: the s.d. over seeds).  `class_names`: names by class
    index (e.g. `data.FMNIST_CLASSES`), written under the indices on the x axis."""
    c = comparison[comparison["class"] != "mean"].reset_index(drop=True)
    x, ours = np.arange(len(c)), c["ours"].to_numpy(float)
    sd = c["ours_sd"].to_numpy(float) if "ours_sd" in c else None
    sd = sd if sd is not None and np.isfinite(sd).any() else None
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(c) + 3.5), 3.4))
    off = 0.2 if c["paper"].notna().any() else 0.0  # ours beside the paper's bar, or alone
    ax.bar(x - off, ours, 0.4, yerr=sd, capsize=3, color="tab:blue",
           label="ours" + " (mean, s.d. over seeds)" * (sd is not None))
    if off:
        ax.bar(x + off, c["paper"], 0.4, color="tab:grey", label="paper")
    mean = comparison.loc[comparison["class"] == "mean", "paper"].dropna()
    if len(mean) and c["paper"].isna().all():  # Table II: the paper gives a mean only
        ax.axhline(mean.iloc[0], c="tab:grey", ls="--", label=f"paper, mean {mean.iloc[0]:.3f}")
    ax.axhline(0.5, c="k", ls=":", lw=0.8, label="chance (0.5)")
    if np.isfinite(ours).any():
        for i, word in {int(np.nanargmin(ours)): "worst", int(np.nanargmax(ours)): "best"}.items():
            ax.annotate(f"{word}\n{ours[i]:.3f}", (x[i] - off, ours[i]), xytext=(0, 3), textcoords="offset points",
                        ha="center", va="bottom", fontsize="x-small")
    ticks = [f"{k}\n{class_names[int(k)]}" if class_names is not None and str(k).isdigit() else str(k)
             for k in c["class"]]
    ax.set_xticks(x, ticks, fontsize="small" if class_names is not None else None)
    ax.set(ylim=(0, 1.18), yticks=np.linspace(0, 1, 6), xlabel="normal class", ylabel="AUROC")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    ax.set_title(title, fontsize="medium")
    fig.tight_layout()
    return fig
