"""The dataset registry: a dataset is its loader and one record.  A test-only dataset registered
here, and nothing else changed, is a choice of --dataset, configures, loads, plans, gets a
validation set, a stand-in, a page title and data.json's per-image records, and trains."""

import pytest
import torch

from pyramid_lib import config, data
from pyramid_lib.config import TrainConfig, get_profile
from pyramid_lib.data import registry
from pyramid_lib.data.images import ImageSet, OneClassData
from pyramid_lib.data.validation import validation_set
from pyramid_lib.errors import ConfigError, DataError
from pyramid_lib.experiments.plan import plan

NAME = "test-squares"
CLASSES = ("light", "dark")


def _images(n: int, level: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.full((n, 1, 28, 28), level) + torch.randint(0, 20, (n, 1, 28, 28), generator=g)).to(torch.uint8)


def load_squares(normal_class, root, download, input_size, intensity) -> OneClassData:
    """Flat grey squares with noise: the normal class's level for training, both levels for testing."""
    c = registry.REGISTRY[NAME].classes.index(str(normal_class))
    levels = (200, 40)
    train = ImageSet(_images(20, levels[c], 0), torch.zeros(20, dtype=torch.long), [CLASSES[c]] * 20,
                     [f"sq[{i}]" for i in range(20)])
    test_x = torch.cat([_images(6, levels[c], 1), _images(6, levels[1 - c], 2)])
    test = ImageSet(test_x, torch.tensor([0] * 6 + [1] * 6), [CLASSES[c]] * 6 + [CLASSES[1 - c]] * 6,
                    [f"sq-test[{i}]" for i in range(12)])
    return OneClassData(NAME, CLASSES[c], train, test, 28, CLASSES)


@pytest.fixture
def squares():
    d = registry.register(registry.Dataset(NAME, "grey squares (test only)", load_squares, 28, CLASSES,
                                           fixed_size=True, paper_table=None, ablation_classes=("dark",)))
    yield d
    del registry.REGISTRY[NAME]


def test_a_registered_dataset_is_a_choice_configures_loads_and_plans(squares):
    assert NAME in config.choices("dataset")
    cfg = TrainConfig.from_profile("quick", dataset=NAME, normal_class="dark", heldout_fraction=0.2).validate()
    assert cfg.input_size == 28 and cfg.batch_size == get_profile("quick")["batch_size"]  # not an image-files one
    with pytest.raises(ConfigError, match="--input-size 32: test-squares images are 28x28"):
        TrainConfig(dataset=NAME, normal_class="dark", input_size=32).validate()
    with pytest.raises(ConfigError, match="--normal-class is required for --dataset test-squares: a category, "
                                          "one of light, dark"):
        TrainConfig(dataset=NAME, normal_class=None).validate()
    d = data.load_for(cfg)
    assert d.dataset == NAME and d.normal_class == "dark" and len(d.train) == 20
    # validation: no other classes registered -> synthetic defects on the held-out normals
    v = validation_set(cfg, d)
    assert (v.labels == 0).sum() == 4 and set(v.classes[4:]) == {"synthetic"}
    jobs = plan("ablation-lambda", "quick", datasets=[NAME])
    assert [j.name for j in jobs] == ["test-squares-dark-lambda0", "test-squares-dark-lambda1"]
    assert [j.cfg.normal_class for j in plan("baselines", "quick", datasets=[NAME], methods=["kde"])] == list(CLASSES)


def test_without_the_record_the_dataset_is_unknown():
    assert NAME not in config.choices("dataset")
    with pytest.raises(ConfigError, match="unknown dataset 'test-squares'"):
        TrainConfig(dataset=NAME, normal_class="dark").validate()
    with pytest.raises(DataError, match="unknown dataset"):
        registry.get(NAME)


def test_registering_a_name_twice_is_refused(squares):
    with pytest.raises(ValueError, match="registered already"):
        registry.register(squares)


def test_the_built_in_records():
    assert registry.names() == ("mnist-sample", "mnist", "fmnist", "mvtec", "folder")
    assert registry.with_paper_table() == ("mnist", "fmnist", "mvtec")
    assert registry.get("fmnist").class_label("4") == "4 (Coat)" and registry.get("mnist").class_label("4") == "4"
    from pyramid_lib import paper
    assert sorted(registry.get("mvtec").classes) == sorted(paper.MVTEC_CATEGORIES)  # the same 15 categories
    assert [registry.get(n).files for n in registry.names()] == [False, False, False, True, True]


@pytest.mark.slow
def test_a_registered_dataset_trains_and_evaluates(squares, tmp_path):
    from pyramid_lib.engine.evaluate import evaluate_run
    from pyramid_lib.engine.trainer import train

    cfg = TrainConfig(dataset=NAME, normal_class="light", epochs=1, batch_size=8, encoders=1, heldout_fraction=0.2)
    run = train(cfg, tmp_path / "run", progress=False)
    row = evaluate_run(run, progress=False).iloc[0]
    assert row.dataset == NAME and row.n_test == 12 and 0 <= row.auroc <= 1
