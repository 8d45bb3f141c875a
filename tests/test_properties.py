"""Property-based tests (hypothesis): whatever folder tree, image bytes or arguments the kit is given,
it either works or raises its own error type (a PyramidError subclass, one clear line), never a raw
exception from PIL, torch or numpy."""

from __future__ import annotations

import contextlib
import io
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from pyramid_lib import data
from pyramid_lib.errors import ConfigError, DataError, PyramidError
from pyramid_lib.train import TrainConfig

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
    for fmt, im in ((fmt, im), ("TIFF", im), ("PNG", im.convert("RGB"))):  # when a format cannot hold a mode
        buf = io.BytesIO()
        try:
            im.save(buf, fmt)
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


# ----------------------------------------------------------------------------------- arguments

@FEW
@given(dataset=st.sampled_from(["mnist", "fmnist", "mnist-sample"]),
       cls=st.one_of(st.integers(-20, 20), st.text(max_size=12), st.sampled_from(data.FMNIST_CLASSES)))
def test_normal_class_is_a_valid_index_or_a_data_error_naming_the_argument(dataset, cls):
    names = data.FMNIST_CLASSES if dataset == "fmnist" else data.MNIST_CLASSES
    try:
        i = data.class_index(cls, names)
    except DataError as e:
        assert str(e).startswith("--normal-class") and "\n" not in str(e)
    else:
        assert 0 <= i < len(names) and (str(cls) == names[i] or int(str(cls)) == i)


NUM = st.one_of(st.integers(-5, 300), st.floats(allow_nan=True, allow_infinity=True), st.none())


@FEW
@given(epochs=NUM, lam=NUM, lr=NUM, batch=NUM, seed=st.one_of(st.integers(-3, 2**40), st.none()),
       encoders=st.sampled_from([0, 1, 2, 3, 4, 6, 8]), size=st.integers(-1, 300), val=NUM, limit=NUM,
       dataset=st.sampled_from(data.DATASETS + ("imagenet",)), pyramid=st.sampled_from(["paper", "spatial", "x"]))
def test_train_config_validates_or_raises_a_config_error(epochs, lam, lr, batch, seed, encoders, size, val, limit,
                                                        dataset, pyramid):
    kw = dict(epochs=epochs, lam=lam, lr=lr, batch_size=batch, seed=seed, val_fraction=val, train_limit=limit)
    kw = {k: v for k, v in kw.items() if v is not None or k == "train_limit"}
    cfg = TrainConfig(dataset=dataset, normal_class="1", encoders=encoders, input_size=size, pyramid=pyramid, **kw)
    try:
        cfg.validate()
    except (ConfigError, DataError) as e:
        assert str(e).startswith("--") and "\n" not in str(e)
    else:
        assert isinstance(cfg.epochs, int) and cfg.epochs >= 1 and np.isfinite(cfg.lam) and cfg.lr > 0
        assert cfg.batch_size >= 2 and 0 <= cfg.val_fraction < 1 and 0 <= cfg.seed < 2**32


class Reached(Exception):
    """Raised by the stand-in for train(): every argument was accepted."""


def mostly(valid, invalid):
    """Mostly valid values (hypothesis leans to the first branch), so whole command lines get through too."""
    return st.integers(0, 4).flatmap(lambda i: invalid if i == 4 else valid)


OPT = {
    "--dataset": mostly(st.sampled_from(data.DATASETS), st.sampled_from(["cifar", "", "MNIST"])),
    "--normal-class": mostly(st.integers(0, 9).map(str),
                             st.one_of(st.integers(-3, 15).map(str), st.text(max_size=6), st.just("Trouser"))),
    "--epochs": mostly(st.integers(1, 5).map(str), st.one_of(st.integers(-3, 0).map(str), st.text(max_size=4))),
    "--lambda": mostly(st.floats(0, 10).map(str),
                       st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(str), st.text(max_size=5),
                                 st.sampled_from(["1e400", " inf\n", "-0.5"]))),
    "--encoders": mostly(st.sampled_from(["1", "2", "4", "6"]), st.sampled_from(["3", "x", "-1", "4.0"])),
    "--profile": mostly(st.sampled_from(["quick", "cpu"]), st.sampled_from(["paper", "fast"])),
    "--weights": mostly(st.sampled_from(["none", "auto"]), st.sampled_from(["imagenet", "resnet"])),
    "--input-size": mostly(st.just("28"), st.one_of(st.integers(-1, 200).map(str), st.text(max_size=3))),
    "--seed": mostly(st.integers(0, 100).map(str), st.one_of(st.integers(-2, 2**40).map(str), st.text(max_size=3))),
    "--train-limit": mostly(st.integers(2, 50).map(str), st.one_of(st.integers(-1, 1).map(str), st.text(max_size=3))),
    "--device": mostly(st.sampled_from(["cpu", "auto"]), st.sampled_from(["cuda", "cuda:3", "gpu", "", "cpu\n"])),
    "--pyramid": mostly(st.sampled_from(["paper", "spatial"]), st.just("pyramid")),
}


@settings(FEW, max_examples=100)
@given(dataset=OPT["--dataset"], opts=st.fixed_dictionaries({}, optional=OPT))
@example(dataset="mnist-sample", opts={"--normal-class": "1", "--weights": "none", "--epochs": "2"})
@example(dataset="folder", opts={"--lambda": " inf\n"})
def test_any_train_arguments_are_accepted_or_rejected_in_one_line_before_anything_starts(dataset, opts):
    """Random values for every `train` option: either all are accepted (and the config validates),
    or the command fails with one line on stderr and a non-zero exit, having created nothing."""
    from pyramid_lib import cli
    import pyramid_lib.train as train_mod
    from pyramid_lib import weights

    def fake_train(cfg, out, **kw):
        cfg.validate()
        assert not Path(out).exists()
        raise Reached(cfg)

    def offline():
        raise OSError("offline")

    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_mod, "train", fake_train)
        mp.setattr(weights, "_fetch", offline)
        root, out = Path(tmp) / "data", Path(tmp) / "out"
        root.mkdir()
        argv = ["train", "--out", str(out), "--data-root", str(root), f"--dataset={dataset}"]
        for k, v in opts.items():
            argv += [f"{k}={v}"]
        err = io.StringIO()
        code = None
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                code = cli.main(argv)
            except SystemExit as e:
                code = e.code
            except Reached as r:
                cfg = r.args[0]
                assert cfg.weights in ("random", "imagenet")
                code = "reached"
        msg = err.getvalue().strip()
        event("accepted" if code == "reached" else f"exit {code}")
        if code != "reached":
            assert code not in (0, None), (argv, msg)
            assert msg and len(msg.splitlines()) == 1 and "Traceback" not in msg, (argv, msg)
        assert not out.exists() and list(root.iterdir()) == []
