"""Command-line input: a bad argument fails in one line before anything starts.

Training here uses tiny in-memory subsets of the embedded mnist-sample (a dozen images, a few
batches per epoch): the code paths are the real ones, only the data is small.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import REPO, tiny_cfg

from pyramid_lib import cli as cli_mod
from pyramid_lib.cli import main
from pyramid_lib.engine.trainer import train
from pyramid_lib.errors import (
    ConfigError,
)

# ----------------------------------------------------------------------------------- CLI input

TRAIN = ["train", "--dataset", "mnist", "--normal-class", "0", "--weights", "none"]


@pytest.mark.parametrize("argv,needle", [
    (["train", "--dataset", "imagenet", "--normal-class", "0"], "--dataset"),
    (TRAIN + ["--epochs", "-3"], "--epochs"),
    (TRAIN + ["--epochs", "0"], "--epochs"),
    (TRAIN + ["--epochs", "2.5"], "--epochs"),
    (TRAIN + ["--lambda", "one"], "--lambda"),
    (TRAIN + ["--lambda", "nan"], "--lambda"),
    (TRAIN + ["--lambda", "-1"], "--lambda"),
    (TRAIN + ["--profile", "fast"], "--profile"),
    (TRAIN + ["--encoders", "3"], "--encoders"),
    (TRAIN + ["--encoders", "four"], "--encoders"),
    (TRAIN + ["--pyramid", "pyramid"], "--pyramid"),
    (TRAIN + ["--weights", "resnet"], "--weights"),
    (TRAIN + ["--input-size", "32"], "--input-size"),
    (TRAIN + ["--seed", "-1"], "--seed"),
    (TRAIN + ["--train-limit", "0"], "--train-limit"),
    (TRAIN + ["--device", "gpu0"], "--device"),
    (TRAIN + ["--device", "cuda:7"], "--device"),
    (TRAIN + ["--profile", "paper"], "--profile paper"),
    (["train", "--dataset", "mnist", "--normal-class", "12"], "--normal-class"),
    (["train", "--dataset", "fmnist", "--normal-class", "Hat"], "--normal-class"),
    (["train", "--dataset", "mnist"], "--normal-class is required"),
    (["train", "--dataset", "mvtec"], "--normal-class is required"),
    (["train", "--normal-class", "0"], "--dataset"),
    (["reproduce", "mnist", "--classes", "1", "12"], "--normal-class"),
    (["reproduce", "cifar"], "experiment"),
    (["demo", "--normal-class", "x"], "--normal-class"),
    (["demo", "--device", "tpu"], "--device"),
])
def test_bad_cli_argument_fails_in_one_line_before_anything_starts(argv, needle, capsys, tmp_path, monkeypatch):
    """Fault: a bad argument.  One line on stderr, exit code != 0, no run folder, no download."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "data"
    root.mkdir()
    out = ["--out", str(tmp_path / "out")] if argv[0] in ("train", "reproduce", "demo") else []
    extra = ["--data-root", str(root)] if argv[0] != "demo" else []
    try:
        code = main(argv + out + extra)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code not in (0, None), err
    assert needle in err and len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists() and list(root.iterdir()) == []  # nothing created, nothing downloaded
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


@pytest.mark.slow
def test_bad_cli_argument_in_a_real_process(tmp_path):
    """The same through `python -m pyramid_lib` (exit code, no traceback, nothing written)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-m", "pyramid_lib", "train", "--dataset", "mnist", "--normal-class", "12",
                        "--out", str(tmp_path / "out"), "--data-root", str(tmp_path)], capture_output=True,
                       text=True, env=env, cwd=tmp_path, timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "--normal-class '12'" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_out_that_is_a_file_or_missing_resume_is_refused(tmp_path, tiny):
    f = tmp_path / "file"
    f.write_text("keep me")
    with pytest.raises(ConfigError, match="is a file"):
        train(tiny_cfg(), f, data=tiny, progress=False)
    assert f.read_text() == "keep me"
    with pytest.raises(ConfigError, match="--resume.*does not exist"):
        train(tiny_cfg(), tmp_path / "nope", resume=True, data=tiny, progress=False)
    assert not (tmp_path / "nope").exists()


def test_valid_train_arguments_reach_training_with_those_settings(tmp_path, monkeypatch):
    """The other side of the validation: good arguments (incl. --train-limit) reach train() unchanged."""
    seen = {}

    def fake_train(cfg, out, **kw):
        seen.update(cfg=cfg, out=out, **kw)
        raise KeyboardInterrupt  # stop here; main() turns it into exit 130

    monkeypatch.setattr(cli_mod, "train", fake_train)
    code = main(["train", "--dataset", "mnist-sample", "--normal-class", "3", "--out", str(tmp_path / "r"),
                 "--epochs", "2", "--train-limit", "40", "--lambda", "0.5", "--weights", "none", "--device", "cpu",
                 "--profile", "cpu", "--seed", "7"])
    assert code == 130
    cfg = seen["cfg"]
    assert (cfg.epochs, cfg.train_limit, cfg.lambda_, cfg.seed, cfg.weights, cfg.normal_class) == (2, 40, 0.5, 7,
                                                                                                "random", "3")
    assert cfg.profile == "cpu" and seen["resume"] is False and not (tmp_path / "r").exists()
