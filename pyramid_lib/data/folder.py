"""Datasets, read once into memory as uint8 tensors and served in batches.

Names: `mnist-sample` (embedded, no download), `mnist`, `fmnist`, `mvtec`, `folder`.
The one-class protocol itself (which images are normal, how the training normals are split for
the threshold) is in `splits.py`.  The data root comes from an argument, else the environment
variable PYRAMID_DATA, else ./data.

Layouts:
  <root>/MNIST/raw/*-ubyte, <root>/FashionMNIST/raw/*-ubyte      (torchvision's; downloaded)
  <root>/mvtec_ad/<category>/{train/good, test/<defect>, ground_truth/<defect>/<name>_mask.png}
  a folder of your own with the same layout: {train/good, test/good, test/<defect>, [ground_truth]}"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import DataError
from .images import ImageSet, OneClassData, data_root

MVTEC_CATEGORIES = ("bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut", "pill",
                    "screw", "tile", "toothbrush", "transistor", "wood", "zipper")


MVTEC_URL = "https://www.mvtec.com/company/research/datasets/mvtec-ad"


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


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
