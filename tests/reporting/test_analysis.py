"""results/ANALYSIS.md and README.md's results: every number recomputed from the committed CSVs
(reporting.claims), no decimal number without its computation, every relative link resolving."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from helpers import REPO
from report_fixtures import results_tree

from pyramid_lib.errors import ConfigError
from pyramid_lib.reporting import claims
from pyramid_lib.reporting.stats import t_interval

RESULTS = REPO / "results"
ANALYSIS = RESULTS / "ANALYSIS.md"


def committed():
    if not ANALYSIS.is_file() or not (RESULTS / "mnist" / "cpu" / "results.csv").is_file():
        pytest.skip("no committed results/ in this checkout")
    return RESULTS


@pytest.mark.parametrize("path", [ANALYSIS, REPO / "README.md"], ids=["ANALYSIS.md", "README.md"])
def test_every_claimed_number_matches_the_committed_csvs(path):
    found = claims.check(path.read_text(), committed())
    wrong = [f"line {c.line}: written {c.written!r}, the CSVs give {c.expected!r} ({c.call})"
             for c in found if not c.ok]
    assert not wrong, "\n".join(wrong)
    assert len(found) >= (40 if path == ANALYSIS else 10)


def test_every_decimal_number_in_the_analysis_has_its_computation():
    assert claims.unclaimed(ANALYSIS.read_text()) == []


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return results_tree(tmp_path_factory.mktemp("claims"))


def test_a_wrong_number_or_word_is_caught_and_rewrite_repairs_it(tree):
    good = ('class 1: 0.9100<!-- value("mnist/cpu", "1") --> over 3<!-- seeds("mnist/cpu") --> seeds; '
            'ours minus AE L2: +0.051<!-- diff("mnist/cpu", "baselines/cpu:ae-l2") -->, '
            'higher<!-- diff("mnist/cpu", "baselines/cpu:ae-l2", "verdict") -->; against the paper: '
            'no difference shown<!-- diff("mnist/cpu", "paper:mnist", "verdict") -->')
    assert [c.ok for c in claims.check(good, tree)] == [True] * 5
    bad = good.replace("0.9100", "0.9200").replace("no difference shown", "lower")
    assert [c.ok for c in claims.check(bad, tree)] == [False, True, True, True, False]
    assert claims.rewrite(bad, tree) == good


def test_rewrite_replaces_only_the_claimed_word_after_a_line_break(tree):
    text = 'weights\nX<!-- setting("fmnist/cpu", "weights") --> and at most\n0<!-- seeds("mnist/cpu") --> seeds'
    assert claims.rewrite(text, tree) == text.replace("\nX", "\nimagenet").replace("\n0", "\n3")
    text = 'the paper (X<!-- diff("mnist/cpu", "paper:mnist", "verdict") -->)'
    assert claims.rewrite(text, tree).startswith("the paper (no difference shown<!--")


def test_rewrite_replaces_a_nan_and_keeps_an_opening_quote(tree):
    text = 'mean nan<!-- mean("mnist/cpu") --> and "X<!-- diff("mnist/cpu", "paper:mnist", "verdict") -->"'
    out = claims.rewrite(text, tree)
    assert out.startswith(f'mean {claims.mean(tree, "mnist/cpu"):.4f}<!--')
    assert '"no difference shown<!--' in out


def test_two_scores_of_the_same_runs_are_paired_run_by_run(tree):
    runs = claims.select(tree, "mnist/cpu")
    per_class = (runs["auroc"] - runs["youden_tpr"]).groupby(runs["normal_class"]).mean()
    got = claims.diff(tree, "mnist/cpu", "mnist/cpu", value="auroc", value_b="youden_tpr")
    assert got == pytest.approx(per_class.mean()) and abs(got) > 0.05
    iv = t_interval(per_class.to_numpy())
    lo = claims.diff(tree, "mnist/cpu", "mnist/cpu", "lo", value="auroc", value_b="youden_tpr")
    assert lo == pytest.approx(iv.lo)


def test_numbers_are_compared_at_the_digits_written_with_their_sign(tree):
    text = '+0.0510<!-- diff("mnist/cpu", "baselines/cpu:ae-l2:dataset=mnist") --> and 0.05<!-- ' \
           'diff("mnist/cpu", "baselines/cpu:ae-l2") -->'
    assert [c.expected for c in claims.check(text, tree)] == ["+0.0510", "0.05"]


def test_selectors_filter_by_method_and_by_results_or_config_columns(tree):
    assert claims.runs(tree, "baselines/cpu:ae-l2") == 9
    assert claims.runs(tree, "baselines/cpu:ocsvm:dataset=mnist") == 3
    assert claims.runs(tree, "mnist/cpu:lr_schedule=cosine:seed=1") == 3
    assert claims.runs(tree, "mnist/cpu:train_limit=all") == 9 and claims.runs(tree, "mnist/cpu:train_limit=4000") == 0
    assert claims.setting(tree, "fmnist/cpu", "weights") == "imagenet"
    with pytest.raises(ConfigError):
        claims.evaluate('__import__("os")', tree)
    with pytest.raises(ConfigError, match="no results.csv"):
        claims.runs(tree, "nowhere/cpu")


def test_seed_sd_is_the_spread_over_seeds_of_each_class(tree):
    runs = claims.select(tree, "mnist/cpu")
    sd = runs.assign(a=pd.to_numeric(runs["auroc"])).groupby("normal_class")["a"].std(ddof=1)
    assert claims.seed_sd(tree, "mnist/cpu") == pytest.approx(sd.mean())
    assert claims.seed_sd(tree, "mnist/cpu", "max") == pytest.approx(sd.max())
    assert claims.seed_sd(tree, "mnist/cpu", "max") > claims.seed_sd(tree, "mnist/cpu") > 0


def test_unclaimed_ignores_code_links_and_comments():
    text = "`lr 0.001` [x](a/0.5.md) <!-- note 0.3 --> 0.42<!-- mean(\"a\") --> but 0.77 alone"
    assert claims.unclaimed(text) == ["0.77"]


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
    a, b = claims.select(tree, "mnist/cpu"), claims.select(tree, "baselines/cpu:ae-l2")
    by_seed = lambda r: r[r.normal_class == "1"].set_index("seed")["auroc"].astype(float)  # noqa: E731
    iv = t_interval((by_seed(a) - by_seed(b)).to_numpy())
    assert claims.class_diff(tree, "mnist/cpu", "baselines/cpu:ae-l2", "1") == pytest.approx(iv.mean)
    assert claims.class_diff(tree, "mnist/cpu", "baselines/cpu:ae-l2", "1", stat="lo") == pytest.approx(iv.lo)
    assert claims.class_diff(tree, "mnist/cpu", "baselines/cpu:ae-l2", "1", stat="hi") == pytest.approx(iv.hi)
    assert claims.class_diff(tree, "mnist/cpu", "baselines/cpu:ae-l2", "1", stat="n") == 3
    # AE L2 sits 0.05-0.052 below ours on every seed: the interval lies above zero
    assert claims.class_diff(tree, "mnist/cpu", "baselines/cpu:ae-l2", "1", stat="verdict") == "higher"
