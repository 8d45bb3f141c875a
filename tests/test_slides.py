"""Slide figures (`pyramid-ad slides OUT`, pyramid_lib/reporting/slides.py): 200 dpi PNGs, and an
architecture diagram whose shapes are the model's own."""

from __future__ import annotations

from collections import Counter

import matplotlib.pyplot as plt
import pytest
from PIL import Image

from pyramid_lib.cli import main
from pyramid_lib.model.introspect import shape_trace
from pyramid_lib.model.network import PyramidalAutoencoder
from pyramid_lib.plots import SLIDE_DPI, SLIDE_STYLE
from pyramid_lib.reporting.slides import architecture_figure, shape_text


@pytest.mark.parametrize("size, encoders", [(28, 4), (120, 2)])
def test_the_diagrams_shapes_are_the_models_layer_shapes(size, encoders):
    model = PyramidalAutoencoder(input_size=size, encoders=encoders).eval()
    fig, rows = architecture_figure(model)
    drawn = Counter(t.get_text() for t in fig.axes[0].texts)
    plt.close(fig)
    expected = Counter(shape_text(r["output shape"]) for r in shape_trace(model))
    assert rows == shape_trace(model, batch=1)
    assert expected and all(drawn[s] >= n for s, n in expected.items()), (expected, drawn)
    assert drawn[f"3 x {size} x {size}"] == 1, "the decoder's last block gives the input's shape"
    assert sum(n for t, n in drawn.items() if t.startswith("encoder[")) == encoders
    other = 120 if size == 28 else 28
    assert f"3 x {other} x {other}" not in drawn


def test_slides_are_200_dpi_pngs_with_large_fonts(tmp_path, capsys):
    assert SLIDE_DPI >= 200 and SLIDE_STYLE["font.size"] >= 14
    assert main(["slides", str(tmp_path / "slides")]) == 0
    out = capsys.readouterr().out
    pngs = sorted((tmp_path / "slides").glob("*.png"))
    names = {p.name for p in pngs}
    assert {"architecture_28.png", "architecture_120.png", "roc_mnist.png", "scores_mnist.png",
            "auroc_mnist_vs_paper.png", "ablation_encoders.png"} <= names, out
    for p in pngs:
        with Image.open(p) as im:
            assert min(im.info["dpi"]) >= SLIDE_DPI - 0.5, (p.name, im.info.get("dpi"))
            assert im.size[0] >= 1500, (p.name, im.size)


def test_missing_results_are_skipped_and_said(tmp_path, capsys):
    assert main(["slides", str(tmp_path / "slides"), "--results", str(tmp_path / "none")]) == 0
    out = capsys.readouterr().out
    assert "skipped the MNIST results figures" in out and "skipped the encoder ablation figures" in out
    assert sorted(p.name for p in (tmp_path / "slides").glob("*.png")) == ["architecture_120.png",
                                                                          "architecture_28.png"]
