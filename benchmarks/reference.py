"""The reference: a straightforward eager fp32 implementation, kept for comparison only.

What a plain PyTorch implementation of the paper would do: the same network
(`PyramidalAutoencoder` with its plain nn.Conv2d layers, NCHW), the same loss written out
(Eq. 1: per-image MSE summed over channels and averaged over pixels, plus lambda times the
VGG11 features[:4] MSE), F(x) of the *input* recomputed every step, torch.optim.Adam with its
default (foreach) kernel, and a torch DataLoader whose Dataset turns each stored uint8 image
into a PIL image and back through ToTensor (and repeats grey to 3 channels) every time an item
is drawn, as torchvision's MNIST/ImageFolder pipelines do.  Scoring uses torch.no_grad(),
batches of 120 and the same four scores as `pyramid_lib.model.anomaly_map.scores`.

Nothing in pyramid_lib imports this module.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchmetrics.functional.image import structural_similarity_index_measure
from torchvision.transforms import functional as TF

from pyramid_lib.model.loss import PerceptualFeatures
from pyramid_lib.model.network import PyramidalAutoencoder

BATCH = 120


class PILImages(Dataset):
    """uint8 N x C x S x S images served one at a time as PIL -> ToTensor -> 3 channels."""

    def __init__(self, images_u8: torch.Tensor, labels: torch.Tensor | None = None):
        arr = images_u8.numpy()
        self.arrays = [a[0] if a.shape[0] == 1 else np.ascontiguousarray(a.transpose(1, 2, 0)) for a in arr]
        self.labels = labels if labels is not None else torch.zeros(len(arr), dtype=torch.long)

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, i):
        img = Image.fromarray(self.arrays[i])  # "L" or "RGB", as a dataset class hands it out
        x = TF.to_tensor(img)  # C x S x S float in [0, 1]
        if x.shape[0] == 1:
            x = x.repeat(3, 1, 1)
        return x, self.labels[i]


def loader(images_u8, batch_size: int = BATCH, shuffle: bool = True, seed: int = 0, batch_sampler=None):
    ds = PILImages(images_u8)
    if batch_sampler is not None:
        return DataLoader(ds, batch_sampler=batch_sampler, num_workers=0)
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, drop_last=False, num_workers=0,
                      generator=torch.Generator().manual_seed(seed))


def mse_per_image(x_hat, x):
    return ((x_hat - x) ** 2).sum(dim=1).mean(dim=(1, 2))


def perceptual_per_image(f_hat, f):
    return ((f_hat - f) ** 2).mean(dim=(1, 2, 3))


class ReferenceLoss(torch.nn.Module):
    """Eq. 1, with F(x) computed from the input on every call."""

    def __init__(self, lambda_: float = 1.0, weights=None):
        super().__init__()
        self.lambda_ = lambda_
        self.features = PerceptualFeatures(weights)

    def forward(self, x_hat, x):
        mse = mse_per_image(x_hat, x)
        perc = perceptual_per_image(self.features(x_hat), self.features(x))
        return mse + self.lambda_ * perc, mse, perc


def build(input_size: int, seed: int = 0, lambda_: float = 1.0, lr: float = 1e-4, weight_decay: float = 1e-4):
    """(model, loss, optimiser) seeded as `pyramid_lib.engine.build.build` seeds them (same weights)."""
    torch.manual_seed(seed)
    model = PyramidalAutoencoder(input_size)
    loss = ReferenceLoss(lambda_)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    return model, loss, opt


def train_step(model, loss_fn, opt, x) -> float:
    model.train()
    x_hat = model(x)
    total, _, _ = loss_fn(x_hat, x)
    loss = total.mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def train_epochs(model, loss_fn, opt, dl, epochs: int) -> list[float]:
    """Plain training loop; returns the mean loss of each epoch."""
    out = []
    for _ in range(epochs):
        tot, n = 0.0, 0
        for x, _ in dl:
            tot += train_step(model, loss_fn, opt, x) * len(x)
            n += len(x)
        out.append(tot / max(n, 1))
    return out


@torch.no_grad()
def score_batch(model, loss_fn, x) -> dict[str, torch.Tensor]:
    x_hat = model(x)
    mse = mse_per_image(x_hat, x)
    perc = perceptual_per_image(loss_fn.features(x_hat), loss_fn.features(x))
    ssim = structural_similarity_index_measure(x_hat, x, data_range=1.0, reduction="none")
    return {"loss": mse + loss_fn.lambda_ * perc, "mse": mse, "perceptual": perc, "ssim": 1.0 - ssim}


def score(model, loss_fn, images_u8, batch_size: int = BATCH) -> dict[str, np.ndarray]:
    """Every score of every image (in order)."""
    model.eval()
    cols: dict[str, list] = {}
    for x, _ in loader(images_u8, batch_size, shuffle=False):
        for k, v in score_batch(model, loss_fn, x).items():
            cols.setdefault(k, []).append(v)
    return {k: torch.cat(v).numpy() for k, v in cols.items()}
