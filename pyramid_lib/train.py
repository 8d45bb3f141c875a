"""Training: Adam (Table I), seeded, one atomic checkpoint per epoch, resumable.

A run lives in one folder:
    config.json      the TrainConfig (what was asked) and the weights actually used
    checkpoint.pt    model + optimiser state after the last complete epoch (loaded weights_only)
    run.json         status (running / finished / failed), loss history, device, wall time
Every file is written to a temporary file and renamed, so a kill at any moment leaves the
previous good file in place; `train(..., resume=True)` continues from the last complete epoch.
With the same seed on the same CPU an interrupted-and-resumed run ends with the same weights as
an uninterrupted one: batch order depends only on (seed, epoch), and everything else that
carries over is in the checkpoint.
"""

from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import data as data_mod
from . import fast, profiles, splits, weights
from .errors import CheckpointError, ConfigError, TrainingError
from .files import atomic_torch_save, atomic_write_json, read_json, remove_temp_files, safe_torch_load
from .losses import PyramidLoss
from .model import MIN_INPUT_SIZE, PYRAMID_DIVISORS, PYRAMID_MODES, PyramidalAutoencoder

CHECKPOINT_FORMAT = "pyramid-ad/1"
# Settings that change the network's shape: a checkpoint must agree on all of them.
SHAPE_FIELDS = ("input_size", "encoders", "pyramid")
# Settings that change what a run computes: --resume refuses a run that differs in any.
RUN_FIELDS = SHAPE_FIELDS + ("dataset", "normal_class", "lam", "lr", "weight_decay", "batch_size", "seed",
                             "val_fraction", "train_limit", "weights")


@dataclass
class TrainConfig:
    dataset: str = "mnist-sample"
    normal_class: str = "0"
    epochs: int = 8
    input_size: int | None = None  # None: the dataset's (28 for MNIST-like, 120 for MVTec)
    encoders: int = 4
    pyramid: str = "paper"
    lam: float = 1.0
    lr: float = profiles.LR
    weight_decay: float = profiles.WEIGHT_DECAY
    batch_size: int = profiles.BATCH_SIZE
    seed: int = 0
    val_fraction: float = splits.DEFAULT_VAL_FRACTION
    train_limit: int | None = None
    weights: str = "random"  # what the run uses: "imagenet" or "random" (resolve "auto" before)
    profile: str = "custom"
    data_root: str | None = None
    download: bool = True

    def __post_init__(self):
        self.normal_class = str(self.normal_class)
        if self.input_size is None and self.dataset in data_mod.DEFAULT_INPUT_SIZE:
            self.input_size = data_mod.DEFAULT_INPUT_SIZE[self.dataset]

    def validate(self) -> TrainConfig:
        """Check every setting before anything is downloaded or trained; raise ConfigError naming it."""
        def bad(arg, msg):
            raise ConfigError(f"{arg}: {msg}")
        if self.dataset not in data_mod.DATASETS:
            bad("--dataset", f"unknown dataset {self.dataset!r}; choose one of {', '.join(data_mod.DATASETS)}")
        if self.dataset in ("mnist-sample", "mnist", "fmnist"):
            names = data_mod.FMNIST_CLASSES if self.dataset == "fmnist" else data_mod.MNIST_CLASSES
            data_mod.class_index(self.normal_class, names)  # raises DataError naming --normal-class
        if not isinstance(self.epochs, int) or self.epochs < 1:
            bad("--epochs", f"must be a positive integer, got {self.epochs!r}")
        if not isinstance(self.input_size, int) or self.input_size < MIN_INPUT_SIZE:
            bad("--input-size", f"must be an integer of at least {MIN_INPUT_SIZE}, got {self.input_size!r}")
        if self.dataset in ("mnist-sample", "mnist", "fmnist") and self.input_size != 28:
            bad("--input-size", f"{self.dataset} images are 28x28, got {self.input_size!r}; leave --input-size unset")
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            bad("--seed", f"must be an integer in 0..{2**32 - 1}, got {self.seed!r}")
        if self.encoders not in PYRAMID_DIVISORS:
            bad("--encoders", f"must be one of {sorted(PYRAMID_DIVISORS)}, got {self.encoders!r}")
        if self.pyramid not in PYRAMID_MODES:
            bad("--pyramid", f"must be one of {', '.join(PYRAMID_MODES)}, got {self.pyramid!r}")
        for arg, v in (("--lambda", self.lam), ("--lr", self.lr), ("--weight-decay", self.weight_decay)):
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                bad(arg, f"must be a finite number >= 0, got {v!r}")
        if self.lr == 0:
            bad("--lr", "must be > 0")
        if not isinstance(self.batch_size, int) or self.batch_size < 2:
            bad("--batch-size", f"must be an integer of at least 2 (batch norm), got {self.batch_size!r}")
        if not 0 <= self.val_fraction < 1:
            bad("--val-fraction", f"must be in [0, 1), got {self.val_fraction!r}")
        if self.train_limit is not None and (not isinstance(self.train_limit, int) or self.train_limit < 2):
            bad("--train-limit", f"must be an integer of at least 2, got {self.train_limit!r}")
        if self.weights not in ("imagenet", "random"):
            bad("--weights", f"resolved weights must be 'imagenet' or 'random', got {self.weights!r}")
        if self.profile == "paper" and self.weights != "imagenet":
            bad("--profile paper", "reproduces the paper and needs ImageNet weights; use --profile cpu/quick "
                                   "for random weights")
        return self

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


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


def build(cfg: TrainConfig, device="cpu", pretrained_backbone: bool = True) -> tuple[PyramidalAutoencoder, PyramidLoss]:
    """The network and loss of a config, seeded, on `device`.  With pretrained_backbone=False the
    backbone starts random even for ImageNet runs (a checkpoint is about to overwrite it)."""
    resnet_w, vgg_w = weights.enums(cfg.weights)
    resnet_w = resnet_w if pretrained_backbone else None
    torch.manual_seed(cfg.seed)
    model = PyramidalAutoencoder(cfg.input_size, cfg.encoders, cfg.pyramid, backbone_weights=resnet_w)
    loss = PyramidLoss(cfg.lam, weights=vgg_w)
    return fast.optimize(model.to(device)), fast.optimize_loss(loss.to(device))  # exact speed-ups, see fast.py


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffle of epoch `epoch`: a function of (seed, epoch) only, so resuming replays it."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


def batches(order: torch.Tensor, batch_size: int):
    """Consecutive slices of `order`; a last batch of one image is dropped (batch norm needs two)."""
    for i in range(0, len(order), batch_size):
        b = order[i:i + batch_size]
        if len(b) >= 2:
            yield b


def fit_and_holdout(data: data_mod.OneClassData, cfg: TrainConfig):
    """(images the network trains on, held-out training normals for the threshold)."""
    fit_idx, val_idx = splits.holdout(len(data.train), cfg.val_fraction, cfg.seed)
    fit_idx = fit_idx[splits.limit(len(fit_idx), cfg.train_limit, cfg.seed)]
    return data.train.subset(fit_idx), data.train.subset(val_idx)


def step(model, loss_fn: PyramidLoss, opt, x, target_features=None):
    """One training step on batch x: (mean loss, per-image total, mse, perceptual), detached.

    The update is skipped when the mean loss is not finite (the caller stops the run)."""
    total, mse, perc = loss_fn(model(x), x, target_features)
    loss = total.mean()
    if torch.isfinite(loss):
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return loss.detach(), total.detach(), mse.detach(), perc.detach()


@torch.no_grad()
def perceptual_targets(loss: PyramidLoss, images: data_mod.ImageSet, device, batch_size: int = 500,
                       max_bytes: float = 2e9) -> torch.Tensor | None:
    """F(x) for every training image, computed once (it never changes: F is frozen).

    Returns None when lambda = 0 or the features would take more than `max_bytes`; the loss then
    computes F(x) each step.  Values are bit-identical to computing them per step.
    """
    if loss.lam == 0 or len(images) == 0:
        return None
    probe = loss.features(images.batch(torch.arange(1), device))
    if probe.numel() * 4 * len(images) > max_bytes:
        return None
    out = torch.empty((len(images), *probe.shape[1:]), device=device)
    for i in range(0, len(images), batch_size):
        idx = torch.arange(i, min(i + batch_size, len(images)))
        out[idx.to(device)] = loss.features(images.batch(idx, device))
    return out


def versions() -> dict:
    import torchvision

    return {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__}


class Run:
    """Paths and state files of one run folder."""

    def __init__(self, out_dir):
        self.dir = Path(out_dir)
        self.config = self.dir / "config.json"
        self.checkpoint = self.dir / "checkpoint.pt"
        self.state = self.dir / "run.json"

    def read_state(self) -> dict:
        return read_json(self.state) if self.state.is_file() else {}

    def finished(self) -> bool:
        return self.read_state().get("status") == "finished" and self.checkpoint.is_file()

    def read_config(self) -> TrainConfig:
        if not self.config.is_file():
            raise CheckpointError(f"{self.config}: missing; {self.dir} is not a pyramid-ad run folder")
        return TrainConfig.from_dict(read_json(self.config))


def check_compatible(saved: dict, cfg: TrainConfig, where, names=RUN_FIELDS) -> None:
    """Refuse a checkpoint/config made with other settings, naming each that differs."""
    want = asdict(cfg)
    diff = [f"{k}: {saved.get(k)!r} there, {want[k]!r} here" for k in names if saved.get(k) != want[k]]
    if diff:
        raise CheckpointError(f"{where}: made with other settings ({'; '.join(diff)}); "
                              "use the same settings or another --out folder")


def load_checkpoint(path, cfg: TrainConfig | None = None) -> dict:
    """Load a checkpoint safely; with `cfg`, also check it fits that config's network."""
    ckpt = safe_torch_load(path)
    if ckpt.get("format") != CHECKPOINT_FORMAT or "model" not in ckpt:
        raise CheckpointError(f"{path}: not a pyramid-ad checkpoint (format {ckpt.get('format')!r})")
    try:
        saved = json.loads(ckpt["config"])
        int(ckpt["epoch"]), json.loads(ckpt["history"])
        if not isinstance(saved, dict) or not isinstance(ckpt["model"], dict):
            raise TypeError("config or model is not a mapping")
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: a damaged pyramid-ad checkpoint ({type(e).__name__}: {e}); "
                              "delete it to retrain, or restore it from a backup") from e
    if cfg is not None:
        check_compatible(saved, cfg, path, SHAPE_FIELDS)
    return ckpt


def load_state(module, state, path, what: str = "model") -> None:
    """`module.load_state_dict(state)`, refusing a state that does not fit with CheckpointError."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError, AttributeError) as e:
        why = " ".join(str(e).split())[:300] or type(e).__name__
        raise CheckpointError(f"{path}: its {what} state does not fit this network ({why}); "
                              "it is damaged or from another version") from e


def non_finite(model, opt=None) -> list[str]:
    """Names of the model's weights/buffers (and optimiser state) holding NaN or infinity."""
    named = list(model.state_dict().items())
    if opt is not None:
        named += [(f"optimizer[{i}].{k}", v) for i, st in enumerate(opt.state.values()) for k, v in st.items()]
    return [k for k, v in named if torch.is_tensor(v) and v.is_floating_point() and not bool(torch.isfinite(v).all())]


def train(cfg: TrainConfig, out_dir, resume: bool = False, device=None, progress: bool = True,
          data: data_mod.OneClassData | None = None, stop_after_batches: int | None = None) -> Run:
    """Train one run into `out_dir` and return it.  `data` may be passed in when already loaded.

    `stop_after_batches` ends the call after that many optimiser steps without finishing the
    epoch (the run then looks as if it had been killed); tests use it.
    """
    cfg.validate()
    run = Run(out_dir)
    device = pick_device(device)
    start_epoch, history = 0, []
    if run.dir.exists() and not run.dir.is_dir():
        raise ConfigError(f"--out {run.dir}: is a file, not a folder; choose another --out")
    if run.checkpoint.exists() or run.state.exists():
        if not resume:
            raise ConfigError(f"--out {run.dir}: already holds a run; pass --resume to continue it, "
                              "or choose another folder")
        run.read_config()  # CheckpointError when config.json is missing
        check_compatible(read_json(run.config), cfg, run.config)
        for f in (run.checkpoint, run.state, run.config):
            remove_temp_files(f)  # left by a kill during a write; the files themselves are whole
    elif resume and not run.dir.exists():
        raise ConfigError(f"--resume: {run.dir} does not exist; drop --resume to start a new run")
    # an unsafe, damaged or foreign checkpoint is refused before any data is read or downloaded
    ckpt = load_checkpoint(run.checkpoint, cfg) if run.checkpoint.exists() else None

    data = data or data_mod.load(cfg.dataset, cfg.normal_class, cfg.data_root, cfg.download, cfg.input_size)
    fit, _ = fit_and_holdout(data, cfg)
    model, loss_fn = build(cfg, device)
    opt = fast.adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)  # fused Adam

    if ckpt is not None:
        load_state(model, ckpt["model"], run.checkpoint)
        load_state(opt, ckpt.get("optimizer"), run.checkpoint, "optimizer")
        start_epoch, history = int(ckpt["epoch"]), list(json.loads(ckpt["history"]))
        del ckpt
        if start_epoch >= cfg.epochs and run.finished():
            return run
    state = {"status": "running", "config": asdict(cfg), "device": str(device), "versions": versions(),
             "fit_images": len(fit), "history": history,
             "wall_time_s": run.read_state().get("wall_time_s", 0.0)}
    atomic_write_json(run.config, asdict(cfg))
    atomic_write_json(run.state, state)

    targets = perceptual_targets(loss_fn, fit, device)
    steps = 0
    bar = tqdm(range(start_epoch, cfg.epochs), desc=f"{cfg.dataset}:{cfg.normal_class}", initial=start_epoch,
               total=cfg.epochs, disable=not progress, unit="epoch")
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        sums, n_seen = torch.zeros(3, dtype=torch.float64), 0
        for idx in batches(epoch_order(len(fit), cfg.seed, epoch), cfg.batch_size):
            x = fit.batch(idx, device)
            loss, total, mse, perc = step(model, loss_fn, opt, x, None if targets is None else targets[idx.to(device)])
            if not torch.isfinite(loss):
                state.update(status="failed", error=f"non-finite loss {loss.item()} in epoch {epoch + 1}")
                atomic_write_json(run.state, state)
                kept = f"the last good checkpoint (epoch {epoch}) is kept" if epoch else "no epoch had finished"
                raise TrainingError(f"{run.dir}: loss became {loss.item()} in epoch {epoch + 1}; stopped, {kept}. "
                                    "Try a lower --lr")
            sums += torch.stack([total.sum(), mse.sum(), perc.sum()]).detach().double().cpu()
            n_seen += len(idx)
            steps += 1
            if stop_after_batches is not None and steps >= stop_after_batches:
                return run
        mean = (sums / max(n_seen, 1)).tolist()
        dt = time.perf_counter() - t0
        broken = non_finite(model, opt)
        if broken:  # a NaN/inf gradient step: never save it over the last good checkpoint
            state.update(status="failed", error=f"non-finite weights after epoch {epoch + 1}: {broken[0]}")
            atomic_write_json(run.state, state)
            kept = f"the last good checkpoint (epoch {epoch}) is kept" if epoch else "no epoch had finished"
            raise TrainingError(f"{run.dir}: {len(broken)} weight tensor(s) became NaN or infinite in epoch "
                                f"{epoch + 1} (first: {broken[0]}); stopped, {kept}. Try a lower --lr")
        history.append({"epoch": epoch + 1, "loss": mean[0], "mse": mean[1], "perceptual": mean[2],
                        "seconds": round(dt, 3), "images_per_s": round(n_seen / dt, 1)})
        atomic_torch_save(run.checkpoint, {
            "format": CHECKPOINT_FORMAT, "epoch": epoch + 1, "config": json.dumps(asdict(cfg)),
            "history": json.dumps(history), "model": model.state_dict(), "optimizer": opt.state_dict(),
        })
        state.update(history=history, wall_time_s=round(state["wall_time_s"] + dt, 2))
        atomic_write_json(run.state, state)
        bar.set_postfix(loss=f"{mean[0]:.4f}", img_s=f"{n_seen / dt:.0f}")
    state["status"] = "finished"
    atomic_write_json(run.state, state)
    return run


def load_run(out_dir, device=None) -> tuple[TrainConfig, PyramidalAutoencoder, PyramidLoss]:
    """(config, trained model in eval mode, loss) of a run folder, loaded safely."""
    run = Run(out_dir)
    cfg = run.read_config()
    device = pick_device(device)
    ckpt = load_checkpoint(run.checkpoint, cfg)
    model, loss_fn = build(cfg, device, pretrained_backbone=False)
    load_state(model, ckpt["model"], run.checkpoint)
    return cfg, model.eval(), loss_fn
