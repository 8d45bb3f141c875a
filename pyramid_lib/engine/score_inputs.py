"""The inputs of `score_files` (engine/score_files.py): which files to score, their masks, how they are
decoded, where their figures go, and what is not scored and why.

Files and folders in any layout; folders are searched as the folder loader searches them, by the
same code (`data.walk.walk_images`: recursive, content decides what is an image, hidden entries
named, OS leftovers counted; `data.walk.left_out` decides for every listing).  Masks follow the
folder loader's naming, by the same rules (`data.walk.mask_stems`, `ground_truth_place`):
`<stem>_mask.*` / `<stem>.*` in the same sub-path under `ground_truth/<defect>/` for an image under
`test/<defect>/`, and also `<stem>_mask.*` beside the image (letter case ignored; images under
`test/good/` have none).  Decoding is `images_io.decode_image` / `decode_mask`, the loaders' own.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from ..data.images_io import decode_image, decode_mask, identify
from ..data.walk import ground_truth_place, left_out, mask_stems, not_an_image, same_aspect, walk_images, with_hint
from ..errors import DataError

_SHOWN = 3  # names shown per reason on the terminal (the full list: not_scored.csv)
MASK_REASON = "used as the mask of an image (its mask column)"


@dataclass
class Item:
    """One image to score.  `size` (width, height of the upright picture), `notes` and
    `mask_pixels` (uint8 0/1 S x S; zeros without a usable mask) are set by `decode`."""

    path: Path
    root: Path | None = None  # the folder argument it was found in (None: named directly)
    mask: Path | None = None
    size: tuple[int, int] | None = None
    notes: list[str] = field(default_factory=list)
    mask_pixels: torch.Tensor | None = None


@dataclass
class Found:
    items: list[Item]
    failed: list[tuple[str, str]]  # (path, reason): meant to be scored, could not be
    skipped: list[tuple[str, str]]  # (path, reason): found in a folder, not an image to score
    junk: int = 0  # OS/tool leftovers, counted only


def collect(paths: list[Path], exclude: Path | None = None) -> Found:
    """The images under `paths` (files, and folders searched recursively), each once, in the order
    given (folders sorted by path), with their masks; every other entry in `failed` or `skipped`.
    `exclude`: a folder not to search (the call's output folder)."""
    found = Found([], [], [])
    skip_dir = exclude.resolve() if exclude is not None else None
    seen_dirs: set[Path] = set()
    for p in paths:
        if p.is_dir():
            _walk(p, found, seen_dirs, skip_dir)
        elif p.is_file():
            _add_file(p, None, found)
        else:
            found.failed.append((str(p), f"{p}: no such file or folder" if not p.is_symlink()
                                 else f"{p}: a broken link"))
    _dedupe(found)
    _attach_masks(found)
    return found


def _add_file(p: Path, root: Path | None, found: Found) -> None:
    """A file named directly: scored when Pillow can open it, else failed with the reason."""
    try:
        why = not_an_image(p)
    except DataError as e:
        found.failed.append((str(p), str(e)))
        return
    if why is None:
        found.items.append(Item(p, root))
    else:
        found.failed.append((str(p), with_hint(*why)))


def _walk(folder: Path, found: Found, seen: set[Path], skip_dir: Path | None) -> None:
    """The images under `folder` (`data.walk.walk_images`, its failures collected, not raised)."""
    w = walk_images(folder, seen, skip_dir, errors="collect")
    found.items += [Item(p, folder) for p in w.images]
    found.failed += [(str(p), r) for p, r in w.failed]
    found.skipped += [(str(p), with_hint(r, d)) for p, r, d in w.skipped]
    found.junk += len(w.junk)


def _dedupe(found: Found) -> None:
    first: dict[Path, Item] = {}
    keep = []
    for it in found.items:
        key = it.path.resolve()
        if key in first:
            found.skipped.append((str(it.path), f"given twice (scored as {first[key].path})"))
        else:
            first[key] = it
            keep.append(it)
    found.items = keep


def _listing(d: Path) -> tuple[dict[str, list[Path]], dict[str, list[Path]]]:
    """Folder `d`'s entries that `data.walk.left_out` keeps: (files by lower-case stem, sub-folders
    by lower-case name); a folder that cannot be listed has none."""
    files, dirs = defaultdict(list), defaultdict(list)
    try:
        entries = sorted(d.iterdir(), key=lambda q: q.name)
    except OSError:
        entries = []
    for q in entries:
        if left_out(q) is None:
            (dirs[q.name.lower()] if q.is_dir() else files[q.stem.lower()] if q.is_file() else []).append(q)
    return files, dirs


def mask_candidates(p: Path, listing=_listing) -> list[Path]:
    """The mask files that name image `p` (module docstring), in the order: beside it, ground_truth/.
    `listing`: `_listing`, or a cached copy of it for many images."""
    found = [q for q in listing(p.parent)[0].get(mask_stems(p.stem)[0], []) if q != p]
    place = ground_truth_place(p)
    if place is not None:
        gt, names = place
        dirs = listing(gt.parent)[1].get(gt.name, [])  # ground_truth/, any letter case
        for name in names:  # the defect folder, then the sub-path
            dirs = [c for d in dirs for c in listing(d)[1].get(name, [])]
        for d in dirs:
            files = listing(d)[0]
            found += [q for stem in mask_stems(p.stem) for q in files.get(stem, [])]
    out = []
    for q in found:
        try:
            if q not in out and identify(q) is not None:
                out.append(q)
        except DataError:  # an unreadable mask still names the image: decode() says why it is not used
            out.append(q)
    return out


def _attach_masks(found: Found) -> None:
    listing = functools.lru_cache(maxsize=None)(_listing)  # each folder listed once per call
    as_mask: dict[Path, Path] = {}
    for it in found.items:
        cands = mask_candidates(it.path, listing)
        if len(cands) == 1:
            it.mask = cands[0]
            as_mask[cands[0].resolve()] = it.path
        elif cands:
            it.notes.append(f"several masks match ({', '.join(map(str, cands))}): none used")
    keep = []
    for it in found.items:
        image = as_mask.get(it.path.resolve())
        if image is not None and image != it.path:
            found.skipped.append((str(it.path), MASK_REASON))
        else:
            keep.append(it)
    found.items = keep


TOO_SMALL = "the run was trained at that size: score a larger version of the picture"


def decode(it: Item, size: int, intensity=None) -> torch.Tensor:
    """Image `it` as uint8 3 x size x size (`images_io.decode_image`, as the loaders read training
    images); sets it.size, it.notes (how it was read: non-square resize, value ranges, frames, mask
    problems) and it.mask_pixels.  Raises DataError when the image cannot be used; a mask that cannot
    be is noted and not used."""
    x, wh, notes = decode_image(it.path, size, intensity, too_small=TOO_SMALL)
    it.notes = [n for n in it.notes if n.startswith("several masks")] + notes
    w, h = wh
    if w != h:
        it.notes.append(f"{w}x{h} resized to {size}x{size}, aspect ratio not kept (as training images are)")
    it.size, it.mask_pixels = wh, torch.zeros(size, size, dtype=torch.uint8)
    if it.mask is not None:
        try:
            m, (mw, mh), _ = decode_mask(it.mask, size)
        except DataError as e:
            it.notes.append(f"mask not used: {e}")
            it.mask = None
            return x
        if not same_aspect((w, h), (mw, mh)):
            it.notes.append(f"mask {it.mask} not used: it is {mw}x{mh}, its image {w}x{h} (another aspect ratio)")
            it.mask = None
        else:
            it.mask_pixels = m
    return x


def figure_names(items: list[Item]) -> list[Path]:
    """figures/<name of the folder given>/<sub-path>/<stem>.png for an image found in a folder,
    figures/<stem>.png for one named directly; a name already taken (a.png and a.jpg, two folders
    of one name, names differing in case) gets its suffix, then a number: `a_jpg.png`, `a_jpg-2.png`."""
    taken: set[str] = set()
    names = []
    for it in items:
        rel = Path(it.root.resolve().name or "root") / it.path.relative_to(it.root) if it.root else Path(it.path.name)
        ext = rel.suffix.lstrip(".") or "file"
        cands = [rel.with_name(rel.stem + ".png"), rel.with_name(f"{rel.stem}_{ext}.png")]
        cands += [rel.with_name(f"{rel.stem}_{ext}-{k}.png") for k in range(2, len(items) + 3)]
        name = next(c for c in cands if c.as_posix().lower() not in taken)
        taken.add(name.as_posix().lower())
        names.append(Path("figures") / name)
    return names


def not_scored_frame(failed, skipped) -> pd.DataFrame:
    """not_scored.csv: path, status (failed / skipped), reason."""
    rows = [(p, "failed", r) for p, r in failed] + [(p, "skipped", r) for p, r in skipped]
    return pd.DataFrame(rows, columns=["path", "status", "reason"])


def describe_not_scored(failed, skipped, listed_in: str = "not_scored.csv") -> str:
    """The files not scored, summarised: the count, then per status and reason its count and the
    first few names; every name and reason is in `listed_in`."""
    lines = [f"{len(failed) + len(skipped)} file(s) not scored ({len(failed)} failed, {len(skipped)} skipped; "
             f"every one with its reason in {listed_in}):"]
    for status, entries in (("failed", failed), ("skipped", skipped)):
        by_reason: dict[str, list[str]] = defaultdict(list)
        for p, r in entries:
            by_reason[_reason(p, r)].append(p)
        for r, ps in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
            more = f" ... and {len(ps) - _SHOWN} more" if len(ps) > _SHOWN else ""
            lines.append(f"  {status}, {r} ({len(ps)}): {', '.join(ps[:_SHOWN])}{more}")
    return "\n".join(lines)


def _reason(path: str, reason: str) -> str:
    """A reason without the file's own name and sizes, so that files failing alike count together."""
    r = reason[len(path) + 2:] if reason.startswith(path + ": ") else reason
    return re.sub(r"\b\d+x\d+\b", "WxH", r)
