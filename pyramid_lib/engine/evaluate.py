"""Scoring and metrics: per-image scores, ROC/AUROC, TPR/TNR at two thresholds, CSV output.

Run folder outputs (next to the training files, each written atomically):
    scores.csv    one row per test image and held-out training normal: split, name, class,
                  label (1 = anomalous) and every score in `losses.SCORE_NAMES`
    metrics.csv   one row: AUROC of each score; TPR/TNR at the paper-style Youden threshold
                  (chosen on test labels) and at the held-out-normals threshold (no test labels)"""

from __future__ import annotations

import time
from dataclasses import asdict

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .. import data as data_mod
from ..config import TrainConfig
from ..errors import PyramidError
from ..files import atomic_save_figure, atomic_write_csv
from ..metrics import summarize
from ..model.anomaly_map import SCORE_NAMES, error_maps, scores
from ..model.loss import PyramidLoss
from ..plots import pick_examples, reconstructions_figure, roc_figure, weights_note
from .build import pick_device
from .run_dir import Run, load_run
from .trainer import fit_and_heldout

SCORE_BATCH = 250  # fastest of 120/250/500 when scoring 28x28 on 2 CPU cores (benchmarks/README.md)


@torch.inference_mode()
def score_images(model, loss: PyramidLoss, images: data_mod.ImageSet, device=None, batch_size: int = SCORE_BATCH,
                 progress: bool = True, desc: str = "scoring") -> pd.DataFrame:
    """Every score of every image, with its label, class and name, as a DataFrame."""
    device = next(model.parameters()).device if device is None else torch.device(device)
    model.eval()
    cols: dict[str, list] = {k: [] for k in SCORE_NAMES}
    starts = range(0, len(images), batch_size)
    for i in tqdm(starts, desc=desc, disable=not progress or len(images) <= batch_size, leave=False):
        idx = torch.arange(i, min(i + batch_size, len(images)))
        x = images.batch(idx, device)
        s = scores(loss, model(x), x)
        for k in SCORE_NAMES:
            cols[k].append(s[k].float().cpu())
    out = pd.DataFrame({k: torch.cat(v).numpy() if v else np.zeros(0) for k, v in cols.items()})
    out.insert(0, "label", images.labels.numpy())
    out.insert(0, "class", images.classes)
    out.insert(0, "name", images.names)
    bad = ~np.isfinite(out[list(SCORE_NAMES)].to_numpy()).all(axis=1)
    if bad.any():
        raise PyramidError(f"{int(bad.sum())} image(s) got a NaN or infinite score (first: {out.name[bad].iloc[0]}); "
                           "the model is broken (diverged training?): retrain with a lower --lr")
    return out


@torch.inference_mode()
def reconstruct(model, images: data_mod.ImageSet, idx, device=None):
    """(inputs, reconstructions) of images `idx`, float B x 3 x S x S on the CPU."""
    device = next(model.parameters()).device if device is None else torch.device(device)
    model.eval()
    x = images.batch(torch.as_tensor(idx), device)
    return x.cpu(), model(x).cpu()


def evaluate_run(out_dir, device=None, data: data_mod.OneClassData | None = None, progress: bool = True,
                 write: bool = True) -> pd.DataFrame:
    """Score a finished run's test split and held-out normals; write scores.csv and metrics.csv."""
    run = Run(out_dir)
    t0 = time.perf_counter()
    cfg, model, loss = load_run(run.dir, pick_device(device))
    data = data or data_mod.load(cfg.dataset, cfg.normal_class, cfg.data_root, cfg.download, cfg.input_size)
    _, held_out = fit_and_heldout(data, cfg)
    test = score_images(model, loss, data.test, progress=progress, desc="scoring test split")
    val = score_images(model, loss, held_out, progress=progress, desc="scoring held-out normals")
    metrics = summarize(test, val)
    state = run.read_state()
    row = {**run_columns(cfg, state), **metrics, "score_seconds": round(time.perf_counter() - t0, 2)}
    frame = pd.DataFrame([row])
    if write:
        both = pd.concat([test.assign(split="test"), val.assign(split="held-out normal")], ignore_index=True)
        atomic_write_csv(run.dir / "scores.csv", both)
        atomic_write_csv(run.dir / "metrics.csv", frame)
    return frame


def run_columns(cfg: TrainConfig, state: dict) -> dict:
    """The settings that identify a result row (and say whether ImageNet weights were used)."""
    c = asdict(cfg)
    hist = state.get("history", [])
    return {"dataset": cfg.dataset, "normal_class": cfg.normal_class, "weights": cfg.weights,
            "profile": cfg.profile, "epochs": len(hist), "encoders": cfg.encoders, "lambda": cfg.lambda_,
            "pyramid": cfg.pyramid, "input_size": cfg.input_size, "seed": cfg.seed,
            "train_limit": c["train_limit"], "fit_images": state.get("fit_images"),
            "final_loss": hist[-1]["loss"] if hist else np.nan, "train_seconds": state.get("wall_time_s"),
            "device": state.get("device")}


def run_figures(out_dir, model, loss, data, test_scores, weights: str, score: str = "loss") -> dict:
    """Write roc.png and reconstructions.png for a scored run; return their paths."""
    from pathlib import Path


    out_dir = Path(out_dir)
    note = weights_note(weights)
    fig = roc_figure({f"{data.dataset} normal={data.normal_class}": (test_scores.label, test_scores[score])},
                     title=f"ROC, score = {score}{note}")
    atomic_save_figure(out_dir / "roc.png", fig, dpi=120)
    plt.close(fig)
    idx = pick_examples(test_scores, 8, score)
    device = next(model.parameters()).device
    with torch.inference_mode():
        model.eval()
        x = data.test.batch(torch.tensor(idx), device)
        x_hat = model(x)
        maps = error_maps(loss, x_hat, x)[score].cpu()
    masks = None if data.test.masks is None else data.test.masks[torch.tensor(idx)]
    titles = [f"{'anomaly' if test_scores.label[i] else 'normal'} {test_scores['class'][i]}\n{test_scores[score][i]:.3g}"
              for i in idx]
    fig = reconstructions_figure(x.cpu(), x_hat.cpu(), maps, titles, masks, title=f"reconstructions{note}")
    atomic_save_figure(out_dir / "reconstructions.png", fig, dpi=110)
    plt.close(fig)
    return {"roc": out_dir / "roc.png", "reconstructions": out_dir / "reconstructions.png"}
