"""benchmarks/mvtec_regime.py end to end on a tiny synthetic category (slow: it trains): the criteria
first, no test number before the committed pick, resume, and the first selection's history."""

import json

import pytest
from helpers import REPO, git_commit_file, git_repo, load_benchmark

from pyramid_lib.data.synthetic import synthetic_mvtec
from pyramid_lib.experiments.selection import ChoiceError


@pytest.mark.slow
def test_no_test_number_before_the_committed_pick_and_ema_scores_an_average(tmp_path, capsys):
    synthetic_mvtec(tmp_path / "mvtec_ad" / "bottle", size=128, n_train=24, n_good=3)
    mvtec_regime = load_benchmark("mvtec_regime")
    choice = git_repo(tmp_path / "repo") / "choice.json"
    choice.write_text(json.dumps({"rule": "highest mean small-defect AUROC", "criterion": "criterion_small_auroc",
                                  "categories": ["bottle"], "candidates": ["b8-10", "ema-b16-50", "flips-b16-50"],
                                  "seeds": [0], "pick": None}))
    out = tmp_path / "runs.jsonl"
    args = ["--choice", str(choice), "--epochs", "1", "--data-root", str(tmp_path), "--jsonl", str(out)]
    with pytest.raises(ChoiceError, match="not committed"):
        mvtec_regime.main([*args, "--keep", str(tmp_path / "w")])
    git_commit_file(choice)
    assert mvtec_regime.main([*args, "--keep", str(tmp_path / "w")]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["candidate"] for r in rows] == ["b8-10", "ema-b16-50", "flips-b16-50"] and rows[1]["ema"] == 0.99
    assert rows[2]["augment"] == "d8" and "same_as" not in rows[2]  # bottle allows the flips
    assert not any("test_auroc" in r for r in rows) and "test AUROC" not in capsys.readouterr().out
    with pytest.raises(ChoiceError, match="has no pick"):
        mvtec_regime.main([*args, "--keep", str(tmp_path / "w"), "--test"])
    with pytest.raises(ChoiceError, match="differ from the choice file"):
        mvtec_regime.main([*args, "--keep", str(tmp_path / "w"), "--seeds", "0", "1"])
    assert mvtec_regime.main([*args, "--keep", str(tmp_path / "w")]) == 0  # resumed: nothing trained again
    assert len(out.read_text().splitlines()) == 3
    assert mvtec_regime.main([*args, "--pick"]) == 0
    best = max(rows, key=lambda r: r["criterion_small_auroc"])["candidate"]
    assert json.loads(choice.read_text())["pick"] == best
    with pytest.raises(ChoiceError, match="not committed"):  # the pick is written, not yet committed
        mvtec_regime.main([*args, "--keep", str(tmp_path / "w"), "--test"])
    git_commit_file(choice, "pick")
    assert mvtec_regime.main([*args, "--keep", str(tmp_path / "w"), "--test"]) == 0
    tests = [json.loads(line) for line in out.read_text().splitlines()][3:]
    assert [t["step"] for t in tests] == ["test"] * 3 and all(0 <= t["test_auroc"] <= 1 for t in tests)
    assert "test AUROC" in capsys.readouterr().out


def test_the_flips_a_category_does_not_allow_train_as_without_flips():
    mvtec_regime = load_benchmark("mvtec_regime")
    assert mvtec_regime.settings("flips-b16-50", "pill") == mvtec_regime.settings("b16-50", "pill")
    assert mvtec_regime.settings("flips-b16-50", "bottle")["augment"] == "d8"


def test_the_first_selection_prints_its_test_columns_only_as_history(capsys):
    mvtec_regime = load_benchmark("mvtec_regime")
    jsonl = str(REPO / "benchmarks" / "results-mvtec-regime.jsonl")
    with pytest.raises(SystemExit):
        mvtec_regime.main(["--report", "--jsonl", jsonl])
    assert mvtec_regime.main(["--report", "--history", "--jsonl", jsonl]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("history: a selection made before choice files existed") and "| b4-10 |" in printed


def test_the_committed_mvtec_schedule_choice_has_no_test_metric_and_the_issue_candidates():
    mvtec_regime = load_benchmark("mvtec_regime")
    from pyramid_lib.experiments import selection

    choice = selection.load_choice(REPO / "benchmarks" / "choices" / "mvtec-schedule.json")
    assert choice["categories"] == ["bottle", "pill"] and choice["seeds"] == [0, 1, 2]
    assert {"b4-10", "b16-50", "flips-b16-50"} <= set(choice["candidates"]) <= set(mvtec_regime.CANDIDATES)
    assert any(mvtec_regime.CANDIDATES[c].get("ema") for c in choice["candidates"])
    assert choice["criterion"] == "criterion_small_auroc"


def test_the_first_selection_history_is_told_as_the_git_history_shows():
    import subprocess

    mvtec_regime = load_benchmark("mvtec_regime")
    text = (REPO / "benchmarks" / "README.md").read_text()
    section = text[text.index("## A regime for MVTec AD"):text.index("## On a GPU")]
    assert "fixed before any test number was looked at" not in section  # the old, false sentences
    assert "Printed only after the choice" not in section
    commits = ["222b138", "5148e0d", "823aa64", "cf1b166"]
    assert [section.index(c) for c in commits] == sorted(section.index(c) for c in commits)
    for older, newer in zip(commits, commits[1:]):  # in this order in the history
        assert subprocess.run(["git", "merge-base", "--is-ancestor", older, newer], cwd=REPO).returncode == 0
    rows = mvtec_regime.selection.read_rows(REPO / "benchmarks" / "results-mvtec-regime.jsonl")
    picks = mvtec_regime.first_rules(rows, "bottle")
    assert f"Under the rule as committed at 5148e0d, the final jsonl picks {picks['5148e0d']}" in section
    assert f"the rule as finally committed picks {picks['cf1b166']}" in section
    assert picks == {"5148e0d": "b16-50", "cf1b166": "b4-10"}
