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

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torchmetrics.functional.image import structural_similarity_index_measure

from ..metrics import PRIMARY_SCORE, SCORE_NAMES  # ("loss", "mse", "perceptual", "ssim"); "loss" first
from .loss import PyramidLoss, ssim_per_image

__all__ = ["PRIMARY_SCORE", "SCORES", "SCORE_NAMES", "Pair", "Prediction", "Score", "error_maps", "predict",
           "register", "scores"]


@dataclass
class Pair:
    """What every score reads, computed once per batch: images x, reconstructions x_hat (B x 3 x S
    x S in [0, 1]), F of both, and the loss's per-image terms (the loss called once)."""

    loss: PyramidLoss
    x: torch.Tensor
    x_hat: torch.Tensor
    f_x: torch.Tensor
    f_hat: torch.Tensor
    terms: dict[str, torch.Tensor] = field(init=False)

    def __post_init__(self):
        self.terms = self.loss(self.x_hat, self.x, targets=self.f_x, features_hat=self.f_hat)


class Score:
    """A per-image anomaly score (higher = more anomalous) and its per-pixel map.  A new score is a
    subclass with a `name`, registered (`register`) and asked for by name (`predict(names=...)`,
    `evaluate.score_images(names=...)`); SCORE_NAMES are the ones runs record."""

    name: str

    def image(self, p: Pair) -> torch.Tensor:
        """B values."""
        raise NotImplementedError

    def map(self, p: Pair) -> torch.Tensor:
        """B x S x S values whose pixel mean follows `image`."""
        raise NotImplementedError


class MSE(Score):
    """1/(WH) ||X - X^||^2; per pixel the squared error summed over channels."""

    name = "mse"

    def image(self, p):
        return p.terms["mse"]

    def map(self, p):
        return (p.x_hat - p.x).pow(2).sum(1)  # per pixel, the terms of mse_per_image


class Perceptual(Score):
    """1/(WHC) ||F(X) - F(X^)||^2; per pixel the feature error averaged over channels, bilinearly
    resized to the image."""

    name = "perceptual"

    def image(self, p):
        return p.terms["perceptual"]

    def map(self, p):
        f_err = (p.f_hat - p.f_x).pow(2).mean(1, keepdim=True)
        return F.interpolate(f_err, size=p.x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]


class Loss(Score):
    """The paper's score (Sec. III-B): the per-image training loss, the loss itself called; per
    pixel the loss's own sum (`PyramidLoss.combine`) of the two maps above."""

    name = "loss"

    def image(self, p):
        return p.terms["loss"]

    def map(self, p):
        return p.loss.combine(SCORES["mse"].map(p), SCORES["perceptual"].map(p))


class SSIM(Score):
    """1 - SSIM(X, X^) (torchmetrics, Gaussian window 11; 0 = identical); per pixel 1 - the SSIM map
    averaged over channels."""

    name = "ssim"

    def image(self, p):
        return 1.0 - ssim_per_image(p.x_hat, p.x)

    def map(self, p):
        _, ssim_map = structural_similarity_index_measure(p.x_hat.float(), p.x.float(), data_range=1.0,
                                                          reduction="none", return_full_image=True)
        return 1.0 - ssim_map.mean(1)


SCORES: dict[str, Score] = {}


def register(score: Score) -> Score:
    """Add a score to SCORES under its name (ValueError for a name taken); returns it."""
    if score.name in SCORES:
        raise ValueError(f"a score named {score.name!r} exists already")
    SCORES[score.name] = score
    return score


for _s in (Loss(), MSE(), Perceptual(), SSIM()):
    register(_s)


def _pair(loss: PyramidLoss, x_hat, x, feats) -> Pair:
    f_x, f_hat = feats if feats is not None else (loss.features(x), loss.features(x_hat))
    return Pair(loss, x, x_hat, f_x, f_hat)


@torch.no_grad()
def scores(loss: PyramidLoss, x_hat, x, feats=None, names=SCORE_NAMES) -> dict[str, torch.Tensor]:
    """Per-image anomaly scores of images x and their reconstructions x_hat (B x 3 x S x S in
    [0, 1]), higher = more anomalous: one tensor of size B for each of `names` (SCORES; Sec. III-B).
    `feats`: (F(x), F(x_hat)) when already computed.  KeyError for a name not registered."""
    p = _pair(loss, x_hat, x, feats)
    return {k: SCORES[k].image(p) for k in names}


@torch.no_grad()
def error_maps(loss: PyramidLoss, x_hat, x, feats=None, names=SCORE_NAMES) -> dict[str, torch.Tensor]:
    """Per-pixel error maps of x and x_hat (B x 3 x S x S in [0, 1]), one B x S x S tensor for each
    of `names`: squared error (summed over channels), perceptual error (feature error averaged
    over channels, bilinearly resized to the image), their lambda-sum, and 1 - SSIM.  `feats`:
    (F(x), F(x_hat)) when already computed."""
    p = _pair(loss, x_hat, x, feats)
    return {k: SCORES[k].map(p) for k in names}


@dataclass
class Prediction:
    """What `predict` returns for a batch of B images of side S."""

    reconstruction: torch.Tensor  # B x 3 x S x S in [0, 1]
    scores: dict[str, torch.Tensor]  # name -> B, for each name asked for (SCORE_NAMES by default)
    maps: dict[str, torch.Tensor] | None  # name -> B x S x S, for the same names (None if not asked)


@torch.no_grad()
def predict(model, loss: PyramidLoss, x: torch.Tensor, maps: bool = True, names=SCORE_NAMES) -> Prediction:
    """Reconstruct a batch and score it: x is B x 3 x S x S in [0, 1] on the model's device.

    Returns a Prediction: the reconstruction (B x 3 x S x S), the per-image scores `names` (B each;
    the paper's anomaly score is "loss", Sec. III-B) and, unless `maps=False`, their per-pixel maps
    (B x S x S each).  The scores are exactly those of `scores(loss, model(x), x)`; `maps=False`
    skips the maps (evaluating a whole test split needs only the scores).  The model is not put in
    eval mode here: callers do that (a model in train mode would update its batch-norm statistics).
    """
    x_hat = model(x)
    p = Pair(loss, x, x_hat, loss.features(x), loss.features(x_hat))  # F once per batch, scores and maps
    return Prediction(x_hat, {k: SCORES[k].image(p) for k in names},
                      {k: SCORES[k].map(p) for k in names} if maps else None)
