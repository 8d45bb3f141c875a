"""scripts/migrate_run_records.py: the committed runs' records are in today's format, and the
script rewrites an older one once (only its old key names), refusing a record it cannot tell."""

import importlib.util
import json

import pytest
from conftest import REPO

from pyramid_lib.config import OLD_KEYS, TrainConfig


def _script():
    spec = importlib.util.spec_from_file_location("migrate", REPO / "scripts" / "migrate_run_records.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_committed_records_are_in_todays_format():
    records = sorted((REPO / "results").glob("*/*/runs/*/config.json"))
    if not records:
        pytest.skip("no committed run folders")
    for p in records:
        raw = json.loads(p.read_text())
        assert not set(OLD_KEYS) & set(raw), p
        TrainConfig.from_dict(raw)  # reads


def test_an_old_record_is_migrated_once(tmp_path):
    run = tmp_path / "mnist" / "cpu" / "runs" / "mnist-3"
    run.mkdir(parents=True)
    old = {"dataset": "mnist", "normal_class": "3", "lam": 0.5, "lr": 0.001, "val_fraction": 0.2}
    (run / "config.json").write_text(json.dumps(old, indent=2) + "\n")
    (run / "run.json").write_text(json.dumps({"status": "finished", "config": old, "history": []}, indent=2) + "\n")
    with pytest.raises(Exception, match="older version"):
        TrainConfig.from_dict(old)
    migrate = _script().migrate
    assert migrate(tmp_path) == 2 and migrate(tmp_path) == 0
    new = json.loads((run / "config.json").read_text())
    assert list(new) == ["dataset", "normal_class", "lambda", "lr", "heldout_fraction"]
    cfg = TrainConfig.from_dict(new)
    assert cfg.lambda_ == 0.5 and cfg.heldout_fraction == 0.2
    assert json.loads((run / "run.json").read_text())["config"] == new
    (run / "config.json").write_text(json.dumps({**new, "lam": 1.0}))
    with pytest.raises(SystemExit, match="holds both 'lam' and 'lambda'"):
        migrate(tmp_path)
