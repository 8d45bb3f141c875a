"""The model layer: the network (Fig. 2), its loss (Eq. 1), anomaly maps, weights and exact speed-ups.

    network.py      PyramidalAutoencoder and its blocks, ModelConfig
    loss.py         PyramidLoss: MSE + lambda * perceptual (VGG11 features), per-image terms, SSIM
    anomaly_map.py  predict(): reconstruction, per-image scores, error maps
    weights.py      ImageNet or random weights for ResNet18 and VGG11
    fast.py         exact speed-ups (same function, other float rounding)
    introspect.py   shape traces and parameter counts for the notebooks

Pure torch: nothing here reads or writes files.
"""

from .anomaly_map import PRIMARY_SCORE, SCORE_NAMES, Prediction, error_maps, predict, scores
from .loss import PyramidLoss
from .network import ModelConfig, PyramidalAutoencoder

__all__ = [
    "PRIMARY_SCORE",
    "SCORE_NAMES",
    "ModelConfig",
    "Prediction",
    "PyramidLoss",
    "PyramidalAutoencoder",
    "error_maps",
    "predict",
    "scores",
]
