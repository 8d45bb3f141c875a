"""How long a run will take here: measured throughput, before anything is trained.

`estimate(cfg, n_train, n_score, device)` times a few optimiser steps of the config's own network
(its input size, batch size and device, random inputs) and scales them by the run's number of
steps; scoring is estimated as one forward pass per image at a third of a training step's cost
per image.  The figure is rough (the first steps of a process are slower, other processes on the
same cores slow it) but it tells a student on a laptop that the `paper` profile is days, not
minutes, before it starts."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import torch

from ..config import TrainConfig
from ..data.splits import run_split
from .build import build, fast_path, pick_device, training_optimizer
from .trainer import steps_per_epoch


@dataclass(frozen=True)
class Estimate:
    """Seconds a run is expected to take, and what they come from."""

    steps: int  # optimiser steps: epochs x batches per epoch
    step_seconds: float  # measured seconds per step here
    train_seconds: float
    score_seconds: float
    device: str

    @property
    def seconds(self) -> float:
        return self.train_seconds + self.score_seconds

    def describe(self) -> str:
        """One line: the total, then how it was obtained."""
        return (f"about {duration(self.seconds)} on {self.device} ({self.steps:,} steps x {self.step_seconds:.3g} s "
                f"measured per step here, plus about {duration(self.score_seconds)} of scoring)")


def duration(seconds: float) -> str:
    """`seconds` in the largest unit that reads well: 45 s, 12 min, 3.5 h, 2.1 days."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def step_seconds(cfg: TrainConfig, device=None, steps: int = 3) -> float:
    """Seconds per training step of cfg's network (input size, batch size, fast or not) on
    `device`, measured on random images after one warm-up step.  Random weights are used whatever
    cfg asks (speed does not depend on them), so nothing is downloaded."""
    device = pick_device(device)
    model, loss = fast_path(cfg, *build(replace(cfg, weights="random"), device))
    opt = training_optimizer(cfg, model)
    x = torch.rand(cfg.batch_size, 3, cfg.input_size, cfg.input_size, device=device)
    model.train()

    def one():
        opt.zero_grad(set_to_none=True)
        loss(model(x), x)["loss"].mean().backward()
        opt.step()

    one()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        one()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - t0) / steps


def estimate(cfg: TrainConfig, n_train: int, n_score: int = 0, device=None, steps: int = 3,
             seconds_per_step: float | None = None) -> Estimate:
    """The expected wall time of training `cfg` on a dataset of `n_train` training normals (the run
    fits `splits.run_split(cfg, n_train).fit` of them, in `trainer.steps_per_epoch` steps an
    epoch) and scoring `n_score` images, from `seconds_per_step` when measured already (on the
    run's own network: `trainer.train(announce=...)`), else `step_seconds` measured here.
    Raises ConfigError for a bad device (`pick_device`) or too few images (`splits.holdout`)."""
    device = pick_device(device)
    total = cfg.epochs * steps_per_epoch(len(run_split(cfg, n_train).fit), cfg.batch_size)
    s = step_seconds(cfg, device, steps) if seconds_per_step is None else seconds_per_step
    return Estimate(total, s, total * s, n_score / cfg.batch_size * s / 3, str(device))
