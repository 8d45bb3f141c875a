"""A synthetic stand-in for an MVTec AD category (NOT MVTec AD): grid-like textures with drawn
defects and their masks, written in MVTec AD's folder layout.  The notebooks train on it when the
real category is absent, so that they still run on a fresh clone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def synthetic_mvtec(folder, size: int = 128, n_train: int = 12, n_good: int = 3, seed: int = 0) -> Path:
    """Write a small MVTec-layout folder of synthetic grid textures (NOT MVTec): train/good,
    test/good, test/scratch, test/blob (size x size grey PNGs) and their masks; return `folder`.
    The stand-in when MVTec AD is absent."""
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]

    def texture():
        period, phase = rng.uniform(9, 11), rng.uniform(0, 6.28, 2)
        g = 0.5 + 0.25 * (np.sin(xx / period * 6.28 + phase[0]) + np.sin(yy / period * 6.28 + phase[1]))
        return np.clip(g + rng.normal(0, 0.04, g.shape), 0, 1)

    def save(path, arr):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((np.clip(arr, 0, 1) * 255).astype(np.uint8), mode="L").save(path)

    for i in range(n_train):
        save(folder / "train" / "good" / f"{i:03d}.png", texture())
    for i in range(n_good):
        save(folder / "test" / "good" / f"{i:03d}.png", texture())
    for defect in ("scratch", "blob"):
        for i in range(3):
            img, mask = texture(), np.zeros((size, size))
            cy, cx = rng.integers(size // 4, 3 * size // 4, 2)
            if defect == "scratch":
                mask[np.abs((yy - cy) - 0.6 * (xx - cx)) < 2.0] = 1
                mask[(np.abs(xx - cx) > size // 4)] = 0
            else:
                mask[(yy - cy) ** 2 + (xx - cx) ** 2 < (size // 10) ** 2] = 1
            img = np.where(mask > 0, 0.05 if defect == "scratch" else 0.95, img)
            save(folder / "test" / defect / f"{i:03d}.png", img)
            save(folder / "ground_truth" / defect / f"{i:03d}_mask.png", mask)
    return folder
