"""Threshold rules: where the anomaly score is cut into "normal" and "anomalous".

An image is called anomalous when its score is >= the threshold.

- `youden`: the paper-style threshold, argmax of TPR - FPR over the test set's ROC curve.  It
  is chosen on the test labels themselves, so the TPR/TNR it gives are optimistic; results
  label it "paper-style (threshold chosen on test labels)".
- `from_normals`: a quantile (95% by default) of the scores of training normals held out of
  training (`splits.py`).  No test label is used; the expected TNR is about the quantile."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_curve

PAPER_STYLE_LABEL = "paper-style (threshold chosen on test labels)"


HELD_OUT_LABEL = "held-out normals (threshold fixed without test labels)"


DEFAULT_QUANTILE = 0.95


def youden(labels, scores) -> float:
    """The test-set threshold maximising TPR - FPR (Youden's J)."""
    fpr, tpr, thr = roc_curve(np.asarray(labels), np.asarray(scores))
    j = tpr - fpr
    i = int(np.argmax(j))
    return float(min(thr[i], np.max(scores))) if np.isinf(thr[i]) else float(thr[i])


def from_normals(normal_scores, quantile: float = DEFAULT_QUANTILE) -> float:
    """The `quantile` of scores of held-out normal images."""
    s = np.asarray(normal_scores, dtype=float)
    if s.size == 0:
        return float("nan")
    return float(np.quantile(s, quantile))


def rates(labels, scores, threshold: float) -> dict[str, float]:
    """TPR, TNR, accuracy and the confusion counts at `threshold` (anomalous = score >= threshold)."""
    y = np.asarray(labels).astype(bool)
    pred = np.asarray(scores) >= threshold
    tp, fn = int((pred & y).sum()), int((~pred & y).sum())
    tn, fp = int((~pred & ~y).sum()), int((pred & ~y).sum())
    return {
        "tpr": tp / max(tp + fn, 1),
        "tnr": tn / max(tn + fp, 1),
        "accuracy": (tp + tn) / max(len(y), 1),
        "tp": tp, "fn": fn, "tn": tn, "fp": fp,
    }
