"""The model layer: the network (Fig. 2), its loss (Eq. 1), anomaly maps, weights and exact speed-ups.

Pure torch: nothing here reads or writes files.
"""

from .anomaly_map import PRIMARY_SCORE, SCORE_NAMES, Prediction, error_maps, predict, scores
from .loss import PyramidLoss
from .network import ModelConfig, PyramidalAutoencoder

__all__ = ["PRIMARY_SCORE", "SCORE_NAMES", "Prediction", "predict", "ModelConfig", "PyramidLoss", "PyramidalAutoencoder", "error_maps", "scores"]
