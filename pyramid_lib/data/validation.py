"""Validation sets that read no test image: how settings (epochs, learning rate, batch, a
baseline's parameters) are chosen without the test labels that the tables report.

A validation set holds the run's held-out training normals (label 0, never trained on:
`splits.fit_and_heldout_indices`) and anomalies made without the test split:

- MVTec AD and image folders: the held-out normals with *synthetic defects* pasted on them
  (`cut_paste`, after CutPaste, Li et al., CVPR 2021: a rectangle cut from the image, its
  brightness jittered, pasted elsewhere in the same image).  Real defects are scratches, cracks
  and missing parts that a pasted patch only imitates, so the criterion ranks settings; it does
  not predict the test AUROC.
- MNIST-like data: images of the other classes from the official *training* split
  (`mnist.other_training_classes`), a seeded subset of `OTHER_CLASS_IMAGES`.  They are the same
  kind of anomaly as the test split's, but never the same images.

`validation_set(cfg)` is the one entry point: the right set for any dataset.  The criterion is
the AUROC of a run's score separating the two (`metrics`), printed for every candidate before any
test AUROC is looked at (benchmarks/regime.py, benchmarks/mvtec_regime.py,
benchmarks/tune_baselines.py).
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError
from . import registry
from .datasets import load_for
from .images import ImageSet, OneClassData
from .splits import run_split

AREA = (0.02, 0.15)  # patch area as a fraction of the image (CutPaste's range)
ASPECT = (0.3, 3.3)  # patch height / width, drawn log-uniformly
BRIGHTNESS = 0.25  # the patch's values are scaled by a factor in 1 +- this, away from 1 by at least a third of it
# Subtler defects, closer in size to MVTec AD's small ones (a scratch, a drop): the criterion with
# AREA saturates near an AUROC of 0.97 on bottle for very different regimes, this one does not.
SMALL_AREA, SMALL_BRIGHTNESS = (0.005, 0.02), 0.15
# Anomalies of an MNIST-like validation set: 1,000 other-class training images, about 111 per
# class, against the held-out normals (about 600 per class): the AUROC's standard error stays
# near the test split's while scoring costs a tenth of it.
OTHER_CLASS_IMAGES = 1000
DEFECT_COPIES = 3  # defective copies of each held-out normal (image folders, MVTec AD)


def cut_paste(images: torch.Tensor, seed: int = 0, area: tuple[float, float] = AREA,
              brightness: float = BRIGHTNESS) -> tuple[torch.Tensor, torch.Tensor]:
    """One synthetic defect per image: a rectangle cut from the image, its brightness changed,
    pasted at another place of the same image.

    images: uint8 N x C x S x S; `area`: the patch's share of the image, drawn uniformly in that
    range; `brightness`: the patch's values are scaled by 1 +- between a third of it and all of it.
    Returns (defective images, uint8 N x C x S x S; masks, uint8
    N x S x S with 1 where the patch landed).  Image i depends only on (seed, i) and its own
    pixels, so a set can grow without changing the defects of the images already in it.
    Raises ValueError for images smaller than 8 x 8 (no patch fits)."""
    n, _, h, w = images.shape
    if min(h, w) < 8:
        raise ValueError(f"cut_paste needs images of at least 8 x 8, got {h} x {w}")
    out, masks = images.clone(), torch.zeros(n, h, w, dtype=torch.uint8)
    for i in range(n):
        g = torch.Generator().manual_seed(seed * 1_000_003 + i)
        u = torch.rand(8, generator=g).tolist()
        patch_area = (area[0] + (area[1] - area[0]) * u[0]) * h * w
        aspect = math.exp(math.log(ASPECT[0]) + (math.log(ASPECT[1]) - math.log(ASPECT[0])) * u[1])
        ph = max(2, min(h - 1, round(math.sqrt(patch_area * aspect))))
        pw = max(2, min(w - 1, round(math.sqrt(patch_area / aspect))))
        sy, sx = int(u[2] * (h - ph + 1)), int(u[3] * (w - pw + 1))
        dy, dx = int(u[4] * (h - ph + 1)), int(u[5] * (w - pw + 1))
        sign = 1.0 if u[6] < 0.5 else -1.0
        factor = 1.0 + sign * brightness * (1 + 2 * u[7]) / 3
        patch = images[i, :, sy:sy + ph, sx:sx + pw].float() * factor
        out[i, :, dy:dy + ph, dx:dx + pw] = patch.round().clamp(0, 255).to(torch.uint8)
        masks[i, dy:dy + ph, dx:dx + pw] = 1
    return out, masks


def with_synthetic_defects(normals: ImageSet, copies: int = 3, seed: int = 0, area: tuple[float, float] = AREA,
                           brightness: float = BRIGHTNESS) -> ImageSet:
    """A validation set: `normals` (label 0) followed by `copies` defective versions of each
    (`cut_paste`, label 1, class "synthetic", masks where the patches are).

    normals: an ImageSet of held-out training normals (N images).  Returns N * (1 + copies)
    images.  Raises ValueError when `normals` is empty or copies < 1."""
    if len(normals) == 0 or copies < 1:
        raise ValueError(f"a validation set needs held-out normals and copies >= 1 (got {len(normals)} normals, "
                         f"copies={copies}); train with --heldout-fraction > 0")
    parts = [cut_paste(normals.images, seed * 101 + k, area, brightness) for k in range(copies)]
    n = len(normals)
    images = torch.cat([normals.images, *(p[0] for p in parts)])
    masks = torch.cat([torch.zeros(n, *normals.images.shape[-2:], dtype=torch.uint8), *(p[1] for p in parts)])
    labels = torch.cat([torch.zeros(n, dtype=torch.long), torch.ones(n * copies, dtype=torch.long)])
    classes = list(normals.classes) + ["synthetic"] * (n * copies)
    names = list(normals.names) + [f"{name}#cutpaste{k}" for k in range(copies) for name in normals.names]
    return ImageSet(images, labels, classes, names, masks)


def with_other_classes(normals: ImageSet, others: ImageSet, limit: int | None = None, seed: int = 0) -> ImageSet:
    """A validation set for MNIST-like data: `normals` (label 0) and at most `limit` images of
    `others` (images of the other classes from the official training split, relabelled 1), a
    seeded subset.  Returns an ImageSet without masks."""
    if limit is not None and limit < len(others):
        idx = torch.randperm(len(others), generator=torch.Generator().manual_seed(seed + 11))[:limit].sort().values
        others = others.subset(idx)
    return ImageSet(torch.cat([normals.images, others.images]),
                    torch.cat([torch.zeros(len(normals), dtype=torch.long), torch.ones(len(others), dtype=torch.long)]),
                    list(normals.classes) + list(others.classes), list(normals.names) + list(others.names))


def validation_set(cfg, data: OneClassData | None = None, others: int | None = OTHER_CLASS_IMAGES,
                   copies: int = DEFECT_COPIES) -> ImageSet:
    """The validation set of a run: its held-out training normals (label 0; `splits.run_split`
    under cfg's seed, heldout_fraction and train_limit, so never an image the run fits) and
    anomalies (label 1) made without the test split:

    - a dataset whose registry record has `other_classes` (MNIST, Fashion-MNIST, mnist-sample): a
      seeded subset (seed cfg.seed) of at most `others` images of the other classes from the
      official training split (None: all of them);
    - the others (MVTec AD, image folders): `copies` CutPaste copies of each held-out normal
      (`with_synthetic_defects`, seed cfg.seed).

    cfg: a TrainConfig (dataset, normal_class, seed, heldout_fraction, train_limit, data_root,
    download); `data`: the run's data when already loaded (`datasets.load_for(cfg)` otherwise).
    Returns an ImageSet of 28 x 28 grey (MNIST-like) or the run's input size, the normals first.
    Raises ConfigError when the run holds no normals out (heldout_fraction 0) and what the
    loaders raise (DataError) for data that cannot be read."""
    if not cfg.heldout_fraction:
        raise ConfigError("a validation set needs held-out training normals; train with --heldout-fraction > 0")
    data = data if data is not None else load_for(cfg)
    held = data.train.subset(run_split(cfg, len(data.train)).held_out)
    source = registry.get(cfg.dataset).other_classes
    if source is not None:
        return with_other_classes(held, source(cfg.normal_class, cfg.data_root, cfg.download), others, cfg.seed)
    return with_synthetic_defects(held, copies, cfg.seed)
