"""One configuration source: `TrainConfig`, every setting of a run in one flat dataclass.

Each field carries its type (a `Literal` for every choice), its default and its help text; the
command line (`arguments.py`) is generated from these fields (`lambda_` -> `--lambda`, `train_limit`
-> `--train-limit`, `fast` -> `--no-fast`), and `TrainConfig.validate()` is the one place that
checks them, raising ConfigError that names the flag.  config.json holds `to_dict()` (flat, the
key "lambda" for `lambda_`); `from_dict()` reads it back, old key names included.

Profiles (`TrainConfig.from_profile(name, **overrides)`) are presets: how long and on how much
data a run trains.  The three CPU profiles depart from Table I in the same way, chosen by
measurement (benchmarks/REGIME.md): batch 32, learning rate 3e-3 decayed to 0 by a cosine
schedule over the run's steps (Table I: batch 120, constant 1e-4), because a CPU affords a few
hundred steps, not Table I's ~30,000.
- `quick`: CI's setting: 10 epochs on at most 500 training normals and at most 1,000 test
  images (about half a minute of training on one core); the method already works, roughly.
- `laptop`: the notebooks' default on a machine without a GPU: 8 epochs on at most 1,000
  training normals (about a minute on a laptop CPU; MNIST digit 0 AUROC 0.992 +- 0.001 over 3
  seeds in benchmarks/REGIME.md).
- `cpu`: the committed reproduction on CPUs: 6 epochs on at most 4,000 training normals.
- `paper`: Table I: Adam lr 1e-4 (constant), weight decay 1e-4, batch 120, 600 epochs, ImageNet
  weights required.
MVTec AD and folders of one's own (120x120, a few hundred training images) get more steps per
image in `laptop` and `cpu`: IMAGE_PROFILES (batch 4, 10 epochs; measured on bottle, benchmarks/README.md).
Each profile only changes the fields listed in PROFILES; the rest (Table I's optimiser and weight
decay, lambda = 1, four encoders) is the same for all.  A config built in code without a profile says `custom`."""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, astuple, dataclass, field, fields, replace
from typing import Literal, get_args, get_origin, get_type_hints

from . import data as data_mod
from .data import registry
from .data.splits import DEFAULT_HELDOUT_FRACTION
from .errors import ConfigError
from .model.network import Encoders, ModelConfig, Pyramid, shape_error
from .model.weights import Request, Used

Profile = Literal["quick", "laptop", "cpu", "paper"]


Schedule = Literal["constant", "cosine"]


Precision = Literal["fp32", "bf16", "auto"]


_SHORT = {"batch_size": 32, "lr": 3e-3, "lr_schedule": "cosine", "weights": "auto"}  # benchmarks/REGIME.md


PROFILES: dict[str, dict] = {
    "quick": {**_SHORT, "epochs": 10, "train_limit": 500, "test_limit": 1000},
    "laptop": {**_SHORT, "epochs": 8, "train_limit": 1000, "test_limit": None},
    "cpu": {**_SHORT, "epochs": 6, "train_limit": 4000, "test_limit": None},
    "paper": {"epochs": 600, "train_limit": None, "test_limit": None, "batch_size": 120, "lr": 1e-4,
              "lr_schedule": "constant", "weights": "imagenet"},
}


# The 120x120 image datasets (MVTec AD, a folder of one's own) hold a few hundred training images,
# not thousands: at batch 32 the MNIST-size schedules above give them a few dozen optimiser steps.
# Their laptop and cpu settings were chosen on MVTec AD bottle by benchmarks/mvtec_regime.py (3
# seeds; a criterion that reads no test image; the table is in benchmarks/README.md).
# No longer schedule measured scored better on that criterion, so laptop and cpu are the same here:
# batch 4, 10 epochs (about 470 optimiser steps on bottle's 188 training normals).
IMAGE_PROFILES: dict[str, dict] = {
    "laptop": {"epochs": 10, "batch_size": 4},
    "cpu": {"epochs": 10, "batch_size": 4},
}


# Table I
LR = 1e-4


WEIGHT_DECAY = 1e-4


BATCH_SIZE = 120


def get_profile(name: str, dataset: str | None = None) -> dict:
    """The settings profile `name` changes (a copy of PROFILES[name]), with IMAGE_PROFILES[name] on
    top for a dataset of image files (the registry's `files`: MVTec AD, folder; an unknown name
    too); ConfigError naming --profile."""
    if name not in PROFILES:
        raise ConfigError(f"--profile must be one of {', '.join(PROFILES)}, got {name!r}")
    image = dataset is not None and (dataset not in registry.REGISTRY or registry.REGISTRY[dataset].files)
    return {**PROFILES[name], **(IMAGE_PROFILES.get(name, {}) if image else {})}


def setting(default, help: str, *, flag: str | None = None, choices: tuple | None = None):
    """A TrainConfig field: its default, the help text of its command-line option, and optionally
    the flag (default: `--` + the name with dashes; `--no-<name>` for a bool that defaults to
    True) and the choices the command line offers (default: the Literal's)."""
    return field(default=default, metadata={"help": help, "flag": flag, "choices": choices})


@dataclass
class TrainConfig:
    """Every setting of one run (the dataset, the class, the network, the optimiser, the data
    split, the weights and where data lives).  Flat, so that config.json is one flat mapping."""

    dataset: str = setting("mnist-sample", "the dataset (mnist-sample ships with the kit: no download)",
                           choices=registry.names)
    normal_class: str | None = setting("0", "the normal class: digit/class index or name; MVTec category; unused "
                                            "for folder")
    epochs: int = setting(8, "training epochs")
    input_size: int | None = setting(None, "image side in pixels (default: 28 for MNIST-like, 120 for MVTec)")
    intensity: Literal["train-range", "full", "per-image"] = setting(
        "train-range", "16/32-bit integer and float images: the value range mapped to 0..255: the training "
        "images' of the same kind (train-range; a kind no training image has, or one value: as full), the "
        "nominal 0..65535 for integer and 0..1 for float (full) or each image's own (per-image); values outside "
        "are clipped and named; 8-bit images are kept as they are")
    encoders: Encoders = setting(4, "number of pyramid encoders (paper: 4)")
    pyramid: Pyramid = setting("paper", "paper: 1x1 pooling + channel divisors; spatial: PSPNet bins 1/2/3/6")
    lambda_: float = setting(1.0, "weight of the perceptual loss (paper: 1; 0: MSE only)", flag="--lambda")
    lr: float = setting(LR, "Adam learning rate (Table I: 1e-4); with --lr-schedule cosine, the first step's")
    lr_schedule: Schedule = setting("constant", "learning rate per step: constant (Table I) or cosine (from --lr "
                                                "down to 0 over the run's steps, no warm-up; the CPU profiles)")
    weight_decay: float = setting(WEIGHT_DECAY, "Adam weight decay (Table I: 1e-4)")
    batch_size: int = setting(BATCH_SIZE, "images per training step (Table I: 120)")
    seed: int = setting(0, "seed of the weights, the data split and the batch order")
    heldout_fraction: float = setting(DEFAULT_HELDOUT_FRACTION, "share of training normals held out of training "
                                      "to set the threshold without test labels (0: train on all)")
    train_limit: int | None = setting(None, "train on at most this many normals (a seeded subset)")
    test_limit: int | None = setting(None, "score at most this many test images (a seeded subset that keeps both "
                                           "labels; default: all)")
    weights: Literal[Request, Used] = setting(
        "random", "backbone/VGG weights: imagenet (insist), auto (ImageNet if available, else random with a "
        "warning), none or random (random); --profile paper needs imagenet; config.json records imagenet or random")
    precision: Precision = setting(
        "fp32", "training arithmetic: fp32, bf16 (autocast; weights and scoring stay fp32), or auto (bf16 where a "
        "short measurement on this device shows it faster, else fp32); config.json records fp32 or bf16")
    fast: bool = setting(True, "turn off the exact speed-ups of model/fast.py (same method, other float "
                               "rounding): the plain network")
    profile: Literal[Profile, "custom"] = setting(
        "custom", "quick (CI: seconds), laptop (notebooks: about a minute), cpu (committed reproduction), paper "
        "(Table I: 600 epochs, ImageNet)",
        choices=get_args(Profile))
    data_root: str | None = setting(None, "where datasets live (default: $PYRAMID_DATA or ./data)")
    download: bool = setting(True, "never download; fail clearly if data is missing")

    def __post_init__(self):
        self.normal_class = None if self.normal_class is None else str(self.normal_class)
        if self.input_size is None and self.dataset in registry.REGISTRY:
            self.input_size = registry.REGISTRY[self.dataset].input_size

    @property
    def model(self) -> ModelConfig:
        """The network's shape settings (input_size, encoders, pyramid); ValueError when invalid."""
        return ModelConfig(self.input_size, self.encoders, self.pyramid)

    @classmethod
    def from_profile(cls, name: str = "laptop", **overrides) -> TrainConfig:
        """The config of profile `name` (PROFILES) with `overrides` (field names) on top; not
        validated.  ConfigError naming --profile for an unknown profile."""
        dataset = overrides.get("dataset", default("dataset"))
        return cls(**{**get_profile(name, dataset), "profile": name, **overrides})

    def validate(self) -> TrainConfig:
        """Check every setting before anything is downloaded or trained, and return self.

        Raises ConfigError "<flag>: <what is wrong>" for the first bad setting (the flag as the
        command line spells it, e.g. `--lambda`), DataError naming --normal-class for a class
        the dataset does not have.  `weights` may still be a request (auto, none): resolve it
        with `with_weights` (`engine.build.resolve_weights`) before training.  A config checked
        once and not changed since is not checked again: the command line checks it before any
        download, `engine.trainer.train` for callers in code, and a `train` command does each
        check once."""
        if self.__dict__.get("_checked") == astuple(self):
            return self
        self._check()
        self.__dict__["_checked"] = astuple(self)
        return self

    def _check(self) -> None:
        def bad(name, msg):
            raise ConfigError(f"{FLAGS[name]}: {msg}")

        for name in _CHOICE_FIELDS:  # encoders and pyramid: shape_error below
            value, allowed = getattr(self, name), get_args(_HINTS[name])
            if value not in allowed:
                bad(name, f"must be one of {', '.join(allowed)}, got {value!r}")
        problem = data_mod.request_error(self.dataset, self.normal_class, self.input_size)
        if problem:
            raise ConfigError(problem)
        registry.check_class(self.dataset, self.normal_class)  # raises DataError naming --normal-class
        if not _is_int(self.epochs) or self.epochs < 1:
            bad("epochs", f"must be a positive integer, got {self.epochs!r}")
        problem = shape_error(self.input_size, self.encoders, self.pyramid)
        if problem:
            bad(*problem)
        if not _is_int(self.seed) or not 0 <= self.seed < 2**32:
            bad("seed", f"must be an integer in 0..{2**32 - 1}, got {self.seed!r}")
        for name in ("lambda_", "lr", "weight_decay"):
            v = getattr(self, name)
            if not _is_number(v) or not math.isfinite(v) or v < 0:
                bad(name, f"must be a finite number >= 0, got {v!r}")
        if self.lr == 0:
            bad("lr", "must be > 0")
        if not _is_int(self.batch_size) or self.batch_size < 2:
            bad("batch_size", f"must be an integer of at least 2 (batch norm), got {self.batch_size!r}")
        if not _is_number(self.heldout_fraction) or not 0 <= self.heldout_fraction < 1:
            bad("heldout_fraction", f"must be in [0, 1), got {self.heldout_fraction!r}")
        for name in ("train_limit", "test_limit"):
            v = getattr(self, name)
            if v is not None and (not _is_int(v) or v < 2):
                bad(name, f"must be an integer of at least 2, got {v!r}")
        if not isinstance(self.fast, bool) or not isinstance(self.download, bool):
            bad("fast" if not isinstance(self.fast, bool) else "download", "must be True or False")
        self._check_weights()

    def _check_weights(self) -> None:
        if self.profile == "paper" and self.weights in ("none", "random"):
            raise ConfigError("--profile paper: reproduces the paper and needs ImageNet weights (--weights imagenet "
                              "or auto); use --profile cpu or quick for random weights")

    def with_weights(self, used: Used) -> TrainConfig:
        """This config with its weights request replaced by the weights a run uses ("imagenet" or
        "random", `model.weights.resolve`).  A checked config stays checked (only the weights rule
        runs again: `--profile paper` with `auto` that fell back to random is refused)."""
        out = replace(self, weights=used)
        if "_checked" in self.__dict__:
            out._check_weights()
            out.__dict__["_checked"] = astuple(out)
        return out

    def to_dict(self) -> dict:
        """The flat mapping config.json (and a checkpoint's saved config) holds: field names,
        except `lambda` for `lambda_`."""
        return {FIELD_KEYS.get(k, k): v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """A TrainConfig from a config.json mapping (file keys: "lambda"); unknown keys are ignored
        and missing ones take their defaults (files from before `fast` existed were made with it:
        fast=True).  Not validated.  ConfigError for a key name of an older version (OLD_KEYS):
        scripts/migrate_run_records.py rewrites such files once."""
        old = [k for k in d if k in OLD_KEYS]
        if old:
            raise ConfigError(f"a run record with the key {old[0]!r} of an older version of the kit; rewrite it "
                              "into today's format once: python scripts/migrate_run_records.py <results folder>")
        d = {FIELD_OF_KEY.get(k, k): v for k, v in d.items()}
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def option_flag(f) -> str:
    """The command-line flag of a TrainConfig field: its metadata's, else `--` + the name with
    dashes, `--no-<name>` for a bool that defaults to True."""
    if f.metadata.get("flag"):
        return f.metadata["flag"]
    dashed = f.name.replace("_", "-")
    return f"--no-{dashed}" if f.default is True else f"--{dashed}"


FIELDS = {f.name: f for f in fields(TrainConfig)}


FLAGS = {name: option_flag(f) for name, f in FIELDS.items()}


_HINTS = get_type_hints(TrainConfig)  # the annotations, evaluated


# Settings that change the network's shape: a checkpoint must agree on all of them.
SHAPE_FIELDS = ("input_size", "encoders", "pyramid")


# Settings that change what a run computes: --resume refuses a run that differs in any.
RUN_FIELDS = SHAPE_FIELDS + ("dataset", "normal_class", "lambda_", "lr", "lr_schedule", "weight_decay", "batch_size",
                             "seed", "heldout_fraction", "train_limit", "weights", "fast", "precision", "intensity")


# Field -> key in config.json, where they differ (`lambda` is a Python keyword).
FIELD_KEYS = {"lambda_": "lambda"}


# Key in config.json -> field ("lambda" -> lambda_).
FIELD_OF_KEY = {v: k for k, v in FIELD_KEYS.items()}


# Key names older versions wrote (lam, val_fraction); refused by `from_dict`, rewritten by
# scripts/migrate_run_records.py.
OLD_KEYS = ("lam", "val_fraction")


_CHOICE_FIELDS = tuple(n for n, t in _HINTS.items() if get_origin(t) is Literal and n not in SHAPE_FIELDS)


def choices(name: str) -> tuple | None:
    """The values field `name` may take on the command line: its metadata's (called when it is a
    function: the registered datasets), else its Literal's; None for a field that is not a choice."""
    listed = FIELDS[name].metadata.get("choices")
    if listed:
        return tuple(listed() if callable(listed) else listed)
    hint = _HINTS[name]
    return get_args(hint) if get_origin(hint) is Literal else None


def value_type(name: str) -> type:
    """The plain type a command-line value of field `name` is parsed as (int, float, str or bool).
    Raises TypeError for an annotation without one."""
    hint = _HINTS[name]
    if get_origin(hint) is Literal:
        return type(get_args(hint)[0])
    for t in (bool, int, float, str):
        if hint is t or t in get_args(hint):
            return t
    raise TypeError(f"TrainConfig.{name}: no command-line type for {hint!r}")


def default(name: str):
    """The default of field `name`."""
    return None if FIELDS[name].default is MISSING else FIELDS[name].default
