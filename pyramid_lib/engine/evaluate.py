"""Evaluation of a trained run: per-image scores of the test split and the held-out normals, the
metrics (AUROC; TPR/TNR at two thresholds; metrics.py) and, on request, its figures.

Run folder outputs (next to the training files, each written atomically):
    scores.csv    one row per test image and held-out training normal: split, name, class,
                  label (1 = anomalous) and every score in `model.anomaly_map.SCORE_NAMES`
    metrics.csv   one row: the run's settings (`run_columns`), then `metrics.summarize`'s columns,
                  then pixel_auroc and aupro (`metrics.pixel_metrics`, on the anomaly maps of the
                  primary score `loss`; NaN when the test split has no masks)
    roc.png, reconstructions.png    with `evaluate_run(..., figures=True)`"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from .. import data as data_mod
from .. import threshold
from ..config import TrainConfig
from ..data import splits
from ..errors import DataWarning, PyramidError
from ..files import atomic_save_figure, atomic_write_csv, uninterrupted
from ..metrics import PIXEL_METRICS, pixel_metrics, summarize
from ..model.anomaly_map import PRIMARY_SCORE, SCORE_NAMES, predict
from ..model.loss import PyramidLoss
from ..plots import pick_labelled, reconstructions_figure, roc_figure, score_label, weights_note
from ..progress import tqdm
from . import data_record
from .run_dir import RunDir, holding_lock

log = logging.getLogger(__name__)

SCORE_BATCH = 250  # fastest of 120/250/500 when scoring 28x28 on 2 CPU cores (benchmarks/README.md)


@torch.inference_mode()
def score_images(model, loss: PyramidLoss, images: data_mod.ImageSet, device=None, batch_size: int = SCORE_BATCH,
                 progress: bool = True, desc: str = "scoring", with_maps: bool = False, names=SCORE_NAMES):
    """Every score of every image (`predict`, paper Sec. III-B), with its label, class and name.

    Returns one row per image: name, class, label (1 = anomalous), then one float32 column per
    score of `names` (registered in `model.anomaly_map.SCORES`; runs record SCORE_NAMES).  With
    `with_maps`, returns (that frame, the N x S x S float32 CPU tensor of the PRIMARY_SCORE anomaly
    maps), for the pixel-level metrics: 4 * N * S * S bytes, 9 MB for 160 MVTec images at 120 x 120.
    Raises PyramidError when any score is NaN or infinite (a diverged model).
    """
    device = next(model.parameters()).device if device is None else torch.device(device)
    model.eval()
    cols: dict[str, list] = {k: [] for k in names}
    maps: list[torch.Tensor] = []
    starts = range(0, len(images), batch_size)
    for i in tqdm(starts, desc=desc, disable=not progress or len(images) <= batch_size, leave=False):
        idx = torch.arange(i, min(i + batch_size, len(images)))
        x = images.batch(idx, device)
        p = predict(model, loss, x, maps=with_maps, names=names)
        for k in names:
            cols[k].append(p.scores[k].float().cpu())
        if with_maps:
            maps.append(p.maps[PRIMARY_SCORE].float().cpu())
    out = pd.DataFrame({k: torch.cat(v).numpy() if v else np.zeros(0) for k, v in cols.items()})
    out.insert(0, "label", images.labels.numpy())
    out.insert(0, "class", images.classes)
    out.insert(0, "name", images.names)
    bad = ~np.isfinite(out[list(names)].to_numpy()).all(axis=1)
    if bad.any():
        raise PyramidError(f"{int(bad.sum())} image(s) got a NaN or infinite score (first: {out.name[bad].iloc[0]}); "
                           "the model is broken (diverged training?): retrain with a lower --lr")
    if with_maps:
        return out, torch.cat(maps) if maps else torch.zeros(0, *images.images.shape[-2:])
    return out


@holding_lock("evaluate")
def evaluate_run(run_dir, device=None, data: data_mod.OneClassData | None = None, progress: bool = True,
                 write: bool = True, figures: bool = False) -> pd.DataFrame:
    """Score a trained run's test split and held-out normals; return its metrics row (a 1-row frame).

    `run_dir`: a RunDir or a folder.  The checkpoint is loaded once (`RunDir.load`); `data` may be
    passed in when already loaded.  With `write`, writes scores.csv and metrics.csv together, with
    Ctrl-C and SIGTERM held off between them (`files.uninterrupted`: the run is then `evaluated`,
    and the two always agree); with `figures`, also roc.png and reconstructions.png, from the same loaded
    model.  A config with `test_limit` scores only that seeded subset of the test split
    (`data.splits.stratified_subset`).  When the test split has masks, the same pass keeps the `loss`
    anomaly maps for pixel AUROC and AUPRO (`metrics.pixel_metrics`).  The held-out normals are
    those the run's data.json recorded at training, looked up by name (`data_record`); a
    DataChangedWarning names the images added, removed or changed since (a run without data.json:
    recomputed, warned).  Holds the folder's lock (`RunDir.hold`).  Raises CheckpointError (no
    usable checkpoint), RunBusy (another process trains or evaluates the run), DataError (a
    recorded held-out normal missing or changed) and PyramidError (NaN/infinite scores, a test
    split without both labels).
    """
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    t0 = time.perf_counter()
    cfg, model, loss = run.load(device)
    data = data or data_mod.load_for(cfg)
    held_out = data_record.held_out_normals(run, data)  # data.json's; warns what changed since training
    if held_out is None:  # a run from before data.json: the split is recomputed (warned)
        _, held_out = splits.fit_and_heldout(data, cfg)
    few = threshold.few_normals_warning(len(held_out), str(run.dir))
    if few:
        warnings.warn(few, DataWarning, stacklevel=3)
    if cfg.test_limit is not None:
        data = dataclasses.replace(data, test=data.test.subset(splits.stratified_subset(data.test.labels,
                                                                                  cfg.test_limit, cfg.seed)))
    masks = data.test.masks  # ground-truth defect masks (MVTec AD, folders with ground_truth/), or None
    test = score_images(model, loss, data.test, progress=progress, desc="scoring test split",
                        with_maps=masks is not None)
    test, maps = test if masks is not None else (test, None)
    val = score_images(model, loss, held_out, progress=progress, desc="scoring held-out normals")
    metrics = summarize(test, val)
    metrics.update(dict.fromkeys(PIXEL_METRICS, np.nan) if masks is None else pixel_metrics(maps, masks, test.label))
    row = {**run_columns(cfg, run.read_state()), **metrics, "score_seconds": round(time.perf_counter() - t0, 2)}
    frame = pd.DataFrame([row])
    if write:
        both = pd.concat([test.assign(split="test"), val.assign(split="held-out normal")], ignore_index=True)
        # float64 (exact for float32 scores) and written in full, so that scores.csv read back gives the
        # very values the thresholds were chosen on: a run's own threshold reproduces its rates exactly
        both = both.astype({k: "float64" for k in SCORE_NAMES})
        if figures:
            try:
                run_figures(run.dir, model, loss, data, test, cfg.weights, precision=cfg.precision)
            except Exception as e:  # a figure is never worth losing a run for
                log.warning("%s: figures failed (%s: %s)", run.dir, type(e).__name__, e)
        with uninterrupted():  # a Ctrl-C leaves the earlier pair or this one, never one of each
            atomic_write_csv(run.scores, both)
            atomic_write_csv(run.metrics, frame)
    return frame


def run_columns(cfg: TrainConfig, state: dict) -> dict:
    """The settings that identify a result row (and say whether ImageNet weights were used)."""
    hist = state.get("history", [])
    return {"dataset": cfg.dataset, "normal_class": cfg.normal_class, "weights": cfg.weights,
            "profile": cfg.profile, "epochs": len(hist), "encoders": cfg.encoders, "lambda": cfg.lambda_,
            "pyramid": cfg.pyramid, "fast": cfg.fast, "input_size": cfg.input_size,
            "seed": cfg.seed, "train_limit": cfg.train_limit, "fit_images": state.get("fit_images"),
            "final_loss": hist[-1]["loss"] if hist else np.nan, "train_seconds": state.get("wall_time_s"),
            "device": state.get("device"), "precision": cfg.precision, "status": state.get("status")}


def run_figures(out_dir, model, loss: PyramidLoss, data: data_mod.OneClassData, test_scores: pd.DataFrame,
                weights: str, score: str = PRIMARY_SCORE, precision: str | None = None) -> dict:
    """Write roc.png and reconstructions.png into `out_dir` for a scored run; return their paths.

    `test_scores`: score_images' frame of `data.test` (same order).  The reconstructions figure
    shows 8 test images (best and worst scored normals and anomalies): input, reconstruction, the
    `score` error map (`predict`) and the ground-truth mask when the dataset has masks.
    """
    out_dir = Path(out_dir)
    note = weights_note(weights, precision)
    fig = roc_figure({f"{data.dataset} normal={data.normal_class}": (test_scores.label, test_scores[score])},
                     title=f"ROC, score = {score_label(score)}{note}")
    atomic_save_figure(out_dir / "roc.png", fig, dpi=120)
    plt.close(fig)
    picks = pick_labelled(test_scores, 8, score)
    idx = [i for i, _ in picks]
    device = next(model.parameters()).device
    with torch.inference_mode():
        model.eval()
        x = data.test.batch(torch.tensor(idx), device)
        pred = predict(model, loss, x, maps=True)
    masks = None if data.test.masks is None else data.test.masks[torch.tensor(idx)]
    titles = [f"{role}\n{test_scores['class'][i]}: {test_scores[score][i]:.3g}" for i, role in picks]
    fig = reconstructions_figure(x.cpu(), pred.reconstruction.cpu(), pred.maps[score].cpu(), titles, masks,
                                 title=f"reconstructions{note}", map_label=f"error map ({score_label(score)})")
    atomic_save_figure(out_dir / "reconstructions.png", fig, dpi=110)
    plt.close(fig)
    return {"roc": out_dir / "roc.png", "reconstructions": out_dir / "reconstructions.png"}
