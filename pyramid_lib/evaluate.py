"""Scoring and metrics: per-image scores, ROC/AUROC, TPR/TNR at two thresholds, CSV output.

Run folder outputs (next to the training files, each written atomically):
    scores.csv    one row per test image and held-out training normal: split, name, class,
                  label (1 = anomalous) and every score in `losses.SCORE_NAMES`
    metrics.csv   one row: AUROC of each score; TPR/TNR at the paper-style Youden threshold
                  (chosen on test labels) and at the held-out-normals threshold (no test labels)
"""

from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score
from tqdm.auto import tqdm

from . import data as data_mod
from . import threshold
from .errors import PyramidError
from .files import atomic_write_csv
from .losses import SCORE_NAMES, PyramidLoss, scores
from .train import Run, TrainConfig, fit_and_holdout, load_run, pick_device

PRIMARY_SCORE = "loss"  # the paper's: the per-image training loss, MSE + lambda * perceptual
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


def summarize(test: pd.DataFrame, held_out: pd.DataFrame | None = None, score: str = PRIMARY_SCORE,
              quantile: float = threshold.DEFAULT_QUANTILE) -> dict:
    """AUROC of each score; rates at both thresholds for `score`; SSIM of normal reconstructions."""
    y = test["label"].to_numpy()
    if len(np.unique(y)) < 2:
        raise PyramidError("the test split needs both normal and anomalous images to compute AUROC")
    for name, frame, cols in (("test", test, SCORE_NAMES), ("held-out", held_out, (score,))):
        if frame is not None and len(frame) and not np.isfinite(frame[list(cols)].to_numpy(dtype=float)).all():
            raise PyramidError(f"{name} scores hold NaN or infinite values; metrics would be meaningless. "
                               "The model is broken (diverged training?): retrain with a lower --lr")
    out = {f"auroc_{k}": float(roc_auc_score(y, test[k])) for k in SCORE_NAMES}
    out["auroc"] = out[f"auroc_{score}"]
    s = test[score].to_numpy()
    t = threshold.youden(y, s)
    r = threshold.rates(y, s, t)
    out.update(youden_threshold=t, youden_tpr=r["tpr"], youden_tnr=r["tnr"], youden_accuracy=r["accuracy"])
    if held_out is not None and len(held_out):
        t = threshold.from_normals(held_out[score], quantile)
        r = threshold.rates(y, s, t)
        out.update(heldout_threshold=t, heldout_tpr=r["tpr"], heldout_tnr=r["tnr"], heldout_accuracy=r["accuracy"])
    else:
        out.update(heldout_threshold=np.nan, heldout_tpr=np.nan, heldout_tnr=np.nan, heldout_accuracy=np.nan)
    out["ssim_normal"] = float(1.0 - test.loc[test.label == 0, "ssim"].mean())
    out.update(n_test=len(y), n_normal=int((y == 0).sum()), n_anomalous=int((y == 1).sum()))
    return out


def evaluate_run(out_dir, device=None, data: data_mod.OneClassData | None = None, progress: bool = True,
                 write: bool = True) -> pd.DataFrame:
    """Score a finished run's test split and held-out normals; write scores.csv and metrics.csv."""
    run = Run(out_dir)
    t0 = time.perf_counter()
    cfg, model, loss = load_run(run.dir, pick_device(device))
    data = data or data_mod.load(cfg.dataset, cfg.normal_class, cfg.data_root, cfg.download, cfg.input_size)
    _, held_out = fit_and_holdout(data, cfg)
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
            "profile": cfg.profile, "epochs": len(hist), "encoders": cfg.encoders, "lambda": cfg.lam,
            "pyramid": cfg.pyramid, "input_size": cfg.input_size, "seed": cfg.seed,
            "train_limit": c["train_limit"], "fit_images": state.get("fit_images"),
            "final_loss": hist[-1]["loss"] if hist else np.nan, "train_seconds": state.get("wall_time_s"),
            "device": state.get("device")}


def read_scores(out_dir) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(test scores, held-out normal scores) from a run's scores.csv."""
    df = pd.read_csv(Run(out_dir).dir / "scores.csv", dtype={"class": str})
    return df[df.split == "test"].reset_index(drop=True), df[df.split != "test"].reset_index(drop=True)
