"""The tutorial's figures of results beside the paper (`auroc_barplot`) and the ROC inputs read
from committed runs (`roc_inputs`): classes in the paper's order whatever order the runs come in,
the legend beside the axes, the seed spread drawn only where a class has several runs, the
Table II mean drawn as a line, and no warning while drawing."""

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from pyramid_lib import paper, plots  # noqa: E402
from pyramid_lib import tutorial as nb  # noqa: E402


def runs(classes, seeds=(0,), base=0.9):
    """One row per (class, seed): normal_class and an AUROC that differs by seed."""
    return pd.DataFrame([{"normal_class": c, "seed": s, "auroc": base - 0.01 * i + 0.004 * s}
                         for i, c in enumerate(classes) for s in seeds])


def drawn(fig):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig.canvas.draw()
    return fig


def legend_outside(ax) -> bool:
    fig = ax.figure
    legend = ax.get_legend().get_window_extent(fig.canvas.get_renderer())
    return legend.x0 >= ax.get_window_extent(fig.canvas.get_renderer()).x1


def test_barplot_keeps_the_papers_class_order_and_puts_the_legend_beside_the_axes():
    r = runs(["8", "0", "3"])  # the order runs finish in, not the paper's
    fig = drawn(plots.auroc_barplot(paper.compare(r, "mnist"), "t"))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(d) for d in range(10)]
    assert legend_outside(ax)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sorted(labels) == ["chance (0.5)", "ours", "paper"]  # one seed: no spread in the label
    ours = [c for c in ax.containers if c.get_label() == "ours"][0]
    assert ours.errorbar is None
    notes = sorted(t.get_text().split("\n")[0] for t in ax.texts)
    assert notes == ["best", "worst"]
    best = [t for t in ax.texts if t.get_text().startswith("best")][0]
    assert best.get_text().endswith(f"{r.auroc.max():.3f}")
    plt.close(fig)


def test_barplot_draws_the_seed_spread_where_a_class_has_several_runs():
    r = runs(["0", "1"], seeds=(0, 1, 2))
    fig = drawn(plots.auroc_barplot(paper.compare(r, "mnist"), "t"))
    ax = fig.axes[0]
    bars = [c for c in ax.containers if type(c).__name__ == "BarContainer"]
    ours = [b for b in bars if b.get_label().startswith("ours")][0]
    assert ours.get_label() == "ours (mean, s.d. over seeds)"
    assert ours.errorbar is not None
    segments = ours.errorbar.lines[2][0].get_segments()
    spread = r.groupby("normal_class")["auroc"].std()
    lengths = sorted(round(float(s[1][1] - s[0][1]), 6) for s in segments if len(s) == 2 and np.isfinite(s).all())
    assert lengths == sorted(round(2 * v, 6) for v in spread)  # mean +- s.d.
    plt.close(fig)


def test_barplot_of_table_ii_draws_the_papers_mean_as_a_line_and_no_paper_bars():
    r = runs([str(c) for c in range(10)], base=0.95)
    fig = drawn(plots.auroc_barplot(paper.compare(r, "fmnist"), "t"))
    ax = fig.axes[0]
    assert [b.get_label() for b in ax.containers] == ["ours"]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert f"paper, mean {paper.TABLE_II['Ours']:.3f}" in lines
    assert lines[f"paper, mean {paper.TABLE_II['Ours']:.3f}"].get_ydata()[0] == pytest.approx(paper.TABLE_II["Ours"])
    plt.close(fig)


def test_roc_inputs_reads_scores_and_leaves_out_runs_without_them(tmp_path):
    done, empty = tmp_path / "a", tmp_path / "b"
    done.mkdir(), empty.mkdir()
    pd.DataFrame({"split": ["test"] * 4, "name": list("wxyz"), "class": ["0", "0", "7", "7"], "label": [0, 0, 1, 1],
                  "loss": [0.1, 0.2, 0.3, 0.4], "mse": [0.1, 0.2, 0.3, 0.4], "perceptual": [0.0] * 4,
                  "ssim": [0.4, 0.3, 0.2, 0.1]}).to_csv(done / "scores.csv", index=False)
    got = nb.roc_inputs([done, empty], labels=["class 0", "class 1"], score="ssim")
    assert list(got) == ["class 0"]
    y, s = got["class 0"]
    assert y.tolist() == [0, 0, 1, 1] and s.tolist() == [0.4, 0.3, 0.2, 0.1]
