"""The data inventory (data/inventory.py), one situation per kind of fault seen in the field: each
test builds the situation, asks what each file is, and checks the value it should be."""

from __future__ import annotations

import io
import os
import unicodedata
import warnings
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pyramid_lib import cli, data
from pyramid_lib.data import inventory
from pyramid_lib.data.inventory import LEFT_OUT, MASK, TEST_DEFECT, TRAIN
from pyramid_lib.engine import score_inputs
from pyramid_lib.errors import DataError

S = 32


def pic(path: Path, v: int = 100, size: int = 40, spot=None) -> Path:
    a = np.full((size, size), v, np.uint8)
    if spot:
        y, x, s = spot
        a[y:y + s, x:x + s] = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)
    return path


def mask(path: Path, size: int = 40, spot=(10, 10, 10)) -> Path:
    a = np.zeros((size, size), np.uint8)
    y, x, s = spot
    a[y:y + s, x:x + s] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)
    return path


def tree(root: Path) -> Path:
    for i in range(4):
        pic(root / "train" / "good" / f"{i:03d}.png", 100 + i)
    pic(root / "test" / "good" / "000.png", 120)
    pic(root / "test" / "crack" / "000.png", 30)
    return root


def load(root: Path):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        d = data.load("folder", None, str(root), False, S)
    return d, "\n".join(str(x.message) for x in w)


def fate(inv, rel: str):
    return next(e for e in inv.entries if inv.rel(e.path) == rel)


def test_masks_beside_their_pictures_are_masks_for_train_evaluate_and_predict(tmp_path):
    """Case 49: test/crack/000.png and 000_mask.png, no ground_truth/: the mask is the picture's in
    the loader and in predict, never a defect picture."""
    root = tree(tmp_path / "w")
    mask(root / "test" / "crack" / "000_mask.png")
    inv = inventory.take(root)
    assert fate(inv, "test/crack/000_mask.png").fate == MASK
    assert inv.masks == {root / "test/crack/000.png": root / "test/crack/000_mask.png"}
    d, _ = load(root)
    assert len(d.test) == 2 and d.test.masks[d.test.classes.index("crack")].sum() == 100 * S * S // 1600
    found = score_inputs.collect([root / "test" / "crack"])
    assert [(it.path.name, it.mask.name) for it in found.items] == [("000.png", "000_mask.png")]


def test_case_twin_folders_keep_each_picture_its_own_mask(tmp_path):
    """Case 46: test/crack and test/Crack with the same file names, masks in ground_truth/crack and
    ground_truth/Crack: merged as one class, each picture with the mask spelled as its folder."""
    root = tree(tmp_path / "w")
    pic(root / "test" / "Crack" / "000.png", 31)
    mask(root / "ground_truth" / "crack" / "000_mask.png", spot=(0, 0, 8))
    mask(root / "ground_truth" / "Crack" / "000_mask.png", spot=(30, 30, 8))
    inv = inventory.take(root)
    assert inv.masks == {root / "test/crack/000.png": root / "ground_truth/crack/000_mask.png",
                         root / "test/Crack/000.png": root / "ground_truth/Crack/000_mask.png"}
    predicted = {it.path: it.mask for it in score_inputs.collect([root / "test"]).items}
    assert all(predicted[p] == m for p, m in inv.masks.items())
    assert any("differ only in letter case: merged as class 'Crack'" in r for r in inv.remarks)


def test_unicode_forms_and_spaces_are_one_name(tmp_path):
    """A Mac's NFD picture name with an NFC mask name; a folder `good ` with a trailing space."""
    root = tree(tmp_path / "w")
    nfd, nfc = unicodedata.normalize("NFD", "café"), unicodedata.normalize("NFC", "café")
    pic(root / "test" / "crack" / f"{nfd}.png", 33)
    mask(root / "ground_truth" / "crack" / f"{nfc}_mask.png")
    pic(root / "test" / "good " / "001.png", 121)
    inv = inventory.take(root)
    assert inv.masks[root / "test" / "crack" / f"{nfd}.png"] == root / "ground_truth" / "crack" / f"{nfc}_mask.png"
    assert fate(inv, "test/good /001.png").kind == "good"
    assert any("'test/good '/" in r for r in inv.remarks)  # the name quoted so the space shows


def test_links_are_never_a_second_way_in(tmp_path):
    """Case 50: in train/good, a link to a sibling folder, one to its parent (a loop) and one to the
    folder above the data root: each training picture once, no test picture trained on."""
    root = tree(tmp_path / "proj" / "data")
    good = root / "train" / "good"
    for i in range(2):
        pic(good / "batch2" / f"b{i}.png", 150 + i)
    os.symlink("batch2", good / "latest")
    os.symlink("..", good / "batch2" / "up")
    os.symlink("../../..", good / "archive")  # the project folder, which holds the data root
    inv = inventory.take(root)
    assert sorted(inv.rel(p) for p in inv.train) == [f"train/good/{i:03d}.png" for i in range(4)] + [
        "train/good/batch2/b0.png", "train/good/batch2/b1.png"]
    reasons = {inv.rel(e.path): e.reason for e in inv.left}
    assert "used at its own place" in reasons["train/good/latest"]
    assert "a loop" in reasons["train/good/batch2/up"] and "a loop" in reasons["train/good/archive"]
    assert "rm -r" in inventory.fix_for(reasons["train/good/archive"])  # said as what NOT to do
    assert "never `rm -r` through it" in inventory.fix_for(reasons["train/good/archive"])


def test_a_link_to_outside_the_root_is_left_out(tmp_path):
    root = tree(tmp_path / "data")
    pic(tmp_path / "elsewhere" / "x.png", 77)
    os.symlink(tmp_path / "elsewhere", root / "train" / "good" / "more")
    inv = inventory.take(root)
    assert "outside the data root" in fate(inv, "train/good/more").reason and len(inv.train) == 4


def test_copies_across_roles(tmp_path):
    """A test picture copied into train/good is never trained on; one picture under test/good and
    test/crack is named with both labels."""
    root = tree(tmp_path / "w")
    (root / "train" / "good" / "leak.png").write_bytes((root / "test" / "crack" / "000.png").read_bytes())
    (root / "test" / "good" / "same.png").write_bytes((root / "test" / "crack" / "000.png").read_bytes())
    inv = inventory.take(root)
    assert fate(inv, "train/good/leak.png").fate == LEFT_OUT and "copy of a test picture" in fate(
        inv, "train/good/leak.png").reason
    e = fate(inv, "test/good/same.png")
    assert e.fate == LEFT_OUT and "two labels, 'crack' kept" in e.reason and inv.rel(e.of) == "test/crack/000.png"
    assert len(inv.train) == 4


def test_kit_outputs_bad_names_dicom_and_masks_without_picture(tmp_path):
    root = tree(tmp_path / "w")
    pic(root / "test" / "crack" / "preds" / "figures" / "000.png", 200)
    (root / "test" / "crack" / "preds" / "predict.json").write_text("{}")
    with open(os.path.join(os.fsencode(root / "test" / "crack"), b"\xe9t\xe9.png"), "wb") as f:
        f.write((root / "test" / "good" / "000.png").read_bytes())
    (root / "test" / "crack" / "scan.dcm").write_bytes(bytes(128) + b"DICM" + bytes(64))
    mask(root / "test" / "crack" / "lonely_mask.png")
    inv = inventory.take(root)
    reasons = {inv.rel(e.path): e.reason + e.detail for e in inv.left}
    assert "predict` output" in reasons["test/crack/preds"]
    assert any("not valid UTF-8" in r for r in reasons.values())
    assert "pydicom" in reasons["test/crack/scan.dcm"]
    assert "no picture <stem>.* beside it" in reasons["test/crack/lonely_mask.png"]
    text = inv.describe()
    text.encode("utf-8")  # printable although one name is not UTF-8
    assert "'test/crack/\\udce9t\\udce9.png'" in text
    d, warned = load(root)
    assert [n for n in d.test.names if "crack" in n] == [str(root / "test" / "crack" / "000.png")]


def test_data_command_prints_counts_reasons_and_fixes(tmp_path):
    root = tree(tmp_path / "w")
    mask(root / "ground_truth" / "crack" / "000_mask.png")
    (root / "notes.txt").write_text("hello")
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(["data", str(root), "--heldout-fraction", "0.25"]) == 0
    text = out.getvalue()
    assert "3 training normal, 1 held-out normal, 1 test normal, 1 test defect, 1 mask, 1 left out" in text
    assert "notes.txt" in text and "fix: nothing to do unless it is a picture" in text
    (root / "test" / "good" / "bad.png").write_bytes(b"not a png")
    with redirect_stdout(io.StringIO()):
        assert cli.main(["data", str(root)]) == 1  # training would stop on it


def test_zip_as_data_root_says_extract(tmp_path):
    import zipfile
    z = tmp_path / "parts.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("parts/train/good/a.txt", "x")
    with pytest.raises(DataError, match=r"is an archive \(zip/tar\), not a folder; extract it first.*-m zipfile"):
        inventory.take(z)


def test_a_defect_below_one_pixel_at_the_input_size_is_named(tmp_path):
    """Case 43: a 2x2 defect in a 128x128 picture at input size 32: its mask is empty there, and
    the warning names the mask file."""
    root = tree(tmp_path / "w")
    pic(root / "test" / "pinhole" / "000.png", 90, size=128, spot=(41, 71, 2))
    mask(root / "ground_truth" / "pinhole" / "000_mask.png", size=128, spot=(41, 71, 2))
    d, warned = load(root)
    i = d.test.classes.index("pinhole")
    assert d.test.masks[i].sum() == 0
    assert "below one pixel at 32x32: the mask is EMPTY" in warned and "ground_truth/pinhole/000_mask.png" in warned


def test_inventory_is_recorded_in_the_data(tmp_path):
    root = tree(tmp_path / "w")
    (root / "README.txt").write_text("about")
    d, _ = load(root)
    assert d.inventory["counts"][TRAIN] == 4 and d.inventory["counts"][TEST_DEFECT] == 1
    assert d.inventory["left_out"] == {"README.txt": "not under train/, test/ or ground_truth/ (not read)"}


def test_documents_beside_the_data_are_recorded_not_warned_but_a_stray_picture_is(tmp_path):
    """MVTec AD ships license.txt and readme.txt in every category: no warning for them at each load
    (the inventory and `pyramid-ad data` still list them); a picture in the same place is named."""
    root = tree(tmp_path / "w")
    (root / "license.txt").write_text("CC BY-NC-SA 4.0")
    _, warned = load(root)
    assert "license.txt" not in warned
    pic(root / "stray.png")
    d, warned = load(root)
    assert "stray.png" in warned and "license.txt" not in warned
    assert set(d.inventory["left_out"]) == {"license.txt", "stray.png"}


def test_long_names_are_scored_with_a_short_figure_name(tmp_path):
    long = "x" * 240 + ".png"  # 244 bytes: the figure name plus the writer's temporary affix would pass 255
    it = score_inputs.Item(tmp_path / "in" / long, tmp_path / "in")
    name = score_inputs.figure_names([it])[0]
    assert len(name.name.encode()) <= score_inputs.FIGURE_NAME_BYTES and name.name.startswith("x" * 100)
