"""How stable is a profile's AUROC: over seeds, and over rounding-only changes of one run?

    python benchmarks/stability.py --profile laptop --dataset mnist --classes 0 1 --seeds 0 1 2
    python benchmarks/stability.py --profile laptop --dataset mnist-sample --classes 0 --epochs 20 \\
        --train-limit none --seeds 0 1 2 3 4 --variants default none nocl nomatrix notaps plainadam
    python benchmarks/stability.py ... --lr 1e-3 --schedule constant --epochs 10   # the regime before
    python benchmarks/stability.py --profile quick --dataset mnist-sample --classes 0 --seeds 0 1 2 \
        --precisions fp32 bf16   # does bf16 move the AUROC by more than the seed spread?

Each run is the library's own `experiments.jobs.run_one` (train, then evaluate with figures off)
of `TrainConfig.from_profile(--profile, ...)` with random weights, so the numbers are those of
the profile as the notebooks, the demo and the sweeps run it.  Seeds vary the weights, the split
and the batch order.  A rounding variant (`rounding_bisect.py`: switching exact speed-ups of
model/fast.py off) computes the same function in another float order, seed 0; the spread over
variants is what rounding alone moves.  Runs are kept under --work (default
build/stability/<profile>), so an interrupted call resumes; `--jsonl` appends one line per run.

Prints one line per run (AUROC of the loss score, mean SSIM of the normal test reconstructions,
training and scoring seconds), then per class: mean +- s.d. (ddof 1), min and max over seeds,
and the range (max - min) over variants.  The machine's cores may be shared: wall seconds are
only indicative; use --threads 1 and compare with a reference run in the same process.

With `--precisions fp32 bf16` every seed runs in each arithmetic (TrainConfig `precision`); per
class it prints bf16 minus fp32, paired seed by seed, with its 95% t-interval over the seeds, beside
the s.d. over seeds of fp32 alone: bf16 is safe for the sweeps where that interval holds zero and
its mean is within the seed spread.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from pyramid_lib import data as data_mod
from pyramid_lib.config import TrainConfig
from pyramid_lib.experiments.jobs import run_one
from pyramid_lib.model import fast
from rounding_bisect import ORIG, VARIANTS, patch


def run(data, cls: str, seed: int, variant: str, opts, precision: str = "fp32") -> dict:
    over = {k: v for k, v in (("epochs", opts.epochs), ("lr", opts.lr), ("lr_schedule", opts.schedule),
                              ("batch_size", opts.batch)) if v is not None}
    if precision != "fp32":
        over["precision"] = precision
    if opts.train_limit is not None:
        over["train_limit"] = None if opts.train_limit == "none" else int(opts.train_limit)
    if opts.test_limit is not None:
        over["test_limit"] = None if opts.test_limit == "none" else int(opts.test_limit)
    cfg = TrainConfig.from_profile(opts.profile, dataset=opts.dataset, normal_class=cls, seed=seed,
                                   weights="random", data_root=opts.data_root, **over).validate()
    tag = "-".join(f"{k}{v}" for k, v in sorted(over.items()))
    folder = Path(opts.work) / f"{opts.dataset}-{cls}-s{seed}-{variant}{'-' + tag if tag else ''}"
    patch(variant)
    try:
        t0 = time.perf_counter()
        m = run_one(folder.name, cfg, folder, device="cpu", progress=False, data=data).iloc[0]
    finally:
        fast.optimize, fast.optimize_loss, fast.adam = ORIG
    return {"dataset": opts.dataset, "class": cls, "seed": seed, "variant": variant, "profile": opts.profile,
            "precision": precision,
            **over, "auroc": float(m.auroc), "ssim_normal": float(m.ssim_normal),
            "train_s": float(m.train_seconds), "score_s": float(m.score_seconds),
            "wall_s": round(time.perf_counter() - t0, 1), "fit_images": int(m.fit_images), "run": str(folder)}


def spread(rows: list[dict], what: str) -> str:
    v = np.array([r[what] for r in rows])
    sd = v.std(ddof=1) if len(v) > 1 else float("nan")
    return f"{v.mean():.4f} +- {sd:.4f} (min {v.min():.4f}, max {v.max():.4f}, n={len(v)})"


def bf16_line(cls: str, rows: list[dict], seeds) -> str:
    """bf16 minus fp32 AUROC, paired by seed, with its 95% t-interval, beside fp32's seed s.d."""
    from scipy import stats

    by = {(r["seed"], r["precision"]): r["auroc"] for r in rows if r["variant"] == "default"}
    d = np.array([by[(s, "bf16")] - by[(s, "fp32")] for s in seeds if (s, "bf16") in by and (s, "fp32") in by])
    fp32 = np.array([by[(s, "fp32")] for s in seeds if (s, "fp32") in by])
    if len(d) < 2:
        return f"class {cls}: bf16 - fp32 on {len(d)} seed(s): no interval"
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    lo, hi = d.mean() - half, d.mean() + half
    moved = not (lo <= 0 <= hi) or abs(d.mean()) > fp32.std(ddof=1)
    return (f"class {cls}: AUROC bf16 - fp32 {d.mean():+.4f}, 95% interval over {len(d)} paired seeds "
            f"[{lo:+.4f}, {hi:+.4f}]; fp32 seed s.d. {fp32.std(ddof=1):.4f}: "
            + ("bf16 MOVES the AUROC beyond the seed spread" if moved else "within the seed spread"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="laptop")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--classes", nargs="+", default=["0"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--variants", nargs="*", default=[], help=f"rounding variants, seed 0: {', '.join(VARIANTS)}")
    ap.add_argument("--precisions", nargs="+", default=["fp32"], choices=("fp32", "bf16"),
                    help="run every seed in each of these arithmetics (fp32 bf16: the bf16 - fp32 table)")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--schedule", choices=("constant", "cosine"))
    ap.add_argument("--batch", type=int)
    ap.add_argument("--train-limit", help="an integer, or none for all training normals")
    ap.add_argument("--test-limit", help="an integer, or none for the whole test split")
    ap.add_argument("--data-root")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", help="run folders (default build/stability/<profile>)")
    ap.add_argument("--jsonl", help="append one JSON line per run here")
    opts = ap.parse_args(argv)
    bad = [v for v in opts.variants if v not in VARIANTS]
    if bad:
        ap.error(f"unknown variant {bad[0]!r}; choose from {', '.join(VARIANTS)}")
    torch.set_num_threads(opts.threads)
    opts.work = opts.work or f"build/stability/{opts.profile}"
    print(f"profile {opts.profile}, {opts.dataset}, threads {opts.threads}, torch {torch.__version__}")
    print("| class | seed | variant | precision | AUROC | SSIM normal | train s | score s |\n" + "|---" * 8 + "|")
    by_class = {}
    for cls in opts.classes:
        data = data_mod.load(opts.dataset, cls, opts.data_root)
        jobs = [(s, "default", p) for s in opts.seeds for p in opts.precisions]
        jobs += [(0, v, "fp32") for v in opts.variants if v != "default"]
        if opts.variants and 0 not in opts.seeds:
            jobs.append((0, "default", "fp32"))
        for seed, variant, precision in jobs:
            r = run(data, cls, seed, variant, opts, precision)
            by_class.setdefault(cls, []).append(r)
            print(f"| {cls} | {seed} | {variant} | {precision} | {r['auroc']:.4f} | {r['ssim_normal']:.4f} | "
                  f"{r['train_s']:.1f} | {r['score_s']:.1f} |", flush=True)
            if opts.jsonl:
                with open(opts.jsonl, "a") as f:
                    f.write(json.dumps(r) + "\n")
    print()
    for cls, rows in by_class.items():
        seeds = [r for r in rows if r["variant"] == "default" and r["seed"] in opts.seeds
                 and r["precision"] == "fp32"]
        print(f"class {cls}, seeds {opts.seeds}: AUROC {spread(seeds, 'auroc')}; SSIM normal "
              f"{spread(seeds, 'ssim_normal')}; train s {np.mean([r['train_s'] for r in seeds]):.1f}")
        if "bf16" in opts.precisions and "fp32" in opts.precisions:
            print(bf16_line(cls, rows, opts.seeds))
        variants = [r for r in rows if r["seed"] == 0 and r["precision"] == "fp32"]
        if opts.variants:
            a = [r["auroc"] for r in variants]
            print(f"class {cls}, seed 0, variants {[r['variant'] for r in variants]}: AUROC "
                  f"{' '.join(f'{x:.4f}' for x in a)}; range {max(a) - min(a):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
