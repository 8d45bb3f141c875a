"""The metrics of a scored run, one summary for every kind of run (our network and the baselines).

AUROC (threshold-free, paper Tables II and III), and TPR / TNR / accuracy at two thresholds
(threshold.py; paper Table IV reports TPR/TNR): the paper-style Youden threshold, chosen on the
test labels themselves, and the `quantile` of the held-out training normals' scores, which uses
no test label."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from . import threshold
from .errors import PyramidError

# The names of our network's per-image anomaly scores (model/anomaly_map.py computes them and
# re-exports these): metrics.csv has an `auroc_<name>` column for each.  Defined here, below the
# model, so that the metrics need nothing from it.
PRIMARY_SCORE = "loss"  # the paper's: the per-image training loss, MSE + lambda * perceptual
SCORE_NAMES = ("loss", "mse", "perceptual", "ssim")


def summarize(test: pd.DataFrame, held_out: pd.DataFrame | None = None, score: str = PRIMARY_SCORE,
              quantile: float = threshold.DEFAULT_QUANTILE, scores: tuple[str, ...] = SCORE_NAMES) -> dict:
    """The metrics row of a run, as a dict (metrics.csv's columns after the run's settings).

    `test`: one row per test image with `label` (1 = anomalous) and a column per name in `scores`
    (higher = more anomalous); `held_out`: the held-out training normals' scores (at least the
    `score` column), or None.  Our network passes its four scores (SCORE_NAMES); a baseline passes
    `score="score", scores=("score",)`.

    Keys, in order: `auroc_<name>` for each of `scores` when there are several; `auroc` (that of
    `score`); youden_threshold/tpr/tnr/accuracy (threshold chosen on test labels);
    heldout_threshold/tpr/tnr/accuracy (NaN without held-out normals); `ssim_normal` (mean SSIM of
    the normal test images' reconstructions) when "ssim" is among `scores`; n_test, n_normal,
    n_anomalous.  Raises PyramidError when the test split lacks normal or anomalous images, or a
    score is NaN or infinite.
    """
    y = test["label"].to_numpy()
    if len(np.unique(y)) < 2:
        raise PyramidError("the test split needs both normal and anomalous images to compute AUROC")
    for name, frame, cols in (("test", test, scores), ("held-out", held_out, (score,))):
        if frame is not None and len(frame) and not np.isfinite(frame[list(cols)].to_numpy(dtype=float)).all():
            raise PyramidError(f"{name} scores hold NaN or infinite values; metrics would be meaningless. "
                               "The model is broken (diverged training?): retrain with a lower --lr")
    if len(scores) > 1:
        out = {f"auroc_{k}": float(roc_auc_score(y, test[k])) for k in scores}
        out["auroc"] = out[f"auroc_{score}"]
    else:
        out = {"auroc": float(roc_auc_score(y, test[score]))}
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
    if "ssim" in scores:
        out["ssim_normal"] = float(1.0 - test.loc[test.label == 0, "ssim"].mean())
    out.update(n_test=len(y), n_normal=int((y == 0).sum()), n_anomalous=int((y == 1).sum()))
    return out
