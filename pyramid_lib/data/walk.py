"""Finding images in folders, and the rules that pair an image with its mask: one place for both the
folder loader (data/folder.py, training and evaluation) and `predict` (engine/score_inputs.py).

Walking a folder (`walk_images`): sub-folders are searched recursively, a folder link is followed
once (a second visit is a loop, named); a file is an image when Pillow can open it (its content
decides, not its suffix; `images_io.identify`); hidden files and folders (.name) are named as
skipped; OS and tool leftovers (.DS_Store, Thumbs.db, '._x.png', .ipynb_checkpoints/, __MACOSX/)
are only counted.

Masks (after MVTec AD's naming, any letter case, any image format): the mask of
`test/<defect>/<sub>/<stem>.<ext>` is `ground_truth/<defect>/<sub>/<stem>_mask.*` or
`ground_truth/<defect>/<sub>/<stem>.*` (`mask_stems`, `ground_truth_place`); `predict` also
takes `<stem>_mask.*` beside the image.  A mask must show the upright picture: the same size, or
the same aspect ratio to a pixel's rounding (`same_aspect`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from .images_io import JUNK_FOLDERS, identify, is_junk, why_not_an_image

NOT_AN_IMAGE = "not an image Pillow can read"


JUNK = "OS or tool leftover"  # counted, not named


def left_out(p: Path) -> str | None:
    """Why the folder entry `p` is left out whatever it holds, or None when it is looked at:
    JUNK for OS and tool leftovers (.DS_Store, Thumbs.db, '._x.png', .ipynb_checkpoints/,
    __MACOSX/), "hidden folder" or "hidden file" for a name starting with a dot.  The one rule of
    the walk (`walk_images`), of the class folders of data/folder.py and of predict's mask search."""
    folder = p.is_dir()
    if (p.name.lower() in JUNK_FOLDERS) if folder else is_junk(p.name):
        return JUNK
    if p.name.startswith("."):
        return "hidden folder" if folder else "hidden file"
    return None


@dataclass
class Walk:
    """What `walk_images` found.  `skipped`: (path, reason, detail) not used; `failed`: (path, reason)
    for files whose content could not be identified and folders that could not be listed (only
    with errors="collect"); `junk`: OS/tool leftovers, counted, not named."""

    images: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str, str]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    junk: list[Path] = field(default_factory=list)


def walk_images(folder: Path, seen: set[Path] | None = None, exclude: Path | None = None,
                errors: str = "raise", walk: Walk | None = None) -> Walk:
    """The image files under `folder`, recursively, sorted by name at each level, each entry that is
    not one recorded in the returned `Walk` (appended to `walk` when given).

    `seen`: resolved folders already visited (shared between calls, so a link into a folder walked
    before is named as a loop); `exclude`: a resolved folder not to enter (predict's output folder).
    errors="raise": `identify`'s DataError (a file with an image suffix that does not decode)
    propagates, and an unlistable folder is skipped with its reason; errors="collect": both go to
    `failed`."""
    walk = Walk() if walk is None else walk
    seen = set() if seen is None else seen
    real = folder.resolve()
    if exclude is not None and real == exclude:
        walk.skipped.append((folder, "the output folder of this call", ""))
        return walk
    if real in seen:
        walk.skipped.append((folder, "folder link already visited (a loop)", ""))
        return walk
    seen.add(real)
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as e:
        why = f"folder cannot be listed ({e.strerror or e})"
        if errors == "collect":
            walk.failed.append((folder, f"{folder}: {why}"))
        else:
            walk.skipped.append((folder, why, ""))
        return walk
    for p in entries:
        why = left_out(p)
        if why == JUNK:
            walk.junk.append(p)
        elif why:
            walk.skipped.append((p, why, ""))
        elif p.is_dir():
            walk_images(p, seen, exclude, errors, walk)
        elif not p.is_file():
            walk.skipped.append((p, "not a regular file (broken link, socket, ...)", ""))
        else:
            try:
                why = not_an_image(p)
            except DataError as e:
                if errors != "collect":
                    raise
                walk.failed.append((p, str(e)))
                continue
            if why is None:
                walk.images.append(p)
            else:
                walk.skipped.append((p, *why))
    return walk


def not_an_image(path: Path) -> tuple[str, str] | None:
    """None when Pillow can open the file (`images_io.identify`: its content decides); else
    (NOT_AN_IMAGE, a hint such as "HEIC: pip install pillow-heif", or "").  Raises DataError for a
    file whose suffix is an image format but whose content does not decode."""
    return None if identify(path) is not None else (NOT_AN_IMAGE, why_not_an_image(path))


def backslash_hint(paths) -> str:
    """A hint for names holding a backslash (Windows paths copied as they were), or "": on this
    system a backslash is part of the name, so `crack\\batch2` is one folder, not two."""
    odd = [str(p) for p in paths if "\\" in Path(p).name]
    if not odd or os.sep == "\\":
        return ""
    return (f"{len(odd)} name(s) hold a backslash ({', '.join(odd[:3])}{' ...' if len(odd) > 3 else ''}); '\\' is "
            f"not a path separator on this system, so each is ONE file or folder name: rename them with '/' "
            "folders (e.g. mkdir -p crack/batch2)")


def with_hint(reason: str, hint: str) -> str:
    """A skip reason as messages show it: 'not an image (HEIC: pip install pillow-heif)'."""
    return f"{reason} ({hint})" if hint else reason


def mask_stems(stem: str) -> tuple[str, str]:
    """The names, lower case and without suffix, a mask of the image named `stem` may have:
    `<stem>_mask` (MVTec AD's) and `<stem>` (the same name as the image)."""
    s = stem.lower()
    return s + "_mask", s


def ground_truth_place(image: Path) -> tuple[Path, tuple[str, ...]] | None:
    """Where the mask of `image` lies, for an image under `.../test/<defect>/<sub...>/`: the folder
    `.../ground_truth` beside that `test/` (the last `test` in the path, any letter case) and the
    folder names below it, (<defect>, <sub...>) in lower case.  None for images under `test/good/`
    (normal images have no mask) and images with no `test/<defect>/` above them."""
    parts = image.parts
    tests = [i for i in range(len(parts) - 2) if parts[i].lower() == "test"]
    if not tests or parts[tests[-1] + 1].lower() == "good":
        return None
    i = tests[-1]
    return Path(*parts[:i]) / "ground_truth", tuple(q.lower() for q in parts[i + 1:-1])


def same_aspect(wh: tuple[int, int], mask_wh: tuple[int, int]) -> bool:
    """True when a mask of size `mask_wh` (width, height) covers a picture of size `wh`: the same
    aspect ratio to a pixel's rounding, so the mask can be scaled with the picture."""
    (w, h), (mw, mh) = wh, mask_wh
    return abs(w * mh - h * mw) <= max(w + h, mw + mh)
