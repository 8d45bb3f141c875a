"""The metrics of a scored run, one summary for every kind of run (our network and the baselines).

AUROC (threshold-free, paper Tables II and III), and TPR / TNR / accuracy at two thresholds
(threshold.py; paper Table IV reports TPR/TNR): the paper-style Youden threshold, chosen on the
test labels themselves, and the `quantile` of the held-out training normals' scores, which uses
no test label.

Where is the defect (test splits with masks: MVTec AD, folders with ground_truth/): pixel-level
AUROC and AUPRO, the area under the per-region overlap curve up to 30% FPR (`pixel_metrics`; MVTec
AD's definitions, Bergmann et al., IJCV 2021).  The paper reports neither."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch
from scipy import ndimage
from sklearn.metrics import roc_auc_score
from torchmetrics.functional.classification import binary_auroc

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
        r = threshold.rates(y, s, t, threshold.HELD_OUT_RULE)
        out.update(heldout_threshold=t, heldout_tpr=r["tpr"], heldout_tnr=r["tnr"], heldout_accuracy=r["accuracy"])
    else:
        out.update(heldout_threshold=np.nan, heldout_tpr=np.nan, heldout_tnr=np.nan, heldout_accuracy=np.nan)
    if "ssim" in scores:
        out["ssim_normal"] = float(1.0 - test.loc[test.label == 0, "ssim"].mean())
    out.update(n_test=len(y), n_normal=int((y == 0).sum()), n_anomalous=int((y == 1).sum()))
    return out


# ------------------------------------------------------------------ where is the defect (pixel level)
# metrics.csv's pixel-level columns (NaN when the test split has no masks), computed on the anomaly
# map of PRIMARY_SCORE (model/anomaly_map.py: squared error + lambda * perceptual error per pixel).
PIXEL_METRICS = ("pixel_auroc", "aupro")
PRO_FPR_LIMIT = 0.3  # AUPRO integrates the PRO curve up to this false positive rate (MVTec AD's default)


def _as_maps(maps, masks) -> tuple[np.ndarray, np.ndarray]:
    a = (maps.detach().cpu().numpy() if hasattr(maps, "detach") else np.asarray(maps))
    m = (masks.detach().cpu().numpy() if hasattr(masks, "detach") else np.asarray(masks))
    if a.ndim != 3 or a.shape != m.shape:
        raise PyramidError(f"anomaly maps and masks must both be N x H x W of one shape, got {a.shape} and {m.shape}")
    if not np.isfinite(a).all():
        raise PyramidError("anomaly maps hold NaN or infinite values; the model is broken (diverged training?): "
                           "retrain with a lower --lr")
    return a, m != 0


def pixel_auroc(maps, masks) -> float:
    """Pixel-level AUROC: every pixel of every image is one sample, its anomaly-map value the score and
    its mask value (1 = defect) the label (MVTec AD's convention: all test images, normal images with
    all-negative masks, as MVTec AD's evaluation scripts do).

    `maps`: N x H x W (tensor or array, any real values, higher = more anomalous); `masks`: N x H x W,
    non-zero = defect.  Computed exactly (every distinct value a threshold) by torchmetrics'
    `binary_auroc`: on 2.4 million pixels (170 maps of 120 x 120) it took 0.5 s and about 160 MB on
    one CPU core, while its binned variant (`thresholds=1000`) took 8.8 s, so exact it is.  The maps
    are min-max scaled to [0, 1] in float64 first (an order-preserving step: torchmetrics would
    otherwise pass values outside [0, 1] through a sigmoid, which ties large float32 values).
    Raises PyramidError for maps and masks of other shapes or non-finite maps, and when the masks
    have no defect pixel or no defect-free pixel (AUROC is undefined then).
    """
    a, m = _as_maps(maps, masks)
    if m.all() or not m.any():
        raise PyramidError("pixel AUROC needs both defect and defect-free pixels in the masks")
    x = torch.from_numpy(a.astype(np.float64).ravel())
    lo, hi = x.min(), x.max()
    x = (x - lo) / (hi - lo) if hi > lo else torch.zeros_like(x)
    return float(binary_auroc(x, torch.from_numpy(m.ravel()).to(torch.uint8)))


def pro_curve(maps, masks) -> tuple[np.ndarray, np.ndarray]:
    """The per-region overlap (PRO) curve: (false positive rates, PRO values), both ascending, from
    (0, 0) to (1, 1), one point per distinct anomaly-map value.

    Definition (Bergmann et al., "The MVTec Anomaly Detection Dataset", IJCV 129, 2021;
    the reference `compute_pro` of MVTec AD's evaluation scripts): the defects of each mask are its
    8-connected regions (`scipy.ndimage.label`); at a threshold t, PRO(t) is the mean over all
    regions of all images of the fraction of the region's pixels with map >= t, and FPR(t) the
    fraction of all defect-free pixels with map >= t.  Every region counts the same whatever its
    size: a map that finds a 1-pixel scratch but misses a large stain has PRO 0.5.  Computed as the
    reference does, with one sort of all pixels (about 40 bytes a pixel: ~100 MB for 2.4 million).

    `maps`, `masks`: N x H x W as for `pixel_auroc`.  Raises PyramidError as `pixel_auroc` does.
    """
    a, m = _as_maps(maps, masks)
    if m.all() or not m.any():
        raise PyramidError("PRO needs both defect regions and defect-free pixels in the masks")
    regions = np.zeros(m.shape, dtype=np.int32)  # region ids, unique over all images; 0 = defect-free
    n_regions = 0
    for i, mask in enumerate(m):
        lab, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=int))
        regions[i] = np.where(lab > 0, lab + n_regions, 0)
        n_regions += n
    share = 1.0 / np.bincount(regions.ravel(), minlength=n_regions + 1)  # a pixel's share of its region
    share[0] = 0.0
    n_ok = int((regions == 0).sum())
    order = np.argsort(-a.ravel(), kind="stable")  # most anomalous first
    s = a.ravel()[order]
    last = np.append(s[1:] != s[:-1], True)  # ties: one point, after all tied pixels are in
    del s
    lab = regions.ravel()[order]
    del order
    pro = share[lab]
    np.cumsum(pro, out=pro)
    fpr = np.cumsum(lab == 0)[last] / n_ok
    pro = np.minimum(pro[last] / n_regions, 1.0)
    fpr = np.minimum(fpr, 1.0)
    return np.concatenate(([0.0], fpr, [1.0])), np.concatenate(([0.0], pro, [1.0]))


def area_up_to(x: np.ndarray, y: np.ndarray, x_max: float) -> float:
    """Trapezoidal area under the curve (x ascending) from x[0] to `x_max`, the curve interpolated
    linearly at `x_max` (as MVTec AD's evaluation scripts' `trapezoid(x, y, x_max)`)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = x <= x_max
    area = float(np.sum(0.5 * (y[keep][1:] + y[keep][:-1]) * np.diff(x[keep])))
    j = int(np.searchsorted(x, x_max, side="right"))  # first point beyond x_max
    if 0 < j < len(x) and x[j - 1] < x_max:
        y_max = y[j - 1] + (y[j] - y[j - 1]) * (x_max - x[j - 1]) / (x[j] - x[j - 1])
        area += 0.5 * (y[j - 1] + y_max) * (x_max - x[j - 1])
    return area


def aupro(maps, masks, fpr_limit: float = PRO_FPR_LIMIT) -> float:
    """AUPRO: the area under the PRO curve (`pro_curve`) for FPR from 0 to `fpr_limit`, divided by
    `fpr_limit`, so 1.0 is perfect and a constant map scores fpr_limit / 2 (0.15 at 0.3).  MVTec AD's
    definition (IJCV 2021; its evaluation scripts' default integration limit is 0.3).  Raises
    PyramidError as `pro_curve` does, and for a limit outside (0, 1]."""
    if not 0 < fpr_limit <= 1:
        raise PyramidError(f"the FPR limit of AUPRO must be in (0, 1], got {fpr_limit}")
    fpr, pro = pro_curve(maps, masks)
    return area_up_to(fpr, pro, fpr_limit) / fpr_limit


def pixel_metrics(maps, masks, labels=None) -> dict:
    """metrics.csv's pixel-level columns for one scored test split: `pixel_auroc` and `aupro`
    (`aupro` up to FPR PRO_FPR_LIMIT), over all its images (normal ones have empty masks).

    `maps`, `masks`: N x H x W as for `pixel_auroc`; `labels`: the N image labels (1 = anomalous), or
    None.  Anomalous images with an empty mask (a folder's defect image without a mask file) are
    left out, with a warning saying how many: their pixels would count as defect-free.  When no
    defect pixel remains both values are NaN, with a warning.
    """
    a, m = _as_maps(maps, masks)
    if labels is not None:
        lab = np.asarray(labels).astype(bool)
        unmasked = lab & ~m.reshape(len(m), -1).any(axis=1)
        if unmasked.any():
            warnings.warn(f"pixel AUROC and AUPRO leave out {int(unmasked.sum())} anomalous test image(s) without "
                          "a defect mask (their pixels would count as defect-free)", stacklevel=2)
            a, m = a[~unmasked], m[~unmasked]
    if not m.any() or m.all():
        warnings.warn("pixel AUROC and AUPRO not computed: the masks hold no defect pixel"
                      if not m.any() else "pixel AUROC and AUPRO not computed: the masks hold no defect-free pixel",
                      stacklevel=2)
        return dict.fromkeys(PIXEL_METRICS, float("nan"))
    return {"pixel_auroc": pixel_auroc(a, m), "aupro": aupro(a, m)}
