"""Property-based tests (hypothesis): whatever image bytes or folder tree the loader is given, it
returns images or raises DataError (one clear line), never a raw exception from PIL, torch or numpy."""

from __future__ import annotations

import io
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from pyramid_lib import data
from pyramid_lib.errors import DataError, PyramidError

SIZE = 28
FEW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                     HealthCheck.data_too_large])


# ----------------------------------------------------------------------------------- image bytes

FORMATS = ("PNG", "BMP", "TIFF", "JPEG", "GIF")
MODES = ("L", "RGB", "RGBA", "LA", "P", "1", "I;16", "I", "F", "CMYK")
MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"BM", b"II*\x00", b"MM\x00*", b"GIF89a", b"P5\n")


@st.composite
def image_bytes(draw) -> bytes:
    """A real image file: any of several formats and modes, any size (some below SIZE)."""
    fmt, mode = draw(st.sampled_from(FORMATS)), draw(st.sampled_from(MODES))
    side = st.one_of(st.integers(SIZE, 48), st.integers(SIZE, 48), st.integers(1, SIZE))  # mostly big enough
    w, h = draw(side), draw(side)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if mode == "I;16":
        im = Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))
    elif mode in ("I", "F"):
        im = Image.fromarray(rng.integers(0, 70000, (h, w)).astype(np.int32 if mode == "I" else np.float32))
    else:
        im = Image.fromarray(rng.integers(0, 256, (h, w, 4), dtype=np.uint8), "RGBA").convert(mode)
    for save_fmt, save_im in ((fmt, im), ("TIFF", im), ("PNG", im.convert("RGB"))):  # a format may not hold a mode
        buf = io.BytesIO()
        try:
            save_im.save(buf, save_fmt)
            return buf.getvalue()
        except (OSError, ValueError, KeyError, TypeError):
            continue
    raise AssertionError("unreachable: PNG holds RGB")


@st.composite
def damaged(draw, good) -> bytes:
    b = bytearray(draw(good))
    how = draw(st.sampled_from(["truncate", "flip", "both"]))
    if how in ("truncate", "both"):
        b = b[: draw(st.integers(0, max(0, len(b) - 1)))]
    if how in ("flip", "both") and b:
        for _ in range(draw(st.integers(1, 8))):
            b[draw(st.integers(0, len(b) - 1))] = draw(st.integers(0, 255))
    return bytes(b)


ANY_BYTES = st.one_of(
    image_bytes(),
    damaged(image_bytes()),
    st.binary(max_size=300),
    st.tuples(st.sampled_from(MAGIC), st.binary(max_size=200)).map(lambda t: t[0] + t[1]),
)


def check_image(t: torch.Tensor):
    assert t.dtype == torch.uint8 and t.shape == (3, SIZE, SIZE)


def read_bytes_with(reader, content: bytes, name: str):
    """reader(file holding `content`, SIZE), warnings silenced: (path, result or the DataError)."""
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / name
        p.write_bytes(content)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return p, reader(p, SIZE)
        except DataError as e:
            return p, e


@settings(FEW, max_examples=80)
@given(content=ANY_BYTES, suffix=st.sampled_from([".png", ".jpg", ".bmp", ".tif", ".gif"]))
def test_any_file_reads_as_an_image_or_raises_data_error(content, suffix):
    p, t = read_bytes_with(data.read_image, content, f"img{suffix}")
    if isinstance(t, DataError):
        assert str(p) in str(t) and "\n" not in str(t)
        event("DataError")
    else:
        check_image(t)
        event("read")


@FEW
@given(content=ANY_BYTES)
def test_any_mask_reads_as_zero_one_or_raises_data_error(content):
    p, m = read_bytes_with(data.read_mask, content, "000_mask.png")
    if isinstance(m, DataError):
        assert str(p) in str(m)
    else:
        assert m.shape == (SIZE, SIZE) and set(m.unique().tolist()) <= {0, 1}


# ----------------------------------------------------------------------------------- folder trees

DIRS = st.sampled_from(["train", "test", "good", "crack", "ground_truth", "x", ".hidden"])
FILES = st.sampled_from(["000.png", "001.jpg", "002.bmp", "003.tif", "notes.txt", "noext", ".004.png",
                         "000_mask.png", "005.PNG"])
VALID = [("train/good/000.png", None), ("train/good/001.png", None), ("test/good/000.png", None),
         ("test/crack/000.png", None), ("ground_truth/crack/000_mask.png", None)]


@st.composite
def trees(draw) -> list[tuple[str, bytes | None]]:
    """(relative path, bytes) entries: from nothing or from a valid MVTec tree, plus random files
    anywhere, some of them damaged, and some valid entries dropped.  None = a good image."""
    entries = list(VALID) if draw(st.integers(0, 3)) else []
    entries = [e for e in entries if draw(st.integers(0, 7))]  # drop about one in eight
    for _ in range(draw(st.integers(0, 6))):
        parts = draw(st.lists(DIRS, max_size=3))
        entries.append(("/".join([*parts, draw(FILES)]), draw(st.one_of(st.none(), ANY_BYTES))))
    if draw(st.booleans()):
        entries.append(("/".join(draw(st.lists(DIRS, min_size=1, max_size=3))), b"DIR"))  # an empty folder
    return entries


def build_tree(root: Path, entries, rng) -> None:
    for rel, content in entries:
        p = root / rel
        try:
            if content == b"DIR":
                p.mkdir(parents=True, exist_ok=True)
                continue
            p.parent.mkdir(parents=True, exist_ok=True)
            if content is None:
                arr = rng.integers(0, 256, (SIZE + 4, SIZE + 2), dtype=np.uint8)
                p.write_bytes(_png(arr))
            else:
                p.write_bytes(content)
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            pass  # a file where a folder is wanted, or the reverse: the tree keeps what came first


def _png(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


@settings(FEW, max_examples=100)
@given(entries=trees(), seed=st.integers(0, 1000))
def test_any_folder_tree_loads_or_raises_the_kits_error(entries, seed):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "widget"
        root.mkdir()
        build_tree(root, entries, np.random.default_rng(seed))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                d = data.load_folder(root, SIZE)
        except PyramidError as e:
            assert isinstance(e, DataError) and str(e) and str(root) in str(e)
            event(f"DataError: {str(e).split(': ', 1)[1][:30]}" if ": " in str(e) else "DataError")
            return
        event("loaded")
        n_train, n_test = len(d.train), len(d.test)
        assert n_train >= 1 and n_test >= 1
        assert d.train.images.shape == (n_train, 3, SIZE, SIZE) and d.train.images.dtype == torch.uint8
        assert d.test.images.shape == (n_test, 3, SIZE, SIZE)
        assert d.test.labels.tolist() == [int(c != "good") for c in d.test.classes]
        assert all(Path(n).is_file() and not Path(n).name.startswith(".") for n in d.train.names + d.test.names)
        if d.test.masks is not None:
            assert d.test.masks.shape == (n_test, SIZE, SIZE) and int(d.test.masks.max()) <= 1
            assert all(int(m.sum()) == 0 for m, c in zip(d.test.masks, d.test.classes) if c == "good")
