"""benchmarks/regime.py: the validation criterion comes before the test AUROC, runs resume, the
report picks by the criterion (tiny runs on the embedded mnist-sample)."""

import json
import re

import pytest
from helpers import load_benchmark

TINY = ["--dataset", "mnist-sample", "--classes", "1", "--seeds", "0", "--images", "16", "--batch", "8",
        "--test-limit", "60", "--val-others", "50", "--threads", "1"]


@pytest.fixture(scope="module")
def regime():
    return load_benchmark("regime")


@pytest.mark.slow
def test_the_criterion_is_printed_before_the_test_and_an_interrupted_comparison_resumes(regime, tmp_path, capsys):
    out = tmp_path / "runs.jsonl"
    assert regime.main([*TINY, "--epochs", "1", "--jsonl", str(out)]) == 0
    first = capsys.readouterr().out.splitlines()
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["val_normals"] == 40 and rows[0]["val_anomalies"] == 50
    assert 0 <= rows[0]["val_auroc"] <= 1 and rows[0]["candidate"] == "cosine 0.003, 16 x 1, batch 8"
    said = next(i for i, ln in enumerate(first) if ln.startswith("# mnist-sample 1 seed 0: validation AUROC"))
    row = next(i for i, ln in enumerate(first) if ln.startswith("| mnist-sample | 1 | 0 |"))
    assert said < row and f"{rows[0]['val_auroc']:.4f}" in first[said]
    # the same regime again: nothing is run, nothing appended; a half-written line is skipped with a warning
    with open(out, "a") as f:
        f.write('{"dataset": "mnist-sa')
    assert regime.main([*TINY, "--epochs", "1", "--jsonl", str(out)]) == 0
    again = capsys.readouterr().out
    assert "already in" in again and "do not parse" in again and not re.search(r"validation AUROC \d", again)
    assert len(out.read_text().splitlines()) == 2


def test_the_report_picks_by_the_mean_validation_auroc_over_seeds_then_classes(regime, capsys):
    def row(cand, cls, seed, val, test):
        return {"dataset": "mnist", "class": cls, "seed": seed, "candidate": cand, "regime": {"name": cand},
                "val_auroc": val, "auroc": test, "ssim_normal": 0.5, "train_cpu_s": 1.0}

    # A: class 8 mean over seeds 0.85, class 6 0.90 -> 0.875; B: 0.86, 0.885 -> 0.8725 (a mean over all
    # three runs of A, 0.8667, would pick B; so would seed 0 alone: A 0.87).  On the test split B is
    # far better: it must not matter.
    rows = [row("A", "8", 0, 0.84, 0.80), row("A", "8", 1, 0.86, 0.80), row("A", "6", 0, 0.90, 0.90),
            row("B", "8", 0, 0.86, 0.95), row("B", "6", 0, 0.885, 0.95)]
    assert regime.report(rows) == "A"
    printed = capsys.readouterr().out
    assert "the validation criterion picks: A" in printed and "would pick: B" in printed
    assert "| A | 0.8750 | 0.8500 |" in printed
    assert "on the seeds every candidate has (0): B" in printed
    # a candidate without a run of a class the others have: no class in common, nothing picked
    assert regime.report([*rows, row("C", "3", 0, 0.99, 0.99)]) is None
    assert "nothing to pick" in capsys.readouterr().out
