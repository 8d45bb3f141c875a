"""Training: Adam (Table I), seeded, one atomic checkpoint per epoch, resumable.

A run lives in one folder:
    config.json      the TrainConfig (what was asked) and the weights actually used
    checkpoint.pt    model + optimiser state after the last complete epoch (loaded weights_only)
    run.json         status (running / finished / failed), loss history, device, wall time
Every file is written to a temporary file and renamed, so a kill at any moment leaves the
previous good file in place; `train(..., resume=True)` continues from the last complete epoch.
With the same seed on the same CPU an interrupted-and-resumed run ends with the same weights as
an uninterrupted one: batch order depends only on (seed, epoch), and everything else that
carries over is in the checkpoint."""

from __future__ import annotations

import platform

import torch

from ..config import TrainConfig
from ..errors import ConfigError
from ..model import fast, weights
from ..model.loss import PyramidLoss
from ..model.network import PyramidalAutoencoder


def pick_device(device: str | None = None) -> torch.device:
    """CUDA when available, else CPU (or what was asked)."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as e:
        raise ConfigError(f"--device {device!r}: not a device name; use auto, cpu, cuda or cuda:N") from e
    try:
        torch.empty(0, device=dev)
    except Exception as e:  # not compiled in, no such GPU, no driver
        raise ConfigError(f"--device {device}: not usable here ({type(e).__name__}: "
                          f"{(str(e).strip().splitlines() or [''])[0][:200]}); use --device cpu or auto") from e
    return dev


def versions() -> dict:
    import torchvision

    return {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__}

def build(cfg: TrainConfig, device="cpu", pretrained_backbone: bool = True) -> tuple[PyramidalAutoencoder, PyramidLoss]:
    """The network and loss of a config, seeded, on `device`.  With pretrained_backbone=False the
    backbone starts random even for ImageNet runs (a checkpoint is about to overwrite it)."""
    resnet_w, vgg_w = weights.enums(cfg.weights)
    resnet_w = resnet_w if pretrained_backbone else None
    torch.manual_seed(cfg.seed)
    model = PyramidalAutoencoder(cfg.input_size, cfg.encoders, cfg.pyramid, backbone_weights=resnet_w)
    loss = PyramidLoss(cfg.lambda_, weights=vgg_w)
    return fast.optimize(model.to(device)), fast.optimize_loss(loss.to(device))  # exact speed-ups, see fast.py
