"""Finding images in folders, and the rules that pair an image with its mask: one place for both the
folder loader (data/folder.py, training and evaluation) and `predict` (engine/score_inputs.py).

Walking a folder (`walk_images`): sub-folders are searched recursively; a file is an image when
Pillow can open it (its content decides, not its suffix; `images_io.identify`); hidden files and
folders (.name), names that are not valid UTF-8 and the kit's own outputs (a folder holding
predict.json, a run folder) are named as skipped; OS and tool leftovers (.DS_Store, Thumbs.db,
'._x.png', .ipynb_checkpoints/, __MACOSX/) are only counted.  Links (`link_reason`): a link to a
folder above it is a loop and not followed; inside a data root (`root`), a link to a place outside
the root, or to a file or folder the walk reaches at its own place, is not followed either (a
link is never a second way in), and other links are followed once.

Masks (`find_mask`, the one rule of the loader and of `predict`): the candidates of picture
`<dir>/<stem>.<ext>` are `<stem>_mask.*` beside it and, for a picture under `test/<defect>/<sub>/`,
`ground_truth/<defect>/<sub>/<stem>_mask.*` or `.../<stem>.*` (any image format).  Names are
compared as `norm` does (letter case, Unicode form NFC/NFD, surrounding spaces ignored), but a
candidate spelled exactly as the picture's path wins over the others, and a candidate that is
spelled exactly for a twin picture (`A.png` beside `a.png`) is that twin's.  One candidate: the
mask; several: a clash, no mask, named.  A mask must show the upright picture: the same size, or
the same aspect ratio to a pixel's rounding (`same_aspect`).

A data root that is an archive or a file is refused with what to do (`check_root`); predict's
inputs, files and folders in any layout, are walked by these rules (`take_inputs`).
"""

from __future__ import annotations

import os
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from .images_io import JUNK_FOLDERS, identify, is_junk, why_not_an_image

NOT_AN_IMAGE = "not an image Pillow can read"
ARCHIVES = (".zip", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".7z", ".rar")


JUNK = "OS or tool leftover"  # counted, not named


NOT_UTF8 = "name is not valid UTF-8 (rename it, e.g. convmv -f latin1 -t utf8 --notest NAME)"
KIT_OUTPUT = "output of pyramid-ad, not data"
LOOP = "link to a folder above it: a loop, not followed"


def norm(name: str) -> str:
    """A name as Windows and macOS (and the eye) compare names: Unicode NFC, surrounding spaces
    stripped, letter case folded.  Two names with one `norm` are the same name to them."""
    return unicodedata.normalize("NFC", name).strip().casefold()


def is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8 come in as lone surrogates
        return False
    return True


def writable(s: str) -> str:
    """`s` when it can be written as UTF-8 (CSV, JSON, the terminal), else its repr."""
    return s if is_utf8(s) else repr(s)


def shown(p) -> str:
    """A path as messages quote it: as on disk, or its repr when it holds what the eye cannot see
    (bytes that are not UTF-8, control characters, surrounding spaces, decomposed Unicode)."""
    s = str(p)
    plain = (s.isprintable() and is_utf8(s) and unicodedata.normalize("NFC", s) == s
             and all(q == q.strip() for q in Path(s).parts))
    return s if plain else repr(s)


def kit_output(d: Path) -> str | None:
    """What pyramid-ad output the folder `d` is (a predict output, a run folder), or None."""
    if (d / "predict.json").is_file():
        return f"{KIT_OUTPUT}: an earlier `pyramid-ad predict` output (predict.json)"
    if (d / "config.json").is_file() and ((d / "checkpoint.pt").exists() or (d / "run.json").is_file()):
        return f"{KIT_OUTPUT}: a run folder (config.json, checkpoint.pt)"
    return None


def left_out(p: Path) -> str | None:
    """Why the folder entry `p` is left out whatever it holds, or None when it is looked at:
    JUNK for OS and tool leftovers (.DS_Store, Thumbs.db, '._x.png', .ipynb_checkpoints/,
    __MACOSX/), NOT_UTF8, "hidden folder" or "hidden file" for a name starting with a dot, and
    the kit's own outputs (`kit_output`).  The one rule of the walk (`walk_images`), of the class
    folders of data/inventory.py and of the mask search (`find_mask`)."""
    folder = p.is_dir()
    if (p.name.lower() in JUNK_FOLDERS) if folder else is_junk(p.name):
        return JUNK
    if not is_utf8(p.name):
        return NOT_UTF8
    if p.name.startswith("."):
        return "hidden folder" if folder else "hidden file"
    return kit_output(p) if folder else None


def _under(p: Path, folder: Path) -> bool:
    return p == folder or folder in p.parents


def link_reason(p: Path, root: Path | None = None, used: Callable[[Path], bool] | None = None) -> str | None:
    """Why the link `p` is not followed, or None to follow it.  A broken link; a link to a folder
    above it (a loop); with `root` (a resolved data root): a link to a place outside the root, or to
    a place `used(target)` says the walk reaches by itself (the link would be a second way in)."""
    target = Path(os.path.realpath(p))
    if not target.exists():
        return "broken link"
    if target.is_dir() and _under(Path(os.path.realpath(p.parent)), target):
        return LOOP
    if root is not None and not _under(target, root):
        return f"link to {shown(target)}, outside the data root: not followed (copy what it holds into the folder)"
    if root is not None and used is not None and used(target):
        return f"link to {shown(target.relative_to(root))}, which is used at its own place: not followed"
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
                errors: str = "raise", walk: Walk | None = None, root: Path | None = None,
                used: Callable[[Path], bool] | None = None) -> Walk:
    """The image files under `folder`, recursively, sorted by name at each level, each entry that is
    not one recorded in the returned `Walk` (appended to `walk` when given).

    `seen`: resolved folders already visited (shared between calls, so a link into a folder walked
    before is named as a loop); `exclude`: a resolved folder not to enter (predict's output folder).
    errors="raise": `identify`'s DataError (a file with an image suffix that does not decode)
    propagates, and an unlistable folder is skipped with its reason; errors="collect": both go to
    `failed`.  `root`, `used`: the data root the walk is in, for `link_reason`."""
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
        why = left_out(p) or (link_reason(p, root, used) if p.is_symlink() else None)
        if why == JUNK:
            walk.junk.append(p)
        elif why:
            walk.skipped.append((p, why, ""))
        elif p.is_dir():
            walk_images(p, seen, exclude, errors, walk, root, used)
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
    """The names, as `norm` compares them, without suffix, a mask of the image named `stem` may
    have in ground_truth/: `<stem>_mask` (MVTec AD's) and `<stem>` (the same name as the image)."""
    s = norm(stem)
    return s + "_mask", s


def ground_truth_place(image: Path) -> tuple[Path, tuple[str, ...]] | None:
    """Where the mask of `image` lies, for an image under `.../test/<defect>/<sub...>/`: the folder
    `.../ground_truth` beside that `test/` (the last `test` in the path, as `norm` compares) and the
    folder names below it, (<defect>, <sub...>) as spelled under test/.  None for images under
    `test/good/` (normal images have no mask) and images with no `test/<defect>/` above them."""
    parts = image.parts
    tests = [i for i in range(len(parts) - 2) if norm(parts[i]) == "test"]
    if not tests or norm(parts[tests[-1] + 1]) == "good":
        return None
    i = tests[-1]
    return Path(*parts[:i]) / "ground_truth", tuple(parts[i + 1:-1])


Listing = Callable[[Path], tuple[list[Path], list[Path]]]  # folder -> (files, sub-folders) kept by left_out


def listing(d: Path) -> tuple[list[Path], list[Path]]:
    """Folder `d`'s files and sub-folders that `left_out` keeps, sorted; none when it cannot be listed."""
    try:
        entries = sorted(d.iterdir(), key=lambda q: q.name)
    except OSError:
        return [], []
    kept = [q for q in entries if left_out(q) is None]
    return [q for q in kept if q.is_file()], [q for q in kept if q.is_dir()]


def is_beside_mask(p: Path, files: list[Path]) -> bool:
    """True when `p` is named `<stem>_mask.*` and a picture `<stem>.*` lies beside it (in `files`)."""
    s = norm(p.stem)
    return s.endswith("_mask") and any(norm(q.stem) == s[:-5] for q in files if q != p)


@dataclass
class MaskChoice:
    """`find_mask`'s answer: the mask (or None), and the candidates when several match (a clash)."""

    mask: Path | None = None
    clash: list[Path] = field(default_factory=list)


def find_mask(p: Path, list_dir: Listing = listing, is_image: Callable[[Path], bool] | None = None) -> MaskChoice:
    """The mask of picture `p` by the module docstring's rule (the loader's and predict's).
    `list_dir`: `listing` or a cached copy; `is_image`: whether a candidate file is an image."""
    stem, key = p.stem, norm(p.stem)
    files = list_dir(p.parent)[0]
    twins = {q.stem for q in files if q != p and norm(q.stem) == key}  # A.png beside a.png
    cands = [(q, q.stem == stem + "_mask", q.stem[:-5] in twins) for q in files
             if q != p and norm(q.stem) == key + "_mask"]
    place = ground_truth_place(p)
    if place is not None:
        gt, names = place
        dirs = [(d, True) for d in list_dir(gt.parent)[1] if norm(d.name) == "ground_truth"]
        for name in names:
            dirs = [(c, exact and c.name == name) for d, exact in dirs for c in list_dir(d)[1]
                    if norm(c.name) == norm(name)]
        for d, exact in dirs:
            cands += [(q, exact and q.stem in (stem, stem + "_mask"), q.stem in twins or q.stem[:-5] in twins)
                      for q in list_dir(d)[0] if norm(q.stem) in mask_stems(stem)]
    cands = [(q, exact) for q, exact, twin in cands if (exact or not twin) and (is_image is None or is_image(q))]
    exact = [q for q, e in cands if e]
    pick = exact if exact else [q for q, _ in cands]
    if len(pick) == 1:
        return MaskChoice(pick[0])
    return MaskChoice(clash=pick)


def same_aspect(wh: tuple[int, int], mask_wh: tuple[int, int]) -> bool:
    """True when a mask of size `mask_wh` (width, height) covers a picture of size `wh`: the same
    aspect ratio to a pixel's rounding, so the mask can be scaled with the picture."""
    (w, h), (mw, mh) = wh, mask_wh
    return abs(w * mh - h * mw) <= max(w + h, mw + mh)


def check_root(root: Path, hint: str = "") -> None:
    """DataError unless `root` is a folder: a missing path (with `hint`), an archive (how to extract
    it), another file."""
    if root.is_dir():
        return
    if root.is_file():
        if zipfile.is_zipfile(root) or root.suffix.lower() in ARCHIVES:
            dest = root.with_suffix("") if root.suffix else root.parent / (root.name + "_extracted")
            raise DataError(f"{shown(root)}: is an archive (zip/tar), not a folder; extract it first, e.g. "
                            f"`python -m zipfile -e {root} {dest}` (or unzip / tar -xf), then give the extracted "
                            "folder that holds train/ and test/")
        raise DataError(f"{shown(root)}: is a file, not a folder; give the folder that holds train/ and test/")
    odd = backslash_hint([root])
    hint = hint or "Point --data-root at a folder holding train/good and test/."
    raise DataError(f"{shown(root)}: no such folder. {hint}"
                    + (f" {odd}" if odd else ""))


def take_inputs(paths: list[Path], exclude: Path | None = None) -> tuple[list[tuple[Path, Path | None]], list, list,
                                                                           int]:
    """predict's inputs: (picture, the folder given it was found in or None), failed (path, reason),
    skipped (path, reason) and the count of OS leftovers; folders walked by `walk.walk_images`,
    the same entry rules as `take`.  Masks are paired afterwards by the same `walk.find_mask`."""
    found, failed, skipped, junk = [], [], [], 0
    seen: set[Path] = set()
    skip_dir = exclude.resolve() if exclude is not None else None
    for p in paths:
        if not is_utf8(str(p)):
            failed.append((writable(str(p)), f"{shown(p)}: {NOT_UTF8}"))
        elif p.is_file() and (zipfile.is_zipfile(p) or p.suffix.lower() in ARCHIVES):
            failed.append((str(p), f"{shown(p)}: is an archive (zip/tar), not an image; extract it and give the "
                                   "extracted folder"))
        elif p.is_dir():
            w = walk_images(p, seen, skip_dir, errors="collect")
            found += [(q, p) for q in w.images]
            failed += [(str(q), r) for q, r in w.failed]
            skipped += [(str(q), with_hint(r, d)) for q, r, d in w.skipped]
            junk += len(w.junk)
        elif p.is_file():
            found.append((p, None))
        else:
            failed.append((str(p), f"{shown(p)}: no such file or folder" if not p.is_symlink()
                           else f"{shown(p)}: a broken link"))
    return found, failed, skipped, junk
