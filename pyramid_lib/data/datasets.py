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
from . import registry
from .images import OneClassData

DATASETS = registry.names()  # the built-in datasets; registry.names() also has those registered later


def request_error(dataset: str, normal_class, input_size: int | None = None) -> str | None:
    """What is wrong with asking `dataset` for `normal_class` at `input_size` (None: the dataset's
    default), as one message naming the flag, or None.  The one check behind `load` (DataError)
    and `TrainConfig.validate` (ConfigError): the dataset is registered, a fixed-size dataset's
    images keep their size, and a dataset with classes needs a normal class (a folder of your own
    does not)."""
    if dataset not in registry.REGISTRY:
        return f"--dataset: unknown dataset {dataset!r}; choose one of {', '.join(registry.names())}"
    d = registry.REGISTRY[dataset]
    size = input_size or d.input_size
    if d.fixed_size and size != d.input_size:
        return f"--input-size {size}: {dataset} images are {d.input_size}x{d.input_size}; leave --input-size unset"
    return d.class_error(normal_class)


def load(dataset: str, normal_class=None, root=None, download: bool = True,
         input_size: int | None = None, intensity: str = "train-range") -> OneClassData:
    """Load any registered dataset by name under the one-class protocol (`request_error` says what
    may be asked; `intensity`: how image folders' 16/32-bit integer and float images become 0..255,
    images_io.intensity_window).
    Raises DataError for a bad request or data that cannot be read."""
    problem = request_error(dataset, normal_class, input_size)
    if problem:
        raise DataError(problem)
    d = registry.REGISTRY[dataset]
    return d.load(normal_class, root, download, input_size or d.input_size, intensity)


def load_for(cfg, download: bool | None = None) -> OneClassData:
    """The data of a run: `load` with the config's dataset, normal_class, data_root, download,
    input_size and intensity (`cfg`: a TrainConfig; `download` overrides the config's)."""
    return load(cfg.dataset, cfg.normal_class, cfg.data_root, cfg.download if download is None else download,
                cfg.input_size, cfg.intensity)
