"""config.py is the one configuration source: the command line is generated from TrainConfig's
fields, TrainConfig.validate() is the only check, config.json round-trips (key "lambda"), and
`fast` / `test_limit` are settings like the others."""

from __future__ import annotations

import argparse
import json
import warnings
from dataclasses import asdict, fields
from pathlib import Path
from typing import Literal, get_args, get_origin, get_type_hints

import pandas as pd
import pytest
import torch

from pyramid_lib import cli, config, data
from pyramid_lib.baselines import METHODS
from pyramid_lib.config import PROFILES, TrainConfig
from pyramid_lib.engine.build import build, fast_path, resolve_weights, training_optimizer
from pyramid_lib.errors import ConfigError
from pyramid_lib.experiments.plan import EXPERIMENTS, plan_and_dir
from pyramid_lib.model import fast, weights
from pyramid_lib.model.network import PYRAMID_DIVISORS, PYRAMID_MODES, ModelConfig

REPO = Path(__file__).resolve().parents[1]


def options(command: str) -> dict[str, argparse.Action]:
    """The options of a sub-command, by dest."""
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a for a in sub.choices[command]._actions}


# ------------------------------------------------------------------ options generated from fields

def test_every_setting_is_an_option_of_train_and_reproduce_with_the_fields_flag_and_help():
    train, reproduce = options("train"), options("reproduce")
    for f in fields(TrainConfig):
        assert train[f.name].option_strings == [config.FLAGS[f.name]]
        assert f.metadata["help"] in train[f.name].help
        if f.name not in ("dataset", "normal_class"):  # per run in a sweep: --dataset DATASET..., --classes
            assert reproduce[f.name].option_strings == [config.FLAGS[f.name]]
    assert config.FLAGS["lambda_"] == "--lambda" and config.FLAGS["heldout_fraction"] == "--heldout-fraction"
    assert config.FLAGS["fast"] == "--no-fast" and config.FLAGS["download"] == "--no-download"
    demo = options("demo")
    assert all(demo[n].option_strings == [config.FLAGS[n]] for n in cli.DEMO_FIELDS)


def test_choices_come_from_the_literal_types():
    hints = get_type_hints(TrainConfig)
    train = options("train")
    for name, hint in hints.items():
        if get_origin(hint) is Literal and name != "profile":
            assert tuple(train[name].choices) == get_args(hint), name
    assert tuple(train["profile"].choices) == tuple(PROFILES) == get_args(config.Profile)
    assert "custom" in get_args(hints["profile"])  # a config built in code, not from a preset
    # the lists other layers keep are the same values
    assert tuple(train["dataset"].choices) == data.registry.names() and data.DATASETS == data.registry.names()
    assert get_args(hints["encoders"]) == tuple(PYRAMID_DIVISORS) and get_args(hints["pyramid"]) == PYRAMID_MODES
    assert set(get_args(hints["weights"])) == {*weights.CHOICES, "random"}
    reproduce = options("reproduce")
    assert tuple(reproduce["experiment"].choices) == EXPERIMENTS and tuple(reproduce["methods"].choices) == METHODS


def test_options_are_unset_unless_given_so_the_profile_decides():
    a = cli.build_parser().parse_args(["train", "--dataset", "mnist", "--out", "x"])
    assert all(getattr(a, f.name) is None for f in fields(TrainConfig) if f.name != "dataset")
    cfg = cli.config_from_args(a, cli.TRAIN_FIELDS)
    assert cfg == TrainConfig.from_profile("laptop", dataset="mnist")
    assert (cfg.epochs, cfg.train_limit, cfg.batch_size, cfg.lr, cfg.lr_schedule, cfg.weights) == (
        8, 1000, 32, 3e-3, "cosine", "auto")
    a = cli.build_parser().parse_args(["train", "--dataset", "mnist", "--out", "x", "--profile", "cpu", "--no-fast",
                                       "--test-limit", "500", "--heldout-fraction", "0.2", "--lambda", "0"])
    cfg = cli.config_from_args(a, cli.TRAIN_FIELDS)
    assert (cfg.profile, cfg.train_limit, cfg.fast, cfg.test_limit, cfg.heldout_fraction, cfg.lambda_) == (
        "cpu", 4000, False, 500, 0.2, 0.0)


# ------------------------------------------------------------------------------- one validation

def test_the_cli_has_no_validators_of_its_own():
    for gone in ("non_negative_float", "provisional_weights", "REPRODUCE_EXPERIMENTS", "BASELINE_METHODS"):
        assert not hasattr(cli, gone), gone
    assert cli.resolve_weights is resolve_weights  # engine/build.py's, not a copy
    train = options("train")
    for f in fields(TrainConfig):
        assert train[f.name].type in (None, int, float, str), f.name  # plain values, checked by validate()


@pytest.mark.parametrize("flag,value,field,bad", [
    ("--epochs", "0", "epochs", 0),
    ("--lambda", "-1", "lambda_", -1.0),
    ("--lambda", "nan", "lambda_", float("nan")),
    ("--seed", "-1", "seed", -1),
    ("--heldout-fraction", "1", "heldout_fraction", 1.0),
    ("--batch-size", "1", "batch_size", 1),
    ("--test-limit", "1", "test_limit", 1),
    ("--lr", "0", "lr", 0.0),
])
def test_a_bad_value_is_reported_by_train_config_validate(flag, value, field, bad, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as e:
        TrainConfig.from_profile("quick", dataset="mnist", **{field: bad}).validate()
    assert str(e.value).startswith(flag + ":")
    code = cli.main(["train", "--dataset", "mnist", "--normal-class", "0", "--weights", "none", "--out", "r",
                     flag, value])
    assert code == 1 and capsys.readouterr().err.strip() == f"pyramid-ad: error: {e.value}"
    assert list(tmp_path.iterdir()) == []


def test_model_config_and_train_config_share_one_shape_check():
    cfg = TrainConfig(dataset="folder", input_size=64, encoders=2, pyramid="spatial")
    assert cfg.model == ModelConfig(64, 2, "spatial")
    for kw, flag in ((dict(input_size=27), "--input-size"), (dict(encoders=3), "--encoders"),
                     (dict(pyramid="bins"), "--pyramid")):
        bad = TrainConfig(dataset="folder", **{"input_size": 64, **kw})
        with pytest.raises(ConfigError, match=f"^{flag}: must be") as ce:
            bad.validate()
        with pytest.raises(ValueError) as ve:
            _ = bad.model
        assert str(ve.value).split(" ", 1)[1] == str(ce.value).split(": ", 1)[1]  # the same check, two errors


def test_weights_request_then_resolved_value(monkeypatch):
    cfg = TrainConfig.from_profile("quick", dataset="mnist").validate()
    assert cfg.weights == "auto"  # a request is a valid setting ...

    def offline():
        raise OSError("offline")

    monkeypatch.setattr(weights, "_fetch", offline)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        used = resolve_weights(cfg)
    assert used.weights == "random" and cfg.weights == "auto" and any("RANDOM" in str(x.message) for x in w)
    assert resolve_weights(TrainConfig(weights="none")).weights == "random"
    with pytest.raises(ConfigError, match="resolve"):
        build(cfg)  # ... that must be resolved before a network is built
    paper = TrainConfig.from_profile("paper", dataset="mnist")
    assert paper.weights == "imagenet" and paper.validate() is paper
    with pytest.raises(ConfigError, match="^--profile paper"):
        TrainConfig.from_profile("paper", dataset="mnist", weights="none").validate()
    with pytest.raises(ConfigError, match="^--profile paper"):  # auto offline: random, refused after resolving
        resolve_weights(TrainConfig.from_profile("paper", dataset="mnist", weights="auto")).validate()


def test_profiles_are_presets():
    for name, settings in PROFILES.items():
        cfg = TrainConfig.from_profile(name, dataset="fmnist", seed=3)
        assert cfg.profile == name and cfg.seed == 3 and all(getattr(cfg, k) == v for k, v in settings.items())
    assert config.get_profile("cpu") == PROFILES["cpu"] and config.get_profile("cpu") is not PROFILES["cpu"]
    with pytest.raises(ConfigError, match="--profile"):
        TrainConfig.from_profile("fast")


def test_image_datasets_take_the_image_profile_on_top_and_mnist_does_not():
    """MVTec AD and folders (a few hundred 120x120 images) get IMAGE_PROFILES' settings; MNIST-like
    datasets and profiles without an image entry keep PROFILES'; an explicit option still wins."""
    assert config.IMAGE_PROFILES and set(config.IMAGE_PROFILES) <= set(PROFILES)
    for name, extra in config.IMAGE_PROFILES.items():
        for dataset in ("mvtec", "folder"):
            cfg = TrainConfig.from_profile(name, dataset=dataset, normal_class="bottle")
            assert all(getattr(cfg, k) == v for k, v in {**PROFILES[name], **extra}.items() if k != "weights")
        mnist = TrainConfig.from_profile(name, dataset="mnist")
        assert all(getattr(mnist, k) == v for k, v in PROFILES[name].items())
        assert TrainConfig.from_profile(name, dataset="mvtec", normal_class="bottle", epochs=3).epochs == 3
    assert config.get_profile("paper", "mvtec") == PROFILES["paper"]  # Table I is Table I on every dataset


# ---------------------------------------------------------------------------------- config.json

def test_lambda_is_written_as_lambda_and_old_key_names_are_refused():
    cfg = TrainConfig(dataset="mnist", lambda_=0.5, heldout_fraction=0.2)
    d = cfg.to_dict()
    assert d["lambda"] == 0.5 and "lambda_" not in d and list(d) == [config.FIELD_KEYS.get(f.name, f.name)
                                                                      for f in fields(TrainConfig)]
    assert TrainConfig.from_dict(json.loads(json.dumps(d))) == cfg
    assert TrainConfig.from_dict({**d, "lambda_": 9.0}).lambda_ in (0.5, 9.0)  # either spelling reads
    old = {k: v for k, v in d.items() if k not in ("lambda", "heldout_fraction", "fast", "test_limit")}
    back = TrainConfig.from_dict({**old, "lambda": 0.5, "heldout_fraction": 0.2})
    assert back == cfg and back.fast is True and back.test_limit is None  # a field added since: its default
    for key in ("lam", "val_fraction"):  # an older version's names: migrated once, never guessed
        with pytest.raises(ConfigError, match=f"'{key}'.*scripts/migrate_run_records.py"):
            TrainConfig.from_dict({**old, key: 0.5})
    assert TrainConfig.from_dict(asdict(cfg)) == cfg  # files written with the field names read too


def test_a_committed_config_json_reads_as_fast():
    """A config.json written before the `fast` field existed (the earlier committed runs) reads as fast."""
    old = (json.loads(p.read_text()) for p in sorted((REPO / "results").glob("*/*/runs/*/config.json")))
    raw = next((d for d in old if "fast" not in d), None)
    if raw is None:
        pytest.skip("no committed run folder made before the fast field")
    cfg = TrainConfig.from_dict(raw)
    assert "fast" not in raw and cfg.fast is True and cfg.test_limit is None
    assert cfg.lambda_ == raw["lambda"] and cfg.validate() is cfg


@pytest.mark.slow
def test_no_fast_is_recorded_in_config_json_and_builds_the_plain_network(tmp_path):
    out = tmp_path / "run"
    assert cli.main(["train", "--dataset", "mnist-sample", "--normal-class", "1", "--out", str(out), "--no-fast",
                     "--epochs", "1", "--train-limit", "8", "--batch-size", "4", "--weights", "none",
                     "--test-limit", "20", "--device", "cpu", "--no-download"]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["fast"] is False and saved["test_limit"] == 20
    assert cli.main(["evaluate", str(out), "--device", "cpu"]) == 0
    scores = pd.read_csv(out / "scores.csv")
    assert len(scores[scores.split == "test"]) == 20  # the seeded, stratified test_limit subset
    cfg = TrainConfig.from_dict(saved)
    assert cfg.fast is False
    model, loss = fast_path(cfg, *build(cfg))
    training_optimizer(cfg, model)
    assert fast.rewritten(model) == [] and model.backbone.stem[0].weight.is_contiguous()  # --no-fast: plain
    x = data.load("mnist-sample", 0).train.batch(torch.arange(2))
    assert x.is_contiguous()  # and so are its inputs
    cfg = TrainConfig.from_dict({**saved, "fast": True})
    model, loss = build(cfg)
    training_optimizer(cfg, model)
    assert fast.rewritten(model) == []  # neither build nor the optimiser rewrites a model
    assert fast_path(cfg, model, loss)[0] is model and fast.rewritten(model)  # the default: applied explicitly


def test_settings_that_change_a_sweep_get_their_own_folder(tmp_path):
    assert plan_and_dir("mnist", "cpu", out_root=tmp_path, fast=False)[1].name == "cpu-nofast"
    assert plan_and_dir("mnist", "cpu", out_root=tmp_path, test_limit=500)[1].name == "cpu-test_limit500"
    assert plan_and_dir("mnist", "cpu", out_root=tmp_path, heldout_fraction=0.2)[1].name == "cpu-heldout0.2"
    assert plan_and_dir("mnist", "cpu", out_root=tmp_path, fast=True, test_limit=None)[1].name == "cpu"
