"""data/walk.py is the one place that finds images in folders and pairs masks with images: the
folder loader (training, evaluation) and `predict` (new images) must agree on a messy folder."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from pyramid_lib import data
from pyramid_lib.data.walk import ground_truth_place, mask_stems, same_aspect, walk_images
from pyramid_lib.engine import score_inputs


def _png(path: Path, v: int = 128, size=(40, 40)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.full((size[1], size[0]), v, np.uint8)
    if v == 255:  # a mask: defect in the middle only
        a[:] = 0
        a[10:20, 10:20] = 255
    Image.fromarray(a).save(path, format="PNG")


def messy(root: Path) -> Path:
    for i in range(3):
        _png(root / "train" / "good" / f"{i}.png", 100 + i)  # not copies of test/Good/ok.png
    _png(root / "test" / "Good" / "ok.png")
    _png(root / "test" / "crack" / "batch1" / "A.png", 60)
    _png(root / "test" / "crack" / "b.png", 60)
    _png(root / "test" / "crack" / "noext", 60)
    _png(root / "ground_truth" / "Crack" / "batch1" / "a_MASK.png", 255)
    _png(root / "ground_truth" / "crack" / "B.png", 255)
    (root / "test" / "crack" / ".hidden.png").write_bytes((root / "test" / "crack" / "b.png").read_bytes())
    (root / "test" / "crack" / "notes.txt").write_text("not an image")
    (root / "test" / "crack" / ".DS_Store").write_bytes(b"\0")
    (root / "test" / "crack" / "loop").symlink_to(root / "test" / "crack", target_is_directory=True)
    return root


def test_walk_names_each_entry_that_is_not_an_image(tmp_path):
    root = messy(tmp_path / "d")
    w = walk_images(root / "test" / "crack")
    assert [p.relative_to(root).as_posix() for p in w.images] == [
        "test/crack/b.png", "test/crack/batch1/A.png", "test/crack/noext"]
    reasons = {p.name: r for p, r, _ in w.skipped}
    assert reasons == {".hidden.png": "hidden file", "notes.txt": "not an image Pillow can read",
                       "loop": "link to a folder above it: a loop, not followed"}
    assert [p.name for p in w.junk] == [".DS_Store"]


def test_mask_rules():
    assert mask_stems("A") == ("a_mask", "a")
    assert ground_truth_place(Path("/x/test/Crack/b1/a.png")) == (Path("/x/ground_truth"), ("Crack", "b1"))
    assert ground_truth_place(Path("/x/test/GOOD/a.png")) is None
    assert ground_truth_place(Path("/x/other/a.png")) is None
    assert same_aspect((40, 30), (80, 60)) and same_aspect((40, 30), (41, 30)) and not same_aspect((40, 30), (30, 40))


def test_folder_loader_and_predict_find_the_same_images_and_masks(tmp_path):
    root = messy(tmp_path / "d")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = data.load_folder(root, input_size=32)
    loaded = dict(zip(d.test.names, d.test.masks))
    found = score_inputs.collect([root / "test"])
    by_path = {str(it.path): it for it in found.items}
    assert sorted(by_path) == sorted(loaded)
    for name, m in loaded.items():
        it = by_path[name]
        score_inputs.decode(it, 32)
        assert (it.mask is not None) == bool(m.any()), name
        assert np.array_equal(it.mask_pixels.numpy(), m.numpy()), name
    assert sum(bool(m.any()) for m in loaded.values()) == 2  # A <- a_MASK.png, b <- B.png
