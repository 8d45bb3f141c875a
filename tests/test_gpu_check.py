"""benchmarks/gpu_check.sh, the paper's profile on one GPU, runs end to end on a CPU with a tiny setting."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pyramid_lib.data.synthetic import synthetic_mvtec

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_runs_on_a_cpu_with_a_tiny_setting(tmp_path):
    synthetic_mvtec(tmp_path / "data" / "mvtec_ad" / "bottle", size=128, n_train=12)
    env = {**os.environ, "PY": sys.executable, "PYRAMID_DATA": str(tmp_path / "data"), "GPU_CHECK_EPOCHS": "1",
           "GPU_CHECK_SIZES": "28", "GPU_CHECK_THROUGHPUT": "--quick", "GPU_CHECK_DEVICE": "cpu",
           "GPU_CHECK_OUT": str(tmp_path / "out"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-2:]
    assert last[0].startswith("device cpu; precision ") and "weights random" in last[0]
    assert re.search(r"^1 epochs, training \d+ s, median \d+ images/s; image AUROC [01]\.\d{4}; whole check", last[1])
    assert (tmp_path / "out" / "throughput.json").is_file() and (tmp_path / "out" / "run" / "metrics.csv").is_file()
