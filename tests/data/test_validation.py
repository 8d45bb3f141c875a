"""Validation sets that read no test image (data/validation.py)."""

import hashlib

import pytest
import torch
from helpers import tiny_cfg

from pyramid_lib import data as data_mod
from pyramid_lib.data import ImageSet
from pyramid_lib.data.splits import run_split
from pyramid_lib.data.synthetic import synthetic_mvtec
from pyramid_lib.data.validation import (
    AREA,
    cut_paste,
    validation_set,
    with_other_classes,
    with_synthetic_defects,
)
from pyramid_lib.errors import ConfigError, DataError


def textures(n=6, c=3, s=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(40, 200, (n, c, s, s), generator=g, dtype=torch.uint8)


def test_cut_paste_changes_only_the_patch_and_the_patch_has_the_stated_size():
    x = textures()
    y, m = cut_paste(x, seed=3)
    assert y.shape == x.shape and y.dtype == torch.uint8 and m.shape == (6, 64, 64)
    outside = (m == 0).unsqueeze(1).expand_as(x)
    assert torch.equal(y[outside], x[outside])
    for i in range(len(x)):
        frac = m[i].float().mean().item()
        assert AREA[0] * 0.5 <= frac <= AREA[1] * 1.5, frac
        inside = m[i].bool()
        assert (y[i][:, inside] != x[i][:, inside]).float().mean() > 0.5  # brightness moved by >= 8%


def test_cut_paste_is_seeded_per_image():
    x = textures()
    a, ma = cut_paste(x, seed=1)
    b, mb = cut_paste(x, seed=1)
    c, _ = cut_paste(x, seed=2)
    assert torch.equal(a, b) and torch.equal(ma, mb) and not torch.equal(a, c)
    # image i depends only on (seed, i): a longer set keeps the defects of the first images
    longer, _ = cut_paste(torch.cat([x, textures(2, seed=9)]), seed=1)
    assert torch.equal(longer[:6], a)


def test_validation_set_holds_the_normals_then_their_defective_copies():
    normals = ImageSet(textures(4), torch.zeros(4, dtype=torch.long), ["good"] * 4, [f"n{i}" for i in range(4)])
    v = with_synthetic_defects(normals, copies=3, seed=0)
    assert len(v) == 16 and v.labels.tolist() == [0] * 4 + [1] * 12
    assert torch.equal(v.images[:4], normals.images) and v.masks[:4].sum() == 0 and (v.masks[4:].sum((1, 2)) > 0).all()
    assert v.names[4] == "n0#cutpaste0" and v.classes[-1] == "synthetic"
    with pytest.raises(ValueError, match="heldout-fraction"):
        with_synthetic_defects(normals.subset([]), copies=3)
    with pytest.raises(ValueError, match="8 x 8"):
        cut_paste(torch.zeros(1, 1, 4, 4, dtype=torch.uint8))


def test_other_classes_are_relabelled_anomalous_and_limited():
    normals = ImageSet(textures(3, 1, 28), torch.zeros(3, dtype=torch.long), ["1"] * 3, ["a", "b", "c"])
    others = ImageSet(textures(10, 1, 28, seed=1), torch.zeros(10, dtype=torch.long), ["7"] * 10,
                      [f"o{i}" for i in range(10)])
    v = with_other_classes(normals, others, limit=4, seed=0)
    assert len(v) == 7 and v.labels.tolist() == [0, 0, 0, 1, 1, 1, 1] and set(v.names[3:]) <= set(others.names)
    assert v.names[3:] == with_other_classes(normals, others, limit=4, seed=0).names[3:]


def hashes(images: ImageSet) -> set[str]:
    return {hashlib.sha1(x.numpy().tobytes()).hexdigest() for x in images.images}


def assert_reads_no_test_and_no_fit_image(cfg, data, v):
    split = run_split(cfg, len(data.train))
    fit, held = data.train.subset(split.fit), data.train.subset(split.held_out)
    assert v.labels.tolist() == [0] * len(held) + [1] * (len(v) - len(held))
    assert torch.equal(v.images[:len(held)], held.images) and v.names[:len(held)] == held.names
    # by source index (names index the training split) and by content
    assert not set(v.names) & set(fit.names) and not set(v.names) & set(data.test.names)
    assert not hashes(v) & hashes(fit) and not hashes(v) & hashes(data.test)


def test_the_mnist_like_validation_set_is_held_out_normals_and_other_classes_of_the_training_split():
    cfg = tiny_cfg(dataset="mnist-sample", normal_class="3", seed=2, train_limit=200)
    data = data_mod.load("mnist-sample", "3")
    v = validation_set(cfg, data, others=500)
    assert_reads_no_test_and_no_fit_image(cfg, data, v)
    anomalies = v.subset(torch.nonzero(v.labels == 1).flatten())
    assert len(anomalies) == 500 and "3" not in set(anomalies.classes) and len(set(anomalies.classes)) == 9
    assert v.names == validation_set(cfg, data, others=500).names  # seeded
    # every training regime of a (class, seed) is judged on the same set, whatever it trains on
    assert v.names == validation_set(tiny_cfg(dataset="mnist-sample", normal_class="3", seed=2, train_limit=None),
                                     data, others=500).names
    assert v.names[40:] != validation_set(tiny_cfg(dataset="mnist-sample", normal_class="3", seed=3,
                                                     train_limit=200), data, others=500).names[40:]


@pytest.mark.parametrize("dataset, cls", [("mnist", "8"), ("fmnist", "6")])
def test_the_validation_set_of_real_mnist_like_data_holds_no_test_and_no_fit_image(data_root, dataset, cls):
    cfg = tiny_cfg(dataset=dataset, normal_class=cls, seed=1, train_limit=4000, data_root=str(data_root),
                   download=False)
    data = data_mod.load_for(cfg)
    v = validation_set(cfg, data)
    assert_reads_no_test_and_no_fit_image(cfg, data, v)
    assert int(v.labels.sum()) == 1000 and data.class_names[int(cls)] not in set(v.classes[-1000:])


def test_the_folder_validation_set_is_the_held_out_normals_with_synthetic_defects(tmp_path):
    root = synthetic_mvtec(tmp_path / "cat", size=32, n_train=10)
    cfg = tiny_cfg(dataset="folder", normal_class=None, data_root=str(root), input_size=32, download=False)
    data = data_mod.load_for(cfg)
    v = validation_set(cfg, data)
    held = data.train.subset(run_split(cfg, len(data.train)).held_out)
    assert len(held) == 1 and len(v) == 4 and v.labels.tolist() == [0, 1, 1, 1] and v.masks is not None
    assert torch.equal(v.images[:1], held.images) and not hashes(v) & hashes(data.test)


def test_a_validation_set_needs_held_out_normals_and_another_class():
    with pytest.raises(ConfigError, match="heldout-fraction"):
        validation_set(tiny_cfg(heldout_fraction=0.0))
    with pytest.raises(DataError, match="no other classes"):
        data_mod.mnist.other_training_classes("folder", None)
