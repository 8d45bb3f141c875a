"""A weak result explained by the run's own numbers, and findings judged against the paper.

* `evidence.measure` gives the four numbers the figures of a failed run show, and
  `Evidence.explain` chooses one sentence per sign that passes its rule (none for a working run).
* `reporting.findings` calls a paper finding REPRODUCED / NOT REPRODUCED / NOT DECIDED from an
  interval (the words of `stats.verdict`).
* Slow: 05 executed (quick profile, nbclient) on two small MVTec-layout categories built here, one
  whose defects are a few pixels like the texture around them (near chance) and one whose defects
  are large bright squares (it works), plus one without masks: the explanation printed is the one
  the numbers it recorded choose.
"""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from pyramid_lib import evidence
from pyramid_lib.reporting import findings
from pyramid_lib.tutorial import verdict


def test_a_template_reconstruction_and_tiny_defects_are_named_with_their_numbers():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 3, 20, 20, generator=g)
    rec = 0.5 + 0.01 * torch.rand(8, 3, 20, 20, generator=g)  # every input rebuilt as the same grey
    maps = torch.full((8, 20, 20), 0.01)
    maps[:, 0, :] = 1.0  # the good images' error sits on one row: 5% of the positions
    masks = torch.zeros(8, 20, 20)
    masks[4:, 5, 5] = 1  # one pixel in 400
    scores = torch.tensor([1.0, 2, 3, 4, 1.5, 2.5, 3.5, 5])  # 3 of 4 defective under the best good
    ev = evidence.measure(x, rec, maps, [0, 0, 0, 0, 1, 1, 1, 1], scores, masks)
    assert ev.variation_kept < 0.05 and ev.error_in_top > 0.5
    assert ev.defect_share == pytest.approx(1 / 400) and ev.overlap == pytest.approx(0.75)
    assert ev.reasons() == ["template", "concentrated", "tiny", "overlap"]
    text = ev.explain("chance")
    assert text.startswith("WHY IT IS NEAR CHANCE HERE") and "0.25% of the pixels" in text and "75%" in text
    assert ev.explain("works") == "" and ev.explain("stand-in") == ""


def test_a_faithful_reconstruction_shows_no_sign_and_says_so():
    x = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    maps = torch.rand(6, 16, 16, generator=torch.Generator().manual_seed(2))
    ev = evidence.measure(x, x.clone(), maps, [0, 0, 0, 1, 1, 1], [0, 1, 2, 3, 4, 5], None)
    assert ev.variation_kept == pytest.approx(1.0) and ev.defect_share is None and ev.overlap == 0
    assert ev.reasons() == []
    assert "none of the four signs" in ev.explain("weak") and "no masks" in ev.lines()[2]
    with pytest.raises(ValueError, match="2\\+ good"):
        evidence.measure(x, x, maps, [0, 1, 1, 1, 1, 1], torch.arange(6.0))
    assert "1,200" in evidence.training_gap(490, 209, "random", 600, 120)  # 600 epochs of 2 steps


@pytest.mark.parametrize("values, level, claim, outcome", [
    ([0.81, 0.80, 0.82], 0.65, "below", findings.NOT_REPRODUCED),
    ([0.60, 0.61, 0.59], 0.65, "below", findings.REPRODUCED),
    ([0.60, 0.70, 0.65], 0.65, "below", findings.NOT_DECIDED),
    ([0.70, 0.71, 0.72], 0.68, "above", findings.REPRODUCED),
    ([0.78, 0.79, 0.785], 0.93, "at", findings.NOT_REPRODUCED),
    ([0.90, 0.95, 0.93], 0.93, "at", findings.REPRODUCED),
    ([0.70], 0.65, "below", findings.NOT_DECIDED),
    ([0.17, 0.88, 0.19], 0.62, "at", findings.NOT_DECIDED),  # contains the value, but +-1.0 says nothing
])
def test_a_finding_is_judged_by_its_interval(values, level, claim, outcome):
    got, sentence = findings.against_level(values, level, claim, "SSIM")
    assert got == outcome and sentence.endswith(outcome) or (len(values) == 1 and "one run" in sentence)
    assert f"{level:.3f}" in sentence


def test_one_runs_rate_and_a_paired_difference_against_the_paper():
    assert findings.against_proportion(730, 1000, 0.73, "TPR")[0] == findings.REPRODUCED
    assert findings.against_proportion(46, 63, 0.73, "TPR")[0] == findings.NOT_DECIDED  # +-0.15 on 63 images
    out, text = findings.against_proportion(19, 20, 1.0, "TNR")  # both rates on 20 images: 19 vs 20 is no evidence
    assert out == findings.NOT_DECIDED and "19 of 20" in text
    assert findings.against_proportion(10, 63, 0.73, "TPR")[0] == findings.NOT_REPRODUCED
    out, text = findings.against_difference(-0.037, -0.052, -0.021, "higher", "lambda 1 - 0", 3)
    assert out == findings.NOT_REPRODUCED and "the opposite" in text
    assert findings.against_difference(0.01, -0.02, 0.04, "higher", "x")[0] == findings.NOT_DECIDED
    assert findings.against_difference(0.05, 0.02, 0.08, "higher", "x")[0] == findings.REPRODUCED


def test_a_rows_swinging_or_frozen_rates_are_explained():
    swing = pd.DataFrame({"youden_tpr": [0.17, 0.88, 0.19], "youden_tnr": [1.0, 0.30, 1.0],
                          "auroc": [0.54, 0.57, 0.54], "n_test": 132})
    assert "swing" in findings.rate_spread(swing)
    frozen = pd.DataFrame({"youden_tpr": [0.7] * 3, "youden_tnr": [0.6] * 3, "auroc": [0.57] * 3, "n_test": 14})
    assert "s.d. 0" in findings.rate_spread(frozen) and findings.rate_spread(frozen.iloc[:1]) == ""


# --- 05 executed on small categories built here -------------------------------------------------

def write_category(root, name, defect: str, n_train=16, n_good=6, n_bad=6, size=128, masks=True, seed=0):
    """An MVTec-layout category of smooth textures: `defect` "tiny" (3 x 3 dots within the texture's
    own grey range) or "large" (a bright square over a quarter of the image)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    folder = root / "mvtec_ad" / name

    def texture():
        p = rng.uniform(0, 6.28, 2)
        return 0.5 + 0.2 * np.sin(xx / 8 + p[0]) * np.sin(yy / 8 + p[1]) + rng.normal(0, 0.02, (size, size))

    def save(path, a):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((np.clip(a, 0, 1) * 255).astype(np.uint8), mode="L").convert("RGB").save(path)

    for i in range(n_train):
        save(folder / "train" / "good" / f"{i:03d}.png", texture())
    for i in range(n_good):
        save(folder / "test" / "good" / f"{i:03d}.png", texture())
    for i in range(n_bad):
        img, mask = texture(), np.zeros((size, size))
        cy, cx = rng.integers(10, size - 34, 2)
        if defect == "tiny":
            mask[cy:cy + 3, cx:cx + 3] = 1
            img = np.where(mask > 0, 0.6, img)
        else:
            mask[cy:cy + size // 2, cx:cx + size // 2] = 1
            img = np.where(mask > 0, 1.0, img)
        save(folder / "test" / "defect" / f"{i:03d}.png", img)
        if masks:
            save(folder / "ground_truth" / "defect" / f"{i:03d}_mask.png", mask)
    return folder


def recorded_evidence(nb):
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if evidence.EVIDENCE_MIME in out.get("data", {}):
                return evidence.Evidence(**out["data"][evidence.EVIDENCE_MIME])
    return None


@pytest.mark.slow
@pytest.mark.notebooks
@pytest.mark.parametrize("defect, masks", [("tiny", True), ("large", True), ("tiny", False)])
def test_05_prints_the_explanation_its_own_numbers_choose(defect, masks, tmp_path):
    pytest.importorskip("nbclient")
    import nbformat

    from tests.test_notebook_sentences import REPO, result_sentences, run_cells

    write_category(tmp_path / "data", f"{defect}dots", defect, masks=masks)
    nb = nbformat.read(REPO / "notebooks" / "05_mvtec.ipynb", as_version=4)
    sources = []
    for c in (c for c in nb.cells if c.cell_type == "code"):
        sources.append(c.source)
        if "parameters" in c.metadata.get("tags", []):  # as papermill injects a parameter
            sources.append(f'CATEGORY = "{defect}dots"')
    nb = run_cells(sources, tmp_path, PYRAMID_PROFILE="quick", PYRAMID_DATA=str(tmp_path / "data"),
                   PYRAMID_WORK=str(tmp_path / "work"))
    text = "\n".join(result_sentences(nb))
    ev = recorded_evidence(nb)
    assert ev is not None, text
    auroc = float(text.split("image AUROC (loss): ")[1].split()[0])
    case = verdict(auroc)[0]
    assert ev.explain(case) in text, text  # the block its numbers choose, word for word
    for other in ("NEAR CHANCE", "BELOW CHANCE", "IS WEAK HERE"):
        assert (f"WHY IT {other}" in text) == (f"WHY IT {other}" in ev.explain(case))
    assert ("works here" in text) == (case == "works")
    assert ("NO MASKS" in text) == (not masks) and (ev.defect_share is None) == (not masks)
    for line in ev.lines():
        assert line in text
    if defect == "tiny" and masks:
        assert ev.defect_share == pytest.approx(9 / (128 * 128), rel=0.5) and "tiny" in ev.reasons()
        assert case != "works", f"tiny defects within the texture's range gave AUROC {auroc}"
    if defect == "large":
        assert case == "works", f"large bright defects gave AUROC {auroc}"
    assert not math.isnan(ev.variation_kept)
    json.dumps(ev.to_dict())


def test_error_maps_drawn_to_a_robust_limit_say_so_on_their_colour_bar():
    import matplotlib

    matplotlib.use("Agg")
    from pyramid_lib import plots

    x = torch.rand(3, 3, 12, 12, generator=torch.Generator().manual_seed(3))
    maps = torch.full((3, 12, 12), 0.1)
    maps[0, 0, 0] = 50.0  # one bright pixel: on a 0..max scale every other pixel would look black
    limit = float(maps.flatten().quantile(0.99))
    fig = plots.reconstructions_figure(x, x, maps, vmax=limit)
    images = [im for ax in fig.axes for im in ax.get_images() if im.get_cmap().name == "inferno"]
    assert images and all(im.get_clim() == (0, pytest.approx(limit)) for im in images)
    bar = fig.axes[-1]
    assert "top colour" in bar.get_ylabel()
    plain = plots.reconstructions_figure(x, x, maps)
    assert all(im.get_clim()[1] == pytest.approx(50.0) for ax in plain.axes for im in ax.get_images()
               if im.get_cmap().name == "inferno")
    assert "top colour" not in plain.axes[-1].get_ylabel()


def test_a_run_records_the_rate_its_epoch_bar_showed(tiny_run):
    """The loop's seconds (training and the checkpoint saved after each epoch: what the bar times) are
    recorded beside the history's training seconds, so that a notebook prints the bar's own rate."""
    state = tiny_run.read_state()
    assert state["loop_epochs"] == 1
    assert state["loop_seconds"] >= sum(h["seconds"] for h in state["history"]) > 0
