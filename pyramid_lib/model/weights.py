"""Which backbone and perceptual weights a run uses: ImageNet (torchvision's weights API) or random.

A run's `weights` setting is first a request (`Request`): `imagenet` insists on the real weights
and fails clearly when they cannot be had; `none` uses random (orthogonal) weights; `auto` uses
ImageNet weights when cached or downloadable and otherwise random ones, with a warning.
`resolve` turns it into what the run uses (`Used`: "imagenet" or "random"), which is recorded in
every run's config and every results table.

The weights come through torchvision's own path: torch.hub's cache, `cache_files()` (under
$TORCH_HOME/hub/checkpoints/, default ~/.cache/torch), filled by one download.  torch.hub checks the
hash prefix in a file's name while downloading it; a file already in the cache is loaded as it is,
so on a machine without internet the two files can be copied there from one that has them."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Literal, get_args

import torch
from torchvision.models import ResNet18_Weights, VGG11_Weights

from ..errors import ConfigError, WeightsUnavailable

log = logging.getLogger(__name__)


Request = Literal["auto", "imagenet", "none"]  # what one asks for


Used = Literal["imagenet", "random"]  # what a run used


CHOICES = get_args(Request)


RESNET18 = ResNet18_Weights.IMAGENET1K_V1


VGG11 = VGG11_Weights.IMAGENET1K_V1


def cache_files() -> list[Path]:
    """Where torch.hub looks for (and downloads) the two weights files: its checkpoints folder,
    under the name each URL ends with."""
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    return [folder / w.url.rsplit("/", 1)[-1] for w in (RESNET18, VGG11)]


def _fetch() -> None:
    """Load (downloading if needed, into torch.hub's cache) both state dicts once."""
    RESNET18.get_state_dict(progress=True)
    VGG11.get_state_dict(progress=True)


def resolve(choice: str) -> str:
    """What a run asking for `choice` (auto, imagenet, none; or an already resolved random) uses:
    "imagenet" or "random".  May download the ImageNet weights (about 560 MB, once).

    Raises ConfigError for an unknown choice, WeightsUnavailable when `imagenet` cannot be had.
    `auto` without the weights gives "random" and a UserWarning."""
    if choice not in (*CHOICES, *get_args(Used)):
        raise ConfigError(f"--weights must be one of {', '.join(CHOICES)}, got {choice!r}")
    if choice in ("none", "random"):
        return "random"
    try:
        _fetch()
        return "imagenet"
    except Exception as e:  # no network, no cache, damaged file
        if choice == "imagenet":
            raise WeightsUnavailable(
                f"ImageNet weights for ResNet18/VGG11 could not be loaded ({type(e).__name__}: {e}). "
                "Connect to the internet once so torchvision can cache them (or copy "
                f"{' and '.join(f.name for f in cache_files())} into {cache_files()[0].parent}), or use "
                "--weights none (results are then labelled 'random')") from e
        log.debug("ImageNet weights unavailable: %s: %s", type(e).__name__, e)
        warnings.warn("ImageNet weights unavailable (offline?): using RANDOM backbone and perceptual "
                      "weights; every result of this run is labelled 'random'.", stacklevel=2)
        return "random"


def enums(label: str):
    """(ResNet18 weights, VGG11 weights) for torchvision constructors, from "imagenet"/"random".

    Raises ConfigError for anything else (a request such as auto must be resolved first)."""
    if label == "imagenet":
        return RESNET18, VGG11
    if label == "random":
        return None, None
    raise ConfigError(f"weights label must be 'imagenet' or 'random', got {label!r}; resolve a request first "
                      "(engine.build.resolve_weights)")
