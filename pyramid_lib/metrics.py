"""Scoring and metrics: per-image scores, ROC/AUROC, TPR/TNR at two thresholds, CSV output.

Run folder outputs (next to the training files, each written atomically):
    scores.csv    one row per test image and held-out training normal: split, name, class,
                  label (1 = anomalous) and every score in `losses.SCORE_NAMES`
    metrics.csv   one row: AUROC of each score; TPR/TNR at the paper-style Youden threshold
                  (chosen on test labels) and at the held-out-normals threshold (no test labels)"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from . import threshold
from .errors import PyramidError
from .model.anomaly_map import PRIMARY_SCORE, SCORE_NAMES


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


def metrics_from_scores(y, s, held_out=None, quantile: float = threshold.DEFAULT_QUANTILE) -> dict:
    """AUROC; TPR/TNR/accuracy at the paper-style (Youden, test labels) and held-out thresholds."""
    from sklearn.metrics import roc_auc_score

    y, s = np.asarray(y), np.asarray(s, dtype=float)
    if len(np.unique(y)) < 2:
        raise PyramidError("the test split needs both normal and anomalous images to compute AUROC")
    if not np.isfinite(s).all():
        raise PyramidError("a baseline produced NaN or infinite scores")
    out = {"auroc": float(roc_auc_score(y, s))}
    t = threshold.youden(y, s)
    r = threshold.rates(y, s, t)
    out.update(youden_threshold=t, youden_tpr=r["tpr"], youden_tnr=r["tnr"], youden_accuracy=r["accuracy"])
    if held_out is not None and len(held_out):
        t = threshold.from_normals(held_out, quantile)
        r = threshold.rates(y, s, t)
        out.update(heldout_threshold=t, heldout_tpr=r["tpr"], heldout_tnr=r["tnr"], heldout_accuracy=r["accuracy"])
    else:
        out.update(heldout_threshold=np.nan, heldout_tpr=np.nan, heldout_tnr=np.nan, heldout_accuracy=np.nan)
    out.update(n_test=len(y), n_normal=int((y == 0).sum()), n_anomalous=int((y == 1).sum()))
    return out
