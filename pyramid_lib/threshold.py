"""Threshold rules: where the anomaly score is cut into "normal" and "anomalous".

An image is called anomalous when its score is >= the threshold.

- `youden`: the paper-style threshold, argmax of TPR - FPR over the test set's ROC curve (ties:
  the highest threshold).  It
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
    """The test-set threshold maximising Youden's J = TPR - FPR (= TPR + TNR - 1).

    Every distinct score is a candidate cut point.  J is compared exactly (as the integer
    TP * N - FP * P, P anomalous and N normal images), and among cut points with the same J the
    HIGHEST threshold wins: the one that flags the fewest images.  When no cut point beats
    flagging nothing (J = 0), the highest score is returned."""
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=float)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)  # thresholds in decreasing order
    j = np.rint(tpr * n_pos).astype(np.int64) * n_neg - np.rint(fpr * n_neg).astype(np.int64) * n_pos
    i = int(np.flatnonzero(j == j.max())[0])  # the first of the ties: the highest threshold
    return float(np.max(s)) if np.isinf(thr[i]) else float(thr[i])


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
