"""Which MVTec AD categories a data root holds, and whether each is complete.

MVTec AD (Bergmann et al., CVPR 2019) cannot be downloaded automatically, so a user may have all
15 categories, a few, or a subset of one.  `coverage` says which are present, which are missing
and which hold fewer training images than MVTec AD's own (a subset: results on it are a
demonstration, not a reproduction of that category's row)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .images import data_root
from .images_io import IMAGE_SUFFIXES

# Images per category in MVTec AD (Bergmann et al., CVPR 2019, Table 1): (training normals, test images).
MVTEC_SIZES = {
    "bottle": (209, 83), "cable": (224, 150), "capsule": (219, 132), "carpet": (280, 117), "grid": (264, 78),
    "hazelnut": (391, 110), "leather": (245, 124), "metal_nut": (220, 115), "pill": (267, 167),
    "screw": (320, 160), "tile": (230, 117), "toothbrush": (60, 42), "transistor": (213, 100),
    "wood": (247, 79), "zipper": (240, 151),
}
MVTEC_CATEGORIES = tuple(MVTEC_SIZES)  # alphabetical: MVTec AD's folder order


@dataclass(frozen=True)
class Coverage:
    """MVTec AD under a data root: `present` maps each category found (a folder with train/) to its
    number of training images (files with an image suffix in train/good); `missing` lists the
    other categories; `subsets` those present with fewer training images than MVTec AD's."""

    root: Path
    present: dict[str, int]
    missing: tuple[str, ...]
    subsets: tuple[str, ...]

    def describe(self) -> str:
        """One paragraph for a terminal: what is here, what is a subset, what is missing."""
        have = ", ".join(f"{c} ({n} training images" + (f" of {MVTEC_SIZES[c][0]}: a subset)" if c in self.subsets
                                                         else ")") for c, n in self.present.items()) or "none"
        return (f"MVTec AD under {self.root}: {have}; not found: {', '.join(self.missing) or 'none'}")


def coverage(root=None) -> Coverage:
    """The MVTec AD categories under <root>/mvtec_ad/ (root: the data root, default $PYRAMID_DATA
    or ./data), in MVTec AD's alphabetical order.  Reads folder listings only."""
    base = data_root(root) / "mvtec_ad"
    present = {}
    for c in MVTEC_CATEGORIES:
        good = base / c / "train" / "good"
        if good.is_dir():
            present[c] = sum(1 for p in good.rglob("*")
                             if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    missing = tuple(c for c in MVTEC_CATEGORIES if c not in present)
    subsets = tuple(c for c, n in present.items() if n < MVTEC_SIZES[c][0])
    return Coverage(base, present, missing, subsets)
