"""The kit's own error types: each message names the file or argument at fault and what to do."""

from __future__ import annotations


class PyramidError(Exception):
    """Base class: the CLI prints these as one line and exits non-zero, without a traceback."""


class DataError(PyramidError, ValueError):
    """A dataset is missing, empty, laid out wrongly, or holds an image that cannot be used."""


class CheckpointError(PyramidError):
    """A checkpoint is missing, unsafe, damaged, or was made for another configuration."""


class ConfigError(PyramidError, ValueError):
    """An argument or setting is out of range."""


class TrainingError(PyramidError):
    """Training stopped (for instance a NaN or infinite loss); the last good checkpoint is kept."""


class WeightsUnavailable(PyramidError):
    """ImageNet weights were required but could not be loaded or downloaded."""


class RunBusy(PyramidError):
    """Another process holds a run folder's lock (`RunDir.hold`): it is training or evaluating there."""


class DataChangedWarning(UserWarning):
    """A run's data changed since it was trained (images added, removed or edited; engine/data_record.py)."""


class DataWarning(UserWarning):
    """The data makes a result less reliable than it looks: test images that are training images,
    repeated training images, a threshold resting on few held-out normals (engine/trainer.py)."""
