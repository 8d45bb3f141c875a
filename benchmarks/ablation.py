"""Which speed-up bought what: the library's changes switched on one at a time (28x28, batch 120).

    python benchmarks/ablation.py              # a minute or two on 2 CPU cores
    python benchmarks/ablation.py --rounds 5

Training, cumulative (each row adds one change to the row above; the last row is the library's
default step, `engine.trainer.train`'s inner loop):

  plain               PyramidalAutoencoder as built (NCHW), F(x) recomputed every step, foreach Adam
  + cached F(x)       perceptual targets computed once per dataset (`engine.trainer.perceptual_targets`)
  + tap convs         `fast.TapConv2d`: convs on 1x1 / 2x2 maps computed with the taps that meet input
  + matrix convs      `fast.MatrixConv2d`: 3x3 convs on 2x2 maps as one matrix product
  + channels-last     network, VGG11 layers and input batches stored NHWC
  + fused Adam        `fast.adam` (library default)

Scoring, cumulative (all under inference_mode; the last row is `score_images`):

  plain, batch 120    the plain network and loss, NCHW
  + fast convs        `fast.optimize` without channels-last
  + channels-last     network, VGG11 layers and inputs NHWC
  + batch SCORE_BATCH `SCORE_BATCH` images per batch

Every variant starts from the same seeded weights; timed rounds cycle through the variants in a
rotating order so that load from other processes hits all alike; the table gives medians and the
speed-up against the first row.  No timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from pyramid_lib.engine.evaluate import SCORE_BATCH
from pyramid_lib.engine.trainer import step
from pyramid_lib.model import fast
from pyramid_lib.model.anomaly_map import scores
from pyramid_lib.model.loss import PyramidLoss
from pyramid_lib.model.network import PyramidalAutoencoder

SIZE, BATCH = 28, 120


def make(matrix=None, channels_last=False, fused=False, cached=False, seed=0):
    """(model, loss, optimiser, input layout, cached) for one variant; matrix=None: no rewrites."""
    torch.manual_seed(seed)
    model = PyramidalAutoencoder(SIZE, 4, "paper")
    loss = PyramidLoss(1.0)
    if matrix is not None:
        fast.optimize(model, matrix=matrix, channels_last=channels_last)
    if channels_last:
        fast.optimize_loss(loss)
    opt = (fast.adam if fused else torch.optim.Adam)(model.parameters(), lr=1e-4, weight_decay=1e-4)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return model, loss, opt, fmt, cached


TRAIN = {
    "plain": dict(),
    "+ cached F(x)": dict(cached=True),
    "+ tap convs": dict(cached=True, matrix=False),
    "+ matrix convs": dict(cached=True, matrix=True),
    "+ channels-last": dict(cached=True, matrix=True, channels_last=True),
    "+ fused Adam (library)": dict(cached=True, matrix=True, channels_last=True, fused=True),
}
SCORE = {
    "plain, batch 120": (dict(), 120),
    "+ fast convs": (dict(matrix=True), 120),
    "+ channels-last": (dict(matrix=True, channels_last=True), 120),
    f"+ batch {SCORE_BATCH} (library)": (dict(matrix=True, channels_last=True), SCORE_BATCH),
}


def train_step(v, x, f):
    model, loss, opt, fmt, cached = v
    model.train()
    x = x.contiguous(memory_format=fmt)
    step(model, loss, opt, x, f.contiguous(memory_format=fmt) if cached else None)


@torch.inference_mode()
def score_all(v, X, batch):
    model, loss, _, fmt, _ = v
    model.eval()
    for i in range(0, len(X), batch):
        x = X[i:i + batch].contiguous(memory_format=fmt)
        scores(loss, model(x), x)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def rotate(names, r):
    k = r % len(names)
    return names[k:] + names[:k]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=2, help="training steps per variant per round")
    ap.add_argument("--score-images", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    opts = ap.parse_args(argv)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    torch.manual_seed(1)
    X = torch.rand(BATCH * opts.steps, 3, SIZE, SIZE)
    Xs = torch.rand(opts.score_images, 3, SIZE, SIZE)

    rows = []
    variants = {k: make(**kw) for k, kw in TRAIN.items()}
    feats = {k: v[1].features(X.contiguous(memory_format=v[3])).detach() for k, v in variants.items()}
    names = list(variants)
    for k in names:  # warm-up, untimed
        train_step(variants[k], X[:BATCH], feats[k][:BATCH])
    spent = {k: [] for k in names}
    for r in range(opts.rounds):
        for k in rotate(names, r):
            v, f = variants[k], feats[k]
            spent[k].append(timed(lambda v=v, f=f: [train_step(v, X[i:i + BATCH], f[i:i + BATCH])
                                           for i in range(0, len(X), BATCH)]) / len(X))
        print(f"  train round {r + 1}/{opts.rounds}", file=sys.stderr)
    base = statistics.median(spent[names[0]])
    for k in names:
        t = statistics.median(spent[k])
        rows.append(("train", k, 1 / t, base / t))

    variants = {k: make(**kw) for k, (kw, _) in SCORE.items()}
    names = list(variants)
    for k in names:
        score_all(variants[k], Xs[:SCORE[k][1]], SCORE[k][1])
    spent = {k: [] for k in names}
    for r in range(opts.rounds):
        for k in rotate(names, r):
            spent[k].append(timed(lambda k=k: score_all(variants[k], Xs, SCORE[k][1])) / len(Xs))
        print(f"  score round {r + 1}/{opts.rounds}", file=sys.stderr)
    base = statistics.median(spent[names[0]])
    for k in names:
        t = statistics.median(spent[k])
        rows.append(("score", k, 1 / t, base / t))

    print(f"28x28, batch {BATCH} (training), {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
          f"median of {opts.rounds} rounds")
    print("| what | variant | img/s | x first row |")
    print("|---|---|---|---|")
    for what, k, rate, speedup in rows:
        print(f"| {what} | {k} | {rate:.1f} | {speedup:.2f} |")


if __name__ == "__main__":
    main()
