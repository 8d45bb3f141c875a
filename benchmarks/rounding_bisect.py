"""How much does a rounding-only change move one short run's AUROC?

    python benchmarks/rounding_bisect.py none nocl nomatrix notaps plainadam default [--seed 0]

Trains mnist-sample digit 0 (quick profile: 10 epochs, batch 32, lr 1e-3, random weights) with
the library's own training loop and data order, once per variant, where a variant switches
pieces of pyramid_lib.model.fast off (monkeypatched for this process only):

  default    everything (the library)
  none       no rewrites, no channels-last weights, plain Adam (inputs stay channels-last)
  nocl       rewrites, NCHW weights
  nomatrix   no MatrixConv2d
  notaps     channels-last only, plain convs
  plainadam  everything but fused Adam

Every variant computes the same function (tests/model/test_fast.py, float64); they differ only in the
order of float sums.  Prints the AUROC of the loss score and the final training loss of each.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from pyramid_lib import data as data_mod
from pyramid_lib.config import TrainConfig, get_profile
from pyramid_lib.engine.evaluate import evaluate_run
from pyramid_lib.engine.trainer import train
from pyramid_lib.model import fast

ORIG = (fast.optimize, fast.optimize_loss, fast.adam)
VARIANTS = ("default", "none", "nocl", "nomatrix", "notaps", "plainadam")


def plain_adam(params, lr, weight_decay=0.0, **kw):
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def patch(variant: str) -> None:
    optimize, optimize_loss, adam = ORIG
    fast.optimize, fast.optimize_loss, fast.adam = optimize, optimize_loss, adam
    if variant == "none":
        fast.optimize, fast.optimize_loss, fast.adam = (lambda m, **k: m), (lambda loss: loss), plain_adam
    elif variant == "nocl":
        fast.optimize = lambda m, **k: optimize(m, **{**k, "channels_last": False})
        fast.optimize_loss = lambda loss: loss
    elif variant == "nomatrix":
        fast.optimize = lambda m, **k: optimize(m, **{**k, "matrix": False})
    elif variant == "notaps":
        fast.optimize = lambda m, **k: m.to(memory_format=torch.channels_last)
    elif variant == "plainadam":
        fast.adam = plain_adam


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("variants", nargs="*", help=f"any of {', '.join(VARIANTS)} (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    opts = ap.parse_args(argv)
    bad = [v for v in opts.variants if v not in VARIANTS]
    if bad:
        ap.error(f"unknown variant {bad[0]!r}; choose from {', '.join(VARIANTS)}")
    q = get_profile("quick")
    cfg = TrainConfig(dataset="mnist-sample", normal_class="0", epochs=q["epochs"], seed=opts.seed,
                            batch_size=q["batch_size"], lr=q["lr"], weights="random")
    data = data_mod.load("mnist-sample", "0")
    print("| variant | AUROC (loss) | final training loss |\n|---|---|---|")
    for v in opts.variants or VARIANTS:
        patch(v)
        with tempfile.TemporaryDirectory() as tmp:
            r = train(cfg, Path(tmp) / "run", data=data, progress=False)
            frame = evaluate_run(r.dir, data=data, progress=False, write=False)
            print(f"| {v} | {float(frame['auroc_loss'].iloc[0]):.4f} | {r.read_state()['history'][-1]['loss']:.5f} |",
                  flush=True)
    patch("default")
    return 0


if __name__ == "__main__":
    sys.exit(main())
