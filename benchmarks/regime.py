"""Training regimes: which schedule gives a short run a good and stable AUROC?

    python benchmarks/regime.py --dataset mnist --classes 0 1 --seeds 0 1 2 --epochs 8 --images 1000 \\
        --lr 3e-3 --schedule cosine --batch 32 [--warmup 0.05] [--ema 0.999] [--swa 6] [--clip 1.0] \\
        [--test-limit N] [--threads 1] [--jsonl results.jsonl]

Trains with the library's own pieces (build, fit_and_heldout, epoch_order,
batches, step, perceptual_targets, training_optimizer; random weights) and adds, in this
script only, a training regime on top of them:

  --schedule constant|cosine   lr stepped once per optimiser step; cosine decays to --min-lr-ratio * lr
  --warmup F                   linear warm-up over the first F of all steps (a fraction; 0 = none)
  --ema D                      score an exponential moving average of the weights (decay D per step)
                               instead of the last weights; its batch-norm statistics are averaged
                               too (--ema-bn average) or recomputed on the fit images (recompute)
  --swa E                      score the equal average of the weights at the end of epochs E..last,
                               with batch-norm statistics recomputed on the fit images
  --clip C                     clip the gradient norm to C before each update

Then scores the test split (all of it, or a fixed seeded subset of --test-limit images) with
score_images and prints, per (dataset, class, seed): AUROC of the `loss` score, mean
SSIM of the normal test reconstructions (SSIM itself, not the 1 - SSIM score column), training
wall seconds (targets + optimiser steps) and the CPU seconds this process used for them (with one
thread, a measure that other processes on the same core do not inflate), scoring seconds; then
mean +- s.d. over seeds per class.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch.optim import lr_scheduler
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn

import pyramid_lib
from pyramid_lib import data as data_mod
from pyramid_lib.config import WEIGHT_DECAY, TrainConfig
from pyramid_lib.data.splits import fit_and_heldout, stratified_subset
from pyramid_lib.engine.build import build, training_optimizer
from pyramid_lib.engine.evaluate import score_images
from pyramid_lib.engine.trainer import batches, epoch_steps, perceptual_targets


class ClippedOptimizer:
    """The optimiser as step sees it, clipping the gradient norm before each update."""

    def __init__(self, opt, params, max_norm: float):
        self.opt, self.params, self.max_norm = opt, list(params), max_norm

    def zero_grad(self, set_to_none: bool = True):
        self.opt.zero_grad(set_to_none=set_to_none)

    def step(self):
        torch.nn.utils.clip_grad_norm_(self.params, self.max_norm)
        self.opt.step()


def make_schedule(opt, kind: str, total_steps: int, warmup: float, min_ratio: float):
    """A per-step lr scheduler (or None for a constant lr without warm-up)."""
    warm = round(warmup * total_steps)
    if kind == "constant":
        main = lr_scheduler.LambdaLR(opt, lambda s: 1.0) if warm else None
    elif kind == "cosine":
        base = opt.param_groups[0]["lr"]
        main = lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total_steps - warm), eta_min=base * min_ratio)
    else:
        raise ValueError(f"unknown schedule {kind!r}")
    if not warm:
        return main
    ramp = lr_scheduler.LinearLR(opt, start_factor=1.0 / warm, end_factor=1.0, total_iters=warm)
    return lr_scheduler.SequentialLR(opt, [ramp, main], milestones=[warm])


def recompute_bn(model, fit: data_mod.ImageSet, device) -> None:
    """Batch-norm running statistics of `model` recomputed over the fit images (one pass)."""
    update_bn([fit.batch(idx, device) for idx in batches(torch.arange(len(fit)), 250)], model)


def fit_one(data: data_mod.OneClassData, cfg: TrainConfig, opts) -> tuple[torch.nn.Module, object, dict]:
    """Train one run with the regime of `opts`; (model to score, loss, info)."""
    device = torch.device("cpu")
    t0, c0 = time.perf_counter(), time.process_time()
    fit, _ = fit_and_heldout(data, cfg)
    model, loss_fn = build(cfg, device)
    opt = training_optimizer(cfg, model)  # the trainer's: fused Adam and, with cfg.fast, the conv rewrites
    steps_per_epoch = sum(1 for _ in batches(torch.arange(len(fit)), cfg.batch_size))
    sched = make_schedule(opt, opts.schedule, steps_per_epoch * cfg.epochs, opts.warmup, opts.min_lr_ratio)
    stepper = ClippedOptimizer(opt, model.parameters(), opts.clip) if opts.clip else opt
    ema = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(opts.ema), use_buffers=True)
           if opts.ema else None)
    swa = AveragedModel(model) if opts.swa else None
    targets = perceptual_targets(loss_fn, fit, device)
    losses = []
    for epoch in range(cfg.epochs):
        total, n = 0.0, 0
        # the library's epoch loop (trainer.epoch_steps: train mode, batch order, one step each,
        # NonFiniteLoss on a NaN/inf batch); the regime's schedule and averaging act after each step
        for idx, (_, per_image, *_) in epoch_steps(model, loss_fn, stepper, fit, cfg.seed, epoch, cfg.batch_size,
                                                  device, targets):
            if sched is not None:
                sched.step()
            if ema is not None:
                ema.update_parameters(model)
            total += float(per_image.sum())
            n += len(idx)
        if swa is not None and epoch + 1 >= opts.swa:
            swa.update_parameters(model)
        losses.append(total / max(n, 1))
    scored = model
    if ema is not None:
        scored = ema.module
        if opts.ema_bn == "recompute":
            recompute_bn(scored, fit, device)
    elif swa is not None:
        scored = swa.module
        recompute_bn(scored, fit, device)
    info = {"fit_images": len(fit), "steps": steps_per_epoch * cfg.epochs, "final_loss": losses[-1],
            "train_s": time.perf_counter() - t0, "train_cpu_s": time.process_time() - c0,
            "last_lr": opt.param_groups[0]["lr"]}
    return scored, loss_fn, info


def scored_test(data: data_mod.OneClassData, test_limit: int | None) -> data_mod.ImageSet:
    """The whole test split, or the library's seeded, stratified subset of `test_limit` images
    (`data.splits.stratified_subset`, seed 0: the same for every run)."""
    return data.test.subset(stratified_subset(data.test.labels, test_limit, 0)) if test_limit else data.test


def run_one(data, cls: str, seed: int, opts) -> dict:
    cfg = TrainConfig(dataset=opts.dataset, normal_class=cls, epochs=opts.epochs, seed=seed,
                            batch_size=opts.batch, lr=opts.lr, weight_decay=opts.weight_decay,
                            train_limit=opts.images, weights="random", data_root=opts.data_root,
                            download=False).validate()
    model, loss_fn, info = fit_one(data, cfg, opts)
    t0 = time.perf_counter()
    test = score_images(model, loss_fn, scored_test(data, opts.test_limit), progress=False)
    score_s = time.perf_counter() - t0
    y = test["label"].to_numpy()
    return {"dataset": opts.dataset, "class": cls, "seed": seed, "auroc": float(roc_auc_score(y, test["loss"])),
            "ssim_normal": float(1.0 - test.loc[test.label == 0, "ssim"].mean()), "score_s": score_s,
            "n_test": len(y), **info}


def mean_sd(v, digits: int = 4) -> str:
    v = np.asarray(v, dtype=float)
    return f"{v.mean():.{digits}f} +- {v.std(ddof=1):.{digits}f}" if len(v) > 1 else f"{v.mean():.{digits}f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="mnist", choices=data_mod.DATASETS)
    ap.add_argument("--classes", nargs="+", default=["0"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--images", type=int, default=None, help="training images (train_limit; default: all)")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--weight-decay", type=float, default=WEIGHT_DECAY)
    ap.add_argument("--schedule", default="cosine", choices=("constant", "cosine"))
    ap.add_argument("--warmup", type=float, default=0.0, help="fraction of all steps (0 = none)")
    ap.add_argument("--min-lr-ratio", type=float, default=0.0, help="cosine floor as a fraction of --lr")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--ema", type=float, default=None, help="EMA decay per step, e.g. 0.999")
    ap.add_argument("--ema-bn", default="average", choices=("average", "recompute"),
                    help="EMA batch-norm statistics: averaged with the weights, or recomputed on the fit images")
    ap.add_argument("--swa", type=int, default=None, help="first epoch (1-based) of the equal weight average")
    ap.add_argument("--clip", type=float, default=None, help="max gradient norm")
    ap.add_argument("--test-limit", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-root", default="/work/shared/data")
    ap.add_argument("--jsonl", default=None, help="append one JSON line per run to this file")
    opts = ap.parse_args(argv)
    if opts.ema and opts.swa:
        ap.error("--ema and --swa are alternatives; pick one")
    torch.set_num_threads(opts.threads)
    print(f"# {' '.join(sys.argv)}", flush=True)
    print(f"# pyramid_lib from {Path(pyramid_lib.__file__).parent}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s)", flush=True)
    print("| dataset | class | seed | fit images | epochs | AUROC (loss) | SSIM normal | train s | train CPU s | "
          "score s | final loss | n test |\n|---|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    rows = []
    for cls in opts.classes:
        data = data_mod.load(opts.dataset, cls, root=opts.data_root, download=False)
        for seed in opts.seeds:
            r = run_one(data, cls, seed, opts)
            rows.append(r)
            print(f"| {r['dataset']} | {r['class']} | {seed} | {r['fit_images']} | {opts.epochs} | {r['auroc']:.4f} | "
                  f"{r['ssim_normal']:.4f} | {r['train_s']:.1f} | {r['train_cpu_s']:.1f} | {r['score_s']:.1f} | "
                  f"{r['final_loss']:.5f} | {r['n_test']} |", flush=True)
            if opts.jsonl:
                with open(opts.jsonl, "a") as f:
                    f.write(json.dumps({**r, "argv": sys.argv[1:]}) + "\n")
    print("\nmean +- s.d. over seeds:\n")
    print("| dataset | class | seeds | AUROC (loss) | min AUROC | SSIM normal | train s | train CPU s |\n"
          "|---|---|---|---|---|---|---|---|")
    for cls in opts.classes:
        rs = [r for r in rows if r["class"] == cls]
        print(f"| {opts.dataset} | {cls} | {len(rs)} | {mean_sd([r['auroc'] for r in rs])} | "
              f"{min(r['auroc'] for r in rs):.4f} | {mean_sd([r['ssim_normal'] for r in rs])} | "
              f"{mean_sd([r['train_s'] for r in rs], 1)} | {mean_sd([r['train_cpu_s'] for r in rs], 1)} |")
    if len(opts.classes) > 1:
        per_class = [np.mean([r["auroc"] for r in rows if r["class"] == c]) for c in opts.classes]
        print(f"\nmean over classes of the per-class mean AUROC: {np.mean(per_class):.4f}")
    bad = [r for r in rows if not math.isfinite(r["auroc"])]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
