"""Inference: one call, `predict(model, loss, x)`, gives the reconstruction, every per-image anomaly
score and every per-pixel anomaly map (paper Sec. III-B: the anomaly score is the per-image loss
of Eq. 1, L = MSE + lambda * perceptual).

Scores (higher = more anomalous), one value per image:
    loss         MSE + lambda * perceptual (the paper's score, PRIMARY_SCORE)
    mse          1/(WH) ||X - X^||^2
    perceptual   1/(WHC) ||F(X) - F(X^)||^2, F = VGG11 features[:4]
    ssim         1 - SSIM(X, X^) (torchmetrics, Gaussian window 11); 0 = identical
Maps, one S x S map per image, whose pixel means follow the scores above: the squared error
summed over channels, the feature error averaged over channels and bilinearly resized to the
image, their lambda-sum, and 1 - the SSIM map averaged over channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torchmetrics.functional.image import structural_similarity_index_measure

from ..metrics import PRIMARY_SCORE, SCORE_NAMES  # ("loss", "mse", "perceptual", "ssim"); "loss" first
from .loss import PyramidLoss, mse_per_image, perceptual_per_image, ssim_per_image

__all__ = ["PRIMARY_SCORE", "SCORE_NAMES", "Prediction", "error_maps", "predict", "scores"]


@torch.no_grad()
def scores(loss: PyramidLoss, x_hat, x, feats=None) -> dict[str, torch.Tensor]:
    """Per-image anomaly scores of images x and their reconstructions x_hat (B x 3 x S x S in
    [0, 1]), higher = more anomalous: one tensor of size B for each of SCORE_NAMES (Sec. III-B).
    `feats`: (F(x), F(x_hat)) when already computed (`predict` shares them with `error_maps`)."""
    f_x, f_hat = feats if feats is not None else (loss.features(x), loss.features(x_hat))
    mse = mse_per_image(x_hat, x)
    perc = perceptual_per_image(f_hat, f_x)
    return {
        "loss": mse + loss.lambda_ * perc,
        "mse": mse,
        "perceptual": perc,
        "ssim": 1.0 - ssim_per_image(x_hat, x),
    }


@torch.no_grad()
def error_maps(loss: PyramidLoss, x_hat, x, feats=None) -> dict[str, torch.Tensor]:
    """Per-pixel error maps of x and x_hat (B x 3 x S x S in [0, 1]), one B x S x S tensor for each
    of SCORE_NAMES: squared error (summed over channels), perceptual
    error (feature error averaged over channels, bilinearly resized to the image), their
    lambda-sum, and 1 - SSIM.  `feats`: (F(x), F(x_hat)) when already computed."""
    size = x.shape[-2:]
    f_x, f_hat = feats if feats is not None else (loss.features(x), loss.features(x_hat))
    mse_map = (x_hat - x).pow(2).sum(1)  # per pixel, the terms of mse_per_image
    f_err = (f_hat - f_x).pow(2).mean(1, keepdim=True)
    perc_map = F.interpolate(f_err, size=size, mode="bilinear", align_corners=False)[:, 0]
    _, ssim_map = structural_similarity_index_measure(x_hat.float(), x.float(), data_range=1.0,
                                                      reduction="none", return_full_image=True)
    return {
        "loss": mse_map + loss.lambda_ * perc_map,
        "mse": mse_map,
        "perceptual": perc_map,
        "ssim": 1.0 - ssim_map.mean(1),
    }


@dataclass
class Prediction:
    """What `predict` returns for a batch of B images of side S."""

    reconstruction: torch.Tensor  # B x 3 x S x S in [0, 1]
    scores: dict[str, torch.Tensor]  # name -> B, for each of SCORE_NAMES
    maps: dict[str, torch.Tensor] | None  # name -> B x S x S, for each of SCORE_NAMES (None if not asked)


@torch.no_grad()
def predict(model, loss: PyramidLoss, x: torch.Tensor, maps: bool = True) -> Prediction:
    """Reconstruct a batch and score it: x is B x 3 x S x S in [0, 1] on the model's device.

    Returns a Prediction: the reconstruction (B x 3 x S x S), the per-image scores (B each, the
    paper's anomaly score is "loss", Sec. III-B) and, unless `maps=False`, the per-pixel maps
    (B x S x S each).  The scores are exactly those of `scores(loss, model(x), x)`; `maps=False`
    skips the maps (evaluating a whole test split needs only the scores).  The model is not put in
    eval mode here: callers do that (a model in train mode would update its batch-norm statistics).
    """
    x_hat = model(x)
    feats = (loss.features(x), loss.features(x_hat))  # F once per batch, for the scores and the maps
    return Prediction(x_hat, scores(loss, x_hat, x, feats), error_maps(loss, x_hat, x, feats) if maps else None)
