"""The inventory of a data root: every path under it gets exactly one fate, decided here and only here.

Fates (`Entry.fate`): TRAIN (a training normal: train/good/**; the trainer's split then holds some
out as HELD_OUT normals, recorded in data.json), TEST_NORMAL (test/good/**), TEST_DEFECT of kind K
(test/K/**), MASK of picture P (`walk.find_mask`: ground_truth/K/**/<stem>_mask.* or <stem>.*, or
<stem>_mask.* beside P), or LEFT_OUT with its reason:

  * not where the layout looks (files beside train/ and test/, train/ folders other than good/);
  * the kit's own outputs (a predict output, a run folder), hidden entries, OS leftovers (counted);
  * links: to a place outside the root, to a folder above them (a loop), or to a file or folder
    the inventory reaches at its own place (a second way in); a link is never followed into test/
    pictures, and no advice ever says to delete through a link;
  * a duplicate of P (the same bytes): a copy of a test picture is never trained on, and one
    picture is never tested twice (under two labels: named, the first one in path order kept);
  * not an image, with its format named (HEIC, camera raw, DICOM ...), or unreadable (an image
    suffix whose content does not decode: the loader stops on it; predict lists it as failed);
  * a name that is not valid UTF-8; a mask without a picture, a mask of a normal picture, a
    `_mask` file with no picture beside it; several masks for one picture (a clash: the picture
    and its masks are left out, named, since either mask could be the wrong one).

Names that differ only in letter case, Unicode form (NFC/NFD) or surrounding spaces (`walk.norm`)
are one name: class folders so spelled are merged (and said so), masks pair with the exact
spelling first.  `take(root)` is called by the folder loader (train and evaluate), and `pyramid-ad data ROOT` prints
`Inventory.describe()`; predict's inputs are walked by the same rules (`walk.take_inputs`).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..errors import DataError
from .walk import (
    JUNK,
    KIT_OUTPUT,
    backslash_hint,
    check_root,
    find_mask,
    is_beside_mask,
    left_out,
    link_reason,
    listing,
    norm,
    shown,
    walk_images,
    with_hint,
    writable,
)

TRAIN, HELD_OUT, TEST_NORMAL, TEST_DEFECT, MASK, LEFT_OUT = (
    "training normal", "held-out normal", "test normal", "test defect", "mask", "left out")
UNREADABLE = "unreadable"
NORMAL = "good"
LAYOUT = ("train", "test", "ground_truth")
_LIKELY_NORMAL = ("ok", "normal", "norm", "pass", "negative")
NO_TEST = "test/: no test images; it needs test/good/ and test/<defect>/ folders with images"
_SHOWN = 8  # paths per reason in `describe` (all of them are in the record)


# what to do about a left-out path, by the start of its reason (reasons that carry their fix have none)
FIXES = {
    "hidden": "to use it, rename it without the leading dot",
    "not an image": "convert it to PNG or TIFF to use it",
    "in train/, not": "move it into train/good/ if it is a normal picture",
    "train/ folder other": "training uses train/good/ only; move normal pictures there",
    "in test/, not": "move it into test/good/ or test/<defect>/",
    "folder not under": "nothing to do unless it holds pictures: then move them into train/good/ or test/<class>/",
    "not under train/": "nothing to do unless it is a picture: then move it into train/good/ or test/<class>/",
    "mask without": "rename it <picture stem>_mask.<ext> under ground_truth/<defect>/ (the picture's sub-path)",
    "mask in a ground_truth/": "the class folder under ground_truth/ must be spelled as under test/",
    "mask of a normal": "normal pictures have no defect: remove it, or move the picture to its defect folder",
    "link to": "the link itself is left as it is; remove only the link (rm LINK, no trailing slash), never "
               "`rm -r` through it",
    "broken link": "remove the link (rm LINK) or point it at an existing file",
    KIT_OUTPUT: "move it out of the data root (e.g. pyramid-ad predict ... --out outside the data)",
}


def fix_for(reason: str) -> str:
    return next((f for k, f in FIXES.items() if reason.startswith(k)), "")


@dataclass(frozen=True)
class Entry:
    """One path's fate.  `kind`: the class of a test picture; `of`: a mask's picture, a duplicate's
    original; `reason`: why it is left out (with the fix); `note`: a remark on a used picture."""

    path: Path
    fate: str
    kind: str = ""
    of: Path | None = None
    reason: str = ""
    note: str = ""
    detail: str = ""  # with `note`: what is particular to this path (sizes ...)


@dataclass
class Inventory:
    root: Path
    entries: list[Entry] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)  # whole-set remarks (merged folders, no normals ...)

    def add(self, path: Path, fate: str, **kw) -> None:
        self.entries.append(Entry(path, fate, **kw))

    def of_fate(self, fate: str) -> list[Entry]:
        return [e for e in self.entries if e.fate == fate]

    @property
    def train(self) -> list[Path]:
        return [e.path for e in self.of_fate(TRAIN)]

    @property
    def test(self) -> list[tuple[Path, str]]:
        """(picture, class) in class order, then path order."""
        es = [e for e in self.entries if e.fate in (TEST_NORMAL, TEST_DEFECT)]
        return [(e.path, e.kind) for e in sorted(es, key=lambda e: (e.kind, str(e.path)))]

    @property
    def masks(self) -> dict[Path, Path]:
        return {e.of: e.path for e in self.of_fate(MASK)}

    @property
    def left(self) -> list[Entry]:
        """Left-out entries other than OS leftovers."""
        return [e for e in self.of_fate(LEFT_OUT) if e.reason != JUNK]

    @property
    def unreadable(self) -> list[Entry]:
        return [e for e in self.left if e.reason.startswith(UNREADABLE)]

    def rel(self, p: Path) -> str:
        try:
            return p.relative_to(self.root).as_posix()
        except ValueError:
            return str(p)

    def counts(self, held_out: int = 0) -> dict[str, int]:
        c = Counter(e.fate for e in self.entries)
        if held_out:
            c[TRAIN] -= held_out
            c[HELD_OUT] = held_out
        return {f: c.get(f, 0) for f in (TRAIN, HELD_OUT, TEST_NORMAL, TEST_DEFECT, MASK, LEFT_OUT)}

    def by_reason(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for e in self.left:
            out[e.reason].append(shown(self.rel(e.path)) + (f" (= {shown(self.rel(e.of))})" if e.of else "")
                                 + (f" ({e.detail})" if e.detail else ""))
        return out

    def describe(self, held_out: int = 0, shown_per_reason: int = _SHOWN) -> str:
        """The summary `pyramid-ad data` prints: counts per fate (defects per kind), then every
        left-out path by reason (with its fix), the remarks on used pictures, the whole-set lines."""
        c = self.counts(held_out)
        kinds = Counter(e.kind for e in self.of_fate(TEST_DEFECT))
        junk = sum(e.reason == JUNK for e in self.entries)
        lines = [f"{shown(self.root)}: " + ", ".join(f"{n} {f}" for f, n in c.items() if n or f != HELD_OUT)
                 + (f" ({junk} of them OS/tool leftovers)" if junk else "")]
        if kinds:
            lines.append("  test defects by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
        for reason, paths in self.by_reason().items():
            more = f" ... and {len(paths) - shown_per_reason} more" if len(paths) > shown_per_reason else ""
            fix = f"\n      fix: {fix_for(reason)}" if fix_for(reason) else ""
            lines.append(f"  left out, {reason} ({len(paths)}): {', '.join(paths[:shown_per_reason])}{more}{fix}")
        notes = [e for e in self.entries if e.note]
        for e in notes[:shown_per_reason]:
            lines.append(f"  used: {shown(self.rel(e.path))}: {e.note}")
        if len(notes) > shown_per_reason:
            lines.append(f"  ... and {len(notes) - shown_per_reason} more remarks")
        return "\n".join(lines + [f"  {r}" for r in self.remarks])

    def record(self) -> dict:
        """What data.json keeps: counts per fate, the masks and every left-out path with its reason."""
        left = [e for e in self.entries if e.fate == LEFT_OUT]
        return {"counts": self.counts(), "masks": {self.rel(p): self.rel(m) for p, m in self.masks.items()},
                "left_out": {writable(self.rel(e.path)): with_hint(e.reason, e.detail)
                             + (f" (= {self.rel(e.of)})" if e.of else "") for e in left}}


def take(root, hint: str = "") -> Inventory:
    """The inventory of the data root `root` (module docstring).  Raises DataError when `root` is
    not a folder (`check_root`) or is not in MVTec AD's layout (no train/good/, no test/)."""
    root = Path(root)
    check_root(root, hint)
    inv = Inventory(root)
    real = root.resolve()
    top = _classes(inv, root, real, "not under train/, test/ or ground_truth/ (not read)", None)
    for name, dirs in top.items():
        if name not in LAYOUT:
            for d in dirs:
                inv.add(d, LEFT_OUT, reason="folder not under train/, test/ or ground_truth/ (not read)")
    role_dirs = [Path(d).resolve() for n in LAYOUT for d in top.get(n, [])]

    def used(t: Path) -> bool:
        return any(t == r or r in t.parents for r in role_dirs)

    train = _classes(inv, top["train"][0], real, "in train/, not in train/good/", NORMAL) if "train" in top else {}
    if NORMAL not in train or "test" not in top:
        odd = backslash_hint(root.iterdir())
        missing = root / "train" / "good" if NORMAL not in train else root / "test"
        raise DataError(f"{shown(root)}: not in MVTec AD's layout (needs train/good/ and test/good/, test/<defect>/); "
                        f"missing {shown(missing)}" + (f". {odd}" if odd else ""))
    for name, dirs in train.items():
        for d in dirs if name != NORMAL else []:
            inv.add(d, LEFT_OUT, reason="train/ folder other than good/ (training uses normal images only)")
    cached = lru_cache(maxsize=None)(listing)
    train_pics = [p for d in train[NORMAL] for p in _pictures(inv, d, real, used)]
    train_pics = [p for p in train_pics if not _beside(inv, p, cached, "a mask beside its picture in train/ "
                                                       "(training normals have no masks): not used")]
    tests = _classes(inv, top["test"][0], real, "in test/, not in a class folder test/<class>/", NORMAL)
    test_pics: list[tuple[Path, str]] = []
    for name, dirs in tests.items():
        pics = [p for d in dirs for p in _pictures(inv, d, real, used)]
        if not pics:
            inv.remarks.append(f"{', '.join(inv.rel(d) + '/' for d in dirs)}: no images; class {name!r} is not scored")
        test_pics += [(p, name) for p in pics]
    gt = [m for d in top.get("ground_truth", []) for m in _pictures(inv, d, real, used)]
    test_pics = _pair_masks(inv, test_pics, gt, cached)
    _dedupe(inv, train_pics, test_pics)
    _remarks(inv)
    return inv


def _classes(inv: Inventory, parent: Path, real: Path, stray: str, normal: str | None) -> dict[str, list[Path]]:
    """The sub-folders of `parent` grouped by class (`norm`; `normal` for its spellings, else the
    first spelling, stripped); every other entry of `parent` gets its fate here."""
    groups: dict[str, list[Path]] = defaultdict(list)
    try:
        entries = sorted(parent.iterdir(), key=lambda p: p.name)
    except OSError as e:
        raise DataError(f"{shown(parent)}: folder cannot be listed ({e.strerror or e}); check its permissions") from e
    odd = backslash_hint(p for p in entries if p.is_dir())
    if odd:
        inv.remarks.append(f"{inv.rel(parent)}/: {odd}")
    for p in entries:
        why = left_out(p) or (link_reason(p, real) if p.is_symlink() else None)
        if why:
            inv.add(p, LEFT_OUT, reason=why)
        elif p.is_dir():
            groups[norm(p.name)].append(p)
        else:
            inv.add(p, LEFT_OUT, reason=stray)
    named = {}
    for key, dirs in groups.items():
        name = normal if key == normal else sorted(d.name.strip() for d in dirs)[0]
        odd = [d for d in dirs if norm(d.name) != d.name.lower()]  # spaces or Unicode form
        if len(dirs) > 1 or odd:
            how = "letter case" if not odd else "letter case, Unicode form or surrounding spaces"
            inv.remarks.append(f"{' and '.join(shown(inv.rel(d)) + '/' for d in dirs)} differ only in {how}: merged "
                               f"as class {name!r}" + ("; masks pair with the exact spelling first" if len(dirs) > 1
                                                       else ""))
        named[name] = dirs
    return dict(sorted(named.items()))


def _pictures(inv: Inventory, folder: Path, real: Path, used) -> list[Path]:
    """The images under `folder` (`walk.walk_images` inside the root); the rest get their fate."""
    w = walk_images(folder, errors="collect", root=real, used=used)
    for p, reason, detail in w.skipped:
        inv.add(p, LEFT_OUT, reason=reason, detail=detail)
    for p, reason in w.failed:
        inv.add(p, LEFT_OUT, reason=f"{UNREADABLE}: {reason.removeprefix(str(p) + ': ')}")
    for p in w.junk:
        inv.add(p, LEFT_OUT, reason=JUNK)
    return w.images


def _beside(inv: Inventory, p: Path, cached, reason: str) -> bool:
    if is_beside_mask(p, cached(p.parent)[0]):
        inv.add(p, LEFT_OUT, reason=reason)
        return True
    return False


def _pair_masks(inv: Inventory, test_pics, gt: list[Path], cached) -> list[tuple[Path, str]]:
    """Masks for the test pictures (`walk.find_mask`); pictures with several masks, masks with no
    picture or of a normal picture, `_mask` files without a picture get LEFT_OUT."""
    beside = {p for p, _ in test_pics if is_beside_mask(p, cached(p.parent)[0])}
    pics = [(p, c) for p, c in test_pics if p not in beside]
    images = set(gt) | beside
    chosen: dict[Path, Path] = {}
    kept = []
    for p, c in pics:
        if norm(p.stem).endswith("_mask") and c != NORMAL and not any(
                norm(q.stem) == norm(p.stem)[:-5] for q in cached(p.parent)[0] if q != p):
            inv.add(p, LEFT_OUT, reason="named as a mask (<stem>_mask) but no picture <stem>.* beside it: not "
                                        "scored as a picture (rename it if it is one)")
            continue
        m = find_mask(p, cached, lambda q: q in images)
        if m.clash:
            inv.add(p, LEFT_OUT, reason="several masks match it and none by its exact name: keep the right one "
                    f"under its exact name ({', '.join(shown(inv.rel(q)) for q in m.clash)})")
            continue
        if m.mask is not None and m.mask not in chosen:
            chosen[m.mask] = p
            normal = "its picture is normal (test/good/): not used in the pixel metrics" if c == NORMAL else ""
            inv.add(m.mask, MASK, of=p, note=normal)
        kept.append((p, c))
    for p, c in kept:
        inv.add(p, TEST_NORMAL if c == NORMAL else TEST_DEFECT, kind=c)
    classes = {norm(c) for _, c in test_pics}
    for q in sorted(images - set(chosen)):
        parts = [norm(x) for x in Path(inv.rel(q)).parts]
        kind = parts[1] if len(parts) > 2 and parts[0] == "ground_truth" else None
        inv.add(q, LEFT_OUT, reason="mask of a normal picture (good/): not used" if NORMAL in parts else
                "mask in a ground_truth/ folder of no test class" if kind is not None and kind not in classes else
                "mask without a test image of that name")
    return kept


def _dedupe(inv: Inventory, train: list[Path], test: list[tuple[Path, str]]) -> None:
    """Byte-identical pictures across roles: a training copy of a test picture is LEFT_OUT (a test
    picture is never trained on), and of one picture under two test labels the first (class, then
    path order) is kept, the other LEFT_OUT and named.  Copies within one role and label are kept
    (data.json's record names them).  The training pictures kept become TRAIN entries."""
    first: dict[str, tuple[Path, str]] = {}
    drop: dict[Path, Entry] = {}
    for p, c in sorted(test, key=lambda t: (t[1], str(t[0]))):
        h = _digest(p)
        q, qc = first.setdefault(h, (p, c))
        if qc != c:
            drop[p] = Entry(p, LEFT_OUT, of=q, reason=f"the same picture (bytes) under two labels, {qc!r} kept: "
                                                      f"keep it under the right one only")
    inv.entries = [drop.get(e.path, e) for e in inv.entries]
    for p in train:
        if _digest(p) in first:
            inv.add(p, LEFT_OUT, of=first[_digest(p)][0], reason="copy of a test picture: never trained on (it would "
                    "inflate the metrics); remove this copy from train/ (the test file stays)")
        else:
            inv.add(p, TRAIN)


def _digest(p: Path) -> str:
    try:
        h = hashlib.blake2b(digest_size=16)
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    except OSError:  # decoding says why it cannot be read
        return f"unreadable:{p}"


def _remarks(inv: Inventory) -> None:
    classes = sorted({e.kind for e in inv.entries if e.fate in (TEST_NORMAL, TEST_DEFECT)})
    if not classes:
        inv.remarks.append(NO_TEST)
    elif NORMAL not in classes:
        likely = [c for c in classes if c.lower() in _LIKELY_NORMAL]
        inv.remarks.append("test/: no normal test images (test/good/): AUROC is undefined without them; every test "
                           "image is labelled anomalous" + (f"; if test/{likely[0]}/ holds normal images, rename it "
                                                             "to test/good/" if likely else ""))
    elif classes == [NORMAL]:
        inv.remarks.append("test/: only normal test images (no test/<defect>/): AUROC is undefined without defects")
