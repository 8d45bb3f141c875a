"""Datasets, read once into memory as uint8 tensors and served in batches.

Names: `mnist-sample` (embedded, no download), `mnist`, `fmnist`, `mvtec`, `folder`.
The one-class protocol itself (which images are normal, how the training normals are split for
the threshold) is in `splits.py`.  The data root comes from an argument, else the environment
variable PYRAMID_DATA, else ./data.

Layouts:
  <root>/MNIST/raw/*-ubyte, <root>/FashionMNIST/raw/*-ubyte      (torchvision's; downloaded)
  <root>/mvtec_ad/<category>/{train/good, test/<defect>, ground_truth/<defect>/<name>[_mask].<any image format>}
  a folder of your own with the same layout: {train/good, test/good, test/<defect>, [ground_truth]};
  sub-folders are searched (see data/folder.py)"""

from __future__ import annotations

from ..errors import DataError
from ..paper import MVTEC_CATEGORIES
from .folder import load_folder, load_mvtec
from .images import OneClassData, data_root
from .mnist import load_mnist_like, load_mnist_sample

DATASETS = ("mnist-sample", "mnist", "fmnist", "mvtec", "folder")
DEFAULT_INPUT_SIZE = {"mnist-sample": 28, "mnist": 28, "fmnist": 28, "mvtec": 120, "folder": 120}


def load(dataset: str, normal_class=None, root=None, download: bool = True,
         input_size: int | None = None, intensity: str = "train-range") -> OneClassData:
    """Load any dataset by name under the one-class protocol (`intensity`: the 16/32-bit integer rule
    of image folders, images_io.intensity_window)."""
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    size = input_size or DEFAULT_INPUT_SIZE[dataset]
    if dataset in ("mnist-sample", "mnist", "fmnist"):
        if size != 28:
            raise DataError(f"--input-size {size}: {dataset} images are 28x28; leave --input-size unset")
        if normal_class is None:
            raise DataError(f"{dataset}: --normal-class is required (0..9)")
        if dataset == "mnist-sample":
            return load_mnist_sample(normal_class)
        return load_mnist_like(dataset, normal_class, root, download)
    if dataset == "mvtec":
        if normal_class is None:
            raise DataError(f"mvtec: --normal-class must name the category, one of: {', '.join(MVTEC_CATEGORIES)}")
        return load_mvtec(str(normal_class), root, size, intensity)
    return load_folder(data_root(root), size, normal_class=None if normal_class is None else str(normal_class),
                       intensity=intensity)
