"""Training regimes: which schedule gives a short run a good and stable AUROC?

    python benchmarks/regime.py --dataset mnist --classes 0 1 --seeds 0 1 2 --epochs 8 --images 1000 \\
        --lr 3e-3 --schedule cosine --batch 32 [--warmup 0.05] [--ema 0.999] [--swa 6] [--clip 1.0] \\
        [--test-limit N] [--val-others 1000] [--threads 1] [--jsonl results.jsonl] [--name LABEL]
    python benchmarks/regime.py --report --jsonl results.jsonl     # only the tables of the runs there

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

Then, in this order:

1. the **validation criterion**, which reads no test image: the AUROC of the `loss` score on the
   run's validation set (`data.validation.validation_set`: its held-out training normals against
   --val-others images of the other classes from the official *training* split for MNIST-like
   data, synthetic defects for image folders), printed as soon as it is known;
2. only then the test split (all of it, or a fixed seeded subset of --test-limit images),
   scored with score_images.

Prints, per (dataset, class, seed): the validation AUROC, the test AUROC of the `loss` score,
mean SSIM of the normal test reconstructions (SSIM itself, not the 1 - SSIM score column),
training wall seconds (targets + optimiser steps) and the CPU seconds this process used for them
(with one thread, a measure that other processes on the same core do not inflate), scoring
seconds; then mean +- s.d. over seeds per class.

With --jsonl, one JSON line per run is appended, holding the regime's settings (`regime`, and a
label `candidate`); a run whose (dataset, class, seed, regime) is already there is not run again,
so an interrupted comparison resumes.  At the end (and with --report alone) the candidates of the
file are compared: per class, and as the mean over the classes every candidate has of the
per-class mean over seeds, with the line "the validation criterion picks: X" and, after it, what
the test AUROC would have picked.
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
from pyramid_lib.data.validation import OTHER_CLASS_IMAGES, validation_set
from pyramid_lib.engine.build import build, fast_path, training_optimizer
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
    model, loss_fn = fast_path(cfg, *build(cfg, device))  # the trainer's: with cfg.fast, the conv rewrites
    opt = training_optimizer(cfg, model)  # and fused Adam
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
        for idx, (_, terms) in epoch_steps(model, loss_fn, stepper, fit, cfg.seed, epoch, cfg.batch_size,
                                           device, targets):
            if sched is not None:
                sched.step()
            if ema is not None:
                ema.update_parameters(model)
            total += float(terms["loss"].sum())
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


REGIME_OPTIONS = ("epochs", "images", "lr", "weight_decay", "schedule", "warmup", "min_lr_ratio", "batch", "ema",
                  "ema_bn", "swa", "clip", "test_limit", "val_others", "threads")  # threads: float rounding


def regime_of(opts) -> dict:
    """The settings that make two runs of the same (dataset, class, seed) the same run (the
    number of threads too: it changes the float rounding, and so the AUROC a little)."""
    r = {k: getattr(opts, k) for k in REGIME_OPTIONS}
    if not r["ema"]:
        r["ema_bn"] = None  # without EMA it changes nothing
    return r


def label_of(opts) -> str:
    """A short name of the regime for the tables, e.g. 'cosine 3e-3, 4000 x 6'."""
    if opts.name:
        return opts.name
    extras = [f"{k.replace('_', '-')} {getattr(opts, k):g}" for k in ("warmup", "min_lr_ratio", "ema", "swa", "clip")
              if getattr(opts, k)]
    return ", ".join([f"{opts.schedule} {opts.lr:g}", f"{opts.images or 'all'} x {opts.epochs}",
                      *([f"batch {opts.batch}"] if opts.batch != 32 else []), *extras])


def run_one(data, cls: str, seed: int, opts) -> dict:
    cfg = TrainConfig(dataset=opts.dataset, normal_class=cls, epochs=opts.epochs, seed=seed,
                            batch_size=opts.batch, lr=opts.lr, weight_decay=opts.weight_decay,
                            train_limit=opts.images, weights="random", data_root=opts.data_root,
                            download=False).validate()
    model, loss_fn, info = fit_one(data, cfg, opts)
    t0 = time.perf_counter()
    vset = validation_set(cfg, data, others=opts.val_others)
    val = score_images(model, loss_fn, vset, progress=False)
    n_normal = int((val.label == 0).sum())
    out = {"dataset": opts.dataset, "class": cls, "seed": seed,
           "val_auroc": float(roc_auc_score(val["label"], val["loss"])), "val_normals": n_normal,
           "val_anomalies": len(val) - n_normal, "val_normal_loss": float(val.loc[val.label == 0, "loss"].mean()),
           "val_score_s": time.perf_counter() - t0}
    # the criterion is out (printed, and in the row) before the test split is scored
    print(f"# {opts.dataset} {cls} seed {seed}: validation AUROC {out['val_auroc']:.4f} ({n_normal} held-out normals, "
          f"{out['val_anomalies']} anomalies from the training split); scoring the test split next", flush=True)
    t0 = time.perf_counter()
    test = score_images(model, loss_fn, scored_test(data, opts.test_limit), progress=False)
    score_s = time.perf_counter() - t0
    y = test["label"].to_numpy()
    return {**out, "auroc": float(roc_auc_score(y, test["loss"])),
            "ssim_normal": float(1.0 - test.loc[test.label == 0, "ssim"].mean()), "score_s": score_s,
            "n_test": len(y), **info}


def read_rows(path: Path | None) -> list[dict]:
    """The runs of a --jsonl file that carry a regime (lines written before the validation
    criterion existed carry none and are left out, with a note); a line that does not parse (a
    run killed while writing) is skipped with a warning."""
    if path is None or not path.exists():
        return []
    rows, old, bad = [], 0, 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if "regime" in r and "val_auroc" in r:
            rows.append(r)
        else:
            old += 1
    if bad:
        print(f"# warning: {bad} line(s) of {path} do not parse (a run killed while writing?); skipped", flush=True)
    if old:
        print(f"# note: {old} line(s) of {path} have no regime or validation AUROC (written before the criterion "
              "existed); not compared", flush=True)
    return rows


def run_key(r: dict) -> tuple:
    return r["dataset"], str(r["class"]), int(r["seed"]), json.dumps(r["regime"], sort_keys=True)


def candidates(rows: list[dict]) -> dict[str, list[dict]]:
    """The rows of each regime, by its label (a label that two regimes share gets ' #2', ...)."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(json.dumps(r["regime"], sort_keys=True), []).append(r)
    out: dict[str, list[dict]] = {}
    for rs in groups.values():
        label, k = rs[0]["candidate"], 1
        while label in out:
            k += 1
            label = f"{rs[0]['candidate']} #{k}"
        out[label] = rs
    return out


def pick(mean: dict[str, dict[str, float]], key: str = "val_auroc") -> str:
    """The candidate with the highest `key` (the first listed of a tie)."""
    return max(mean, key=lambda c: mean[c][key])


def report(rows: list[dict]) -> str | None:
    """Print the candidates of `rows` side by side; return the label the validation criterion picks:
    the highest mean, over the (dataset, class) cells every candidate has, of the per-class mean
    validation AUROC over its seeds (None when no cell has runs of every candidate)."""
    if not rows:
        return None
    groups = candidates(rows)
    cands = list(groups)
    cells = list(dict.fromkeys((r["dataset"], str(r["class"])) for r in rows))
    by = {(c, cell): [r for r in groups[c] if (r["dataset"], str(r["class"])) == cell] for c in cands for cell in cells}
    print("\n## Candidates (validation AUROC first: it reads no test image)\n")
    print("| candidate | dataset | class | seeds | validation AUROC | test AUROC (loss) | SSIM normal | "
          "train CPU s |\n|---|---|---|---|---|---|---|---|")
    for c in cands:
        for cell in cells:
            rs = by[c, cell]
            if rs:
                print(f"| {c} | {cell[0]} | {cell[1]} | {' '.join(str(r['seed']) for r in rs)} | "
                      f"{mean_sd([r['val_auroc'] for r in rs])} | {mean_sd([r['auroc'] for r in rs])} | "
                      f"{mean_sd([r['ssim_normal'] for r in rs])} | {mean_sd([r['train_cpu_s'] for r in rs], 1)} |")
    common = [cell for cell in cells if all(by[c, cell] for c in cands)]
    if not common:
        print("\nno class has runs of every candidate: nothing to pick")
        return None
    def means(part, seeds=None):
        return {c: {k: float(np.mean([np.mean([r[k] for r in by[c, cell] if seeds is None or r["seed"] in seeds])
                                      for cell in part])) for k in ("val_auroc", "auroc")} for c in cands}

    mean = means(common)
    names = ", ".join(f"{d} {k}" for d, k in common)
    print(f"\nmean over the {len(common)} class(es) every candidate has ({names}) of the per-class mean over seeds:\n")
    print("| candidate | validation AUROC | test AUROC (loss) |\n|---|---|---|")
    for c in cands:
        print(f"| {c} | {mean[c]['val_auroc']:.4f} | {mean[c]['auroc']:.4f} |")
    chosen = pick(mean)
    print(f"\nthe validation criterion picks: {chosen}")
    datasets = list(dict.fromkeys(d for d, _ in common))
    if len(datasets) > 1:
        for d in datasets:
            print(f"the validation criterion picks, on {d} alone: {pick(means([c for c in common if c[0] == d]))}")
    seeds = {c: [{r["seed"] for r in by[c, cell]} for cell in common] for c in cands}
    shared = set.intersection(*(s for c in cands for s in seeds[c]))
    if shared and any(s != shared for c in cands for s in seeds[c]):
        # candidates run with more seeds than others: the same choice on the seeds they all have
        listed = " ".join(map(str, sorted(shared)))
        print(f"the validation criterion picks, on the seeds every candidate has ({listed}): "
              f"{pick(means(common, shared))}")
    print(f"(the test AUROC, which must not choose, would pick: {pick(mean, 'auroc')})")
    return chosen


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
    ap.add_argument("--val-others", type=int, default=OTHER_CLASS_IMAGES,
                    help="MNIST-like data: anomalies of the validation set, other-class training images")
    ap.add_argument("--name", default=None, help="label of this regime in the tables (default: from its settings)")
    ap.add_argument("--report", action="store_true", help="only print the comparison of the runs in --jsonl")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-root", default="/work/shared/data")
    ap.add_argument("--jsonl", type=Path, default=None,
                    help="append one JSON line per run to this file; runs already there are not run again")
    opts = ap.parse_args(argv)
    if opts.ema and opts.swa:
        ap.error("--ema and --swa are alternatives; pick one")
    if opts.report:
        if opts.jsonl is None:
            ap.error("--report prints the runs of --jsonl; give it")
        report(read_rows(opts.jsonl))
        return 0
    regime, label = regime_of(opts), label_of(opts)
    earlier = read_rows(opts.jsonl)
    done = {run_key(r): r for r in earlier}
    torch.set_num_threads(opts.threads)
    argv = sys.argv[1:] if argv is None else list(argv)
    print(f"# regime.py {' '.join(argv)}", flush=True)
    print(f"# pyramid_lib from {Path(pyramid_lib.__file__).parent}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s)", flush=True)
    print(f"# regime: {label}", flush=True)
    print("| dataset | class | seed | fit images | epochs | validation AUROC | AUROC (loss) | SSIM normal | train s | "
          "train CPU s | score s | final loss | n test |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|",
          flush=True)
    rows = []
    for cls in opts.classes:
        data = None
        for seed in opts.seeds:
            key = (opts.dataset, str(cls), seed, json.dumps(regime, sort_keys=True))
            if key in done:
                r = done[key]
                print(f"# {opts.dataset} {cls} seed {seed}: already in {opts.jsonl}, not run again", flush=True)
            else:
                data = data or data_mod.load(opts.dataset, cls, root=opts.data_root, download=False)
                r = {**run_one(data, cls, seed, opts), "candidate": label, "regime": regime, "argv": argv}
                if opts.jsonl:
                    with open(opts.jsonl, "a") as f:
                        f.write(json.dumps(r) + "\n")
            rows.append(r)
            print(f"| {r['dataset']} | {r['class']} | {seed} | {r['fit_images']} | {opts.epochs} | "
                  f"{r['val_auroc']:.4f} | {r['auroc']:.4f} | {r['ssim_normal']:.4f} | {r['train_s']:.1f} | "
                  f"{r['train_cpu_s']:.1f} | {r['score_s']:.1f} | {r['final_loss']:.5f} | {r['n_test']} |", flush=True)
    print("\nmean +- s.d. over seeds:\n")
    print("| dataset | class | seeds | validation AUROC | AUROC (loss) | min AUROC | SSIM normal | train s | "
          "train CPU s |\n|---|---|---|---|---|---|---|---|---|")
    for cls in opts.classes:
        rs = [r for r in rows if r["class"] == cls]
        print(f"| {opts.dataset} | {cls} | {len(rs)} | {mean_sd([r['val_auroc'] for r in rs])} | "
              f"{mean_sd([r['auroc'] for r in rs])} | "
              f"{min(r['auroc'] for r in rs):.4f} | {mean_sd([r['ssim_normal'] for r in rs])} | "
              f"{mean_sd([r['train_s'] for r in rs], 1)} | {mean_sd([r['train_cpu_s'] for r in rs], 1)} |")
    if len(opts.classes) > 1:
        per_class = [np.mean([r["auroc"] for r in rows if r["class"] == c]) for c in opts.classes]
        val = [np.mean([r["val_auroc"] for r in rows if r["class"] == c]) for c in opts.classes]
        print(f"\nmean over classes of the per-class mean: validation AUROC {np.mean(val):.4f}, "
              f"AUROC {np.mean(per_class):.4f}")
    if opts.jsonl:
        report(read_rows(opts.jsonl))
    bad = [r for r in rows if not (math.isfinite(r["auroc"]) and math.isfinite(r["val_auroc"]))]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
