"""Which MVTec AD categories a data root holds (data/mvtec.py), and `reproduce mvtec` runs those."""

import numpy as np
import pytest
from PIL import Image

from pyramid_lib.data import mvtec
from pyramid_lib.errors import DataError
from pyramid_lib.experiments.plan import plan


def make(root, category, n):
    good = root / "mvtec_ad" / category / "train" / "good"
    good.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((8, 8), i, np.uint8)).save(good / f"{i:03d}.png")
    (good / ".DS_Store").write_bytes(b"x")
    (good / "notes.txt").write_text("not an image")


def test_coverage_names_present_missing_and_subset_categories(tmp_path):
    make(tmp_path, "grid", 3)
    make(tmp_path, "bottle", 2)
    c = mvtec.coverage(tmp_path)
    assert c.present == {"bottle": 2, "grid": 3}
    assert c.subsets == ("bottle", "grid") and len(c.missing) == 13 and "screw" in c.missing
    text = c.describe()
    assert "grid (3 training images of 264: a subset)" in text and "not found: cable" in text


def test_reproduce_mvtec_plans_the_categories_present_only(tmp_path):
    make(tmp_path, "grid", 3)
    make(tmp_path, "zipper", 3)
    jobs = plan("mvtec", "quick", data_root=tmp_path)
    assert [j.cfg.normal_class for j in jobs] == ["grid", "zipper"]
    assert [j.cfg.normal_class for j in plan("mvtec", "quick", classes=["screw"], data_root=tmp_path)] == ["screw"]
    with pytest.raises(DataError, match="no MVTec AD category under"):
        plan("mvtec", "quick", data_root=tmp_path / "empty")


def test_the_shared_copy_has_bottle_and_capsule_complete_and_a_grid_subset(data_root):
    c = mvtec.coverage(data_root)
    if "bottle" not in c.present:
        pytest.skip("no MVTec AD under the data root")
    assert c.present["bottle"] == mvtec.MVTEC_SIZES["bottle"][0] == 209
    assert c.present.get("capsule") == 219 and c.subsets == ("grid",)
