"""The threshold rules (threshold.py): Youden's tie-break is stated and exact, and a run's own
thresholds reproduce its rates exactly from its scores.csv (issue 13g)."""

from __future__ import annotations

import numpy as np
from helpers import copy_run

from pyramid_lib.engine.evaluate import evaluate_run
from pyramid_lib.metrics import PRIMARY_SCORE
from pyramid_lib.threshold import HELD_OUT_RULE, YOUDEN_RULE, from_normals, rates, youden


def test_youden_ties_take_the_highest_threshold():
    # normals 0.1 0.3 0.5, anomalies 0.2 0.4 0.6: cutting at 0.6 (TPR 1/3, FPR 0), at 0.4
    # (TPR 2/3, FPR 1/3) and at 0.2 (TPR 1, FPR 2/3) all give J = 1/3
    labels = [0, 0, 0, 1, 1, 1]
    scores = [0.1, 0.3, 0.5, 0.2, 0.4, 0.6]
    j = {t: rates(labels, scores, t)["tpr"] + rates(labels, scores, t)["tnr"] - 1 for t in scores}
    best = max(j.values())
    tied = sorted(t for t, v in j.items() if abs(v - best) < 1e-12)
    assert len(tied) == 3
    assert youden(labels, scores) == max(tied) == 0.6
    assert youden(labels[::-1], scores[::-1]) == 0.6  # order of the images does not matter


def test_youden_compares_j_exactly_not_in_floats():
    # P = 3, N = 7: J values whose float differences are rounding only must still tie exactly
    rng = np.random.default_rng(0)
    for _ in range(200):
        labels = rng.integers(0, 2, 10)
        if labels.min() == labels.max():
            continue
        scores = rng.integers(0, 6, 10) / 5  # many equal scores
        t = youden(labels, scores)
        cands = np.unique(scores)
        p, n = labels.sum(), (1 - labels).sum()
        jint = {c: rates(labels, scores, c)["tp"] * n - rates(labels, scores, c)["fp"] * p for c in cands}
        best = max(max(jint.values()), 0)
        expect = max(c for c, v in jint.items() if v == best) if best > 0 else scores.max()
        assert t == expect


def test_youden_without_any_separation_returns_the_highest_score():
    assert youden([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5


def test_a_runs_thresholds_reproduce_its_rates_from_scores_csv(tmp_path, tiny_run, tiny):
    run = copy_run(tiny_run, tmp_path / "run")
    m = evaluate_run(run, data=tiny, progress=False).iloc[0]
    test, held = run.read_scores()
    assert test[PRIMARY_SCORE].dtype == np.float64
    for rule, at in (("youden", YOUDEN_RULE), ("heldout", HELD_OUT_RULE)):
        r = rates(test.label, test[PRIMARY_SCORE], m[f"{rule}_threshold"], at)
        assert (r["tpr"], r["tnr"]) == (m[f"{rule}_tpr"], m[f"{rule}_tnr"])
    assert youden(test.label, test[PRIMARY_SCORE]) == m.youden_threshold  # bit for bit, after the CSV trip
    assert from_normals(held[PRIMARY_SCORE]) == m.heldout_threshold
