"""Bad data: missing roots, wrong layouts, empty classes, broken images; each named with its fix.

Training here uses tiny in-memory subsets of the embedded mnist-sample (a dozen images, a few
batches per epoch): the code paths are the real ones, only the data is small.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pyramid_lib import data
from pyramid_lib.config import TrainConfig
from pyramid_lib.errors import (
    DataError,
)

# ----------------------------------------------------------------------------------- bad data

def save_img(path: Path, arr, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    (Image.fromarray(arr, mode) if mode else Image.fromarray(arr)).save(path)
    return path


def mvtec_tree(root: Path, size=40, n_train=3, train_img=None):
    rng = np.random.default_rng(0)
    for i in range(n_train):
        save_img(root / "train" / "good" / f"{i:03d}.png", rng.integers(0, 256, (size, size), dtype=np.uint8))
    save_img(root / "test" / "good" / "000.png", rng.integers(0, 256, (size, size), dtype=np.uint8))
    save_img(root / "test" / "crack" / "000.png", rng.integers(0, 256, (size, size), dtype=np.uint8))
    m = np.zeros((size, size), np.uint8)
    m[5:15, 5:15] = 255
    save_img(root / "ground_truth" / "crack" / "000_mask.png", m)
    return root


def test_missing_root_names_the_path_and_the_fix(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=re.escape(str(missing)) + ".*no such folder"):
        data.load("folder", root=missing, input_size=32)
    with pytest.raises(DataError, match=r"mvtec_ad/grid.*not found.*mvtec\.com"):
        data.load("mvtec", "grid", missing)
    with pytest.raises(DataError, match=r"MNIST/raw.*--data-root"):
        data.load("mnist", 0, missing, download=False)
    assert not missing.exists()  # nothing created while failing


@pytest.mark.parametrize("layout", ["flat images", "no test", "no train/good", "test without images"])
def test_wrong_mvtec_layout(tmp_path, layout):
    root = tmp_path / "widget"
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 40), dtype=np.uint8)
    if layout == "flat images":
        save_img(root / "a.png", img)
    elif layout == "no test":
        save_img(root / "train" / "good" / "a.png", img)
    elif layout == "no train/good":
        save_img(root / "train" / "a.png", img)
        save_img(root / "test" / "good" / "a.png", img)
    else:
        save_img(root / "train" / "good" / "a.png", img)
        (root / "test" / "good").mkdir(parents=True)
        (root / "test" / "good" / "notes.txt").write_text("no image here")  # a folder, but no image in it
    with pytest.raises(DataError, match=r"layout|test images") as e:
        data.load("folder", root=root, input_size=32)
    assert str(root) in str(e.value)


@pytest.mark.parametrize("content", ["nothing", "only non-images", "only hidden files"])
def test_empty_normal_class(tmp_path, content):
    root = mvtec_tree(tmp_path / "mvtec_ad" / "bottle", n_train=0)
    good = root / "train" / "good"
    good.mkdir(parents=True, exist_ok=True)
    if content == "only non-images":
        (good / "readme.txt").write_text("x")
        (good / "sub.png").mkdir()
    elif content == "only hidden files":
        save_img(good / ".thumb.png", np.zeros((40, 40), np.uint8))
    with pytest.raises(DataError, match=r"train/good: no images.*normal class must have training images"):
        data.load("mvtec", "bottle", tmp_path)


@pytest.mark.parametrize("bad", ["truncated png", "truncated jpeg", "text named .png", "zero bytes", "bad mask"])
def test_truncated_or_non_image_file_names_it(tmp_path, bad):
    root = mvtec_tree(tmp_path / "w")
    target = root / "train" / "good" / "001.png"
    if bad == "truncated png":
        raw = target.read_bytes()
        target.write_bytes(raw[: len(raw) // 2])
    elif bad == "truncated jpeg":
        target = root / "test" / "crack" / "001.jpg"
        buf = io.BytesIO()
        Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(buf, "JPEG")
        target.write_bytes(buf.getvalue()[:200])
    elif bad == "text named .png":
        target.write_text("hello, I am not an image\n")
    elif bad == "zero bytes":
        target.write_bytes(b"")
    else:
        target = root / "ground_truth" / "crack" / "000_mask.png"
        target.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError, match=re.escape(str(target)) + r": not a readable (image|mask).*replace or remove"):
        data.load("folder", root=root, input_size=32)


def test_rgba_is_composited_on_black(tmp_path):
    root = mvtec_tree(tmp_path / "w")
    a = np.zeros((40, 40, 4), np.uint8)
    a[..., :3] = (200, 100, 50)
    a[:20, :, 3] = 255  # top half opaque
    a[20:30, :, 3] = 128  # half transparent
    a[30:, :, 3] = 0  # bottom fully transparent (its colour must not show)
    save_img(root / "train" / "good" / "000.png", a, "RGBA")
    d = data.load("folder", root=root, input_size=40)
    im = d.train.images[0]
    assert im.shape == (3, 40, 40)
    assert im[:, 5, 5].tolist() == [200, 100, 50]
    assert im[:, 25, 5].tolist() == pytest.approx([100, 50, 25], abs=2)
    assert im[:, 35, 5].tolist() == [0, 0, 0]


def test_16bit_png_is_scaled_to_8_bits(tmp_path):
    root = mvtec_tree(tmp_path / "w")
    ramp = np.tile(np.linspace(0, 65535, 40).astype(np.uint16), (40, 1))
    save_img(root / "train" / "good" / "000.png", ramp)
    dark = np.full((40, 40), 200, np.uint16)  # a dark 16-bit image stays dark (200/65535 of full scale)
    save_img(root / "train" / "good" / "001.png", dark)
    assert Image.open(root / "train" / "good" / "000.png").mode.startswith("I")
    d = data.load("folder", root=root, input_size=40)
    row = d.train.images[0, 0, 0].int()
    assert row[0] == 0 and row[-1] == 255 and (row.diff() >= 0).all()
    assert int(d.train.images[1].max()) <= 1


def test_image_smaller_than_input_size_is_refused(tmp_path):
    root = mvtec_tree(tmp_path / "w", size=64)
    small = save_img(root / "test" / "crack" / "002.png", np.zeros((20, 30), np.uint8))
    with pytest.raises(DataError, match=re.escape(str(small)) + r": image is 30x20, smaller than.*--input-size"):
        data.load("folder", root=root, input_size=32)


@pytest.mark.parametrize("dataset,cls", [("mnist-sample", "10"), ("mnist", "12"), ("fmnist", "-1"), ("fmnist", "Hat"),
                                         ("mnist", "1.5")])
def test_class_out_of_range_names_normal_class(dataset, cls, tmp_path):
    with pytest.raises(DataError, match=r"--normal-class .* use 0\.\.9 or one of"):
        data.load(dataset, cls, tmp_path, download=False)
    with pytest.raises(DataError, match="--normal-class"):
        TrainConfig(dataset=dataset, normal_class=cls).validate()
