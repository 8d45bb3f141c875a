"""benchmarks/throughput.py --quick runs and prints its table (no timing assertions)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import load_benchmark

REPO = Path(__file__).resolve().parents[1]
COLUMNS = ["size", "path", "train img/s", "score img/s", "train GFLOP/img", "score GFLOP/img",
           "train GFLOP/s", "score GFLOP/s", "train peak MB", "score peak MB"]


@pytest.mark.slow
def test_quick_benchmark_prints_the_table(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "throughput.py"), "--quick", "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    header = next(ln for ln in lines if ln.startswith("| size |"))
    assert [c.strip() for c in header.strip(" |").split("|")] == COLUMNS
    rows = [ln for ln in lines if ln.startswith("| ") and ln is not header and not ln.startswith("| size")]
    paths = [r.split("|")[2].strip() for r in rows]
    assert paths.count("reference") == paths.count("library") == paths.count("ratio (b)/(a)") >= 1
    assert any(ln.startswith("fp32 matmul") and "GFLOP/s" in ln for ln in lines)
    data = json.loads(out.read_text())
    assert data["matmul_gflops"] > 0
    for row in data["rows"]:
        if row["path"] != "ratio (b)/(a)":
            assert row["train img/s"] > 0 and row["score img/s"] > 0
            assert row["train GFLOP/img"] > row["score GFLOP/img"] > 0
            assert row["train peak MB"] > 0 and row["score peak MB"] > 0


def test_stability_judges_bf16_against_the_seed_spread():
    """stability.py --precisions fp32 bf16: the paired bf16 - fp32 interval and the seed s.d. decide."""
    bf16_line = load_benchmark("stability").bf16_line

    def rows(fp32, bf16):
        return ([{"seed": s, "precision": "fp32", "variant": "default", "auroc": a} for s, a in enumerate(fp32)]
                + [{"seed": s, "precision": "bf16", "variant": "default", "auroc": a} for s, a in enumerate(bf16)])
    same = bf16_line("0", rows([0.90, 0.92, 0.94], [0.901, 0.918, 0.941]), [0, 1, 2])
    assert "within the seed spread" in same and "[-" in same
    moved = bf16_line("0", rows([0.900, 0.901, 0.902], [0.850, 0.852, 0.849]), [0, 1, 2])
    assert "MOVES" in moved and "-0.05" in moved
    assert "no interval" in bf16_line("0", rows([0.9], [0.9]), [0])
