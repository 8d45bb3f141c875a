"""Decoding one image or one ground-truth mask file with Pillow, into the kit's uint8 tensors.

A file is an image when Pillow can open it (its content decides, not its suffix), so every format
Pillow reads is read: PNG, JPEG, BMP, TIFF, WebP, GIF, PPM/PGM, TGA, JPEG 2000, AVIF, QOI, ...

Images (`read_image`, uint8 3 x S x S):
  * EXIF orientation is applied first (`PIL.ImageOps.exif_transpose`): the picture is loaded the
    way a viewer shows it.  Multi-frame files (GIF, APNG, multi-page TIFF) give their first frame.
  * Grey and palette images become RGB; images with alpha (RGBA, LA, PA, palette transparency) are
    composited on black; CMYK, YCbCr, LAB and HSV are converted to RGB by Pillow.
  * Images of more than 8 bits (16-bit and 32-bit integer: I;16*, I; float: F) are mapped to
    0..255 by ONE rule for both kinds (`intensity_window`, decided once per dataset from its
    training images, recorded in the run's data.json, so test and predict images get the same
    mapping), chosen with --intensity:
      `train-range` (default): the value range of the training images of the same kind (integer
        or float: a set mixing the two maps each kind by its own training images) becomes 0..255,
        so a 12-bit detector or a narrow window (0.40..0.46, 33000..36900) keeps its grey levels;
      `full`: the kind's nominal range becomes 0..255: 0..65535 for integer, 0..1 for float (a
        dark 16-bit image stays dark);
      `per-image`: each image's own min..max becomes 0..255.
    A kind no training image has, or whose training images all hold one value, gets its nominal
    range.  Values outside the mapped range are clipped and `decode_image` says so in its notes
    (per-image never clips).  Without a window (a file decoded on its own) `full` applies.  NaN or
    infinite values are an error.
  * Then the picture is resized (bilinear, aspect not kept) to S x S.  A picture smaller than S on
    either side is refused: it would be blown up, not reduced as the paper did.

Masks (`read_mask`, uint8 0/1 S x S, nearest-neighbour resize), after EXIF orientation, first frame:
  * palette masks (P, PA) by INDEX: index != 0 is defect (a palette's transparent index too is
    background), not by the colour the palette gives the index;
  * any other mode: a pixel is defect where any colour channel is non-zero (0/1, 0/120, 0/255,
    236..255 and coloured masks all work) and, for masks with alpha, the alpha is non-zero;
  * lossy masks (JPEG, WebP): defect where the value is above half the mask's maximum, because
    compression leaves small non-zero values around every edge.

Every failure is a DataError naming the file and what to do about it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from ..errors import DataError

#: Suffixes of the formats this Pillow can open (informational: files are identified by content).
IMAGE_SUFFIXES = tuple(sorted(e for e, fmt in Image.registered_extensions().items() if fmt in Image.OPEN))

#: Files left by operating systems and tools: skipped without naming them (only counted).
JUNK_FILES = frozenset({".ds_store", "thumbs.db", "ehthumbs.db", "ehthumbs_vista.db", "desktop.ini", ".directory",
                        ".localized", "icon\r", ".gitkeep", ".gitignore", ".keep"})
#: Folders left by operating systems and tools (Jupyter checkpoints, macOS zip metadata, ...).
JUNK_FOLDERS = frozenset({".ipynb_checkpoints", "__macosx", ".git", ".svn", ".hg", "__pycache__", ".trash",
                          ".trashes", ".spotlight-v100", ".fseventsd", ".temporaryitems", "@eadir",
                          "$recycle.bin", "system volume information", ".thumbnails"})

_LOSSY = frozenset({"JPEG", "MPO", "WEBP"})
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
DICOM_HINT = ("DICOM (medical image): Pillow cannot read it; convert it to 16-bit PNG or TIFF, e.g. with "
              "pydicom: PIL.Image.fromarray(pydicom.dcmread(f).pixel_array).save('x.png')")
_HINTS = {".heic": "HEIC: pip install pillow-heif, or convert to PNG", ".heif": "HEIF: pip install pillow-heif",
          ".npy": "a numpy array: save it as PNG or TIFF", ".cr2": "camera raw: convert to PNG or TIFF",
          ".nef": "camera raw: convert to PNG or TIFF", ".arw": "camera raw: convert to PNG or TIFF",
          ".dng": "camera raw: convert to PNG or TIFF", ".svg": "vector image: render it to PNG",
          ".dcm": DICOM_HINT, ".dicom": DICOM_HINT}


def is_junk(name: str) -> bool:
    """True for OS/tool leftovers (.DS_Store, Thumbs.db, macOS '._x.png' resource forks, ...)."""
    return name.lower() in JUNK_FILES or name.startswith("._") or name.startswith("~$")


def identify(path: Path) -> str | None:
    """Pillow's format name for `path`, or None if it is not an image Pillow reads.

    A file whose suffix names a format Pillow opens (.png, .JPG, .webp, ...) is identified from
    its header only; a file with another suffix or none (frame_0007, notes.txt, x.heic) counts as
    an image only if Pillow decodes it completely.  Raises DataError for a file whose suffix
    claims an image format but whose content is not one (empty, text, garbage), for files that
    cannot be opened (permissions), and for files over Pillow's decompression-bomb limit."""
    claimed = path.suffix.lower() in IMAGE_SUFFIXES
    try:
        with Image.open(path) as im:
            if not claimed:
                im.load()
            return im.format or "image"
    except Image.DecompressionBombError as e:
        raise _bomb(path, e) from e
    except PermissionError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror}); check its permissions") from e
    except Exception as e:  # UnidentifiedImageError, OSError (truncated), SyntaxError, struct.error, ...
        if not claimed:
            return None
        raise DataError(f"{path}: not a readable image ({type(e).__name__}: {e}); replace or remove the file") from e


def why_not_an_image(path: Path) -> str:
    """A hint for a file Pillow cannot read, for well-known other formats (HEIC, camera raw, .npy, DICOM by
    its suffix or its 'DICM' marker at byte 128); else ''."""
    hint = _HINTS.get(path.suffix.lower(), "")
    if not hint:
        try:
            with open(path, "rb") as f:
                hint = DICOM_HINT if f.read(132)[128:132] == b"DICM" else ""
        except OSError:
            pass
    return hint


INTENSITY_RULES = ("train-range", "full", "per-image")
TOO_SMALL = "remove it or pass a smaller --input-size (at least 28)"


#: The value range each kind of image of more than 8 bits nominally fills: what `full` maps to
#: 0..255, and the fallback of a kind without a training range.
NOMINAL = {"integer": (0.0, 65535.0), "float": (0.0, 1.0)}
KIND_NAMES = {"integer": "16-bit (or 32-bit integer)", "float": "float"}


def value_kind(mode: str) -> str | None:
    """'integer' for 16/32-bit integer modes (I;16*, I), 'float' for F, None for 8-bit modes."""
    return "integer" if mode.startswith("I;16") or mode == "I" else "float" if mode == "F" else None


def value_range(path) -> tuple[str, float, float] | None:
    """(kind, min, max) of the raw finite values of an image of more than 8 bits (`value_kind`);
    None for 8-bit images and files that cannot be read (decoding them says why)."""
    try:
        with Image.open(path) as im:
            kind = value_kind(im.mode)
            if kind is None:
                return None
            a = np.asarray(im, dtype=np.float64)
    except Exception:
        return None
    a = a[np.isfinite(a)]
    return (kind, float(a.min()), float(a.max())) if a.size else None


def intensity_window(train_paths, rule: str = "train-range") -> dict:
    """The intensity mapping of a dataset, decided once from its training images:
    {"rule": rule, "kinds": {kind: {"low", "high", "files"}}}, one entry per kind of image of more
    than 8 bits among the training images (`value_kind`; none for 8-bit data) with their value
    range low..high and count.  `decode_image(..., intensity=window)` applies it (see the module
    docstring), `describe_window` says it in words.  Raises DataError for an unknown rule."""
    if rule not in INTENSITY_RULES:
        raise DataError(f"--intensity must be one of {', '.join(INTENSITY_RULES)}, got {rule!r}")
    kinds: dict[str, dict] = {}
    for r in (value_range(p) for p in train_paths):
        if r is not None:
            k = kinds.setdefault(r[0], {"low": r[1], "high": r[2], "files": 0})
            k["low"], k["high"], k["files"] = min(k["low"], r[1]), max(k["high"], r[2]), k["files"] + 1
    return {"rule": rule, "kinds": kinds}


def window_kinds(w: dict | None) -> dict[str, dict]:
    """The per-kind ranges of a window; a window recorded before floats had one (data.json
    {"rule", "low", "high", "files"}) held integer images only."""
    if not w:
        return {}
    if "kinds" in w:
        return w["kinds"]
    return {"integer": {k: w[k] for k in ("low", "high", "files")}} if "low" in w else {}


def mapped_range(kind: str, a: np.ndarray, w: dict | None) -> tuple[float, float, str]:
    """(low, high, what it is) of the values of an image of `kind` (its values `a`) that become
    0..255 under the window `w` (None: `full`): the one rule of the module docstring."""
    rule = (w or {}).get("rule", "full")
    if rule == "per-image" and a.size and a.max() > a.min():
        return float(a.min()), float(a.max()), "its own range"
    seen = window_kinds(w).get(kind)
    if rule == "train-range" and seen and seen["high"] > seen["low"]:
        return seen["low"], seen["high"], "the training range"
    return (*NOMINAL[kind], "the nominal range")


def describe_window(w: dict) -> str:
    """The load-time message: per kind of image of more than 8 bits among the training images, how
    their values become the network's 0..255; '' for 8-bit data."""
    parts = []
    for kind, k in window_kinds(w).items():
        lo, hi = NOMINAL[kind]
        span = f"{k['files']} {KIND_NAMES[kind]} training image(s), values {k['low']:g}..{k['high']:g}"
        if w["rule"] == "per-image":
            parts.append(f"{span}: each image's own min..max mapped to 0..255")
        elif w["rule"] == "train-range" and k["high"] > k["low"]:
            parts.append(f"{span}: this range (the training images') mapped to 0..255")
        else:
            why = " (they hold one value)" if w["rule"] == "train-range" else ""
            levels = max(1, round((min(k["high"], hi) - max(k["low"], lo)) / (hi - lo) * 255))
            parts.append(f"{span}{why}: the nominal range {lo:g}..{hi:g} mapped to 0..255, "
                         f"about {levels} grey level(s) remain")
    if not parts:
        return ""
    rule = {"train-range": "each kind by its own training images' range; a kind no training image has, or "
                           "whose training images hold one value, by its nominal range",
            "full": "each kind's nominal range", "per-image": "each image by its own range"}[w["rule"]]
    clipped = "" if w["rule"] == "per-image" else "; values outside are clipped and the files named"
    return ("; ".join(parts) + f" (--intensity {w['rule']}: {rule}; nominal: 0..65535 for integer, 0..1 for "
            f"float){clipped}; the same mapping is used for the test images and predict "
            "(--intensity full | train-range | per-image)")


def decode_image(path, size: int, intensity: dict | None = None,
                 too_small: str = TOO_SMALL) -> tuple[torch.Tensor, tuple[int, int], list[str]]:
    """(uint8 3 x size x size, (width, height) of the upright picture in pixels, notes).

    `intensity`: the dataset's window (`intensity_window`) for images of more than 8 bits; None:
    `full` (see the module docstring).  Notes are short remarks on how the file was read (first
    frame of several, value range stretched or clipped); empty for an ordinary image.  Raises
    DataError (path and fix in one line; `too_small` is the fix for a picture smaller than `size`)
    for unreadable or broken files, NaN/inf values, pictures smaller than `size`, unconvertible modes."""
    path = Path(path)
    notes: list[str] = []
    try:
        with Image.open(path) as im:
            wh = _upright_size(im)
            if im.format == "JPEG" and min(wh) >= 2 * size:  # decode large JPEGs at a reduced scale
                im.draft("RGB" if im.mode == "RGB" else im.mode, (size, size))
            im.load()
            _note_frames(im, notes)
            fmt = im.format
            im = _to_rgb(_upright(im), fmt, path, notes, intensity)
    except DataError:
        raise
    except Image.DecompressionBombError as e:
        raise _bomb(path, e) from e
    except Exception as e:  # UnidentifiedImageError, OSError (truncated), SyntaxError, struct.error, ...
        raise DataError(f"{path}: not a readable image ({type(e).__name__}: {e}); replace or remove the file") from e
    w, h = wh
    if w < size or h < size:
        raise DataError(f"{path}: image is {w}x{h}, smaller than the input size {size}x{size}; "
                        f"{too_small}")
    im = im.resize((size, size), Image.BILINEAR)
    return torch.from_numpy(np.array(im, dtype=np.uint8)).permute(2, 0, 1).contiguous(), wh, notes


def read_image(path, size: int) -> torch.Tensor:
    """Decode one image to uint8 3 x size x size, upright (EXIF), in 0..255; see the module doc for
    modes and value ranges.  Raises DataError naming the file (unreadable, broken, smaller than size)."""
    return decode_image(path, size)[0]


def decode_mask(path, size: int) -> tuple[torch.Tensor, tuple[int, int], list[str]]:
    """(uint8 0/1 size x size, (width, height) of the upright mask in pixels, notes).

    Defect = palette index != 0, else any non-zero channel (with non-zero alpha); lossy files:
    above half the maximum.  Raises DataError naming the file if it cannot be read."""
    path = Path(path)
    notes: list[str] = []
    try:
        with Image.open(path) as im:
            im.load()
            _note_frames(im, notes)
            fmt = im.format
            im = _upright(im)
            defect = _defect_pixels(im, fmt)
            wh = im.size
    except Image.DecompressionBombError as e:
        raise _bomb(path, e) from e
    except Exception as e:  # any decoder failure: this file cannot be used
        raise DataError(f"{path}: not a readable mask ({type(e).__name__}: {e}); replace or remove the file") from e
    m = torch.from_numpy(np.array(Image.fromarray(defect.astype(np.uint8)).resize((size, size), Image.NEAREST),
                                  dtype=np.uint8))
    if defect.any() and not m.any():  # a defect smaller than one pixel at the input size
        notes.append(f"its defect ({int(defect.sum())} px of {wh[0]}x{wh[1]}) is below one pixel at {size}x{size}: "
                     "the mask is EMPTY at the input size (a larger --input-size keeps it)")
    return m, wh, notes


def read_mask(path, size: int) -> torch.Tensor:
    """A ground-truth mask as uint8 0/1 of size x size (nearest-neighbour resize), upright (EXIF).
    Raises DataError naming the file if it cannot be read."""
    return decode_mask(path, size)[0]


# ----------------------------------------------------------------------------------- helpers

def _bomb(path: Path, e: Exception) -> DataError:
    return DataError(f"{path}: image too large for Pillow's decompression-bomb limit "
                     f"({Image.MAX_IMAGE_PIXELS} pixels; {e}); downscale the file, or raise "
                     f"PIL.Image.MAX_IMAGE_PIXELS if you trust it")


def _upright_size(im: Image.Image) -> tuple[int, int]:
    w, h = im.size
    return (h, w) if _orientation(im) in (5, 6, 7, 8) else (w, h)


def _orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(0x0112, 1) or 1)
    except Exception:  # a damaged EXIF block: no orientation to apply
        return 1


def _upright(im: Image.Image) -> Image.Image:
    if _orientation(im) in range(2, 9):
        return ImageOps.exif_transpose(im)
    return im


def _note_frames(im: Image.Image, notes: list[str]) -> None:
    n = getattr(im, "n_frames", 1)
    if n > 1:
        notes.append(f"{n} frames, the first one used")


def _to_rgb(im: Image.Image, fmt: str | None, path: Path, notes: list[str], intensity: dict | None = None
            ) -> Image.Image:
    kind = value_kind(im.mode)
    if kind is not None:
        a = np.asarray(im)
        if a.ndim != 2:
            a = np.asarray(im.convert("I" if kind == "integer" else "F"))
        im = Image.fromarray(_to_u8(a.astype(np.float64), kind, path, notes, intensity))
    elif im.mode in _ALPHA_MODES or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", im.size, (0, 0, 0, 255)), im)
    return im.convert("RGB")


def _to_u8(a: np.ndarray, kind: str, path: Path, notes: list[str], intensity: dict | None) -> np.ndarray:
    if not np.isfinite(a).all():
        raise DataError(f"{path}: image holds NaN or infinite values; replace them (e.g. by 0) and save again")
    lo, hi, what = mapped_range(kind, a, intensity)
    if intensity is not None and intensity.get("rule") == "train-range" and kind not in window_kinds(intensity):
        notes.append(f"no training image is {KIND_NAMES[kind]}: its nominal range {lo:g}..{hi:g} mapped to 0..255")
    if a.size and (a.min() < lo or a.max() > hi):
        notes.append(f"values {a.min():g}..{a.max():g} clipped to {what} {lo:g}..{hi:g}")
    return np.clip((a - lo) / (hi - lo) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _defect_pixels(im: Image.Image, fmt: str | None) -> np.ndarray:
    """bool H x W: where the mask marks a defect (see the module docstring)."""
    mode = im.mode
    if mode in ("P", "PA"):
        a = np.asarray(im)
        idx, alpha = (a[..., 0], a[..., 1]) if a.ndim == 3 else (a, None)
        defect = idx != 0
        t = im.info.get("transparency")
        if isinstance(t, int):
            defect &= idx != t
        return defect if alpha is None else defect & (alpha != 0)
    if mode in _ALPHA_MODES:
        a = np.asarray(im.convert("RGBA"))
        v, alpha = a[..., :3].max(axis=2), a[..., 3]
    else:
        if not (mode in ("1", "L", "RGB", "F", "I") or mode.startswith("I;16")):
            im = im.convert("RGB")  # CMYK, YCbCr, LAB, HSV: by colour
        a = np.asarray(im)
        if a.dtype.kind == "f":
            a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
        v, alpha = (a.max(axis=2) if a.ndim == 3 else a), None
    if fmt in _LOSSY and a.size:
        defect = v > float(v.max()) / 2
    else:
        defect = v != 0
    return defect if alpha is None else defect & (alpha != 0)
