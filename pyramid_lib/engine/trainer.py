"""Training: Adam (Table I), seeded, one atomic checkpoint per epoch, resumable.

A run lives in one folder:
    config.json      the TrainConfig (what was asked) and the weights actually used
    checkpoint.pt    model + optimiser state after the last complete epoch (loaded weights_only)
    run.json         status (running / finished / diverged), loss history, device, wall time (run_record.py)
    data.json        the fit images and held-out normals by name and content hash (data_record.py)
Every file is written to a temporary file and renamed, so a kill at any moment leaves the
previous good file in place; `train(..., resume=True)` continues from the last complete epoch.
With the same seed on the same CPU an interrupted-and-resumed run ends with the same weights as
an uninterrupted one: batch order depends only on (seed, epoch), and everything else that
carries over is in the checkpoint."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import replace

import torch

from .. import data as data_mod
from ..config import TrainConfig
from ..data.splits import fit_and_heldout, run_split
from ..errors import ConfigError, TrainingError
from ..files import holder_file, read_json, remove_temp_files
from ..model import weights
from ..model.loss import PyramidLoss, named_terms
from ..progress import tqdm
from . import run_record
from .build import build, fast_path, pick_device, training_optimizer
from .precision import autocast, resolve, step_seconds
from .run_dir import RunDir, check_compatible, load_checkpoint, load_perceptual, load_state


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffle of epoch `epoch`: a function of (seed, epoch) only, so resuming replays it."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Optimiser steps in one epoch of `n` images: the batches `batches` yields."""
    return n // batch_size + (1 if n % batch_size >= 2 else 0)


def learning_rate(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """The learning rate of optimiser step `step` (0-based) of a run of `total_steps` steps.

    `constant` (Table I): cfg.lr.  `cosine`: cfg.lr * (1 + cos(pi * step / total_steps)) / 2, from
    cfg.lr at the first step towards 0 at the end, no warm-up; the closed form of torch's
    CosineAnnealingLR (eta_min 0), a function of the step only, so a resumed run replays it exactly.
    The CPU profiles use it (benchmarks/REGIME.md); the paper states a constant rate."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    return cfg.lr * (1 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1))) / 2


def batches(order: torch.Tensor, batch_size: int):
    """Consecutive slices of `order`; a last batch of one image is dropped (batch norm needs two)."""
    for i in range(0, len(order), batch_size):
        b = order[i:i + batch_size]
        if len(b) >= 2:
            yield b


class NonFiniteLoss(TrainingError):
    """The mean loss of a batch was NaN or infinite (`epoch` counts from 0); no update was made."""

    def __init__(self, loss: float, epoch: int):
        super().__init__(f"loss became {loss} in epoch {epoch + 1}")
        self.loss, self.epoch = loss, epoch


def step(model, loss_fn, opt, x, targets=None, precision: str = "fp32") -> tuple[torch.Tensor, dict]:
    """One optimiser step on batch x (B x 3 x S x S): (mean loss, per-image terms by name), all
    detached, in float32.

    `loss_fn(x_hat, x[, targets])` returns per-image terms (`named_terms`); the step minimises the
    mean of "loss" and is skipped when that mean is not finite (`epoch_steps` then raises).
    `targets`: the loss's cached targets of these images (`perceptual_targets`), or None.
    `precision`: "fp32", or "bf16" for the forward pass and loss under autocast (engine/precision.py)."""
    with autocast(precision, x.device):
        x_hat = model(x)
        terms = named_terms(loss_fn(x_hat, x) if targets is None else loss_fn(x_hat, x, targets))
    terms = {k: t.float() for k, t in terms.items()}
    loss = terms["loss"].mean()
    if torch.isfinite(loss):
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return loss.detach(), {k: t.detach() for k, t in terms.items()}


def epoch_steps(model, loss_fn, opt, images: data_mod.ImageSet, seed: int, epoch: int, batch_size: int, device,
                targets: torch.Tensor | None = None, lr: Callable[[int], float] | None = None,
                precision: str = "fp32"):
    """The training loop of one epoch, shared by our network (`train`) and the plain autoencoders
    (baselines.py): the model in train mode, the batches of `epoch_order(len(images), seed, epoch)`,
    one `step` each.  Yields (batch indices, `step`'s result: (mean loss, per-image terms by name))
    after every step; raises NonFiniteLoss (no update made) when a batch's mean loss is NaN or
    infinite.  `targets`: the loss's cached targets of every image (`perceptual_targets`), or None.
    `lr`: the learning rate of each optimiser step of the run, by step number counted from the
    run's first epoch (`learning_rate`); None keeps the optimiser's.  `precision`: "fp32" or "bf16" (`step`)."""
    model.train()
    first = epoch * steps_per_epoch(len(images), batch_size)
    for i, idx in enumerate(batches(epoch_order(len(images), seed, epoch), batch_size)):
        if lr is not None:
            for group in opt.param_groups:
                group["lr"] = lr(first + i)
        x = images.batch(idx, device)
        out = step(model, loss_fn, opt, x, None if targets is None else targets[idx.to(device)], precision)
        if not torch.isfinite(out[0]):
            raise NonFiniteLoss(out[0].item(), epoch)
        yield idx, out


@torch.no_grad()
def perceptual_targets(loss: PyramidLoss, images: data_mod.ImageSet, device, batch_size: int = 500,
                       max_bytes: float = 2e9) -> torch.Tensor | None:
    """The loss's cached targets (`loss.targets`: F(x) for PyramidLoss) of every training image,
    computed once (they never change: F is frozen).

    Returns None when the loss has none to cache (lambda = 0) or they would take more than
    `max_bytes`; the loss then computes them each step.  Values are bit-identical to computing
    them per step.
    """
    if len(images) == 0:
        return None
    probe = loss.targets(images.batch(torch.arange(1), device))
    if probe is None or probe.numel() * 4 * len(images) > max_bytes:
        return None
    out = torch.empty((len(images), *probe.shape[1:]), device=device)
    for i in range(0, len(images), batch_size):
        idx = torch.arange(i, min(i + batch_size, len(images)))
        out[idx.to(device)] = loss.targets(images.batch(idx, device))
    return out


def non_finite(model, opt=None) -> list[str]:
    """Names of the model's weights/buffers (and optimiser state) holding NaN or infinity."""
    named = list(model.state_dict().items())
    if opt is not None:
        named += [(f"optimizer[{i}].{k}", v) for i, st in enumerate(opt.state.values()) for k, v in st.items()]
    return [k for k, v in named if torch.is_tensor(v) and v.is_floating_point() and not bool(torch.isfinite(v).all())]


def train(cfg: TrainConfig, out_dir, resume: bool = False, device=None, progress: bool = True,
          data: data_mod.OneClassData | None = None, stop_after_batches: int | None = None,
          announce: Callable[[float, data_mod.OneClassData], None] | None = None) -> RunDir:
    """Train one run into `out_dir` (paper Sec. IV, Table I) and return its RunDir, `trained`.

    `out_dir`: a folder or a RunDir.  `data` may be passed in when already loaded.
    `stop_after_batches` ends the call after that many optimiser steps without finishing the epoch
    (the run then looks as if it had been killed); tests use it.  `announce(seconds per step,
    data)` is called once before the first step, the seconds measured on a copy of the run's own
    network and first batch (`precision.step_seconds`): the command line prints its estimate.  The folder's lock is held
    throughout (`RunDir.hold`; reentrant when the caller's RunDir holds it already).  data.json
    records the fit images and held-out normals when training starts (engine/data_record.py).
    Raises ConfigError (a folder that holds another run, or --resume of nothing), RunBusy (another
    process trains or evaluates in `out_dir`), DataError (--resume after the training images
    changed), CheckpointError (a damaged, unsafe or foreign checkpoint) and Diverged, a TrainingError (a NaN
    or infinite loss or weight, or a loss grown DIVERGED_FACTOR-fold: run.json then says "diverged"
    with the epoch, and the last good checkpoint is kept).  Warns (DataWarning) when test images
    are pixel-identical to training images, training images repeat, or the held-out normals are
    fewer than threshold.FEW_NORMALS.
    """
    cfg.validate()
    weights.enums(cfg.weights)  # ConfigError for a request ("auto") not resolved yet, before any data is read
    run = out_dir if isinstance(out_dir, RunDir) else RunDir(out_dir)
    device = pick_device(device)
    if run.dir.exists() and not run.dir.is_dir():
        raise ConfigError(f"--out {run.dir}: is a file, not a folder; choose another --out")
    if resume and not run.dir.exists():
        raise ConfigError(f"--resume: {run.dir} does not exist; drop --resume to start a new run")
    created = not run.dir.exists()
    with run.hold("train"):
        try:
            return _train(cfg, run, resume, device, progress, data, stop_after_batches, announce)
        except BaseException:
            if created:
                _remove_if_unused(run)
            raise


def _remove_if_unused(run: RunDir) -> None:
    """Remove a folder that `train` created and that holds nothing but its lock (training stopped
    before writing anything: bad data, Ctrl-C while loading), as if it had never been made."""
    try:
        held = {run.lock_file.name, holder_file(run.lock_file).name}  # the lock and who holds it: no data
        if {p.name for p in run.dir.iterdir()} <= held:
            holder_file(run.lock_file).unlink(missing_ok=True)
            run.lock_file.unlink()
            run.dir.rmdir()
    except OSError:  # in use (Windows) or just written to: leave it
        pass


DIVERGED_FACTOR = 10.0  # an epoch's mean loss above this many times the run's first one: diverged


class Diverged(TrainingError):
    """Training diverged in epoch `epoch` (counted from 1): `why` says how (a non-finite loss or
    weight, a loss grown beyond DIVERGED_FACTOR times the first epoch's).  Nothing of that epoch was
    saved; run.json records status "diverged" with the epoch."""

    def __init__(self, run: RunDir, epoch: int, why: str):
        kept = f"the last good checkpoint (epoch {epoch - 1}) is kept" if epoch > 1 else "no epoch had finished"
        super().__init__(f"{run.dir}: training diverged in epoch {epoch}: {why}; stopped, {kept}. The run is recorded "
                         "as diverged (run.json); train again with a lower --lr (e.g. a tenth)")
        self.epoch, self.why = epoch, why


def _train(cfg: TrainConfig, run: RunDir, resume: bool, device, progress: bool, data: data_mod.OneClassData | None,
           stop_after_batches: int | None, announce=None) -> RunDir:
    """`train`'s work, under the folder's lock: resume point, data, network, then epoch by epoch
    `_epoch`, each recorded by `run_record` (checkpoint and run.json), as is a divergence (`Diverged`)."""
    ckpt, cfg = _resume_point(run, cfg, resume)
    data = data or data_mod.load_for(cfg)
    split = run_split(cfg, len(data.train))  # once per run; data.json records it
    fit, _ = fit_and_heldout(data, cfg, split)
    model, loss_fn = fast_path(cfg, *build(cfg, device))  # --no-fast: the plain network
    opt = training_optimizer(cfg, model)
    start_epoch, history = 0, []
    if ckpt is not None:
        if int(ckpt["epoch"]) >= cfg.epochs and run.trained:
            return run  # finished (its optimiser state may have been dropped: RunDir.drop_optimizer)
        load_state(model, ckpt["model"], run.checkpoint)
        load_perceptual(loss_fn, ckpt, run.checkpoint)
        load_state(opt, ckpt.get("optimizer"), run.checkpoint, "optimizer")
        start_epoch, history = int(ckpt["epoch"]), list(json.loads(ckpt["history"]))
        del ckpt
    cfg, measured = resolve(cfg, model, loss_fn, fit.batch(torch.arange(min(len(fit), cfg.batch_size, 32)), device))
    if announce is not None:
        x = fit.batch(torch.arange(min(len(fit), cfg.batch_size)), device)
        announce(step_seconds(model, loss_fn, x, cfg.precision, repeats=2), data)
    state = run_record.start(run, cfg, data, split, len(fit), history, device, resumed=start_epoch > 0,
                             measured=measured)

    targets = perceptual_targets(loss_fn, fit, device)
    total_steps = cfg.epochs * steps_per_epoch(len(fit), cfg.batch_size)
    budget = [stop_after_batches]
    bar = tqdm(range(start_epoch, cfg.epochs), desc=f"{cfg.dataset}:{cfg.normal_class}", initial=start_epoch,
               total=cfg.epochs, disable=not progress, unit="epoch", smoothing=0)  # rate: the mean over the run
    loop_start = time.perf_counter()  # the bar's clock: an epoch's training and the checkpoint saved after it
    for epoch in bar:
        try:
            done = _epoch(run, cfg, model, loss_fn, opt, fit, targets, epoch, total_steps, history, budget, device)
        except Diverged as e:
            run_record.diverged(run, state, e.epoch, e.why)
            raise
        if done is None:  # stop_after_batches reached: as if killed mid-epoch
            return run
        history.append(done)
        run_record.save_epoch(run, state, cfg, model, opt, loss_fn, history)
        bar.set_postfix(loss=f"{done['loss']:.4f}", img_s=f"{done['images_per_s']:.0f}")
    run_record.finished(run, state, time.perf_counter() - loop_start, cfg.epochs - start_epoch)
    return run


def _resume_point(run: RunDir, cfg: TrainConfig, resume: bool) -> tuple[dict | None, TrainConfig]:
    """(the checkpoint to continue from, None for a new run; the config, with precision "auto"
    replaced by the precision the run was measured into when it resumes), refused before any data
    is read when the folder holds a run and --resume was not given, or its settings differ, or it
    is unsafe, damaged or foreign."""
    if run.checkpoint.exists() or run.state.exists():
        if not resume:
            raise ConfigError(f"--out {run.dir}: already holds a run; pass --resume to continue it, "
                              "or choose another folder")
        run.read_config()  # CheckpointError when config.json is missing
        saved = read_json(run.config)
        if cfg.precision == "auto" and saved.get("precision", "fp32") in ("fp32", "bf16"):
            cfg = replace(cfg, precision=saved.get("precision", "fp32"))
        check_compatible(saved, cfg, run.config)
        for f in (run.checkpoint, run.state, run.config, run.data_record):
            remove_temp_files(f)  # left by a kill during a write; the files themselves are whole
    return (load_checkpoint(run.checkpoint, cfg) if run.checkpoint.exists() else None), cfg


def _epoch(run: RunDir, cfg: TrainConfig, model, loss_fn, opt, fit, targets, epoch: int, total_steps: int,
           history: list, budget: list, device) -> dict | None:
    """One epoch (`epoch_steps`); returns its history entry, None when `budget[0]` optimiser steps
    ran out first.  Raises Diverged (the one path for every divergence) when a batch loss or a
    weight becomes NaN or infinite, the epoch's mean loss exceeds DIVERGED_FACTOR times the first
    epoch's (this epoch's first batch when it is the first), or the network in eval mode computes
    a NaN or infinite loss (`probe_loss`)."""
    t0 = time.perf_counter()
    sums, n_seen, first = {}, 0, None
    try:
        for idx, (mean, terms) in epoch_steps(model, loss_fn, opt, fit, cfg.seed, epoch, cfg.batch_size, device,
                                              targets, lambda s: learning_rate(cfg, s, total_steps), cfg.precision):
            for k, t in terms.items():  # every term the loss returns is logged
                sums[k] = sums.get(k, 0.0) + t.sum().double().cpu()
            n_seen += len(idx)
            first = float(mean) if first is None else first
            if budget[0] is not None:
                budget[0] -= 1
                if budget[0] <= 0:
                    return None
    except NonFiniteLoss as e:
        raise Diverged(run, epoch + 1, f"the loss became {e.loss}") from None
    dt = time.perf_counter() - t0  # the training steps only (images_per_s), not the checks below
    broken = non_finite(model, opt)
    if broken:  # a NaN/inf gradient step with finite losses
        raise Diverged(run, epoch + 1, f"{len(broken)} weight tensor(s) became NaN or infinite (first: {broken[0]})")
    mean = {k: float(v) / max(n_seen, 1) for k, v in sums.items()}
    reference = history[0]["loss"] if history else first
    if reference is not None and mean["loss"] > DIVERGED_FACTOR * reference:
        what = "epoch" if history else "batch"
        raise Diverged(run, epoch + 1, f"the mean loss of the epoch grew to {mean['loss']:.4g}, over "
                                       f"{DIVERGED_FACTOR:g} times the first {what}'s {reference:.4g}")
    after = probe_loss(model, loss_fn, fit, cfg.batch_size, device)
    if not math.isfinite(after):  # finite batch losses, yet the network scoring uses computes NaN/inf
        raise Diverged(run, epoch + 1, f"the loss of the network after the epoch (eval mode) is {after}")
    return {"epoch": epoch + 1, **mean, "seconds": round(dt, 3), "images_per_s": round(n_seen / dt, 1)}


@torch.no_grad()
def probe_loss(model, loss_fn, images: data_mod.ImageSet, batch_size: int, device) -> float:
    """The mean loss of the network in eval mode (as scoring uses it) on the first `batch_size`
    training images: the weights after the epoch's last step, with batch norm's running statistics,
    which the epoch's batch losses never see.  A step that breaks the network shows here first.
    Changes no weight, no statistic and no random state (training resumes the same)."""
    was = model.training
    model.eval()
    x = images.batch(torch.arange(min(batch_size, len(images))), device)
    loss = named_terms(loss_fn(model(x), x))["loss"]
    model.train(was)
    return float(loss.float().mean())


