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

Masks: for test/<defect>/<sub>/<stem>.<ext> the mask is ground_truth/<defect>/<sub>/<stem>_mask.*
or ground_truth/<defect>/<sub>/<stem>.* (any format Pillow reads, any letter case of the name and
of the defect folder).  Two candidates for one image are an error.  A mask must show the upright
picture: after EXIF orientation its size must equal the image's, or have the same aspect ratio
(then it is scaled with it, and the warning says so); another aspect ratio is an error naming both
files.  Masks of `good` images are not used.  Defect images without a mask get an empty one.

What is not loaded is said, in ONE warning per load (paths relative to `folder`): files Pillow
cannot read (a .txt, .heic, .npy), hidden files and folders (.name), files in train/ or test/
outside a class folder, train/ folders other than good/, empty class folders, masks without an
image, defect images without a mask (when ground_truth/ exists), and a test set without normal or
without defect images (AUROC undefined).  OS and tool leftovers (.DS_Store, Thumbs.db,
desktop.ini, '._x.png', .ipynb_checkpoints/, __MACOSX/) are skipped without naming them; they are
counted in that warning when there is one, else logged at INFO.

A file whose suffix is an image format but whose content cannot be decoded (empty, truncated,
text), an image smaller than the input size, or one over Pillow's decompression-bomb limit is a
DataError naming the file: it was meant to be used, so the load stops instead of dropping it.
"""

from __future__ import annotations

import logging
import warnings
from collections import defaultdict
from pathlib import Path

import torch

from ..errors import DataError
from ..progress import tqdm
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
from .mvtec import MVTEC_CATEGORIES
from .walk import JUNK, backslash_hint, left_out, mask_stems, same_aspect, walk_images

__all__ = ["IMAGE_SUFFIXES", "MVTEC_CATEGORIES", "MVTEC_URL", "load_folder", "load_mvtec", "read_image", "read_mask"]

log = logging.getLogger(__name__)

MVTEC_URL = "https://www.mvtec.com/company/research/datasets/mvtec-ad"

_NORMAL = "good"
_LIKELY_NORMAL = ("ok", "normal", "norm", "pass", "negative")  # hinted at when test/good is absent
_SHOWN = 8  # names listed per reason in the warning; the rest are counted (all are logged at INFO)


class _Report:
    """What a load leaves out or reads with a remark, by reason; becomes the one warning."""

    def __init__(self, root: Path):
        self.root = root
        self.skipped: dict[str, list[str]] = defaultdict(list)  # reason -> relative paths not used
        self.noted: dict[str, list[str]] = defaultdict(list)  # remark -> relative paths used with it
        self.junk: list[str] = []  # OS/tool leftovers: counted, not named
        self.lines: list[str] = []  # whole-set remarks (no normal class, merged folders, ...)

    def rel(self, p: Path, detail: str = "") -> str:
        try:
            r = p.relative_to(self.root).as_posix()
        except ValueError:
            r = str(p)
        return r + (f" ({detail})" if detail else "")

    def skip(self, p: Path, reason: str, detail: str = "") -> None:
        self.skipped[reason].append(self.rel(p, detail))

    def note(self, p: Path, remark: str, detail: str = "") -> None:
        self.noted[remark].append(self.rel(p, detail))

    def emit(self) -> None:
        kinds = sorted({Path(j).name for j in self.junk})
        junk = f"{len(self.junk)} OS/tool leftover files ({', '.join(kinds[:4])}{', ...' if len(kinds) > 4 else ''})"
        if not (self.skipped or self.noted or self.lines):
            if self.junk:
                log.info("%s: skipped %s", self.root, junk)
            return
        n, k = (sum(len(v) for v in d.values()) for d in (self.skipped, self.noted))
        head = [f"{n} file(s)/folder(s) under train/, test/, ground_truth/ not used"] if n else []
        head += [f"plus {junk} skipped"] if self.junk else []
        head += [f"{k} file(s) used with a remark"] if k else []
        out = [f"{self.root}: {', '.join(head)}:" if head else f"{self.root}:"]
        for what in (self.skipped, self.noted):
            for reason, paths in what.items():
                more = f" ... and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else ""
                out.append(f"  {reason} ({len(paths)}): {', '.join(paths[:_SHOWN])}{more}")
                log.info("%s: %s: %s", self.root, reason, ", ".join(paths))
        out += [f"  {line}" for line in self.lines]
        warnings.warn("\n".join(out), stacklevel=3)


def _walk(folder: Path, report: _Report, seen: set | None = None) -> list[Path]:
    """Image files under `folder` (`walk.walk_images`); every other entry goes to the report."""
    found = walk_images(folder, seen)
    for p, reason, detail in found.skipped:
        report.skip(p, reason, detail)
    report.junk += [report.rel(p) + ("/" if p.is_dir() else "") for p in found.junk]
    return found.images


def _class_folders(parent: Path, report: _Report, stray: str) -> dict[str, list[Path]]:
    """Sub-folders of `parent` grouped by class (case-insensitive); files directly in it reported
    with the reason `stray`."""
    groups: dict[str, list[Path]] = defaultdict(list)
    try:
        entries = sorted(parent.iterdir(), key=lambda p: p.name)
    except OSError as e:
        raise DataError(f"{parent}: folder cannot be listed ({e.strerror or e}); check its permissions") from e
    odd = backslash_hint(p for p in entries if p.is_dir())
    if odd:
        report.lines.append(f"{report.rel(parent)}/: {odd}")
    for p in entries:
        why = left_out(p)
        if why == JUNK:
            report.junk.append(report.rel(p))
        elif why:
            report.skip(p, why)
        elif p.is_dir():
            groups[p.name.lower()].append(p)
        else:
            report.skip(p, stray)
    named = {}
    for key, dirs in groups.items():
        name = _NORMAL if key == _NORMAL else sorted(d.name for d in dirs)[0]
        if len(dirs) > 1:
            report.lines.append(f"{' and '.join(report.rel(d) + '/' for d in dirs)} differ only in letter case: "
                                f"merged as class {name!r}")
        named[name] = dirs
    return dict(sorted(named.items()))


def _read_all(paths, size, what, window=None):
    bar = tqdm(paths, desc=f"reading {what}", leave=False, disable=len(paths) < 200)
    out = [decode_image(p, size, window) for p in bar]
    return [o[0] for o in out], [o[1] for o in out], [o[2] for o in out]


def _note(report: _Report, paths, notes) -> None:
    for p, ns in zip(paths, notes):
        for n in ns:
            report.note(p, f"loaded, but {n}")


def load_folder(folder, input_size: int = 120, dataset: str = "folder", normal_class: str | None = None,
                hint: str = "", intensity: str = "train-range") -> OneClassData:
    """A dataset in MVTec AD's layout (see the module docstring): train/good, test/good,
    test/<defect>, optional ground_truth/<defect>.

    Returns OneClassData with uint8 images N x 3 x input_size x input_size, test labels 0 (good) /
    1 (defect), test classes by folder, names = file paths, and test masks uint8 0/1
    N x input_size x input_size when ground_truth/ exists (else None).  Warns once (UserWarning)
    naming every file left out and why.  Raises DataError for a missing folder, a wrong layout, no
    training or no test images, an unreadable image or mask, an image smaller than input_size, and
    a mask whose aspect ratio differs from its image's."""
    folder = Path(folder)
    if not folder.is_dir():
        odd = backslash_hint([folder])
        raise DataError(f"{folder}: no such folder. "
                        f"{hint or 'Point --data-root at a folder holding train/good and test/.'}"
                        + (f" {odd}" if odd else ""))
    report = _Report(folder)
    train_paths = _train_images(folder, report)
    test_paths, test_classes = _test_images(folder / "test", report)
    gt_dir = folder / "ground_truth"
    mask_for = _match_masks(gt_dir, test_paths, test_classes, folder / "test", report) if gt_dir.is_dir() else None

    window = intensity_window(train_paths, intensity)  # images of more than 8 bits: one mapping for the whole set
    if describe_window(window):
        report.lines.append(describe_window(window))
    train, _, notes = _read_all(train_paths, input_size, f"{folder.name} train", window)
    _note(report, train_paths, notes)
    test, sizes, notes = _read_all(test_paths, input_size, f"{folder.name} test", window)
    _note(report, test_paths, notes)
    masks = None
    if mask_for is not None:
        masks = torch.zeros(len(test_paths), input_size, input_size, dtype=torch.uint8)
        for i, (p, wh) in enumerate(zip(test_paths, sizes)):
            if p in mask_for:
                masks[i] = _read_matching_mask(mask_for[p], p, wh, input_size, report)
    report.emit()
    return OneClassData(
        dataset, normal_class or folder.name,
        ImageSet(torch.stack(train), torch.zeros(len(train), dtype=torch.long), ["good"] * len(train),
                 [str(p) for p in train_paths]),
        ImageSet(torch.stack(test), torch.tensor([int(c != _NORMAL) for c in test_classes]), test_classes,
                 [str(p) for p in test_paths], masks),
        input_size, tuple(sorted(set(test_classes))), window)


def _train_images(folder: Path, report: _Report) -> list[Path]:
    """The image files under train/good/ (any letter case); other train/ folders are reported.
    DataError when the folder is not in MVTec AD's layout or train/good/ holds no image."""
    train_root, test_dir = folder / "train", folder / "test"
    train_groups = _class_folders(train_root, report, "in train/, not in train/good/") if train_root.is_dir() else {}
    train_dirs = train_groups.pop(_NORMAL, [])
    train_dir = train_dirs[0] if train_dirs else train_root / "good"
    if not train_dirs or not test_dir.is_dir():
        odd = backslash_hint(folder.iterdir())
        raise DataError(f"{folder}: not in MVTec AD's layout (needs train/good/ and test/good/, test/<defect>/); "
                        f"{'missing ' + str(train_dir) if not train_dirs else 'missing ' + str(test_dir)}"
                        + (f". {odd}" if odd else ""))
    for dirs in train_groups.values():
        for d in dirs:
            report.skip(d, "train/ folder other than good/ (training uses normal images only)")
    train_paths = [p for d in train_dirs for p in _walk(d, report)]
    if not train_paths:
        found = [f"{p} ({r})" for r, ps in report.skipped.items() for p in ps] + report.junk
        raise DataError(f"{train_dir}: no images" + (f" (found only: {', '.join(found[:5])}"
                                                     f"{' ...' if len(found) > 5 else ''})" if found else "")
                        + "; the normal class must have training images")
    return train_paths


def _test_images(test_dir: Path, report: _Report) -> tuple[list[Path], list[str]]:
    """The image files under test/<class>/ and their classes; a test split without normal or
    without defect images is remarked on (AUROC is undefined).  DataError when there are none."""
    test_paths, test_classes = [], []
    for name, dirs in _class_folders(test_dir, report, "in test/, not in a class folder test/<class>/").items():
        paths = [p for d in dirs for p in _walk(d, report)]
        if not paths:
            report.lines.append(f"{'/, '.join(report.rel(d) for d in dirs)}/: no images; class {name!r} is not scored")
        test_paths += paths
        test_classes += [name] * len(paths)
    if not test_paths:
        raise DataError(f"{test_dir}: no test images; it needs test/good/ and test/<defect>/ folders with images")
    classes = sorted(set(test_classes))
    if _NORMAL not in classes:
        likely = [c for c in classes if c.lower() in _LIKELY_NORMAL]
        report.lines.append("test/: no normal test images (test/good/): AUROC is undefined without them; every test "
                            "image is labelled anomalous" + (f"; if test/{likely[0]}/ holds normal images, rename it "
                                                              f"to test/good/" if likely else ""))
    elif classes == [_NORMAL]:
        report.lines.append("test/: only normal test images (no test/<defect>/): AUROC is undefined without defects")
    return test_paths, test_classes


def _match_masks(gt_dir: Path, test_paths, test_classes, test_dir: Path, report: _Report) -> dict[Path, Path]:
    """{defect image: its mask file}; masks without an image and defect images without a mask are reported."""
    stray = "in ground_truth/, not in ground_truth/<defect>/"
    gt_groups = {k.lower(): v for k, v in _class_folders(gt_dir, report, stray).items()}
    by_class: dict[str, list[Path]] = defaultdict(list)
    for p, c in zip(test_paths, test_classes):
        by_class[c].append(p)
    mask_for: dict[Path, Path] = {}
    for key, dirs in gt_groups.items():
        cls = next((c for c in by_class if c.lower() == key), None)
        if cls is None or cls == _NORMAL:
            why = "masks of normal images are not used" if key == _NORMAL else "no test images of that class"
            for d in dirs:
                report.skip(d, f"ground_truth/ folder not used: {why}")
            continue
        masks: dict[tuple[str, str], list[Path]] = defaultdict(list)  # (sub-folder, stem), lower case
        for d in dirs:
            for m in _walk(d, report):
                masks[(m.parent.relative_to(d).as_posix().lower(), m.stem.lower())].append(m)
        used = set()
        for p in by_class[cls]:
            sub = p.parent.relative_to(_class_dir(p, test_dir)).as_posix().lower()
            found = [m for stem in mask_stems(p.stem) for m in masks.get((sub, stem), [])]
            used.update((sub, stem) for stem in mask_stems(p.stem))
            if len(found) > 1:
                raise DataError(f"{p}: several masks match it ({', '.join(map(str, found))}); keep one")
            if found:
                mask_for[p] = found[0]
            else:
                report.note(p, f"defect image without a mask in ground_truth/{dirs[0].name}/ (empty mask used)")
        for k, ms in masks.items():
            if k not in used:
                for m in ms:
                    report.skip(m, "mask without a test image of that name")
    for c, paths in by_class.items():
        if c != _NORMAL and c.lower() not in gt_groups:
            report.lines.append(f"ground_truth/{c}/ missing: the {len(paths)} image(s) of test/{c}/ get empty masks")
    return mask_for


def _class_dir(p: Path, test_dir: Path) -> Path:
    return test_dir / p.relative_to(test_dir).parts[0]


def _read_matching_mask(mask: Path, image: Path, wh, size: int, report: _Report) -> torch.Tensor:
    m, mwh, notes = decode_mask(mask, size)
    _note(report, [mask], notes)
    if mwh != wh:
        (w, h), (mw, mh) = wh, mwh
        if not same_aspect(wh, mwh):
            raise DataError(f"{mask}: mask is {mw}x{mh} but its image {image} is {w}x{h} (after EXIF orientation); "
                            f"the mask must cover the upright image: redraw or resize it to {w}x{h}")
        report.note(mask, "mask of another size than its image, same aspect ratio", f"{mw}x{mh} scaled to {w}x{h}")
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

