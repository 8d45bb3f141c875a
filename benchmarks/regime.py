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

Each run records the **validation criterion**, which reads no test image: the AUROC of the `loss`
score on the run's validation set (`data.validation.validation_set`: its held-out training normals
against --val-others images of the other classes from the official *training* split for MNIST-like
data, synthetic defects for image folders), printed as soon as it is known; with --keep the scored
weights are kept.  The test split (all of it, or a fixed seeded subset of --test-limit images:
test AUROC of the `loss` score, mean SSIM of the normal test reconstructions) is scored only by
--test, from the kept weights, and only for a selection whose committed choice file (--choice,
`experiments.selection`) holds its pick:

    # commit benchmarks/choices/<name>.json (candidates with their regimes, classes, seeds; pick null)
    python benchmarks/regime.py --choice C --jsonl J --keep W --name LABEL <LABEL's options>   # each candidate
    python benchmarks/regime.py --choice C --jsonl J --pick          # writes the pick; commit C again
    python benchmarks/regime.py --choice C --jsonl J --keep W --test --name LABEL <options>    # test numbers

With --jsonl, one JSON line per run (and per test step) is appended, holding the regime's settings
(`regime`, and a label `candidate`); a run already there is not run again, so an interrupted
comparison resumes (`selection.Log`).  --report compares the candidates of the file: per class,
and as the mean over the classes every candidate has of the per-class mean over seeds, with the
line "the validation criterion picks: X"; test columns only with a committed pick, or with
--history for the comparisons of REGIME.md made before choice files (whose runs scored the test
split right after the criterion).
"""

from __future__ import annotations

import argparse
import hashlib
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
from pyramid_lib.experiments import selection
from pyramid_lib.files import atomic_torch_save, safe_torch_load


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


def run_config(cls: str, seed: int, opts) -> TrainConfig:
    return TrainConfig(dataset=opts.dataset, normal_class=cls, epochs=opts.epochs, seed=seed,
                       batch_size=opts.batch, lr=opts.lr, weight_decay=opts.weight_decay,
                       train_limit=opts.images, weights="random", data_root=opts.data_root,
                       download=False).validate()


def weights_path(opts, cls: str, seed: int) -> Path:
    """Where --keep holds a run's scored weights: one file per (dataset, class, seed, regime)."""
    tag = hashlib.sha1(json.dumps(regime_of(opts), sort_keys=True).encode()).hexdigest()[:10]
    return opts.keep / f"{opts.dataset}-{cls}-s{seed}-{tag}.pt"


def run_one(data, cls: str, seed: int, opts) -> dict:
    """Train one run and record its validation criterion (no test image is read); keep its weights."""
    cfg = run_config(cls, seed, opts)
    model, loss_fn, info = fit_one(data, cfg, opts)
    if opts.keep:
        opts.keep.mkdir(parents=True, exist_ok=True)
        atomic_torch_save(weights_path(opts, cls, seed), model.state_dict())
    t0 = time.perf_counter()
    vset = validation_set(cfg, data, others=opts.val_others)
    val = score_images(model, loss_fn, vset, progress=False)
    n_normal = int((val.label == 0).sum())
    out = {"dataset": opts.dataset, "class": cls, "seed": seed,
           "val_auroc": float(roc_auc_score(val["label"], val["loss"])), "val_normals": n_normal,
           "val_anomalies": len(val) - n_normal, "val_normal_loss": float(val.loc[val.label == 0, "loss"].mean()),
           "val_score_s": time.perf_counter() - t0, **info}
    print(f"# {opts.dataset} {cls} seed {seed}: validation AUROC {out['val_auroc']:.4f} ({n_normal} held-out normals, "
          f"{out['val_anomalies']} anomalies from the training split)", flush=True)
    return out


def test_one(data, cls: str, seed: int, opts) -> dict:
    """The test split's numbers of a kept run (called only once a committed choice file holds its pick)."""
    cfg = run_config(cls, seed, opts)
    model, loss_fn = build(cfg, torch.device("cpu"))
    model.load_state_dict(safe_torch_load(weights_path(opts, cls, seed)))
    t0 = time.perf_counter()
    test = score_images(model, loss_fn, scored_test(data, opts.test_limit), progress=False)
    y = test["label"].to_numpy()
    return {"dataset": opts.dataset, "class": cls, "seed": seed, "step": "test",
            "auroc": float(roc_auc_score(y, test["loss"])),
            "ssim_normal": float(1.0 - test.loc[test.label == 0, "ssim"].mean()),
            "score_s": time.perf_counter() - t0, "n_test": len(y)}


def read_rows(path: Path | None) -> list[dict]:
    """The runs of a --jsonl file that carry a regime, a test row's numbers merged into its run's
    (lines written before the validation criterion existed carry none and are left out, with a
    note); a line that does not parse (a run killed while writing) is skipped with a warning."""
    rows, tests, old = [], {}, 0
    for r in selection.read_rows(path):
        if "regime" not in r:
            old += 1
        elif r.get("step") == "test":
            tests[run_key(r)[:4]] = r
        elif "val_auroc" in r:
            rows.append(r)
        else:
            old += 1
    if old:
        print(f"# note: {old} line(s) of {path} have no regime or validation AUROC (written before the criterion "
              "existed); not compared", flush=True)
    return [{**r, **{k: tests[run_key(r)[:4]][k] for k in ("auroc", "ssim_normal", "n_test")}}
            if run_key(r)[:4] in tests else r for r in rows]


def run_key(r: dict) -> tuple:
    return r["dataset"], str(r["class"]), int(r["seed"]), json.dumps(r["regime"], sort_keys=True), \
        r.get("step", "criterion")


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


def report(rows: list[dict], tests: bool = False, criterion: dict | None = None) -> str | None:
    """Print the candidates of `rows` side by side; return the label the validation criterion picks:
    the highest mean, over the (dataset, class) cells every candidate has, of the per-class mean
    validation AUROC over its seeds (None when no cell has runs of every candidate).  The test
    columns only with `tests` (a committed pick, or the history of a selection made before choice
    files).  `criterion`, a dict, receives each candidate's mean: the values --pick records."""
    if not rows:
        return None
    groups = candidates(rows)
    cands = list(groups)
    cells = list(dict.fromkeys((r["dataset"], str(r["class"])) for r in rows))
    by = {(c, cell): [r for r in groups[c] if (r["dataset"], str(r["class"])) == cell] for c in cands for cell in cells}
    keys = ("val_auroc", "auroc") if tests else ("val_auroc",)
    print("\n## Candidates (validation AUROC first: it reads no test image)\n")
    print("| candidate | dataset | class | seeds | validation AUROC | " + ("test AUROC (loss) | SSIM normal | " if tests
          else "") + "train CPU s |\n" + "|---" * (8 if tests else 6) + "|")
    for c in cands:
        for cell in cells:
            rs = by[c, cell]
            if rs:
                test = (f"{mean_sd([r.get('auroc', math.nan) for r in rs])} | "
                        f"{mean_sd([r.get('ssim_normal', math.nan) for r in rs])} | ") if tests else ""
                print(f"| {c} | {cell[0]} | {cell[1]} | {' '.join(str(r['seed']) for r in rs)} | "
                      f"{mean_sd([r['val_auroc'] for r in rs])} | {test}{mean_sd([r['train_cpu_s'] for r in rs], 1)} |")
    common = [cell for cell in cells if all(by[c, cell] for c in cands)]
    if not common:
        print("\nno class has runs of every candidate: nothing to pick")
        return None

    def means(part, seeds=None):
        return {c: {k: float(np.mean([np.mean([r.get(k, math.nan) for r in by[c, cell] if seeds is None
                                               or r["seed"] in seeds]) for cell in part])) for k in keys}
                for c in cands}

    mean = means(common)
    names = ", ".join(f"{d} {k}" for d, k in common)
    print(f"\nmean over the {len(common)} class(es) every candidate has ({names}) of the per-class mean over seeds:\n")
    print("| candidate | validation AUROC |" + (" test AUROC (loss) |" if tests else "") + "\n|---|---|"
          + ("---|" if tests else ""))
    for c in cands:
        print(f"| {c} | {mean[c]['val_auroc']:.4f} |" + (f" {mean[c]['auroc']:.4f} |" if tests else ""))
    chosen = pick(mean)
    if criterion is not None:
        criterion.update({c: mean[c]["val_auroc"] for c in cands})
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
    if tests:
        print(f"(the test AUROC, which must not choose, would pick: {pick(mean, 'auroc')})")
    return chosen


def mean_sd(v, digits: int = 4) -> str:
    v = np.asarray(v, dtype=float)
    return f"{v.mean():.{digits}f} +- {v.std(ddof=1):.{digits}f}" if len(v) > 1 else f"{v.mean():.{digits}f}"


def parser() -> argparse.ArgumentParser:
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
    ap.add_argument("--history", action="store_true",
                    help="with --report: test columns of a comparison made before choice files (REGIME.md)")
    ap.add_argument("--choice", type=Path, default=None,
                    help="the committed choice file: the candidates, classes and seeds; its pick gates --test")
    ap.add_argument("--keep", type=Path, default=None, help="keep each run's scored weights here (for --test)")
    ap.add_argument("--pick", action="store_true", help="write the criterion's pick into --choice")
    ap.add_argument("--test", action="store_true", help="score the test split of the kept runs (committed pick)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-root", default="/work/shared/data")
    ap.add_argument("--jsonl", type=Path, default=None,
                    help="append one JSON line per run to this file; runs already there are not run again")
    return ap


def check_choice(choice: dict, opts) -> None:
    """This invocation runs a candidate of the choice file with the regime, classes and seeds committed
    for it (ChoiceError otherwise)."""
    label = label_of(opts)
    if label not in choice["candidates"]:
        raise selection.ChoiceError(f"{label!r} is not a candidate of {opts.choice} "
                                    f"({', '.join(choice['candidates'])})")
    want = choice.get("regimes", {}).get(label)
    if want is not None and want != json.loads(json.dumps(regime_of(opts))):
        raise selection.ChoiceError(f"{label!r}: the regime asked for differs from the one committed in {opts.choice}")
    selection.check_request(choice, seeds=opts.seeds)
    classes = choice.get("classes", {}).get(opts.dataset)
    if classes is None or list(map(str, opts.classes)) != list(map(str, classes)):
        raise selection.ChoiceError(f"{opts.dataset} classes {opts.classes} differ from {opts.choice}'s {classes}")


def main(argv=None) -> int:
    ap = parser()
    opts = ap.parse_args(argv)
    if opts.ema and opts.swa:
        ap.error("--ema and --swa are alternatives; pick one")
    if opts.report or opts.pick:
        if opts.jsonl is None:
            ap.error("--report and --pick read the runs of --jsonl; give it")
        rows = read_rows(opts.jsonl)
        tests = opts.history
        if opts.choice is not None:
            choice = selection.require_committed(opts.choice, pick=False)
            rows = [r for r in rows if r["candidate"] in choice["candidates"]]
            tests = choice["pick"] is not None
        if opts.pick:
            if opts.choice is None:
                ap.error("--pick writes into --choice; give it")
            mean: dict[str, float] = {}
            chosen = report(rows, criterion=mean)  # the values written are the ones the pick was made on
            if chosen is None:
                return 1
            selection.write_pick(opts.choice, chosen, {c: round(v, 6) for c, v in mean.items()})
            print(f"written to {opts.choice}: commit it before --test")
            return 0
        if tests and opts.history:
            print("history: a comparison made before choice files; its test AUROC was scored in the run that "
                  "recorded the criterion (REGIME.md)")
        report(rows, tests)
        return 0
    choice = None
    if opts.choice is not None:
        choice = selection.require_committed(opts.choice, pick=opts.test)
        check_choice(choice, opts)
    elif opts.test:
        ap.error("--test scores the test split only for a selection whose committed --choice holds its pick")
    if opts.test and opts.keep is None:
        ap.error("--test scores the weights kept under --keep; give it")
    regime, label = regime_of(opts), label_of(opts)
    log = selection.Log(opts.jsonl, run_key)
    torch.set_num_threads(opts.threads)
    argv = sys.argv[1:] if argv is None else list(argv)
    print(f"# regime.py {' '.join(argv)}", flush=True)
    print(f"# pyramid_lib from {Path(pyramid_lib.__file__).parent}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s)", flush=True)
    print(f"# regime: {label}" + (f"; choice file {opts.choice} at {choice['commit'][:7]}" if choice else ""),
          flush=True)
    step = "test" if opts.test else "criterion"
    rows = []
    for cls in opts.classes:
        data = None
        for seed in opts.seeds:
            key = (opts.dataset, str(cls), seed, json.dumps(regime, sort_keys=True), step)
            if log.has(key):
                r = log.find(key)
                print(f"# {opts.dataset} {cls} seed {seed}: already in {opts.jsonl}, not run again", flush=True)
            else:
                data = data or data_mod.load(opts.dataset, cls, root=opts.data_root, download=False)
                r = (test_one if opts.test else run_one)(data, cls, seed, opts)
                r = log.append({**r, "candidate": label, "regime": regime, "argv": argv,
                                **({"choice_commit": choice["commit"]} if choice else {})})
            rows.append(r)
    if opts.test:
        print("\n| dataset | class | seed | test AUROC (loss) | SSIM normal | n test |\n|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['dataset']} | {r['class']} | {r['seed']} | {r['auroc']:.4f} | {r['ssim_normal']:.4f} | "
                  f"{r['n_test']} |")
        return 0 if all(math.isfinite(r["auroc"]) for r in rows) else 1
    print("\n| dataset | class | seed | fit images | epochs | validation AUROC | train s | train CPU s | final loss |\n"
          "|---|---|---|---|---|---|---|---|---|", flush=True)
    for r in rows:
        print(f"| {r['dataset']} | {r['class']} | {r['seed']} | {r['fit_images']} | {opts.epochs} | "
              f"{r['val_auroc']:.4f} | {r['train_s']:.1f} | {r['train_cpu_s']:.1f} | {r['final_loss']:.5f} |")
    if opts.jsonl:
        report(read_rows(opts.jsonl))
    return 0 if all(math.isfinite(r["val_auroc"]) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
