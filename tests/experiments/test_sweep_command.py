"""Every run a sweep makes records the command that made it in its own run.json."""

import json

from pyramid_lib.experiments.sweep import record_command


def test_a_trained_or_copied_run_records_its_command_a_skipped_one_keeps_its_own(tmp_path):
    for name in ("a", "b", "c"):
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "run.json").write_text(json.dumps({"status": "done", "command": "older"}))
    record_command(tmp_path, [("a", "done", 1.0), ("b", "copied from x/runs/a", 0.1), ("c", "skipped", 0.0)],
                   "pyramid-ad reproduce mnist --profile cpu")
    got = {n: json.loads((tmp_path / "runs" / n / "run.json").read_text()) for n in "abc"}
    assert got["a"] == {"status": "done", "command": "pyramid-ad reproduce mnist --profile cpu"}
    assert got["b"]["command"] == "pyramid-ad reproduce mnist --profile cpu" and got["c"]["command"] == "older"
