"""The data layer: image sets, MNIST-like datasets, image folders in MVTec AD's layout, the split.

    images.py     ImageSet, OneClassData (uint8 tensors in memory), data_root, to_input
    images_io.py  decoding one image or mask file (Pillow) into uint8 tensors
    mnist.py      MNIST, Fashion-MNIST, the embedded mnist-sample
    walk.py       finding images in folders; which mask file belongs to which image
    folder.py     image folders in MVTec AD's layout, MVTec AD itself
    mvtec.py      which MVTec AD categories a data root holds, and which are subsets
    validation.py validation sets that read no test image (synthetic defects, other classes)
    synthetic.py  a synthetic stand-in folder in MVTec AD's layout (not MVTec AD)
    registry.py   one record per dataset: classes, input size, loader, stand-in, validation source
    datasets.py   load(dataset, normal_class), load_for(cfg): the one entry point
    splits.py     held-out training normals, seeded subsets

Under the one-class protocol the training split holds normal images only; the test split holds
both, label 0 = normal, 1 = anomalous.
"""

from . import registry
from .datasets import DATASETS, load, load_for, request_error
from .folder import MVTEC_URL, load_folder, load_mvtec
from .images import ImageSet, OneClassData, data_root, to_input
from .images_io import IMAGE_SUFFIXES, read_image, read_mask
from .mnist import (
    FMNIST_CLASSES,
    MNIST_CLASSES,
    MNIST_SAMPLE_TRAIN,
    class_index,
    load_mnist_like,
    load_mnist_sample,
)
from .mvtec import MVTEC_CATEGORIES

__all__ = [
    "DATASETS",
    "FMNIST_CLASSES",
    "IMAGE_SUFFIXES",
    "MNIST_CLASSES",
    "MNIST_SAMPLE_TRAIN",
    "MVTEC_CATEGORIES",
    "MVTEC_URL",
    "ImageSet",
    "OneClassData",
    "class_index",
    "data_root",
    "load",
    "load_for",
    "load_folder",
    "load_mnist_like",
    "load_mnist_sample",
    "load_mvtec",
    "read_image",
    "read_mask",
    "registry",
    "request_error",
    "to_input",
]
