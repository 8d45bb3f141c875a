"""Image folders in MVTec AD's layout, and MVTec AD itself.

Layout (under `folder`; letter case of folder names does not matter where noted):

  train/good/**          the normal training images (`good`, `Good`, `GOOD`: all the same)
  test/<class>/**        test images; class `good` (any case) is normal (label 0), any other folder
                         name is a defect class (label 1), e.g. test/crack/
  ground_truth/<class>/** optional defect masks, one per defect image (see "Masks")

What is loaded:
  * Every file Pillow can open, whatever its suffix (PNG, JPEG, BMP, TIFF, WebP, GIF, ...); how a
    file is decoded (EXIF orientation, modes, 16-bit and float ranges) is in `images_io`.
  * Sub-folders are searched recursively: test/crack/batch1/001.png belongs to class `crack`,
    train/good/day1/001.png is a training image.  The class is always the folder right under
    test/; the image's name (`ImageSet.names`) is its full path, sub-folders included.
  * Class folders whose names differ only in case (test/good and test/Good, test/Crack and
    test/crack) are merged into one class: `good` for the normal one, else the spelling that sorts
    first.  This is what Windows and macOS do with such folders anyway.
  * Images are ordered by class, then by path.

Which file is what (training normal, test normal, test defect, mask of a picture, or left out and
why) is decided by `data.inventory.take`, for this loader and for `predict` alike: masks are
ground_truth/<defect>/<sub>/<stem>_mask.* or <stem>.*, or <stem>_mask.* beside the picture
(`walk.find_mask`: the exact spelling first; several candidates are a clash, left out and named).
A mask must show the upright picture: after EXIF orientation its size must equal the image's, or
have the same aspect ratio (then it is scaled with it, and the warning says so); another aspect
ratio is an error naming both files.  Masks of `good` images are not used.  Defect images without a
mask get an empty one, and a mask whose defect is below one pixel at the input size is named.

What is not loaded is said, in ONE warning per load (paths relative to `folder`, repr where the
eye cannot see the difference), by reason (the inventory's); OS and tool leftovers are counted.
`pyramid-ad train --dataset folder` refuses a --normal-class other than `good` (or the folder's
own name): it would be recorded without being used (`check_normal_class`; a library caller may
name the class as it likes, e.g. the tutorial's stand-in).

A file whose suffix is an image format but whose content cannot be decoded (empty, truncated,
text), an image smaller than the input size, or one over Pillow's decompression-bomb limit is a
DataError naming the file: it was meant to be used, so the load stops instead of dropping it.
"""

from __future__ import annotations

import logging
import shlex
import warnings
from collections import defaultdict
from pathlib import Path

import torch

from ..errors import DataError
from ..progress import tqdm
from . import inventory
from .images import ImageSet, OneClassData, data_root
from .images_io import (
    IMAGE_SUFFIXES,
    decode_image,
    decode_mask,
    describe_window,
    intensity_window,
    read_image,
    read_mask,
)
from .inventory import Entry, Inventory
from .mvtec import MVTEC_CATEGORIES
from .walk import JUNK, norm, same_aspect, shown

__all__ = ["IMAGE_SUFFIXES", "MVTEC_CATEGORIES", "MVTEC_URL", "load_folder", "load_mvtec", "read_image", "read_mask"]

log = logging.getLogger(__name__)

MVTEC_URL = "https://www.mvtec.com/company/research/datasets/mvtec-ad"

_NORMAL = "good"
_STRAY = "not under train/, test/ or ground_truth/ (not read)"
_SHOWN = 8  # names listed per reason in the warning; the rest are counted (all are logged at INFO)


def _warn(inv: Inventory, has_masks: bool) -> None:
    """ONE warning naming what the inventory left out (by reason) and the remarks; OS leftovers
    are counted, and logged at INFO when nothing else is said."""
    left = inv.by_reason()
    # a text beside train/ and test/ (MVTec AD ships license.txt and readme.txt in every category) is
    # no data: recorded in the inventory and shown by `pyramid-ad data`, logged here, not warned
    stray = left.get(_STRAY, [])
    docs = [p for p in stray if Path(p).suffix.lower() not in IMAGE_SUFFIXES]
    if docs:
        log.info("%s: not read (documents beside train/ and test/): %s", inv.root, ", ".join(docs))
        rest = [p for p in stray if p not in docs]
        left = {r: ps for r, ps in left.items() if r != _STRAY} | ({_STRAY: rest} if rest else {})
    noted: dict[str, list[str]] = defaultdict(list)
    for e in inv.entries:
        if e.note:
            noted[e.note].append(shown(inv.rel(e.path)) + (f" ({e.detail})" if e.detail else ""))
    if has_masks:
        without: dict[str, list[Path]] = defaultdict(list)
        with_any = {c for p, c in inv.test if p in inv.masks}
        for p, c in inv.test:
            if c != _NORMAL and p not in inv.masks:
                without[c].append(p)
        for c, ps in without.items():
            if c in with_any:
                noted["defect image without a mask (empty mask used)"] += [shown(inv.rel(p)) for p in ps]
            else:
                inv.remarks.append(f"no mask of test/{c}/ (ground_truth/{c}/ missing?): its {len(ps)} image(s) get "
                                   "empty masks")
    junk = [e for e in inv.entries if e.reason == JUNK]
    kinds = sorted({e.path.name for e in junk})
    junk_text = f"{len(junk)} OS/tool leftover files ({', '.join(kinds[:4])}{', ...' if len(kinds) > 4 else ''})"
    if not (left or noted or inv.remarks):
        if junk:
            log.info("%s: skipped %s", inv.root, junk_text)
        return
    n, k = sum(map(len, left.values())), sum(map(len, noted.values()))
    head = [f"{n} file(s)/folder(s) not used"] if n else []
    head += [f"plus {junk_text} skipped"] if junk else []
    head += [f"{k} file(s) used with a remark"] if k else []
    out = [f"{shown(inv.root)}: {', '.join(head)}:" if head else f"{shown(inv.root)}:"]
    for what in (left, noted):
        for reason, paths in what.items():
            more = f" ... and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else ""
            out.append(f"  {reason} ({len(paths)}): {', '.join(paths[:_SHOWN])}{more}")
            log.info("%s: %s: %s", inv.root, reason, ", ".join(paths))
    out += [f"  {line}" for line in inv.remarks]
    warnings.warn("\n".join(out), stacklevel=3)


def _read_all(paths, size, what, window=None):
    bar = tqdm(paths, desc=f"reading {what}", leave=False, disable=len(paths) < 200)
    out = [decode_image(p, size, window) for p in bar]
    return [o[0] for o in out], [o[1] for o in out], [o[2] for o in out]


def _note(inv: Inventory, paths, notes) -> None:
    for p, ns in zip(paths, notes):
        for n in ns:
            inv.entries.append(Entry(p, NOTED, note=f"loaded, but {n}"))


NOTED = "noted"  # a remark made while decoding; not a fate (the path has its fate already)


def check_normal_class(folder: Path, normal_class: str | None) -> None:
    """DataError when --normal-class, with a folder dataset, names neither `good` nor the data
    folder itself: the normal class of a folder is its train/good/, so any other value would be
    recorded and shown without being used.  The message names the --data-root that was meant when
    the value is a sub-folder holding train/good/."""
    if normal_class in (None, _NORMAL, folder.name) or not folder.is_dir():
        return
    sub = folder / normal_class
    fix = (f"to train on it, give --data-root {shlex.quote(str(sub))} (and leave --normal-class out)"
           if (sub / "train").is_dir() else "leave --normal-class out")
    raise DataError(f"--normal-class {normal_class!r}: with --dataset folder the normal class is train/good/ of "
                    f"--data-root {shown(folder)}, so a class name is not used; {fix}")


def load_folder(folder, input_size: int = 120, dataset: str = "folder", normal_class: str | None = None,
                hint: str = "", intensity: str = "train-range") -> OneClassData:
    """A dataset in MVTec AD's layout (see the module docstring): train/good, test/good,
    test/<defect>, optional ground_truth/<defect>; which file is what is `inventory.take`'s.

    Returns OneClassData with uint8 images N x 3 x input_size x input_size, test labels 0 (good) /
    1 (defect), test classes by folder, names = file paths, test masks uint8 0/1
    N x input_size x input_size when the folder has masks (else None), and the inventory's record.
    Warns once (UserWarning) naming every file left out and why.  Raises DataError for a missing
    folder, an archive, a wrong layout, no training or no test images, an
    unreadable image or mask, an image smaller than input_size, and a mask whose aspect ratio
    differs from its image's."""
    folder = Path(folder)
    inv = inventory.take(folder, hint)
    if inv.unreadable:
        bad = inv.unreadable
        more = f" (and {len(bad) - 1} more unreadable: {', '.join(shown(inv.rel(e.path)) for e in bad[1:4])})"
        raise DataError(f"{shown(bad[0].path)}: {bad[0].reason.removeprefix(inventory.UNREADABLE + ': ')}"
                        + (more if len(bad) > 1 else "")
                        + f". `pyramid-ad data {shlex.quote(str(folder))}` lists every file's fate")
    train_paths = inv.train
    if not train_paths:
        found = [f"{shown(inv.rel(e.path))} ({e.reason})" for e in inv.left if _NORMAL in map(norm, e.path.parts)]
        raise DataError(f"{shown(folder / 'train' / 'good')}: no images" + (
            f" (found only: {', '.join(found[:5])}{' ...' if len(found) > 5 else ''})" if found else "")
            + "; the normal class must have training images")
    test_pairs = inv.test
    if not test_pairs:
        raise DataError(f"{shown(folder / 'test')}: no test images; it needs test/good/ and test/<defect>/ folders "
                        "with images")
    test_paths, test_classes = [p for p, _ in test_pairs], [c for _, c in test_pairs]
    mask_for = inv.masks
    has_masks = bool(mask_for) or any(norm(d.name) == "ground_truth" for d in folder.iterdir() if d.is_dir())

    window = intensity_window(train_paths, intensity)  # images of more than 8 bits: one mapping for the whole set
    if describe_window(window):
        inv.remarks.append(describe_window(window))
    train, _, notes = _read_all(train_paths, input_size, f"{folder.name} train", window)
    _note(inv, train_paths, notes)
    test, sizes, notes = _read_all(test_paths, input_size, f"{folder.name} test", window)
    _note(inv, test_paths, notes)
    masks = None
    if has_masks:
        masks = torch.zeros(len(test_paths), input_size, input_size, dtype=torch.uint8)
        for i, (p, wh) in enumerate(zip(test_paths, sizes)):
            if p in mask_for and test_classes[i] != _NORMAL:
                masks[i] = _read_matching_mask(mask_for[p], p, wh, input_size, inv)
    _warn(inv, has_masks)
    inv.entries = [e for e in inv.entries if e.fate != NOTED]
    return OneClassData(
        dataset, normal_class or folder.name,
        ImageSet(torch.stack(train), torch.zeros(len(train), dtype=torch.long), ["good"] * len(train),
                 [str(p) for p in train_paths]),
        ImageSet(torch.stack(test), torch.tensor([int(c != _NORMAL) for c in test_classes]), test_classes,
                 [str(p) for p in test_paths], masks),
        input_size, tuple(sorted(set(test_classes))), window, inventory=inv.record())


def _read_matching_mask(mask: Path, image: Path, wh, size: int, inv: Inventory) -> torch.Tensor:
    m, mwh, notes = decode_mask(mask, size)
    _note(inv, [mask], [notes])
    if mwh != wh:
        (w, h), (mw, mh) = wh, mwh
        if not same_aspect(wh, mwh):
            raise DataError(f"{shown(mask)}: mask is {mw}x{mh} but its image {shown(image)} is {w}x{h} (after EXIF "
                            f"orientation); the mask must cover the upright image: redraw or resize it to {w}x{h}")
        inv.entries.append(Entry(mask, NOTED, note="mask of another size than its image, same aspect ratio",
                                 detail=f"{mw}x{mh} scaled to {w}x{h}"))
    return m


def load_mvtec(category: str, root=None, input_size: int = 120, intensity: str = "train-range") -> OneClassData:
    """One MVTec AD category from <root>/mvtec_ad/<category>, resized to input_size (120 in the paper).
    Same returns, warning and errors as `load_folder`."""
    folder = data_root(root) / "mvtec_ad" / str(category)
    hint = (f"MVTec AD cannot be downloaded automatically (its license needs a click): get it from {MVTEC_URL}, "
            f"unpack it and place the category folders under {folder.parent}/ (e.g. {folder.parent}/bottle/train/good)")
    if not folder.is_dir():
        known = f" Known categories: {', '.join(MVTEC_CATEGORIES)}." if category not in MVTEC_CATEGORIES else ""
        raise DataError(f"{folder}: MVTec AD category {category!r} not found. {hint}.{known}")
    return load_folder(folder, input_size, dataset="mvtec", normal_class=str(category), hint=hint, intensity=intensity)

