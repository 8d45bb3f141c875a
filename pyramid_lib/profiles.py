"""Training profiles: how long and on how much data a run trains.

- `quick`: for laptops and CI: 10 epochs on at most 1,000 training normals, batch 32 and
  learning rate 1e-3 (ten times Table I's, so that the few steps a CPU can afford make
  progress); one MNIST class trains in about two minutes on 2 CPU cores.
- `cpu`: for the committed reproduction on 2 CPU cores: 10 epochs on all training normals,
  batch 32, learning rate 1e-3 (same reason).
- `paper`: Table I: Adam lr 1e-4, weight decay 1e-4, batch 120, 600 epochs, ImageNet weights
  required.
Each profile only changes the fields listed here; the rest (Table I's optimiser, batch size,
lambda = 1, four encoders) is the same for all.
"""

from __future__ import annotations

from .errors import ConfigError

PROFILES: dict[str, dict] = {
    "quick": {"epochs": 10, "train_limit": 1000, "batch_size": 32, "lr": 1e-3, "weights": "auto"},
    "cpu": {"epochs": 10, "train_limit": None, "batch_size": 32, "lr": 1e-3, "weights": "auto"},
    "paper": {"epochs": 600, "train_limit": None, "batch_size": 120, "lr": 1e-4, "weights": "imagenet"},
}
# Table I
LR = 1e-4
WEIGHT_DECAY = 1e-4
BATCH_SIZE = 120


def get(name: str) -> dict:
    if name not in PROFILES:
        raise ConfigError(f"--profile must be one of {', '.join(PROFILES)}, got {name!r}")
    return dict(PROFILES[name])
