"""The inputs of `score_files` (engine/score_files.py): which files to score, their masks, how they are
decoded, where their figures go, and what is not scored and why.

Files and folders in any layout; which entry is what is decided by the data inventory
(`data.walk.take_inputs`: folders walked as the folder loader walks them, content decides
what is an image, hidden entries, the kit's own outputs, names that are not UTF-8 and link loops
named, OS leftovers counted).  Masks are paired by the folder loader's one rule
(`data.walk.find_mask`): `<stem>_mask.*` beside the image, or `<stem>_mask.*` / `<stem>.*` in the
same sub-path under `ground_truth/<defect>/` for an image under `test/<defect>/`; the exact
spelling first, several candidates a clash (none used, noted).  Decoding is
`images_io.decode_image` / `decode_mask`, the loaders' own.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from ..data.images_io import decode_image, decode_mask, identify
from ..data.walk import find_mask, listing, same_aspect, shown, take_inputs, writable
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
    `exclude`: a folder not to search (the call's output folder).  Which entry is what is
    `data.walk.take_inputs`'s; masks are `data.walk.find_mask`'s, as for the folder loader."""
    pictures, failed, skipped, junk = take_inputs(paths, exclude)
    found = Found([Item(p, root) for p, root in pictures], failed, skipped, junk)
    _dedupe(found)
    _attach_masks(found)
    return found


def _dedupe(found: Found) -> None:
    first: dict[Path, Item] = {}
    keep = []
    for it in found.items:
        key = it.path.resolve()
        if key in first:
            found.skipped.append((str(it.path), f"given twice (scored as {shown(first[key].path)})"))
        else:
            first[key] = it
            keep.append(it)
    found.items = keep


def _is_image(q: Path) -> bool:
    try:
        return identify(q) is not None
    except DataError:  # an unreadable mask still names the image: decode() says why it is not used
        return True


def _attach_masks(found: Found) -> None:
    cached = functools.lru_cache(maxsize=None)(listing)  # each folder listed once per call
    is_image = functools.lru_cache(maxsize=None)(_is_image)
    as_mask: dict[Path, Path] = {}
    for it in found.items:
        choice = find_mask(it.path, cached, is_image)
        if choice.mask is not None:
            it.mask = choice.mask
            as_mask[choice.mask.resolve()] = it.path
        elif choice.clash:
            it.notes.append(f"several masks match ({', '.join(map(shown, choice.clash))}): none used")
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
        cands = [_short(c) for c in cands]
        name = next(c for c in cands if c.as_posix().lower() not in taken)
        taken.add(name.as_posix().lower())
        names.append(Path("figures") / name)
    return names


FIGURE_NAME_BYTES = 200  # a file name may hold 255 bytes; the atomic writer's temporary name adds about 20


def _short(name: Path) -> Path:
    """`name` with its file name cut to FIGURE_NAME_BYTES (UTF-8), a hash of the whole name kept
    so that two long names that share a beginning stay apart."""
    b = name.name.encode("utf-8", "surrogateescape")
    if len(b) <= FIGURE_NAME_BYTES:
        return name
    tag = hashlib.blake2b(b, digest_size=4).hexdigest()
    head = b[:FIGURE_NAME_BYTES - 14].decode("utf-8", "ignore")
    return name.with_name(f"{head}-{tag}.png")


def not_scored_frame(failed, skipped) -> pd.DataFrame:
    """not_scored.csv: path, status (failed / skipped), reason (names that are not UTF-8 as their repr)."""
    rows = [(writable(p), "failed", writable(r)) for p, r in failed]
    rows += [(writable(p), "skipped", writable(r)) for p, r in skipped]
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
            lines.append(f"  {status}, {writable(r)} ({len(ps)}): {', '.join(map(shown, ps[:_SHOWN]))}{more}")
    return "\n".join(lines)


def _reason(path: str, reason: str) -> str:
    """A reason without the file's own name and sizes, so that files failing alike count together."""
    r = reason[len(path) + 2:] if reason.startswith(path + ": ") else reason
    return re.sub(r"\b\d+x\d+\b", "WxH", r)
