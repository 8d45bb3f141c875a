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
MNIST_LIKE = ("mnist-sample", "mnist", "fmnist")  # 28x28 grey digits or clothes, ten classes


def request_error(dataset: str, normal_class, input_size: int | None = None) -> str | None:
    """What is wrong with asking `dataset` for `normal_class` at `input_size` (None: the dataset's
    default), as one message naming the flag, or None.  The one check behind `load` (DataError)
    and `TrainConfig.validate` (ConfigError): the dataset exists, MNIST-like images are 28x28, and
    MNIST-like datasets and MVTec AD need a normal class (a folder of your own does not)."""
    if dataset not in DATASETS:
        return f"--dataset: unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}"
    size = input_size or DEFAULT_INPUT_SIZE[dataset]
    if dataset in MNIST_LIKE and size != 28:
        return f"--input-size {size}: {dataset} images are 28x28; leave --input-size unset"
    if dataset in MNIST_LIKE and normal_class is None:
        return f"--normal-class is required for --dataset {dataset} (0..9)"
    if dataset == "mvtec" and normal_class is None:
        return f"--normal-class is required for --dataset mvtec: a category, one of {', '.join(MVTEC_CATEGORIES)}"
    return None


def load(dataset: str, normal_class=None, root=None, download: bool = True,
         input_size: int | None = None, intensity: str = "train-range") -> OneClassData:
    """Load any dataset by name under the one-class protocol (`request_error` says what may be
    asked; `intensity`: how image folders' 16/32-bit integer and float images become 0..255,
    images_io.intensity_window).
    Raises DataError for a bad request or data that cannot be read."""
    problem = request_error(dataset, normal_class, input_size)
    if problem:
        raise DataError(problem)
    size = input_size or DEFAULT_INPUT_SIZE[dataset]
    if dataset == "mnist-sample":
        return load_mnist_sample(normal_class)
    if dataset in MNIST_LIKE:
        return load_mnist_like(dataset, normal_class, root, download)
    if dataset == "mvtec":
        return load_mvtec(str(normal_class), root, size, intensity)
    return load_folder(data_root(root), size, normal_class=None if normal_class is None else str(normal_class),
                       intensity=intensity)


def load_for(cfg, download: bool | None = None) -> OneClassData:
    """The data of a run: `load` with the config's dataset, normal_class, data_root, download,
    input_size and intensity (`cfg`: a TrainConfig; `download` overrides the config's)."""
    return load(cfg.dataset, cfg.normal_class, cfg.data_root, cfg.download if download is None else download,
                cfg.input_size, cfg.intensity)
