"""A training regime for MVTec AD at 120x120, chosen by a rule committed before any test score.

    # 1. commit the choice file (rule, criterion, categories, candidates, seeds; "pick": null)
    python benchmarks/mvtec_regime.py --choice benchmarks/choices/mvtec-schedule.json \\
        --jsonl benchmarks/results-mvtec-schedule.jsonl --keep WEIGHTS_FOLDER      # 2. the criterion
    python benchmarks/mvtec_regime.py --choice ... --jsonl ... --pick               # 3. write the pick
    # 4. commit the choice file again (now with its pick)
    python benchmarks/mvtec_regime.py --choice ... --jsonl ... --keep ... --test    # 5. test numbers
    python benchmarks/mvtec_regime.py --report --choice ... --jsonl ...             # the tables
    python benchmarks/mvtec_regime.py --report --history --jsonl benchmarks/results-mvtec-regime.jsonl

Each candidate (CANDIDATES below: epochs, learning rate, batch, augmentation, weight averaging)
trains the library's network with random weights on the category's training normals less the
run's held-out 10% (`splits.fit_and_heldout_indices`), with the library's own pieces (build,
epoch_steps, learning_rate, perceptual_targets).  Step 2 records, reading no test image, the
criteria: the AUROC of the loss score separating the held-out normals from the same images with
synthetic defects pasted on them (`data.validation.with_synthetic_defects`: CutPaste-sized
patches, and small subtle ones, `SMALL_AREA`; 3 copies of each), and the held-out normals' mean
loss; the scored weights are kept under --keep.  The test split (image AUROC of the loss score,
mean SSIM of the good test images' reconstructions) is scored only in step 5, from the kept
weights, and only when the choice file's pick is committed (`experiments.selection`): a selection
without a committed pick gets no test number, computed or printed.

One JSON line per (category, candidate, seed) and step is appended to --jsonl; one already there
is not run again, so an interrupted selection resumes (`selection.Log`).

The first selection (2026-12-07, `results-mvtec-regime*.jsonl`) predates choice files and read
its test split in the same run as its criterion; `--report --history` prints its tables, labelled
so; benchmarks/README.md tells how that choice was made.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from pyramid_lib import data as data_mod
from pyramid_lib.config import TrainConfig
from pyramid_lib.data.splits import fit_and_heldout
from pyramid_lib.data.validation import SMALL_AREA, SMALL_BRIGHTNESS, validation_set, with_synthetic_defects
from pyramid_lib.engine.build import build, fast_path, training_optimizer
from pyramid_lib.engine.evaluate import score_images
from pyramid_lib.engine.trainer import epoch_steps, learning_rate, perceptual_targets, steps_per_epoch
from pyramid_lib.experiments import selection
from pyramid_lib.files import atomic_torch_save, safe_torch_load

BASE = {"epochs": 30, "lr": 3e-3, "batch_size": 32, "augment": "none", "ema": None}

# name -> changes to BASE.  "d8": each training image in one of the 8 flips/quarter-turns of the
# square (the dihedral group; right for categories seen from above, such as bottle, not for
# transistor or cable), drawn per image and step; "shift4": shifted by up to 4 pixels; "flips":
# the flips the category allows (FLIPS).
CANDIDATES: dict[str, dict] = {
    "base30": {},
    "b16-50": {"epochs": 50, "batch_size": 16},
    "d8-30": {"augment": "d8"},
    "b8-25": {"epochs": 25, "batch_size": 8},
    "b16-50-lr1e-3": {"epochs": 50, "batch_size": 16, "lr": 1e-3},
    "d8-b16-50": {"epochs": 50, "batch_size": 16, "augment": "d8"},
    "ema-b16-50": {"epochs": 50, "batch_size": 16, "ema": 0.99},
    "shift4-b16-50": {"epochs": 50, "batch_size": 16, "augment": "shift4"},
    "base100": {"epochs": 100},
    "b8-10": {"epochs": 10, "batch_size": 8},
    "b8-15": {"epochs": 15, "batch_size": 8},
    "b4-10": {"epochs": 10, "batch_size": 4},
    "ema-b4-10": {"epochs": 10, "batch_size": 4, "ema": 0.99},
    "flips-b16-50": {"epochs": 50, "batch_size": 16, "augment": "flips"},
}
# The flips and quarter-turns under which a category's good images stay good ones: a bottle seen
# from above is round; a pill carries an "FF" imprint that no flip or turn maps onto itself.
# A category missing here gets none ("flips" then trains exactly as without augmentation).
FLIPS = {"bottle": "d8", "pill": "none"}


class Augmented(data_mod.ImageSet):
    """An ImageSet whose batches are augmented, seeded by a generator that advances every batch."""

    def setup(self, kind: str, seed: int) -> Augmented:
        self.kind, self.gen = kind, torch.Generator().manual_seed(seed + 12345)
        return self

    def batch(self, idx, device="cpu") -> torch.Tensor:
        x = super().batch(idx, device)
        out = []
        for img in x:
            if self.kind == "d8":
                k, flip = torch.randint(4, (1,), generator=self.gen).item(), torch.rand(1, generator=self.gen) < 0.5
                img = torch.rot90(img, k, dims=(1, 2))
                img = img.flip(2) if flip else img
            elif self.kind == "shift4":
                dy, dx = torch.randint(-4, 5, (2,), generator=self.gen).tolist()
                img = torch.roll(img, (dy, dx), dims=(1, 2))
            out.append(img)
        return torch.stack(out).contiguous(memory_format=torch.channels_last)


def train_one(data: data_mod.OneClassData, cfg: TrainConfig, augment: str, ema: float | None):
    """(model to score, loss, held-out normals, info) of one run of the regime."""
    t0, c0 = time.perf_counter(), time.process_time()
    fit, held = fit_and_heldout(data, cfg)
    model, loss_fn = fast_path(cfg, *build(cfg, "cpu"))  # the trainer's: with cfg.fast, the conv rewrites
    opt = training_optimizer(cfg, model)  # and fused Adam
    if augment != "none":
        fit = Augmented(fit.images, fit.labels, fit.classes, fit.names).setup(augment, cfg.seed)
        targets = None  # F(x) of an augmented image differs from F(x) of the stored one
    else:
        targets = perceptual_targets(loss_fn, fit, "cpu")
    # the weights' exponential moving average, as regime.py scores it (buffers averaged too)
    averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(ema), use_buffers=True) if ema else None
    total_steps = cfg.epochs * steps_per_epoch(len(fit), cfg.batch_size)
    losses = []
    for epoch in range(cfg.epochs):
        s, n = 0.0, 0
        for idx, (_, terms) in epoch_steps(model, loss_fn, opt, fit, cfg.seed, epoch, cfg.batch_size, "cpu",
                                           targets, lambda i: learning_rate(cfg, i, total_steps)):
            if averaged is not None:
                averaged.update_parameters(model)
            s += float(terms["loss"].sum())
            n += len(idx)
        losses.append(s / max(n, 1))
    info = {"fit_images": len(fit), "heldout_images": len(held), "steps": total_steps, "final_loss": losses[-1],
            "train_min": (time.perf_counter() - t0) / 60, "train_cpu_min": (time.process_time() - c0) / 60}
    return (averaged.module if averaged is not None else model), loss_fn, held, info


def settings(name: str, category: str) -> dict:
    """The candidate's settings on `category` ("flips" resolved through FLIPS)."""
    s = {**BASE, **CANDIDATES[name]}
    if s["augment"] == "flips":
        s["augment"] = FLIPS.get(category, "none")
    return s


def config(name: str, category: str, seed: int, data_root) -> tuple[TrainConfig, str, float | None]:
    over = settings(name, category)
    augment, ema = over.pop("augment"), over.pop("ema")
    cfg = TrainConfig(dataset="mvtec", normal_class=category, seed=seed, weights="random",
                      lr_schedule="cosine", data_root=data_root, download=False, **over).validate()
    return cfg, augment, ema


def weights_path(keep: Path, category: str, name: str, seed: int) -> Path:
    return keep / f"{category}-{name}-s{seed}.pt"


def run(data, category: str, name: str, seed: int, opts) -> dict:
    """Train one candidate and record its criteria (no test image is read); keep its weights."""
    cfg, augment, ema = config(name, category, seed, opts.data_root)
    model, loss_fn, held, info = train_one(data, cfg, augment, ema)
    if opts.keep:
        opts.keep.mkdir(parents=True, exist_ok=True)
        atomic_torch_save(weights_path(opts.keep, category, name, seed), model.state_dict())
    val = score_images(model, loss_fn, validation_set(cfg, data), progress=False)  # CutPaste-sized patches
    row = {"step": "criterion", "category": category, "candidate": name, "seed": seed,
           **{k: getattr(cfg, k) for k in ("epochs", "lr", "batch_size")}, "augment": augment, "ema": ema,
           "criterion_auroc": float(roc_auc_score(val.label, val["loss"])),
           "heldout_loss": float(val.loc[val.label == 0, "loss"].mean()), **info}
    small = score_images(model, loss_fn, with_synthetic_defects(held, 3, seed, SMALL_AREA, SMALL_BRIGHTNESS),
                         progress=False)
    row["criterion_small_auroc"] = float(roc_auc_score(small.label, small["loss"]))
    return row


def test_row(data, category: str, name: str, seed: int, opts) -> dict:
    """The test split's numbers of a kept candidate (called only once the pick is committed)."""
    cfg, _, _ = config(name, category, seed, opts.data_root)
    model, loss_fn = build(cfg, "cpu")
    model.load_state_dict(safe_torch_load(weights_path(opts.keep, category, name, seed)))  # an EMA's too: its .module
    test = score_images(model, loss_fn, data.test, progress=False)
    return {"step": "test", "category": category, "candidate": name, "seed": seed,
            "test_auroc": float(roc_auc_score(test.label, test["loss"])),
            "ssim_normal": float(1.0 - test.loc[test.label == 0, "ssim"].mean()), "n_test": len(test)}


def key(r: dict) -> tuple:
    return r["category"], r["candidate"], int(r["seed"]), r.get("step", "criterion")


def mean_sd(v, digits=4) -> str:
    v = np.asarray(v, dtype=float)
    if not len(v):
        return ""
    return f"{v.mean():.{digits}f} +- {v.std(ddof=1):.{digits}f}" if len(v) > 1 else f"{v.mean():.{digits}f}"


def pick(rows: list[dict], choice: dict) -> tuple[str, dict]:
    """The choice file's rule: the highest mean over its categories of the per-category mean over its
    seeds of the criterion column (the first listed of a tie).  Returns (pick, {candidate: mean}).
    Raises ChoiceError while a (category, candidate, seed) of the file has no criterion row."""
    crit = {key(r)[:3]: r[choice["criterion"]] for r in rows if r.get("step", "criterion") == "criterion"}
    missing = [f"{c} {n} s{s}" for c in choice["categories"] for n in choice["candidates"] for s in choice["seeds"]
               if (c, n, s) not in crit]
    if missing:
        raise selection.ChoiceError(f"{len(missing)} run(s) of the choice file have no criterion yet "
                                    f"({', '.join(missing[:4])}...): finish them before the pick")
    means = {n: float(np.mean([np.mean([crit[c, n, s] for s in choice["seeds"]]) for c in choice["categories"]]))
             for n in choice["candidates"]}
    return max(choice["candidates"], key=lambda n: means[n]), {n: round(v, 6) for n, v in means.items()}


def first_rules(rows: list[dict], category: str) -> dict[str, str]:
    """What the first selection's two committed rules pick from `rows` (benchmarks/README.md): the
    highest mean small-defect criterion over seeds (5148e0d), and the same among the candidates run
    on the most seeds (cf1b166)."""
    rs = [r for r in rows if r["category"] == category and "criterion_small_auroc" in r]
    mean = {n: np.mean([r["criterion_small_auroc"] for r in rs if r["candidate"] == n])
            for n in dict.fromkeys(r["candidate"] for r in rs)}
    seeds = {n: len({r["seed"] for r in rs if r["candidate"] == n}) for n in mean}
    most = [n for n in mean if seeds[n] == max(seeds.values())]
    return {"5148e0d": max(mean, key=mean.get), "cf1b166": max(most, key=mean.get)}


def report(rows: list[dict], category: str, tests: bool, names=None, history: bool = False) -> None:
    """Per candidate, mean +- s.d. over seeds of every criterion column, and of the test columns when
    `tests` (only with a committed pick, or --history for the first selection)."""
    rows = [r for r in rows if r["category"] == category]
    crit = [r for r in rows if r.get("step", "criterion") == "criterion"]
    test = {key(r)[:3]: r for r in rows if r.get("step", "criterion") in ("test", "criterion") and "test_auroc" in r}
    names = [n for n in (names or CANDIDATES) if any(r["candidate"] == n for r in crit)]
    head = "| candidate | settings | seeds | criterion AUROC (synthetic defects) | small synthetic defects | " \
           "held-out loss | train min | train CPU min |" + (" test AUROC | SSIM good test |" if tests else "")
    print(f"\n{category}: mean +- s.d. over seeds ("
          + ("criteria and test columns recorded in the same runs)" if history else "criteria, read before any test "
             "image" + ("; test columns read after the pick)" if tests else "; no test number: no committed pick)"))
          + "\n\n" + head + "\n" + "|---" * head.count(" |") + "|")
    for n in names:
        rs = [r for r in crit if r["candidate"] == n]
        s = settings(n, category)
        desc = (f"{s['epochs']} ep, lr {s['lr']:g}, batch {s['batch_size']}"
                + (f", {s['augment']}" if s["augment"] != "none" else "") + (f", EMA {s['ema']}" if s["ema"] else ""))
        line = (f"| {n} | {desc} | {' '.join(str(r['seed']) for r in rs)} | "
                f"{mean_sd([r['criterion_auroc'] for r in rs])} | "
                f"{mean_sd([r['criterion_small_auroc'] for r in rs if 'criterion_small_auroc' in r]) or 'not run'} | "
                f"{mean_sd([r['heldout_loss'] for r in rs], 5)} | {mean_sd([r['train_min'] for r in rs], 1)} | "
                f"{mean_sd([r['train_cpu_min'] for r in rs], 1)} |")
        if tests:
            ts = [test[key(r)[:3]] for r in rs if key(r)[:3] in test]
            line += f" {mean_sd([t['test_auroc'] for t in ts])} | {mean_sd([t['ssim_normal'] for t in ts])} |"
        print(line)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--choice", type=Path, default=None, help="the committed choice file (benchmarks/choices/)")
    ap.add_argument("--category", nargs="+", default=None, help="default: the choice file's categories")
    ap.add_argument("--candidates", nargs="+", default=None, choices=list(CANDIDATES))
    ap.add_argument("--seeds", type=int, nargs="+", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-root", default="/work/shared/data")
    ap.add_argument("--jsonl", type=Path, required=True, help="one line per run and step; those there are skipped")
    ap.add_argument("--keep", type=Path, default=None, help="the scored weights (<category>-<candidate>-s<seed>.pt)")
    ap.add_argument("--pick", action="store_true", help="write the rule's pick into the choice file")
    ap.add_argument("--test", action="store_true", help="score the test split (the pick must be committed)")
    ap.add_argument("--report", action="store_true", help="only print the tables of --jsonl")
    ap.add_argument("--history", action="store_true",
                    help="with --report and no --choice: the first selection's tables, test columns included")
    ap.add_argument("--epochs", type=int, default=None, help="override every candidate's epochs (smoke tests)")
    opts = ap.parse_args(argv)
    if opts.epochs:
        for c in CANDIDATES.values():
            c["epochs"] = opts.epochs
    torch.set_num_threads(opts.threads)
    log = selection.Log(opts.jsonl, key)
    if opts.report and opts.choice is None:
        if not opts.history:
            ap.error("--report needs --choice (or --history for the first selection, made before choice files)")
        print("history: a selection made before choice files existed; its test columns were recorded in the same "
              "run as its criteria (benchmarks/README.md tells how the choice was made)")
        for category in dict.fromkeys(r["category"] for r in log.rows):
            report(log.rows, category, tests=True, history=True)
            picks = first_rules(log.rows, category)
            print(f"\nthe rule as committed at 5148e0d (highest mean over seeds of the small-defect criterion) picks: "
                  f"{picks['5148e0d']}; as committed at cf1b166 (the same, among the candidates run on the most "
                  f"seeds) picks: {picks['cf1b166']}")
        return 0
    if opts.choice is None:
        ap.error("a selection runs from a committed choice file: give --choice")
    choice = selection.require_committed(opts.choice, pick=opts.test)
    selection.check_request(choice, categories=opts.category, candidates=opts.candidates, seeds=opts.seeds)
    if "categories" not in choice or not set(choice["candidates"]) <= set(CANDIDATES):
        raise selection.ChoiceError(f"{opts.choice}: needs 'categories', and candidates among {', '.join(CANDIDATES)}")
    cats, names, seeds = choice["categories"], choice["candidates"], [int(s) for s in choice["seeds"]]
    if opts.report:
        tests = selection.committed_at(opts.choice) is not None and choice["pick"] is not None
        for category in cats:
            report(log.rows, category, tests, names)
        print(f"\npick ({choice['criterion']}, committed in {choice['commit'][:7]}): {choice['pick']}")
        return 0
    if opts.pick:
        best, means = pick(log.rows, choice)
        selection.write_pick(opts.choice, best, means)
        print(f"the rule picks {best} ({', '.join(f'{n} {v:.4f}' for n, v in means.items())}); written to "
              f"{opts.choice}: commit it before --test")
        return 0
    if opts.keep is None:
        ap.error("--keep FOLDER: the scored weights are kept there for the test step")
    print(f"# {' '.join(sys.argv)}\n# torch {torch.__version__}, {torch.get_num_threads()} thread(s); "
          f"choice file {opts.choice} at {choice['commit'][:7]}", flush=True)
    for category in cats:
        data = data_mod.load("mvtec", category, root=opts.data_root, download=False)
        print("#", data.describe(), flush=True)
        for seed in seeds:  # every candidate once before any gets a second seed
            for name in names:
                step = "test" if opts.test else "criterion"
                if log.has((category, name, seed, step)):
                    continue
                # a candidate that trains exactly as one before it on this category ("flips" where none is
                # allowed) shares that one's runs rather than repeating them
                twin = next((m for m in names[:names.index(name)] if settings(m, category) == settings(name, category)
                             and log.has((category, m, seed, step))), None)
                if twin:
                    new = {**log.find((category, twin, seed, step)), "candidate": name, "same_as": twin}
                else:
                    new = (test_row if opts.test else run)(data, category, name, seed, opts)
                r = log.append({**new, "choice_commit": choice["commit"],
                                "argv": sys.argv[1:] if argv is None else list(argv)})
                print(json.dumps(r), flush=True)
    for category in cats:
        report(log.rows, category, opts.test, names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
