"""benchmarks/regime.py: the validation criterion comes before the test AUROC, runs resume, the
report picks by the criterion (tiny runs on the embedded mnist-sample)."""

import json
import re

import pytest
from helpers import git_commit_file, git_repo, load_benchmark

from pyramid_lib.experiments import selection
from pyramid_lib.experiments.selection import ChoiceError

TINY = ["--dataset", "mnist-sample", "--classes", "1", "--seeds", "0", "--images", "16", "--batch", "8",
        "--test-limit", "60", "--val-others", "50", "--threads", "1"]


@pytest.fixture(scope="module")
def regime():
    return load_benchmark("regime")


@pytest.mark.slow
def test_the_criterion_is_printed_without_a_test_number_and_an_interrupted_comparison_resumes(regime, tmp_path,
                                                                                             capsys):
    out = tmp_path / "runs.jsonl"
    assert regime.main([*TINY, "--epochs", "1", "--jsonl", str(out)]) == 0
    first = capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["val_normals"] == 40 and rows[0]["val_anomalies"] == 50
    assert 0 <= rows[0]["val_auroc"] <= 1 and rows[0]["candidate"] == "cosine 0.003, 16 x 1, batch 8"
    assert f"validation AUROC {rows[0]['val_auroc']:.4f}" in first
    assert "auroc" not in rows[0] and "test AUROC" not in first  # no choice file: no test number
    # the same regime again: nothing is run, nothing appended; a half-written line is skipped with a warning
    with open(out, "a") as f:
        f.write('{"dataset": "mnist-sa')
    with pytest.warns(UserWarning, match="do not parse"):
        assert regime.main([*TINY, "--epochs", "1", "--jsonl", str(out)]) == 0
    again = capsys.readouterr().out
    assert "already in" in again and not re.search(r"validation AUROC \d", again)
    assert len(out.read_text().splitlines()) == 2
    with pytest.raises(SystemExit):  # --test without a choice file
        regime.main([*TINY, "--epochs", "1", "--jsonl", str(out), "--test", "--keep", str(tmp_path)])


@pytest.mark.slow
def test_test_numbers_come_only_after_the_committed_pick(regime, tmp_path, capsys):
    label = "cosine 0.003, 16 x 1, batch 8"
    choice = git_repo(tmp_path / "repo") / "choice.json"
    choice.write_text(json.dumps({"rule": "highest validation AUROC", "criterion": "val_auroc", "candidates": [label],
                                  "classes": {"mnist-sample": ["1"]}, "seeds": [0], "pick": None}))
    git_commit_file(choice)
    out, keep = tmp_path / "runs.jsonl", tmp_path / "weights"
    run = [*TINY, "--epochs", "1", "--jsonl", str(out), "--choice", str(choice), "--keep", str(keep)]
    with pytest.raises(ChoiceError, match="differ from"):
        regime.main([*run, "--seeds", "0", "1"])
    assert regime.main(run) == 0
    with pytest.raises(ChoiceError, match="has no pick"):
        regime.main([*run, "--test"])
    assert regime.main(["--report", "--jsonl", str(out), "--choice", str(choice)]) == 0
    assert "test AUROC" not in capsys.readouterr().out
    assert regime.main(["--pick", "--jsonl", str(out), "--choice", str(choice)]) == 0
    assert json.loads(choice.read_text())["pick"] == label
    git_commit_file(choice, "pick")
    assert regime.main([*run, "--test"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r.get("step", "criterion") for r in rows] == ["criterion", "test"] and 0 <= rows[1]["auroc"] <= 1
    assert rows[1]["choice_commit"] == selection.committed_at(choice)
    capsys.readouterr()
    assert regime.main(["--report", "--jsonl", str(out), "--choice", str(choice)]) == 0
    assert f"{rows[1]['auroc']:.4f}" in capsys.readouterr().out


def test_the_report_picks_by_the_mean_validation_auroc_over_seeds_then_classes(regime, capsys):
    def row(cand, cls, seed, val, test):
        return {"dataset": "mnist", "class": cls, "seed": seed, "candidate": cand, "regime": {"name": cand},
                "val_auroc": val, "auroc": test, "ssim_normal": 0.5, "train_cpu_s": 1.0}

    # A: class 8 mean over seeds 0.85, class 6 0.90 -> 0.875; B: 0.86, 0.885 -> 0.8725 (a mean over all
    # three runs of A, 0.8667, would pick B; so would seed 0 alone: A 0.87).  On the test split B is
    # far better: it must not matter.
    rows = [row("A", "8", 0, 0.84, 0.80), row("A", "8", 1, 0.86, 0.80), row("A", "6", 0, 0.90, 0.90),
            row("B", "8", 0, 0.86, 0.95), row("B", "6", 0, 0.885, 0.95)]
    assert regime.report(rows, tests=True) == "A"
    printed = capsys.readouterr().out
    assert "the validation criterion picks: A" in printed and "would pick: B" in printed
    assert "| A | 0.8750 | 0.8500 |" in printed
    assert "on the seeds every candidate has (0): B" in printed
    assert regime.report(rows) == "A" and "would pick" not in capsys.readouterr().out  # no test column
    # a candidate without a run of a class the others have: no class in common, nothing picked
    assert regime.report([*rows, row("C", "3", 0, 0.99, 0.99)]) is None
    assert "nothing to pick" in capsys.readouterr().out


def test_the_values_pick_records_are_the_means_the_pick_was_made_on_with_one_class_name_in_two_datasets(regime):
    """MNIST 8 and Fashion-MNIST 8 are two cells, not one class "8": --pick once pooled them, so the
    committed criterion values (0.8163 / 0.8204) were not the printed means (0.8225 / 0.8291)."""
    def row(cand, ds, cls, seed, val):
        return {"dataset": ds, "class": cls, "seed": seed, "candidate": cand, "regime": {"name": cand},
                "val_auroc": val, "train_cpu_s": 1.0}

    rows = [row(c, ds, cls, s, v) for c, vals in (("A", (0.9, 0.9, 0.66)), ("B", (0.8, 0.8, 0.8)))
            for (ds, cls), v in zip((("mnist", "8"), ("fmnist", "8"), ("fmnist", "6")), vals) for s in (0, 1)]
    got: dict = {}
    assert regime.report(rows, criterion=got) == "A"  # pooling the two 8s would give A 0.78 and pick B
    assert got == pytest.approx({"A": 0.82, "B": 0.8})
