"""Which backbone and perceptual weights a run uses: ImageNet (torchvision's weights API) or random.

`imagenet` insists on the real weights and fails clearly when they cannot be had; `none` uses
random (orthogonal) weights; `auto` uses ImageNet weights when cached or downloadable and
otherwise random ones with a printed warning.  The result ("imagenet" or "random") is recorded
in every run's config and every results table."""

from __future__ import annotations

import warnings

from torchvision.models import ResNet18_Weights, VGG11_Weights

from ..errors import ConfigError, WeightsUnavailable

CHOICES = ("auto", "imagenet", "none")


RESNET18 = ResNet18_Weights.IMAGENET1K_V1


VGG11 = VGG11_Weights.IMAGENET1K_V1


def _fetch() -> None:
    """Load (downloading if needed, into torch.hub's cache) both state dicts once."""
    RESNET18.get_state_dict(progress=True)
    VGG11.get_state_dict(progress=True)


def resolve(choice: str) -> str:
    """Turn a CLI choice into what the run will use: "imagenet" or "random"."""
    if choice not in CHOICES:
        raise ConfigError(f"--weights must be one of {', '.join(CHOICES)}, got {choice!r}")
    if choice == "none":
        return "random"
    try:
        _fetch()
        return "imagenet"
    except Exception as e:  # no network, no cache, damaged file
        if choice == "imagenet":
            raise WeightsUnavailable(
                f"ImageNet weights for ResNet18/VGG11 could not be loaded ({type(e).__name__}: {e}). "
                "Connect to the internet once so torchvision can cache them, or use --weights none "
                "(results are then labelled 'random')") from e
        warnings.warn("ImageNet weights unavailable (offline?): using RANDOM backbone and perceptual "
                      "weights; every result of this run is labelled 'random'.", stacklevel=2)
        print("WARNING: ImageNet weights unavailable; training with random weights (labelled 'random').")
        return "random"


def enums(label: str):
    """(ResNet18 weights, VGG11 weights) for torchvision constructors, from "imagenet"/"random"."""
    if label == "imagenet":
        return RESNET18, VGG11
    if label == "random":
        return None, None
    raise ConfigError(f"weights label must be 'imagenet' or 'random', got {label!r}")
