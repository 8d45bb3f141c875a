"""results/ANALYSIS.md and README.md's results: every number recomputed from the committed runs (the
page is its template rendered again; README's paragraphs are readme_numbers.md.j2 rendered), no decimal
number written by hand, the statements the records decide, every relative link resolving."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import REPO
from report_fixtures import make_run, results_tree

from pyramid_lib.errors import ConfigError
from pyramid_lib.reporting import numbers
from pyramid_lib.reporting.analysis_page import ANALYSIS_TEMPLATE, analysis_text
from pyramid_lib.reporting.stats import NO_DIFFERENCE, t_interval

RESULTS = REPO / "results"
ANALYSIS = RESULTS / "ANALYSIS.md"


def committed():
    if not ANALYSIS.is_file() or not (RESULTS / "mnist" / "cpu" / "results.csv").is_file():
        pytest.skip("no committed results/ in this checkout")
    return RESULTS


@pytest.mark.slow  # reads every committed run (about 20 s)
def test_the_committed_analysis_is_its_template_rendered_from_the_committed_runs():
    """Recomputes every number of the page: the template rendered again must give the committed bytes."""
    assert analysis_text(committed()) == ANALYSIS.read_text(), "run `pyramid-ad report`"


def test_the_rendered_analysis_is_plain_markdown():
    text = ANALYSIS.read_text()
    assert "<!--" not in text and "{{" not in text and "{%" not in text


def uncomputed(template: str) -> list[str]:
    """Decimal numbers written in a template's prose rather than computed (expressions, comments,
    code spans and link targets aside)."""
    text = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", "", template, flags=re.S)
    text = re.sub(r"`[^`]*`", "", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return re.findall(r"\d+\.\d+", text)


def test_every_decimal_number_of_the_analysis_is_computed():
    template = resources.files("pyramid_lib.reporting").joinpath("templates", ANALYSIS_TEMPLATE).read_text()
    assert uncomputed(template) == []
    assert uncomputed("`lr 0.001` [x](a/0.5.md) {{ mean(\"a\") | f(4) }} {# 0.3 #} but 0.77 alone") == ["0.77"]


def test_the_readme_numbers_are_recomputed_from_the_committed_runs():
    """README.md's results paragraphs are tests/reporting/readme_numbers.md.j2 rendered: each must be
    found verbatim in README.md (the README itself carries no markup)."""
    source = (Path(__file__).parent / "readme_numbers.md.j2").read_text()
    assert uncomputed(source) == []
    readme = (REPO / "README.md").read_text()
    paragraphs = analysis_text(committed(), source=source).strip("\n").split("\n\n")
    missing = [p[:200] for p in paragraphs if p not in readme]
    assert len(paragraphs) >= 3 and not missing, missing
    assert "<!--" not in readme


def test_the_analysis_reads_the_verdict_of_the_interval_that_fits_the_question():
    text = ANALYSIS.read_text()
    head = text.split("## Which runs")[0]
    m = re.search(r"This page reads (\d+) intervals", head)
    assert m and int(m.group(1)) >= 20  # the multiple-comparisons count is stated
    for ds, sel in (("mnist", "mnist/cpu:epochs=6"), ("fmnist", "fmnist/cpu:epochs=6")):
        seed = numbers.diff(committed(), sel, f"baselines/cpu:ae-ssim:dataset={ds}:epochs=6", "seed_verdict")
        assert seed in text
    # the rows of the claims table that set ours against the paper's own mean carry the verdict over seeds
    rows = {r.split("|")[1].strip(): [c.strip() for c in r.strip("|").split("|")]
            for r in head.splitlines() if re.match(r"\| \d", r)}
    mnist = numbers.diff(committed(), "mnist/cpu:epochs=6", "paper:mnist", "seed_verdict")
    fmnist = numbers.versus_printed(committed(), "fmnist/cpu:epochs=6", stat="seed_verdict")
    assert rows["6"][-1].endswith(f"against the paper's own {mnist}")
    assert f"against the paper's own {fmnist}" in rows["4"][-1]


def test_the_analysis_states_what_the_fitted_once_baselines_fit():
    """OC-SVM and KDE fit fewer normals than our network: the page must not call them the same."""
    text = " ".join(ANALYSIS.read_text().split())  # words, whatever the line breaks
    for method in ("ocsvm", "kde"):
        fit = numbers.setting(committed(), f"baselines/cpu:{method}:train_limit=4000", "fit_images")
        ours = numbers.setting(committed(), "mnist/cpu:epochs=6", "fit_images")
        if fit != ours:
            assert "on the same training normals" not in text
            assert f"{fit} of the training normals" in text or f"{fit} training normals" in text


def test_the_analysis_says_no_encoder_count_is_equal_only_when_no_pair_differs():
    root, text = committed(), " ".join(ANALYSIS.read_text().split())
    differing = []
    for a, b in ((2, 1), (4, 1), (6, 1), (4, 2), (6, 2), (6, 4)):
        for cls in ("0", "4"):
            v = numbers.class_diff(root, f"ablation-encoders/cpu:encoders={a}", f"ablation-encoders/cpu:encoders={b}",
                                   cls, "ssim_normal", stat="verdict")
            if v != NO_DIFFERENCE:
                differing.append((a, b, cls, v))
    if differing:
        assert "no encoder count differs" not in text, differing
        assert "six against one is lower on both classes" in text or not any(d[:2] == (6, 1) for d in differing)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return results_tree(tmp_path_factory.mktemp("claims"))


def test_two_scores_of_the_same_runs_are_paired_run_by_run(tree):
    runs = numbers.select(tree, "mnist/cpu")
    per_class = (runs["auroc"] - runs["youden_tpr"]).groupby(runs["normal_class"]).mean()
    got = numbers.diff(tree, "mnist/cpu", "mnist/cpu", value="auroc", value_b="youden_tpr")
    assert got == pytest.approx(per_class.mean()) and abs(got) > 0.05
    iv = t_interval(per_class.to_numpy())
    lo = numbers.diff(tree, "mnist/cpu", "mnist/cpu", "lo", value="auroc", value_b="youden_tpr")
    assert lo == pytest.approx(iv.lo)


def test_selectors_filter_by_method_and_by_results_or_config_columns(tree):
    assert numbers.runs(tree, "baselines/cpu:ae-l2") == 13
    assert numbers.runs(tree, "baselines/cpu:ae-l2:dataset=mnist") == 9
    assert numbers.runs(tree, "baselines/cpu:ocsvm:dataset=mnist") == 3
    assert numbers.runs(tree, "mnist/cpu:lr_schedule=cosine:seed=1") == 3
    assert numbers.runs(tree, "mnist/cpu:train_limit=all") == 9
    assert numbers.runs(tree, "mnist/cpu:train_limit=4000") == 0
    assert numbers.setting(tree, "fmnist/cpu", "weights") == "imagenet"
    with pytest.raises(ConfigError, match="no results.csv"):
        numbers.runs(tree, "nowhere/cpu")


def test_table_iv_best_applies_the_papers_bold_rule_to_the_methods_re_run_here(tree):
    """(TPR + TNR) / 2 at the Youden threshold, mean over seeds: ours (0.7 on grid, 0.7875 on bottle in the
    fixture) against ae-l2 (0.5 on grid, 0.9 on bottle): ours wins grid only."""
    assert numbers.table_iv_best(tree, stat="n") == 2
    assert numbers.table_iv_best(tree, stat="wins") == 1
    listed = numbers.table_iv_best(tree, stat="list")
    assert listed.startswith("grid: ours 0.700, ae-l2 0.500; bottle: ours 0.78") and listed.endswith("ae-l2 0.900")


def test_seed_sd_is_the_spread_over_seeds_of_each_class(tree):
    runs = numbers.select(tree, "mnist/cpu")
    sd = runs.assign(a=pd.to_numeric(runs["auroc"])).groupby("normal_class")["a"].std(ddof=1)
    assert numbers.seed_sd(tree, "mnist/cpu") == pytest.approx(sd.mean())
    assert numbers.seed_sd(tree, "mnist/cpu", "max") == pytest.approx(sd.max())
    assert numbers.seed_sd(tree, "mnist/cpu", "max") > numbers.seed_sd(tree, "mnist/cpu") > 0


LINK = re.compile(r"\]\(([^)\s]+)\)")
PATH = re.compile(r"`(results/[^`<>*\s]+)`")


def markdown_files():
    return [REPO / "README.md", *sorted(RESULTS.rglob("*.md"))] if RESULTS.is_dir() else [REPO / "README.md"]


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_and_results_path_resolves(path):
    text = path.read_text()
    missing = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        if not (path.parent / target.split("#")[0]).exists():
            missing.append(target)
    for target in PATH.findall(text) if path.name == "README.md" and path.parent == REPO else []:
        if not (REPO / target).exists():
            missing.append(target)
    assert not missing, f"{path}: {missing}"


def test_class_diff_gives_the_seed_paired_interval_of_one_class(tree):
    a, b = numbers.select(tree, "mnist/cpu"), numbers.select(tree, "baselines/cpu:ae-l2")
    by_seed = lambda r: r[r.normal_class == "1"].set_index("seed")["auroc"].astype(float)  # noqa: E731
    iv = t_interval((by_seed(a) - by_seed(b)).to_numpy())
    assert numbers.class_diff(tree, "mnist/cpu", "baselines/cpu:ae-l2", "1") == pytest.approx(iv.mean)
    assert numbers.class_diff(tree, "mnist/cpu", "baselines/cpu:ae-l2", "1", stat="lo") == pytest.approx(iv.lo)
    assert numbers.class_diff(tree, "mnist/cpu", "baselines/cpu:ae-l2", "1", stat="hi") == pytest.approx(iv.hi)
    assert numbers.class_diff(tree, "mnist/cpu", "baselines/cpu:ae-l2", "1", stat="n") == 3
    # AE L2 sits 0.05-0.052 below ours on every seed: the interval lies above zero
    assert numbers.class_diff(tree, "mnist/cpu", "baselines/cpu:ae-l2", "1", stat="verdict") == "higher"


def test_auroc_by_ranks_is_sklearns_with_ties():
    from sklearn.metrics import roc_auc_score
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.normal(size=200) + y, 1)  # rounded: many ties
    assert numbers._auroc(y, s) == pytest.approx(roc_auc_score(y, s))


def test_the_test_set_bootstrap_resamples_images_shared_by_the_classes(tmp_path):
    base = tmp_path / "mnist" / "cpu"
    rng = np.random.default_rng(1)
    rows = []
    for c in ("0", "1"):
        for seed in (0, 1):
            d = make_run(base, f"mnist-{c}-s{seed}", cls=c, seed=seed)
            y = (np.arange(300) % 3 != 0).astype(int)
            pd.DataFrame({"name": [f"test[{i}]" for i in range(300)], "label": y,
                          "loss": rng.normal(size=300) + y, "split": "test"}).to_csv(d / "scores.csv", index=False)
            rows.append(pd.read_csv(d / "metrics.csv").assign(run=d.name))
    pd.concat(rows).to_csv(base / "results.csv", index=False)
    se = numbers.bootstrap_se(tmp_path, "mnist/cpu", resamples=100)
    assert 0.005 < se < 0.1  # about sqrt(AUROC (1 - AUROC) / n) for 300 images, averaged over two classes
    assert numbers.bootstrap_se(tmp_path, "mnist/cpu", resamples=100) == se  # a fixed seed: the same number
    (base / "runs" / "mnist-1-s1" / "scores.csv").unlink()
    numbers._bootstrap.cache_clear()
    with pytest.raises(ConfigError, match="scores.csv is missing"):
        numbers.bootstrap_se(tmp_path, "mnist/cpu", resamples=10)
