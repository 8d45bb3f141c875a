"""From a config to a network: the device (`pick_device`), the weights a run uses
(`resolve_weights`), the network and loss (`build`), and the versions run.json records.

`build` is what training, scoring and every notebook call: the paper's layers, plain (a printed
model shows them).  `fast_path` is applied, explicitly, where training and loading run
(`trainer.train`, `RunDir.load`): with `fast` (the default; `--no-fast` turns it off) the exact
speed-ups of model/fast.py, measured to pay on a CPU (benchmarks/README.md).  Nothing else
rewrites a model."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import torch
import torchvision

from ..config import TrainConfig
from ..errors import ConfigError
from ..model import fast, weights
from ..model.loss import PyramidLoss
from ..model.network import PyramidalAutoencoder


def pick_device(device: str | None = None) -> torch.device:
    """CUDA when available, else CPU (or what was asked: cpu, cuda, cuda:N).

    Raises ConfigError naming --device for a name torch does not know or a device not usable here."""
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
    """Versions of Python, torch, torchvision and the kit's git commit (recorded in run.json)."""
    return {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "commit": git_commit()}


def git_commit(path=None) -> str:
    """HEAD's commit of the repository holding `path` (default: this library's folder), with
    "+dirty" when tracked files under that folder differ from it; "unknown" outside git."""
    cwd = Path(path or Path(__file__).resolve().parents[1])
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "."],
                               cwd=cwd, capture_output=True, text=True, timeout=10).stdout.strip()
        return (head or "unknown") + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"



def resolve_weights(cfg: TrainConfig) -> TrainConfig:
    """The config with its weights request (auto, imagenet, none) replaced by what the run uses
    ("imagenet" or "random"; model/weights.py).  Call it after `cfg.validate()` and before
    training: it may download the ImageNet weights.  Raises WeightsUnavailable when `imagenet`
    cannot be had; `auto` then falls back to "random" with a UserWarning, refused with ConfigError
    for `--profile paper` (`TrainConfig.with_weights`)."""
    return cfg.with_weights(weights.resolve(cfg.weights))


def build(cfg: TrainConfig, device="cpu", pretrained_backbone: bool = True) -> tuple[PyramidalAutoencoder, PyramidLoss]:
    """The network and loss of a config (Sec. III, Fig. 2), seeded, on `device`.

    The modules are the paper's layers, plain, whatever `cfg.fast` says (`fast_path` applies the
    speed-ups where training and loading run).  With pretrained_backbone=False
    the backbone starts random even for ImageNet runs (a checkpoint is about to overwrite it).
    Raises ConfigError when `cfg.weights` is still a request (see `resolve_weights`)."""
    resnet_w, vgg_w = weights.enums(cfg.weights)
    resnet_w = resnet_w if pretrained_backbone else None
    torch.manual_seed(cfg.seed)
    model = PyramidalAutoencoder(cfg.input_size, cfg.encoders, cfg.pyramid, backbone_weights=resnet_w)
    loss = PyramidLoss(cfg.lambda_, weights=vgg_w)
    return model.to(device), loss.to(device)


def fast_path(cfg: TrainConfig, model: PyramidalAutoencoder, loss: PyramidLoss) -> tuple[PyramidalAutoencoder,
                                                                                        PyramidLoss]:
    """With `cfg.fast`, the exact speed-ups of model/fast.py applied to a network and loss from
    `build` (in place; returned): weights stored channels-last (oneDNN's faster layout on CPU;
    values unchanged), then the convs on 1x1 and 2x2 maps replaced by their exact rewrites (the
    same Parameters and state_dict, other float rounding; at 28x28 a training step runs about
    twice as fast on a CPU, benchmarks/README.md).  The model then prints the rewritten layers
    (`fast.plain` undoes it).  Without `cfg.fast` (`--no-fast`): both unchanged, the plain path.
    Call it where training and loading run, before the optimiser and the checkpoint."""
    if not cfg.fast:
        return model, loss
    fast.optimize(model, convs=False)  # the layout first, then the rewrites (the order runs were trained in)
    return fast.optimize(model, channels_last=False), fast.optimize_loss(loss)


def training_optimizer(cfg: TrainConfig, model: PyramidalAutoencoder) -> torch.optim.Adam:
    """Adam with Table I's settings (cfg.lr, cfg.weight_decay) for training `model`; with `cfg.fast`
    the fused kernel (`fast.adam`).  Changes nothing in the model."""
    if not cfg.fast:
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return fast.adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
