"""Slide-ready figures for a lecture (`pyramid-ad slides OUT`): the architecture diagram drawn from
the network's real layer shapes, and the key figures of the committed results, in `plots.SLIDE_STYLE`
(large fonts) at `plots.SLIDE_DPI` (200 dpi).

* `architecture_figure(model)`: one box per block of `introspect.shape_trace(model)`, labelled with
  the block's name and its output shape C x H x W, in data-flow order (backbone, the four pyramid
  branches with their encoders and the shared up-sampler, the concatenation, the decoder; paper
  Fig. 2, Tables V and VI).  Nothing in it is typed by hand: another input size or number of
  encoders draws another diagram.
* `write_slides(out)`: that diagram at 28 x 28 and 120 x 120, and from `results/` (read only): the
  ROC of every committed MNIST digit, the score histogram of one run with its two thresholds, the
  AUROC per digit beside the paper's Table III, and the encoder ablation's four panels in a 2 x 2
  grid.  A figure whose committed results are missing is skipped, and the list returned says so.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import FancyBboxPatch

from .. import paper, threshold
from ..errors import DataError
from ..experiments.results import RESULTS, committed_results
from ..files import atomic_save_figure
from ..model.introspect import shape_trace
from ..model.network import PyramidalAutoencoder
from ..plots import SLIDE_DPI, SLIDE_STYLE, roc_axes, score_histogram, weights_note

COLOURS = {"backbone": "#9ecae1", "pyramid": "#fdd0a2", "encoder": "#fdae6b", "upsample": "#c7e9c0",
           "concat": "#d9d9d9", "decoder": "#bcbddc"}


def shape_text(shape: tuple) -> str:
    """(512, 4, 4) -> '512 x 4 x 4': how the diagram prints an output shape."""
    return " x ".join(str(int(s)) for s in shape)


def _layout(rows: list[dict]) -> list[tuple[dict, float, float]]:
    """(row, x, y) of each box: the backbone and the decoder on the middle line, branch i of the
    pyramid (pooling, encoder, up-sampler) on a line of its own, the concatenation after them."""
    branches = sum(r["stage"].startswith("encoder[") for r in rows)
    mid = (branches - 1) / 2
    placed, x, up = [], 0.0, 0
    for r in rows:
        name = r["stage"]
        if name.startswith(("pyramid[", "encoder[")):
            i = int(name.split("[")[1].split("]")[0])
            placed.append((r, x + (0 if name.startswith("pyramid") else 1), mid - i))
        elif name.startswith("upsample"):
            placed.append((r, x + 2, mid - up))
            up += 1
        else:
            if placed and placed[-1][0]["stage"].startswith("upsample"):
                x += 3  # past the branches
            placed.append((r, x, 0.0))
            x += 1
    return placed


def architecture_figure(model: PyramidalAutoencoder, title: str | None = None):
    """The diagram of `model` (module docstring); returns (figure, rows of shape_trace drawn)."""
    rows = shape_trace(model, batch=1)
    placed = _layout(rows)
    branches = sum(r["stage"].startswith("encoder[") for r in rows)
    width = max(x for _, x, _ in placed) + 1
    fig, ax = plt.subplots(figsize=(1.45 * width + 1, 1.3 * branches + 2.2))
    centres = {}
    for r, x, y in placed:
        kind = next(k for k in COLOURS if r["stage"].startswith(k))
        ax.add_patch(FancyBboxPatch((x - 0.45, y - 0.38), 0.9, 0.76, boxstyle="round,pad=0.02",
                                    fc=COLOURS[kind], ec="k", lw=1))
        label = r["stage"].replace("backbone.", "").replace(" (shared)", "\n(shared)")
        label = label.replace("concat (ResNet map + up-sampled)", "concat").replace("decoder.", "")
        ax.text(x, y + 0.12, label, ha="center", va="center", fontsize="small")
        ax.text(x, y - 0.2, shape_text(r["output shape"]), ha="center", va="center", fontsize="small",
                weight="bold")
        centres.setdefault(r["stage"], []).append((x, y))
    # arrows: between neighbouring boxes on one line (backbone, each branch, decoder), from layer4 into each
    # branch, from each branch into the concatenation
    boxes = [(x, y) for _, x, y in placed]
    for x0, y0 in boxes:
        if (x0 + 1, y0) in boxes:
            ax.annotate("", (x0 + 0.55, y0), (x0 + 0.45, y0), arrowprops={"arrowstyle": "->", "lw": 1.2})
    layer4 = centres["backbone.layer4"][0]
    concat = centres["concat (ResNet map + up-sampled)"][0]
    for name, where in centres.items():
        for x, y in where:
            if name.startswith("pyramid[") and y != layer4[1]:
                ax.annotate("", (x - 0.45, y), (layer4[0] + 0.45, layer4[1]), arrowprops={"arrowstyle": "->", "lw": 1})
            if name.startswith("upsample") and y != concat[1]:
                ax.annotate("", (concat[0] - 0.45, concat[1]), (x + 0.45, y), arrowprops={"arrowstyle": "->", "lw": 1})
    low = -(branches - 1) / 2 - 0.7  # the path around the bottleneck, drawn under the branches
    ax.plot([layer4[0], layer4[0], concat[0]], [layer4[1] - 0.38, low, low], c="k", lw=1, ls="--")
    ax.annotate("", (concat[0], concat[1] - 0.38), (concat[0], low),
                arrowprops={"arrowstyle": "->", "lw": 1, "ls": "--"})
    ax.text((layer4[0] + concat[0]) / 2, low - 0.12, "the ResNet map goes around the bottleneck",
            ha="center", va="top", fontsize="x-small", style="italic")
    ax.set(xlim=(-0.7, width - 0.3), ylim=(low - 0.5, (branches - 1) / 2 + 0.6))
    ax.set_aspect("auto")
    ax.axis("off")
    size = model.config.input_size
    ax.set_title(title or f"the network at {size} x {size}: output shape of each block (C x H x W), "
                 f"{model.config.encoders} encoders", fontsize="medium")
    fig.tight_layout()
    return fig, rows


def _save(fig, path: Path) -> Path:
    atomic_save_figure(path, fig, dpi=SLIDE_DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _mnist_figures(out: Path, root) -> list[Path]:
    runs = committed_results("mnist", "cpu", root=root)
    note = weights_note(runs.weights.iloc[0])
    first = runs.sort_values("seed").drop_duplicates("normal_class").sort_values("normal_class")
    base = Path(root or RESULTS) / "mnist" / "cpu" / "runs"
    scores = {r.normal_class: pd.read_csv(base / r.run / "scores.csv") for r in first.itertuples()
              if (base / r.run / "scores.csv").is_file()}
    written = []
    fig, ax = plt.subplots(figsize=(8, 7))
    for c, s in scores.items():
        t = s[s.split == "test"]
        roc_axes(ax, t.label, t["loss"], f"digit {c}")
    ax.set_title(f"MNIST, one run per normal digit{note}", fontsize="medium")
    written.append(_save(fig, out / "roc_mnist.png"))
    if scores:
        c, s = next(iter(scores.items()))
        t, held = s[s.split == "test"], s[s.split == "held-out normal"]
        fig, ax = plt.subplots(figsize=(11, 5.5))
        score_histogram(ax, t.label, t["loss"], {"Youden (test labels)": threshold.youden(t.label, t["loss"]),
                                                  "held-out normals (95%)": threshold.from_normals(held["loss"])})
        ax.set_title(f"MNIST, normal digit {c}: scores of the test images{note}", fontsize="medium")
        written.append(_save(fig, out / "scores_mnist.png"))
    cmp = paper.compare(runs, "mnist")
    cmp = cmp[cmp["class"] != "mean"]
    fig, ax = plt.subplots(figsize=(11, 5.5))
    xs = np.arange(len(cmp))
    sd = cmp["ours_sd"].fillna(0) if "ours_sd" in cmp else None
    ax.bar(xs - 0.2, cmp["ours"], 0.4, yerr=sd, capsize=3, label="ours (mean, s.d. over seeds)")
    ax.bar(xs + 0.2, cmp["paper"], 0.4, label="the paper, Table III")
    ax.set(xticks=xs, xticklabels=cmp["class"], xlabel="normal digit", ylabel="AUROC (axis from 0.5)",
           ylim=(0.5, 1.0))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.set_title(f"AUROC per normal digit{note}", fontsize="medium")
    written.append(_save(fig, out / "auroc_mnist_vs_paper.png"))
    return written


def _ablation_figure(out: Path, root) -> list[Path]:
    enc = committed_results("ablation-encoders", None, root=root)
    panels = [("ssim_normal", "SSIM of normal reconstructions"), ("youden_accuracy", "accuracy, Youden threshold"),
              ("heldout_accuracy", "accuracy, held-out threshold"), ("auroc", "AUROC")]
    fig, axes = plt.subplots(2, 2, figsize=(14, 10))
    classes = sorted(set(zip(enc.dataset, enc.normal_class)))
    settings = sorted(enc.encoders.unique())
    width = 0.8 / len(classes)
    for ax, (col, label) in zip(axes.flat, panels):
        for k, (ds, c) in enumerate(classes):
            g = enc[(enc.dataset == ds) & (enc.normal_class == c)].groupby("encoders")[col]
            mean, sd = g.mean().reindex(settings), g.std().reindex(settings)
            ax.bar(np.arange(len(settings)) + (k - (len(classes) - 1) / 2) * width, mean, width,
                   yerr=sd.fillna(0), capsize=3, label=f"{ds} {c}")
        ax.set(xticks=range(len(settings)), xticklabels=settings, xlabel="encoders", ylabel=label, ylim=(0, 1))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, title="normal class (bars: mean over seeds, lines: s.d.)", loc="lower center",
               ncol=len(classes))
    fig.suptitle(f"number of encoders (the paper's Figs. 3-4){weights_note(enc.weights.iloc[0])}")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return [_save(fig, out / "ablation_encoders.png")]


def write_slides(out, root=None) -> list[str]:
    """Write the slide figures into `out` (module docstring); `root`: the results folder (default:
    the clone's results/).  Returns one line per figure: the path written, or what was skipped and why."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    matplotlib.use("Agg", force=False)
    lines = []
    with plt.rc_context(SLIDE_STYLE):
        for size in (28, 120):
            fig, _ = architecture_figure(PyramidalAutoencoder(input_size=size).eval())
            lines.append(str(_save(fig, out / f"architecture_{size}.png")))
        for name, make in (("MNIST results", _mnist_figures), ("encoder ablation", _ablation_figure)):
            try:
                lines += [str(p) for p in make(out, root)]
            except (DataError, FileNotFoundError) as e:
                lines.append(f"skipped the {name} figures: {e}")
    return lines
