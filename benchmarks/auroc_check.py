"""Same run, two code paths: does the library's fast default change the result?

    python benchmarks/auroc_check.py                 # mnist-sample digit 0, 10 epochs, seeds 0-4 (~8 min)
    python benchmarks/auroc_check.py --seeds 0 1 --epochs 10

For each seed, trains mnist-sample (the embedded MNIST subset; 360 fit images of the normal
digit, 1,000 test images) twice from the same seeded weights, on the same fit images in the
same batch order (engine.trainer.epoch_order), with the quick profile's batch 32 and lr 1e-3 and random
weights:

  reference  benchmarks/reference.py (plain convs, F(x) recomputed, foreach Adam, DataLoader
             over PIL images), scored with reference.score;
  library    pyramid_lib.engine.trainer.train + evaluate_run (the default path: fast.optimize,
             fused Adam, cached targets, uint8 batches).

Prints the AUROC of every score for both, their difference, the final training losses and the
wall time of each.  The two differ only by float rounding (summation order), which training
amplifies: a single 10-epoch run on 360 images moves by several hundredths of AUROC under a
rounding-only change (benchmarks/README.md), as much as between seeds, so the paths are compared
by the mean over seeds and the spread of the paired differences.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

import reference  # benchmarks/reference.py, beside this script
from pyramid_lib import data as data_mod
from pyramid_lib.config import TrainConfig, get_profile
from pyramid_lib.data.splits import fit_and_heldout
from pyramid_lib.engine.evaluate import evaluate_run
from pyramid_lib.engine.trainer import batches, epoch_order, train
from pyramid_lib.model.anomaly_map import SCORE_NAMES


class EpochOrder(torch.utils.data.Sampler):
    """The library's batches, epoch after epoch: batches(epoch_order(n, seed, epoch))."""

    def __init__(self, n, seed, batch):
        self.n, self.seed, self.batch, self.epoch = n, seed, batch, 0

    def __iter__(self):
        order = epoch_order(self.n, self.seed, self.epoch)
        self.epoch += 1
        for b in batches(order, self.batch):
            yield b.tolist()


def run(seed: int, epochs: int, normal: str, log) -> dict:
    quick = get_profile("quick")
    cfg = TrainConfig(dataset="mnist-sample", normal_class=normal, epochs=epochs, seed=seed,
                            batch_size=quick["batch_size"], lr=quick["lr"], weights="random")
    data = data_mod.load("mnist-sample", normal)
    fit, _ = fit_and_heldout(data, cfg)
    y = data.test.labels.numpy()

    t0 = time.perf_counter()
    model, loss, opt = reference.build(28, seed, cfg.lambda_, cfg.lr, cfg.weight_decay)
    dl = reference.loader(fit.images, batch_sampler=EpochOrder(len(fit), seed, cfg.batch_size))
    ref_losses = reference.train_epochs(model, loss, opt, dl, epochs)
    ref_scores = reference.score(model, loss, data.test.images)
    t_ref = time.perf_counter() - t0
    log(f"  seed {seed}: reference done in {t_ref:.0f} s")

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        r = train(cfg, Path(tmp) / "run", data=data, progress=False)
        frame = evaluate_run(r.dir, data=data, progress=False, write=False)
        t_lib = time.perf_counter() - t0
        lib_loss = r.read_state()["history"][-1]["loss"]
    log(f"  seed {seed}: library done in {t_lib:.0f} s")
    out = {"seed": seed, "ref_s": t_ref, "lib_s": t_lib, "ref_final_loss": ref_losses[-1], "lib_final_loss": lib_loss}
    for k in SCORE_NAMES:
        out[f"ref_{k}"] = float(roc_auc_score(y, ref_scores[k]))
        out[f"lib_{k}"] = float(frame[f"auroc_{k}"].iloc[0])
    log(f"  seed {seed}: AUROC (loss score) reference {out['ref_loss']:.4f}, library {out['lib_loss']:.4f}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--normal-class", default="0")
    ap.add_argument("--threads", type=int, default=None)
    opts = ap.parse_args(argv)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    rows = [run(s, opts.epochs, opts.normal_class, log) for s in opts.seeds]
    print(f"mnist-sample digit {opts.normal_class}, {opts.epochs} epochs, batch 32, lr 1e-3, random weights, "
          f"{torch.get_num_threads()} threads")
    print("| seed | score | AUROC reference | AUROC library | difference |")
    print("|---|---|---|---|---|")
    for r in rows:
        for k in SCORE_NAMES:
            a, b = r[f"ref_{k}"], r[f"lib_{k}"]
            print(f"| {r['seed']} | {k} | {a:.4f} | {b:.4f} | {b - a:+.4f} |")
    if len(rows) > 1:
        print(f"over {len(rows)} seeds (mean +- sd):")
        for k in SCORE_NAMES:
            a = np.array([r[f"ref_{k}"] for r in rows])
            b = np.array([r[f"lib_{k}"] for r in rows])
            d = b - a
            print(f"  {k}: reference {a.mean():.4f} +- {a.std(ddof=1):.4f}, library {b.mean():.4f} +- "
                  f"{b.std(ddof=1):.4f}, paired difference {d.mean():+.4f} +- {d.std(ddof=1):.4f} "
                  f"(standard error {d.std(ddof=1) / np.sqrt(len(d)):.4f})")
    for r in rows:
        print(f"seed {r['seed']}: final training loss reference {r['ref_final_loss']:.5f}, library "
              f"{r['lib_final_loss']:.5f}; wall time (train + score) reference {r['ref_s']:.0f} s, "
              f"library {r['lib_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
