"""experiments/selection.py: a choice file counts only once committed and unchanged; test numbers
need a committed pick; the JSON-lines log resumes and skips a half-written line."""

import json

import pytest
from helpers import git_commit_file, git_repo

from pyramid_lib.experiments import selection

CHOICE = {"rule": "highest mean", "criterion": "val_auroc", "candidates": ["a", "b"], "seeds": [0, 1], "pick": None}


def test_a_choice_file_governs_runs_only_once_committed_and_unchanged(tmp_path):
    path = git_repo(tmp_path / "repo") / "choice.json"
    with pytest.raises(selection.ChoiceError, match="no choice file"):
        selection.require_committed(path)
    path.write_text(json.dumps(CHOICE))
    with pytest.raises(selection.ChoiceError, match="not committed"):
        selection.require_committed(path)
    git_commit_file(path)
    assert selection.require_committed(path)["commit"] == selection.committed_at(path)
    path.write_text(json.dumps({**CHOICE, "candidates": ["a", "b", "c"]}))  # edited after the commit
    with pytest.raises(selection.ChoiceError, match="differs from its committed version"):
        selection.require_committed(path)


def test_test_numbers_need_a_committed_pick_written_once(tmp_path):
    path = git_repo(tmp_path / "repo") / "choice.json"
    path.write_text(json.dumps(CHOICE))
    git_commit_file(path)
    with pytest.raises(selection.ChoiceError, match="has no pick"):
        selection.require_committed(path, pick=True)
    with pytest.raises(selection.ChoiceError, match="not a candidate"):
        selection.write_pick(path, "z", {})
    selection.write_pick(path, "b", {"a": 0.8, "b": 0.9})
    with pytest.raises(selection.ChoiceError, match="not committed"):  # written, not yet committed
        selection.require_committed(path, pick=True)
    git_commit_file(path, "pick")
    assert selection.require_committed(path, pick=True)["pick"] == "b"
    with pytest.raises(selection.ChoiceError, match="already holds"):
        selection.write_pick(path, "a", {})


def test_a_choice_file_cannot_name_a_test_metric_nor_miss_a_field(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({**CHOICE, "criterion": "test_auroc"}))
    with pytest.raises(selection.ChoiceError, match="test metric"):
        selection.load_choice(path)
    path.write_text(json.dumps({k: v for k, v in CHOICE.items() if k != "seeds"}))
    with pytest.raises(selection.ChoiceError, match="lacks seeds"):
        selection.load_choice(path)
    with pytest.raises(selection.ChoiceError, match="differ from the choice file"):
        selection.check_request(CHOICE, seeds=[0, 1, 2])
    selection.check_request(CHOICE, seeds=None, candidates=["a", "b"])


def test_the_log_resumes_and_skips_a_half_written_line(tmp_path):
    path = tmp_path / "runs.jsonl"
    log = selection.Log(path, key=lambda r: (r["name"], r["seed"]))
    done = []
    rows = log.run([("a", 0), ("b", 0)], lambda k: done.append(k) or {"name": k[0], "seed": k[1], "v": len(done)})
    assert [r["v"] for r in rows] == [1, 2] and done == [("a", 0), ("b", 0)]
    with open(path, "a") as f:
        f.write('{"name": "c", "se')  # a process killed while writing
    with pytest.warns(UserWarning, match="1 line"):
        log = selection.Log(path, key=lambda r: (r["name"], r["seed"]))
    done.clear()
    rows = log.run([("a", 0), ("c", 0)], lambda k: done.append(k) or {"name": k[0], "seed": k[1], "v": 9})
    assert done == [("c", 0)] and [r["v"] for r in rows] == [1, 9]
    with pytest.warns(UserWarning, match="1 line"):  # the new line was not glued to the cut one
        assert selection.Log(path, key=lambda r: (r["name"], r["seed"])).has(("c", 0))
