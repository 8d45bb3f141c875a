"""evaluate_run's pixel-level metrics (pixel AUROC, AUPRO) on the real MVTec AD `grid` subset:
a 1-epoch run on 8 training images, scored on all 14 test images (11 with defect masks)."""

import numpy as np
import pandas as pd
import pytest
import torch

from pyramid_lib import data
from pyramid_lib.config import TrainConfig
from pyramid_lib.engine.evaluate import evaluate_run, score_images
from pyramid_lib.engine.run_dir import RunDir
from pyramid_lib.engine.trainer import train
from pyramid_lib.metrics import PIXEL_METRICS, PRIMARY_SCORE, pixel_metrics
from pyramid_lib.model.anomaly_map import predict


@pytest.fixture(scope="module")
def grid(data_root):
    if not (data_root / "mvtec_ad" / "grid").is_dir():
        pytest.skip(f"MVTec AD grid subset not found under {data_root}/mvtec_ad")
    return data.load("mvtec", "grid", data_root)


@pytest.mark.slow
def test_metrics_csv_gets_pixel_auroc_and_aupro_of_the_loss_maps(tmp_path, grid, data_root):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = TrainConfig(dataset="mvtec", normal_class="grid", data_root=str(data_root), download=False,
                          epochs=1, train_limit=8, batch_size=8, lr=1e-3)
        run = train(cfg, tmp_path / "grid", data=grid, progress=False)
        evaluate_run(run.dir, data=grid, progress=False)
        row = pd.read_csv(run.metrics).iloc[0]
        assert int(row.n_test) == len(grid.test) == 14 and grid.test.masks is not None
        for k in PIXEL_METRICS:
            assert np.isfinite(row[k]) and 0.0 <= row[k] <= 1.0, (k, row[k])
        # the same numbers from the loss maps of every test image, one predict call each
        _, model, loss = RunDir(run.dir).load()
        with torch.inference_mode():
            model.eval()
            maps = torch.cat([predict(model, loss, grid.test.batch(torch.tensor([i]), "cpu")).maps[PRIMARY_SCORE]
                              for i in range(len(grid.test))])
        frame, kept = score_images(model, loss, grid.test, progress=False, with_maps=True)
        assert kept.shape == (14, 120, 120) and kept.dtype == torch.float32
        torch.testing.assert_close(kept, maps, rtol=1e-4, atol=1e-6)
        again = pixel_metrics(maps, grid.test.masks, grid.test.labels)
        assert again["pixel_auroc"] == pytest.approx(row.pixel_auroc, abs=1e-4)
        assert again["aupro"] == pytest.approx(row.aupro, abs=1e-4)
        assert frame.columns[:3].tolist() == ["name", "class", "label"]
    finally:
        torch.set_num_threads(n)
