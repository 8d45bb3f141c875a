"""Pixel-level metrics (metrics.py): pixel AUROC and AUPRO on hand-computed cases, against
scikit-learn, and against a transcription of MVTec AD's reference evaluation (`compute_pro` and
`trapezoid` of the MVTec AD evaluation scripts, Bergmann et al., IJCV 2021) on random maps."""

from bisect import bisect

import numpy as np
import pytest
import torch
from scipy.ndimage import label
from sklearn.metrics import roc_auc_score

from pyramid_lib.errors import PyramidError
from pyramid_lib.metrics import PIXEL_METRICS, aupro, pixel_auroc, pixel_metrics, pro_curve


def two_regions():
    """Two 6x6 images: image 0 holds a 1-pixel defect, image 1 a 3x3 defect; image 2 is normal."""
    masks = np.zeros((3, 6, 6), dtype=np.uint8)
    masks[0, 1, 1] = 1
    masks[1, 2:5, 2:5] = 1
    return masks


def test_a_perfect_map_scores_one():
    masks = two_regions()
    maps = masks + 0.01 * np.random.default_rng(0).random(masks.shape)  # defects above every normal pixel
    assert aupro(maps, masks) == pytest.approx(1.0)
    assert pixel_auroc(maps, masks) == pytest.approx(1.0)


def test_a_constant_map_scores_half_the_limit():
    # one threshold: the curve goes straight from (0, 0) to (1, 1); the area up to 0.3 is 0.3^2 / 2
    masks = two_regions()
    maps = np.full(masks.shape, 0.7, dtype=np.float32)
    fpr, pro = pro_curve(maps, masks)
    assert list(fpr) == [0.0, 1.0, 1.0] and list(pro) == [0.0, 1.0, 1.0]
    assert aupro(maps, masks) == pytest.approx(0.15)
    assert aupro(maps, masks, fpr_limit=1.0) == pytest.approx(0.5)
    assert pixel_auroc(maps, masks) == pytest.approx(0.5)


def test_finding_one_of_two_regions_is_half_whatever_their_sizes():
    # the 1-pixel defect scores 2, the background 1, the 3x3 defect 0: PRO is 0.5 up to FPR 1
    masks = two_regions()
    maps = np.ones(masks.shape)
    maps[0, 1, 1] = 2.0
    maps[1, 2:5, 2:5] = 0.0
    fpr, pro = pro_curve(maps, masks)
    assert list(zip(fpr, pro)) == [(0, 0), (0, 0.5), (1, 0.5), (1, 1), (1, 1)]
    assert aupro(maps, masks) == pytest.approx(0.5)
    # per pixel the same map found 1 defect pixel of 10: pixel AUROC weighs pixels, not regions
    y, s = masks.ravel(), maps.ravel()
    assert pixel_auroc(maps, masks) == pytest.approx(roc_auc_score(y, s))
    assert pixel_auroc(maps, masks) < 0.5


def test_diagonal_neighbours_are_one_region():
    masks = np.zeros((2, 5, 5), dtype=np.uint8)
    masks[0, 1, 1] = masks[0, 2, 2] = 1  # 8-connected: one region of two pixels
    maps = np.zeros(masks.shape)
    maps[0, 1, 1] = 1.0  # half of that region found at FPR 0
    fpr, pro = pro_curve(maps, masks)
    assert (fpr[1], pro[1]) == (0.0, 0.5)


def test_the_integration_limit_interpolates_between_points():
    # one 1 x 12 image: 1-pixel defects at both ends, 10 normal pixels between them
    masks = np.zeros((1, 1, 12), dtype=np.uint8)
    masks[0, 0, [0, 11]] = 1
    maps = np.zeros((1, 1, 12))
    maps[0, 0, [0, 1, 2]] = 3.0  # the first defect and 2 normal pixels: (FPR 0.2, PRO 0.5)
    maps[0, 0, [3, 4, 5, 11]] = 2.0  # the second defect and 3 more: (0.5, 1)
    fpr, pro = pro_curve(maps, masks)
    assert np.allclose(fpr, [0, 0.2, 0.5, 1, 1]) and np.allclose(pro, [0, 0.5, 1, 1, 1])
    # area to 0.3: 0.2 * 0.5 / 2, then a trapezoid to the curve's value at 0.3, 0.5 + 0.5 / 3
    assert aupro(maps, masks) == pytest.approx((0.2 * 0.5 / 2 + (0.5 + 0.5 + 0.5 / 3) / 2 * 0.1) / 0.3)


# ---------------------------------------------------------------- MVTec AD's reference, transcribed
def reference_compute_pro(anomaly_maps, ground_truth_maps):
    """MVTec AD evaluation scripts, generic_util.compute_pro, transcribed (memory tricks left out)."""
    structure = np.ones((3, 3), dtype=int)
    num_ok_pixels, num_gt_regions = 0, 0
    shape = (len(anomaly_maps), anomaly_maps[0].shape[0], anomaly_maps[0].shape[1])
    fp_changes = np.zeros(shape, dtype=np.uint32)
    pro_changes = np.zeros(shape, dtype=np.float64)
    for gt_ind, gt_map in enumerate(ground_truth_maps):
        labeled, n_components = label(gt_map, structure)
        num_gt_regions += n_components
        ok_mask = labeled == 0
        num_ok_pixels += np.sum(ok_mask)
        fp_change = np.zeros_like(gt_map, dtype=fp_changes.dtype)
        fp_change[ok_mask] = 1
        pro_change = np.zeros_like(gt_map, dtype=np.float64)
        for k in range(n_components):
            region_mask = labeled == (k + 1)
            pro_change[region_mask] = 1.0 / np.sum(region_mask)
        fp_changes[gt_ind], pro_changes[gt_ind] = fp_change, pro_change
    scores = np.array(anomaly_maps).ravel()
    idx = np.argsort(scores).astype(np.uint32)[::-1]
    scores, fps, pros = scores[idx], fp_changes.ravel()[idx], pro_changes.ravel()[idx]
    fprs = np.cumsum(fps).astype(np.float32) / num_ok_pixels
    pros = np.cumsum(pros) / num_gt_regions
    keep = np.append(np.diff(scores) != 0, np.True_)
    fprs, pros = np.clip(fprs[keep], None, 1.0), np.clip(pros[keep], None, 1.0)
    return np.concatenate(([0.0], fprs, [1.0])), np.concatenate(([0.0], pros, [1.0]))


def reference_trapezoid(x, y, x_max=None):
    """MVTec AD evaluation scripts, generic_util.trapezoid, transcribed."""
    x, y = np.array(x), np.array(y)
    correction = 0.0
    if x_max is not None:
        if x_max not in x:
            ins = bisect(x, x_max)
            assert 0 < ins < len(x)
            y_interp = y[ins - 1] + ((y[ins] - y[ins - 1]) * (x_max - x[ins - 1]) / (x[ins] - x[ins - 1]))
            correction = 0.5 * (y_interp + y[ins - 1]) * (x_max - x[ins - 1])
        mask = x <= x_max
        x, y = x[mask], y[mask]
    return np.sum(0.5 * (y[1:] + y[:-1]) * (x[1:] - x[:-1])) + correction


@pytest.mark.parametrize("seed", range(4))
def test_matches_mvtecs_reference_on_random_maps(seed):
    rng = np.random.default_rng(seed)
    masks = np.zeros((6, 32, 32), dtype=np.uint8)
    for i in range(1, 6):  # image 0 normal; blobs of random sizes, some touching diagonally
        for _ in range(rng.integers(1, 4)):
            r, c, h, w = *rng.integers(0, 28, 2), *rng.integers(1, 6, 2)
            masks[i, r:r + h, c:c + w] = 1
    # a map that partly finds the defects, with ties (rounded) as real maps of uint8 inputs have
    maps = np.round(masks * rng.uniform(0, 1, masks.shape) + rng.normal(0, 0.4, masks.shape), 2).astype(np.float32)
    fpr, pro = pro_curve(maps, masks)
    ref_fpr, ref_pro = reference_compute_pro(list(maps), list(masks))
    assert len(fpr) == len(ref_fpr)
    np.testing.assert_allclose(fpr, ref_fpr, atol=1e-6)
    np.testing.assert_allclose(pro, ref_pro, atol=1e-9)
    for limit in (0.3, 0.05, 1.0):
        ref = reference_trapezoid(ref_fpr, ref_pro, x_max=limit) / limit
        assert aupro(maps, masks, fpr_limit=limit) == pytest.approx(ref, abs=1e-5)
    assert 0.0 < aupro(maps, masks) < 1.0
    assert pixel_auroc(torch.from_numpy(maps), torch.from_numpy(masks)) == pytest.approx(
        roc_auc_score(masks.ravel(), maps.ravel()), abs=1e-6)


def test_large_map_values_are_not_squashed_into_ties():
    # torchmetrics sends values outside [0, 1] through a sigmoid: 30 and 40 would both become 1.0
    masks = np.zeros((1, 1, 4), dtype=np.uint8)
    masks[0, 0, 3] = 1
    maps = np.array([[[10.0, 20.0, 30.0, 40.0]]], dtype=np.float32)
    assert pixel_auroc(maps, masks) == 1.0


def test_pixel_metrics_leave_out_defect_images_without_a_mask():
    masks = two_regions()
    maps = masks.astype(float) + 0.01 * np.random.default_rng(1).random(masks.shape)
    maps[2] += 5.0  # an unmasked anomalous image: scored high everywhere
    labels = [1, 1, 1]
    with pytest.warns(UserWarning, match="leave out 1 anomalous test image"):
        got = pixel_metrics(maps, masks, labels)
    assert got == pytest.approx({"pixel_auroc": 1.0, "aupro": 1.0})
    assert pixel_metrics(maps, masks, [1, 1, 0])["pixel_auroc"] < 1.0  # as a normal image it counts


def test_no_defect_pixel_gives_nan_with_a_warning_and_bad_input_an_error():
    masks = np.zeros((2, 4, 4), dtype=np.uint8)
    with pytest.warns(UserWarning, match="no defect pixel"):
        got = pixel_metrics(np.random.default_rng(0).random(masks.shape), masks)
    assert list(got) == list(PIXEL_METRICS) and all(np.isnan(v) for v in got.values())
    with pytest.raises(PyramidError, match="N x H x W"):
        pixel_auroc(np.zeros((2, 4, 4)), np.zeros((2, 4, 5)))
    bad = np.zeros((2, 4, 4))
    bad[0, 0, 0] = np.nan
    masks[1, 1, 1] = 1
    with pytest.raises(PyramidError, match="NaN"):
        aupro(bad, masks)
    with pytest.raises(PyramidError, match="FPR limit"):
        aupro(np.zeros((2, 4, 4)), masks, fpr_limit=0.0)
