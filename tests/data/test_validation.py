"""Validation sets that read no test image (data/validation.py)."""

import pytest
import torch

from pyramid_lib.data import ImageSet
from pyramid_lib.data.validation import AREA, cut_paste, with_other_classes, with_synthetic_defects


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
