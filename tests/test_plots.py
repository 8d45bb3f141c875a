"""The figures of plots.py and the tutorial's plotting helpers: `ssim` shown as "1 - SSIM", legends
beside the data (not on it), the reconstruction figure's columns labelled and its error maps on
one colour scale with one colour bar, and no warning raised while drawing."""

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colorbar import Colorbar  # noqa: E402

from pyramid_lib import plots  # noqa: E402
from pyramid_lib import tutorial as nb  # noqa: E402
from pyramid_lib.engine.evaluate import evaluate_run  # noqa: E402


def scores_frame(n_normal=30, n_anomalous=60, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = np.r_[np.zeros(n_normal, int), np.ones(n_anomalous, int)]
    base = rng.normal(0.1, 0.02, len(y)) + 0.08 * y
    return pd.DataFrame({"name": [f"img{i}" for i in range(len(y))], "class": np.where(y, "7", "0"), "label": y,
                         "loss": base, "mse": base * 0.6, "perceptual": base * 0.4,
                         "ssim": np.clip(base * 5, 0, 1.3)})


def drawn(fig):
    """Draw the figure (layout engines run at draw time) under warnings-as-errors."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig.canvas.draw()
    return fig


def texts(fig) -> list[str]:
    out = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
    return [t for t in out if t]


def overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_every_figure_names_the_ssim_score_one_minus_ssim():
    assert plots.score_label("ssim") == "1 - SSIM" and plots.SCORE_LABELS["ssim"] == "1 - SSIM"
    t = scores_frame()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = drawn(plots.scores_figure(t, {"Youden (test labels)": 0.15, "held-out normals": 0.14}))
        roc = fig.axes[1]
        labels = [x.get_text() for x in roc.get_legend().get_texts()]
        assert any(x.startswith("1 - SSIM (AUROC") for x in labels), labels
        assert not any(x.startswith("ssim") for x in texts(fig)), texts(fig)
        fig, ax = plt.subplots()
        plots.score_histogram(ax, t["label"], t["ssim"], 0.5, score="ssim")
        assert "1 - SSIM" in ax.get_xlabel()


def test_histogram_legend_lies_outside_the_bars_and_names_both_thresholds():
    t = scores_frame()
    fig = drawn(plots.scores_figure(t, {"Youden (test labels)": 0.15, "held-out normals": float("nan")}))
    hist = fig.axes[0]
    legend = hist.get_legend()
    r = fig.canvas.get_renderer()
    assert not overlaps(legend.get_window_extent(r), hist.get_window_extent(r)), "the legend covers the bars"
    labels = [x.get_text() for x in legend.get_texts()]
    assert labels[:2] == ["normal", "anomalous"] and labels[2].startswith("Youden (test labels) 0.15")
    assert len(labels) == 3, f"a NaN threshold must be left out, got {labels}"
    fig = drawn(plots.history_figure(pd.DataFrame({"epoch": [1, 2, 3], "loss": [3.0, 2.0, 1.5], "mse": [2, 1, .8],
                                                   "perceptual": [1, 1, .7]})))
    ax = fig.axes[0]
    assert not overlaps(ax.get_legend().get_window_extent(r), ax.get_window_extent(r))


def test_pick_labelled_shows_each_end_of_each_label_in_order():
    t = scores_frame()
    picks = plots.pick_labelled(t, 8, "loss")
    roles = [role for _, role in picks]
    assert roles == ["best-scored normal"] * 2 + ["worst-scored normal"] * 2 + \
        ["worst-scored anomaly"] * 2 + ["best-scored anomaly"] * 2
    s, y = t["loss"], t["label"]
    rows = dict(zip(roles[::2], [r for r, _ in picks][::2]))
    assert s[rows["best-scored normal"]] == s[y == 0].min()
    assert s[rows["worst-scored anomaly"]] == s[y == 1].min()
    assert s[picks[3][0]] == s[y == 0].max() and s[picks[7][0]] == s[y == 1].max()
    few = scores_frame(n_normal=3, n_anomalous=1)  # fewer images than picks: none twice
    rows = [r for r, _ in plots.pick_labelled(few, 8)]
    assert sorted(rows) == sorted(set(rows)) == [0, 1, 2, 3]


def test_reconstruction_figure_has_one_colour_bar_for_maps_on_one_scale():
    torch.manual_seed(0)
    x, x_hat = torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16)
    maps = torch.rand(4, 16, 16) * torch.tensor([1.0, 2.0, 3.0, 4.0])[:, None, None]
    fig = drawn(plots.reconstructions_figure(x, x_hat, maps, [f"col {i}" for i in range(4)], map_label="1 - SSIM map"))
    bars = [a for a in fig.axes if isinstance(getattr(a, "_colorbar", None), Colorbar)]
    assert len(bars) == 1, f"{len(bars)} colour bars"
    assert bars[0].get_ylabel() == "1 - SSIM map"
    climits = {im.get_clim() for ax in fig.axes[:12] for im in ax.get_images() if im.get_cmap().name == "inferno"}
    assert len(climits) == 1 and climits.pop() == pytest.approx((0.0, float(maps.max()))), climits


def test_tutorial_reconstructions_label_their_columns(tiny, tiny_run):
    evaluate_run(tiny_run, data=tiny, progress=False)
    test, held = tiny_run.read_scores()
    result = nb.RunResult(tiny_run, tiny_run.read_config(), tiny_run.read_metrics().iloc[0], test, held)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = drawn(plots.plot_reconstructions(result, tiny, n=8))
        titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
        assert [t.split("\n")[:2] for t in titles[:8]] == [["best-scored", "normal"]] * 2 + \
            [["worst-scored", "normal"]] * 2 + [["worst-scored", "anomaly"]] * 2 + [["best-scored", "anomaly"]] * 2
        assert sum(isinstance(getattr(a, "_colorbar", None), Colorbar) for a in fig.axes) == 1
        assert fig._suptitle.get_text().startswith("each column: role, class and loss")
        fig = drawn(plots.plot_scores(result))
        assert any("1 - SSIM" in t for t in texts(fig))
        drawn(plots.plot_history(result))
