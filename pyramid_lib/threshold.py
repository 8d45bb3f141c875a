"""Threshold rules: where the anomaly score is cut into "normal" and "anomalous".

Each threshold comes with its rule for a score exactly at it:

- `youden`: the paper-style threshold (rule `>=`: it is itself the lowest score called
  anomalous), argmax of TPR - FPR over the test set's ROC curve (ties: the highest threshold).  It
  is chosen on the test labels themselves, so the TPR/TNR it gives are optimistic; results
  label it "paper-style (threshold chosen on test labels)".
- `from_normals`: a quantile (95% by default) of the scores of training normals held out of
  training (`splits.py`), rule `>` (HELD_OUT_RULE): a score a held-out normal reached is normal,
  so with few held-out normals (where the quantile IS one of their scores) none of them is called
  anomalous.  No test label is used; the expected TNR is about the quantile, and with fewer than
  FEW_NORMALS held-out normals the quantile is mostly the largest of a handful of scores
  (`few_normals_warning`)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_curve

PAPER_STYLE_LABEL = "paper-style (threshold chosen on test labels)"


HELD_OUT_LABEL = "held-out normals (threshold fixed without test labels)"


DEFAULT_QUANTILE = 0.95


YOUDEN_RULE, HELD_OUT_RULE = ">=", ">"


FEW_NORMALS = 20  # below this many held-out normals, the 95% quantile is one of the top two scores


def is_anomalous(scores, threshold: float, rule: str) -> np.ndarray:
    """Boolean array: score > threshold (rule ">") or score >= threshold (rule ">=")."""
    s = np.asarray(scores, dtype=float)
    return s > threshold if rule == ">" else s >= threshold


def few_normals_warning(n: int, where: str) -> str | None:
    """The warning for a held-out threshold resting on `n` < FEW_NORMALS images (None otherwise);
    `where` names the run."""
    if n >= FEW_NORMALS or n == 0:
        return None
    return (f"{where}: the held-out threshold rests on only {n} held-out normal image(s) (fewer than {FEW_NORMALS}), "
            f"so it is {'that one score' if n == 1 else 'about the largest of their scores'}, not a reliable "
            "95% quantile; add training images, or train again: pyramid-ad train ... --heldout-fraction 0.2")


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


def rates(labels, scores, threshold: float, rule: str = YOUDEN_RULE) -> dict[str, float]:
    """TPR, TNR, accuracy and the confusion counts at `threshold` under `rule` (`is_anomalous`)."""
    y = np.asarray(labels).astype(bool)
    pred = is_anomalous(scores, threshold, rule)
    tp, fn = int((pred & y).sum()), int((~pred & y).sum())
    tn, fp = int((~pred & ~y).sum()), int((pred & ~y).sum())
    return {
        "tpr": tp / max(tp + fn, 1),
        "tnr": tn / max(tn + fp, 1),
        "accuracy": (tp + tn) / max(len(y), 1),
        "tp": tp, "fn": fn, "tn": tn, "fp": fp,
    }
