"""Training profiles: how long and on how much data a run trains.

- `quick`: for laptops and CI: 10 epochs on at most 1,000 training normals, batch 32 and
  learning rate 1e-3 (ten times Table I's, so that the few steps a CPU can afford make
  progress); one MNIST class trains in about two minutes on 2 CPU cores.
- `cpu`: for the committed reproduction on 2 CPU cores: 10 epochs on all training normals,
  batch 32, learning rate 1e-3 (same reason).
- `paper`: Table I: Adam lr 1e-4, weight decay 1e-4, batch 120, 600 epochs, ImageNet weights
  required.
Each profile only changes the fields listed here; the rest (Table I's optimiser, batch size,
lambda = 1, four encoders) is the same for all."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from . import data as data_mod
from .data.splits import DEFAULT_HELDOUT_FRACTION
from .errors import ConfigError
from .model.network import MIN_INPUT_SIZE, PYRAMID_DIVISORS, PYRAMID_MODES

PROFILES: dict[str, dict] = {
    "quick": {"epochs": 10, "train_limit": 1000, "batch_size": 32, "lr": 1e-3, "weights": "auto"},
    "cpu": {"epochs": 10, "train_limit": None, "batch_size": 32, "lr": 1e-3, "weights": "auto"},
    "paper": {"epochs": 600, "train_limit": None, "batch_size": 120, "lr": 1e-4, "weights": "imagenet"},
}


# Table I
LR = 1e-4


WEIGHT_DECAY = 1e-4


BATCH_SIZE = 120


def get_profile(name: str) -> dict:
    if name not in PROFILES:
        raise ConfigError(f"--profile must be one of {', '.join(PROFILES)}, got {name!r}")
    return dict(PROFILES[name])


# Settings that change the network's shape: a checkpoint must agree on all of them.
SHAPE_FIELDS = ("input_size", "encoders", "pyramid")


# Settings that change what a run computes: --resume refuses a run that differs in any.
RUN_FIELDS = SHAPE_FIELDS + ("dataset", "normal_class", "lambda_", "lr", "weight_decay", "batch_size", "seed",
                             "heldout_fraction", "train_limit", "weights")

# Names that config.json files of earlier versions used.
LEGACY_KEYS = {"lam": "lambda_", "val_fraction": "heldout_fraction"}


@dataclass
class TrainConfig:
    dataset: str = "mnist-sample"
    normal_class: str = "0"
    epochs: int = 8
    input_size: int | None = None  # None: the dataset's (28 for MNIST-like, 120 for MVTec)
    encoders: int = 4
    pyramid: str = "paper"
    lambda_: float = 1.0
    lr: float = LR
    weight_decay: float = WEIGHT_DECAY
    batch_size: int = BATCH_SIZE
    seed: int = 0
    heldout_fraction: float = DEFAULT_HELDOUT_FRACTION
    train_limit: int | None = None
    weights: str = "random"  # what the run uses: "imagenet" or "random" (resolve "auto" before)
    profile: str = "custom"
    data_root: str | None = None
    download: bool = True

    def __post_init__(self):
        self.normal_class = str(self.normal_class)
        if self.input_size is None and self.dataset in data_mod.DEFAULT_INPUT_SIZE:
            self.input_size = data_mod.DEFAULT_INPUT_SIZE[self.dataset]

    def validate(self) -> TrainConfig:
        """Check every setting before anything is downloaded or trained; raise ConfigError naming it."""
        def bad(arg, msg):
            raise ConfigError(f"{arg}: {msg}")
        if self.dataset not in data_mod.DATASETS:
            bad("--dataset", f"unknown dataset {self.dataset!r}; choose one of {', '.join(data_mod.DATASETS)}")
        if self.dataset in ("mnist-sample", "mnist", "fmnist"):
            names = data_mod.FMNIST_CLASSES if self.dataset == "fmnist" else data_mod.MNIST_CLASSES
            data_mod.class_index(self.normal_class, names)  # raises DataError naming --normal-class
        if not isinstance(self.epochs, int) or self.epochs < 1:
            bad("--epochs", f"must be a positive integer, got {self.epochs!r}")
        if not isinstance(self.input_size, int) or self.input_size < MIN_INPUT_SIZE:
            bad("--input-size", f"must be an integer of at least {MIN_INPUT_SIZE}, got {self.input_size!r}")
        if self.dataset in ("mnist-sample", "mnist", "fmnist") and self.input_size != 28:
            bad("--input-size", f"{self.dataset} images are 28x28, got {self.input_size!r}; leave --input-size unset")
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            bad("--seed", f"must be an integer in 0..{2**32 - 1}, got {self.seed!r}")
        if self.encoders not in PYRAMID_DIVISORS:
            bad("--encoders", f"must be one of {sorted(PYRAMID_DIVISORS)}, got {self.encoders!r}")
        if self.pyramid not in PYRAMID_MODES:
            bad("--pyramid", f"must be one of {', '.join(PYRAMID_MODES)}, got {self.pyramid!r}")
        for arg, v in (("--lambda", self.lambda_), ("--lr", self.lr), ("--weight-decay", self.weight_decay)):
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                bad(arg, f"must be a finite number >= 0, got {v!r}")
        if self.lr == 0:
            bad("--lr", "must be > 0")
        if not isinstance(self.batch_size, int) or self.batch_size < 2:
            bad("--batch-size", f"must be an integer of at least 2 (batch norm), got {self.batch_size!r}")
        if not 0 <= self.heldout_fraction < 1:
            bad("--heldout-fraction", f"must be in [0, 1), got {self.heldout_fraction!r}")
        if self.train_limit is not None and (not isinstance(self.train_limit, int) or self.train_limit < 2):
            bad("--train-limit", f"must be an integer of at least 2, got {self.train_limit!r}")
        if self.weights not in ("imagenet", "random"):
            bad("--weights", f"resolved weights must be 'imagenet' or 'random', got {self.weights!r}")
        if self.profile == "paper" and self.weights != "imagenet":
            bad("--profile paper", "reproduces the paper and needs ImageNet weights; use --profile cpu/quick "
                                   "for random weights")
        return self

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = {LEGACY_KEYS.get(k, k): v for k, v in d.items()}
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
