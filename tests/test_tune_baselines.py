"""benchmarks/tune_baselines.py: settings are judged on the validation set only (never a test image),
the tuning resumes, and the pick is the best mean validation AUROC (tiny runs on mnist-sample)."""

import json

import pytest
from helpers import REPO, load_benchmark

from pyramid_lib import baselines as bl
from pyramid_lib import data as data_mod


@pytest.fixture(scope="module")
def tune():
    return load_benchmark("tune_baselines")


@pytest.mark.slow
def test_tuning_scores_no_test_image_resumes_and_picks_the_best_mean(tune, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tune, "GRIDS", {"ocsvm": [{"nu": 0.1, "gamma_scale": 1.0}, {"nu": 0.5, "gamma_scale": 0.1}],
                                        "kde": [{"bandwidth": 1.0}, {"bandwidth": 8.0}], "ae-l2": [{"lr": 3e-3}]})
    scored = []
    real_flat = bl._flat
    monkeypatch.setattr(bl, "_flat", lambda s: scored.append(list(s.names)) or real_flat(s))
    real_ae_scores = bl.ae_scores
    monkeypatch.setattr(bl, "ae_scores", lambda m, model, s, *a, **k: scored.append(list(s.names))
                        or real_ae_scores(m, model, s, *a, **k))
    out = tmp_path / "tune.jsonl"
    args = ["--datasets", "mnist-sample", "--classes", "7", "--methods", "ocsvm", "kde", "ae-l2",
            "--profile", "quick", "--epochs", "1", "--jsonl", str(out)]
    assert tune.main(args) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 5 and {r["val_anomalies"] for r in rows} == {1000}
    test_names = set(data_mod.load("mnist-sample", "7").test.names)
    assert scored and not any(set(names) & test_names for names in scored)
    printed = capsys.readouterr().out
    for method in ("ocsvm", "kde"):
        rs = [r for r in rows if r["method"] == method]
        best = max(rs, key=lambda r: r["val_auroc"])["setting"]
        assert f"pick for mnist-sample {method}: {tune.label(best)} (mean" in printed
    # again: nothing is refitted
    scored.clear()
    assert tune.main(args) == 0 and len(out.read_text().splitlines()) == 5 and not scored


def test_the_tuned_settings_of_the_library_are_the_picks_of_the_committed_tuning(tune, capsys):
    picks = tune.report(tune.read_rows(REPO / "benchmarks" / "results-tune-baselines.jsonl"))
    capsys.readouterr()
    tuned = {(d, m): s for d, ms in bl.TUNED.items() for m, s in ms.items()}
    picked = {(d, m): s for d, ms in picks.items() for m, s in ms.items()}
    assert tuned and all(picked.get(k) == s for k, s in tuned.items())  # each entry is the recorded pick
    # and every pick is entered: OC-SVM's, KDE's and the autoencoders' learning rates
    assert all(k in tuned for k in picked) and {m for _, m in tuned} == {*bl.SKLEARN_METHODS, *bl.AE_METHODS}


def test_the_ae_learning_rate_tuning_runs_only_from_its_committed_choice_files(tune, tmp_path):
    from helpers import git_commit_file, git_repo

    from pyramid_lib.experiments import selection

    for path in sorted((REPO / "benchmarks" / "choices").glob("ae-lr-*.json")):
        c = selection.load_choice(path)
        assert [float(x) for x in c["candidates"]] == [s["lr"] for s in tune.GRIDS[c["method"]]]
    src = REPO / "benchmarks" / "choices" / "ae-lr-mnist-ae-l2.json"
    choice = git_repo(tmp_path / "repo") / src.name
    choice.write_text(src.read_text())
    args = ["--datasets", "mnist", "--classes", "2", "5", "8", "--methods", "ae-l2", "--choice", str(choice),
            "--jsonl", str(tmp_path / "t.jsonl")]
    with pytest.raises(selection.ChoiceError, match="not committed"):
        tune.main(args)
    git_commit_file(choice)
    with pytest.raises(selection.ChoiceError, match="not the one committed"):
        tune.main([*args[:2], "--classes", "2", *args[6:]])
