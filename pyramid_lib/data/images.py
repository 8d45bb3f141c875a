"""Image sets under the one-class protocol, held in memory as uint8 tensors.

`ImageSet`: images N x C x S x S (uint8, C = 1 or 3), labels N (0 = normal, 1 = anomalous), the
original class and source name of each image, optional masks N x S x S (0/1).
`OneClassData`: a dataset's `train` set (normal images only) and `test` set (both labels).
`to_input`: a batch as float B x 3 x S x S in [0, 1], the network's input.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The argument, else $PYRAMID_DATA, else ./data."""
    return Path(root or os.environ.get("PYRAMID_DATA") or "data")


@dataclass
class ImageSet:
    """Images held as uint8 N x C x S x S (C = 1 or 3); labels 0 = normal, 1 = anomalous."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]  # the original class of each image: a digit, a garment, a defect type
    names: list[str]  # where each image came from (file path or dataset index)
    masks: torch.Tensor | None = None  # uint8 N x S x S ground-truth defect masks (0/1), if any

    def __post_init__(self):
        n = len(self.images)
        if not (len(self.labels) == len(self.classes) == len(self.names) == n):
            raise ValueError("images, labels, classes and names must have the same length")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, idx) -> ImageSet:
        idx = torch.as_tensor(idx, dtype=torch.long)
        pick = idx.tolist()
        return ImageSet(self.images[idx], self.labels[idx], [self.classes[i] for i in pick],
                        [self.names[i] for i in pick], None if self.masks is None else self.masks[idx])

    def batch(self, idx, device="cpu") -> torch.Tensor:
        """Images `idx` as a float B x 3 x S x S batch in [0, 1] on `device`."""
        return to_input(self.images[idx], device)


def to_input(images_u8: torch.Tensor, device="cpu") -> torch.Tensor:
    """uint8 B x C x S x S -> float B x 3 x S x S in [0, 1], contiguous; grey is repeated to 3
    channels.  (A network on the fast path, `engine.build.fast_path`, holds its weights
    channels-last; its convolutions then run channels-last whatever the input's layout, with the
    same values.)"""
    x = images_u8.to(device, non_blocking=True).float().div_(255)
    return x.expand(-1, 3, -1, -1).contiguous()


@dataclass
class OneClassData:
    """A dataset under the one-class protocol: `train` holds normal images only."""

    dataset: str
    normal_class: str
    train: ImageSet
    test: ImageSet
    input_size: int
    class_names: tuple[str, ...] = field(default_factory=tuple)
    intensity: dict | None = None  # images of more than 8 bits: the mapping of images_io.intensity_window
    inventory: dict | None = None  # image folders: every file's fate (data.inventory.Inventory.record)

    def describe(self) -> str:
        n_norm = int((self.test.labels == 0).sum())
        return (f"{self.dataset} (normal: {self.normal_class}): {len(self.train)} training images, "
                f"{len(self.test)} test images ({n_norm} normal, {len(self.test) - n_norm} anomalous), "
                f"{self.input_size}x{self.input_size}")
