"""ANALYSIS.md's claims table: the paper's 15 claims, each numbered once (7 and 8 merged), each with a
verdict computed from the runs; the rows the reviewer found soft state what the evidence says (issue 29)."""

import re

import pytest
from helpers import REPO

from pyramid_lib import paper
from pyramid_lib.reporting import claims, numbers
from pyramid_lib.reporting.stats import HIGHER, LOWER, NO_DIFFERENCE

RESULTS = REPO / "results"
pytestmark = pytest.mark.skipif(not (RESULTS / "ANALYSIS.md").is_file(), reason="no committed results/")
E = "ablation-encoders/cpu:dataset=mvtec:encoders="
LM1, LM0 = "ablation-lambda/cpu:dataset=mvtec:lambda=1", "ablation-lambda/cpu:dataset=mvtec:lambda=0"
F6, M6 = "fmnist/cpu:epochs=6", "mnist/cpu:epochs=6"


def rows() -> dict[str, str]:
    text = (RESULTS / "ANALYSIS.md").read_text()
    table = text[text.index("## The paper's claims"):text.index("## Which runs these are")]
    return {ln.split(" | ")[0].strip("| "): ln for ln in table.splitlines() if re.match(r"\| \d", ln)}


def test_all_fifteen_claims_have_one_row_with_a_verdict():
    got = rows()
    numbered = sorted(int(n) for key in got for n in key.split(", "))
    assert numbered == list(range(1, 16))
    words = (HIGHER, LOWER, NO_DIFFERENCE, "not testable", "not tested")
    assert all(any(w in ln.split(" | ")[-1] for w in words) for ln in got.values())


def test_the_perceptual_loss_row_gives_the_own_loss_bottle_comparison_and_its_verdict():
    d = numbers.class_diff(RESULTS, LM1, LM0, "bottle")
    lo = numbers.class_diff(RESULTS, LM1, LM0, "bottle", stat="lo")
    hi = numbers.class_diff(RESULTS, LM1, LM0, "bottle", stat="hi")
    # the issue found -0.0365 [-0.0523, -0.0207] on runs of two commits; retrained at one clean commit
    # (2f33920): -0.0365 [-0.0592, -0.0138]
    assert hi < 0 and round(d, 4) == -0.0365
    row = rows()["13"]
    assert f"{d:+.4f} [{lo:+.4f}, {hi:+.4f}]" in row
    assert "set up like Fig. 5 (bottle, own loss): lower" in row.split(" | ")[-1]


def test_the_encoder_row_states_its_degrees_of_freedom_the_bootstrap_and_the_commits():
    row = rows()["10"]
    verdict = row.split(" | ")[-1]
    paired = numbers.class_diff(RESULTS, E + "6", E + "4", "bottle", stat="verdict")
    assert paired == NO_DIFFERENCE  # +0.0201 [-0.0090, +0.0492] at one clean commit (two commits: "higher")
    assert f"{paired} seed-paired on 2 degrees of freedom" in verdict
    assert claims.welch(RESULTS, E + "6", E + "4", "bottle", stat="verdict") == NO_DIFFERENCE
    boot = claims.image_bootstrap(RESULTS, E + "6", E + "4", "bottle", "verdict")
    assert f"no difference shown unpaired, {boot} with the test images resampled" in verdict
    assert "six encoders 2f33920 (3), four 2f33920 (3)" in row and "from runs of one clean commit" in verdict


def test_rows_4_and_6_test_the_ranking_against_the_other_methods_as_printed():
    assert paper.TABLE_II["GPND"] == 0.933 and paper.TABLE_II["OCGAN"] == 0.924
    for method in ("GPND", "OCGAN"):
        verdict = claims.versus_method(RESULTS, F6, "fmnist", method, "verdict")
        assert f"against {method} {verdict}" in rows()["4"].split(" | ")[-1]
    ours = numbers.over_seeds(RESULTS, F6)
    assert claims.versus_method(RESULTS, F6, "fmnist", "GPND") == pytest.approx(ours - 0.933)
    assert f"against LSA {claims.versus_method(RESULTS, M6, 'mnist', 'LSA', 'verdict')}" in rows()["6"]
    assert claims.class_wins(RESULTS, M6, "paper") == 6  # the paper's own column, ties counted: its "6 of 10"


def test_untestable_claims_say_why_and_what_would_test_them():
    assert "what would test it" in rows()["14"] and "per defect size" in rows()["2"]
    assert "ImageNet" in rows()["13"].split(" | ")[-1]
