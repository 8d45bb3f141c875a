"""The data split: which training normals fit the network and which are held out.

Under the one-class protocol (`data.py`) the training split holds normal images only.  A
fraction of them (10% by default, seeded) is held out of training: their scores fix the
decision threshold without looking at any test label (`threshold.py`).  The paper trains on all
training normals and picks its threshold on the test set; `heldout_fraction=0` restores the former.

A run's split is `run_split(cfg, n)`, computed once when training starts and recorded in the
run's data.json (engine/data_record.py); `fit_and_heldout` gives the two image sets.

`limit` and `stratified_subset` pick the smaller, seeded sets of images that short runs train on
(`train_limit`) and score (`test_limit`)."""

from __future__ import annotations

from typing import NamedTuple

import torch

from ..errors import ConfigError
from .images import ImageSet, OneClassData

DEFAULT_HELDOUT_FRACTION = 0.1


def holdout(n: int, fraction: float = DEFAULT_HELDOUT_FRACTION, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (fit, held_out) of n training images; held_out has round(n * fraction) images,
    at least one when fraction > 0, and fit keeps at least two (batch norm needs them).

    Raises ConfigError naming --heldout-fraction for a fraction outside [0, 1) or too few images."""
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"--heldout-fraction must be in [0, 1), got {fraction}")
    k = 0 if fraction == 0 else max(1, round(n * fraction))
    if n - k < 2:
        raise ConfigError(f"only {n} training images: too few to hold {k} out and still train; "
                          "lower --heldout-fraction or add images")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[k:].sort().values, perm[:k].sort().values


def fit_and_heldout_indices(n: int, fraction: float = DEFAULT_HELDOUT_FRACTION, seed: int = 0,
                            max_fit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted indices (fit, held_out) of n training images: `holdout`, then at most `max_fit` of the
    rest (`limit`, the run's train_limit).  The two never share an index; images in neither are
    not used.  Raises what `holdout` raises."""
    fit_idx, held_idx = holdout(n, fraction, seed)
    return fit_idx[limit(len(fit_idx), max_fit, seed)], held_idx


class Split(NamedTuple):
    """Sorted indices into a run's training images: those it fits and those held out."""

    fit: torch.Tensor
    held_out: torch.Tensor


def run_split(cfg, n: int) -> Split:
    """The split of n training images under a run's config (`cfg`: a TrainConfig; its
    heldout_fraction, seed and train_limit): `fit_and_heldout_indices`.  Raises what `holdout` raises."""
    return Split(*fit_and_heldout_indices(n, cfg.heldout_fraction, cfg.seed, cfg.train_limit))


def fit_and_heldout(data: OneClassData, cfg, split: Split | None = None) -> tuple[ImageSet, ImageSet]:
    """(images the network trains on, held-out training normals for the threshold), both subsets
    of data.train: `split`, by default `run_split(cfg, len(data.train))`."""
    split = split if split is not None else run_split(cfg, len(data.train))
    return data.train.subset(split.fit), data.train.subset(split.held_out)


def limit(n: int, max_images: int | None, seed: int = 0) -> torch.Tensor:
    """A seeded subset of at most `max_images` of n indices (the quick profile trains on fewer)."""
    if max_images is None or max_images >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed + 1))[:max_images].sort().values


def stratified_subset(labels: torch.Tensor, limit: int | None, seed: int = 0) -> torch.Tensor:
    """Sorted indices of at most about `limit` test images, a seeded subset stratified by label.

    labels: (n,) tensor of 0 (normal) / 1 (anomaly).  Each label present keeps its share of
    `limit` (rounded), and at least two images (so a tiny limit may give a few more than
    `limit`).  `limit=None` or `limit >= n` gives all n indices.  The same (labels, limit, seed)
    always gives the same subset."""
    n = len(labels)
    if limit is None or limit >= n:
        return torch.arange(n)
    g = torch.Generator().manual_seed(seed + 7)
    keep = []
    for lab in (0, 1):
        idx = torch.nonzero(labels == lab).flatten()
        if len(idx) == 0:
            continue
        k = min(len(idx), max(2, round(limit * len(idx) / n)))
        keep.append(idx[torch.randperm(len(idx), generator=g)[:k]])
    return torch.cat(keep).sort().values
