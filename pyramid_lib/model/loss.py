"""The training loss (paper Sec. III-B, Eq. 1) and its per-image terms.

    L = 1/(WH) ||X - X^||^2  +  lambda * 1/(WHC) ||F(X) - F(X^)||^2

F is the first four layers of an ImageNet VGG11, `vgg11().features[:4]` (conv, ReLU, max-pool,
conv), frozen and in eval mode.  Without ImageNet weights its two convs are initialised like the
rest of the network (orthogonal weights, zero biases: `network.init_orthogonal`), and a run saves
F's weights in its checkpoint, so scoring never draws them again.  Images are in [0, 1]; F
receives them ImageNet-normalised, the input its weights were trained on (the paper does not
say; see the README's deviations).
The per-image anomaly score is the per-image training loss (scores and per-pixel maps:
anomaly_map.py).  SSIM comes from torchmetrics."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics.functional.image import structural_similarity_index_measure
from torchvision.models import vgg11

from .network import IMAGENET_MEAN, IMAGENET_STD, init_orthogonal


class PerceptualFeatures(nn.Module):
    """F: VGG11 features[:4], frozen.  B x 3 x S x S in [0, 1] -> B x 128 x S/2 x S/2.

    `weights`: torchvision's VGG11 weights enum (ImageNet), or None for random weights drawn from
    torch's global generator: orthogonal, zero biases (`init_orthogonal`, as the network's own
    layers), not torchvision's default Kaiming initialisation."""

    def __init__(self, weights=None):
        super().__init__()
        self.features = vgg11(weights=weights).features[:4]
        if weights is None:
            init_orthogonal(self.features)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):  # stays in eval mode whatever the owner does
        return super().train(False)

    def forward(self, x):
        return self.features((x - self.mean) / self.std)


def mse_per_image(x_hat, x):
    """1/(WH) ||X - X^||^2 for each image, as Eq. 1 writes it (summed over the 3 channels,
    averaged over the W x H pixels): B."""
    return (x_hat - x).pow(2).sum(1).flatten(1).mean(1)


def perceptual_per_image(f_hat, f):
    """1/(WHC) ||F(X) - F(X^)||^2 for each image, given the two feature maps: B."""
    return (f_hat - f).pow(2).flatten(1).mean(1)


def ssim_per_image(x_hat, x):
    """Mean SSIM of each image (1 = identical): B.  Gaussian window 11, data range 1."""
    return structural_similarity_index_measure(x_hat.float(), x.float(), data_range=1.0, reduction="none")


def named_terms(out) -> dict[str, torch.Tensor]:
    """A loss's output as per-image terms by name: a dict as it is (PyramidLoss: loss, mse,
    perceptual; Eq. 1), a bare tensor of per-image losses (the plain autoencoders') as {"loss": it}.
    "loss" is the term training minimises."""
    return out if isinstance(out, dict) else {"loss": out}


class PyramidLoss(nn.Module):
    """Eq. 1: MSE + lambda * perceptual.  The contract every training loss keeps (the trainer,
    the checkpoint and the scores use nothing else):

    - `forward(x_hat, x, targets=None)` returns the per-image terms by name, a dict of tensors of
      size B whose first key, "loss", is what training minimises (averaged over a batch) and what
      scoring calls the anomaly score; the trainer logs every term it gets;
    - `targets(x)`: the part of the loss that depends on x alone and may be computed once per
      training image and passed back as `targets` (here F(x); None when nothing is worth caching);
    - `frozen()`: the loss's own weights that a checkpoint keeps (F; None for a loss without any).
    """

    def __init__(self, lambda_: float = 1.0, weights=None):
        super().__init__()
        self.lambda_ = float(lambda_)
        self.features = PerceptualFeatures(weights)

    def combine(self, mse, perceptual):
        """Eq. 1's sum of the two terms, for per-image terms (B) or per-pixel maps (B x S x S) alike."""
        return mse + self.lambda_ * perceptual

    def targets(self, x):
        """F(x), B x 128 x S/2 x S/2, constant per image (F is frozen); None when lambda = 0."""
        return None if self.lambda_ == 0 else self.features(x)

    def frozen(self) -> nn.Module:
        """F, the frozen VGG11 layers: a run saves their weights, so scoring never draws them again."""
        return self.features

    def forward(self, x_hat, x, targets=None, features_hat=None) -> dict[str, torch.Tensor]:
        """Per-image terms {"loss", "mse", "perceptual"}, each of size B.

        `targets` = F(x) may be passed in when it was computed before (`targets`); it is computed
        here otherwise (not at all when lambda = 0: the perceptual term is then 0).
        `features_hat` = F(x_hat) when already computed (scoring shares it with the maps)."""
        mse = mse_per_image(x_hat, x)
        if self.lambda_ == 0 and targets is None:
            perc = torch.zeros_like(mse)
        else:
            f = targets if targets is not None else self.features(x)
            perc = perceptual_per_image(features_hat if features_hat is not None else self.features(x_hat), f)
        return {"loss": self.combine(mse, perc), "mse": mse, "perceptual": perc}
