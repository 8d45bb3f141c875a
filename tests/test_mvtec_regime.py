"""benchmarks/mvtec_regime.py end to end on a tiny synthetic category (slow: it trains)."""

import json

import pytest
from helpers import load_benchmark

from pyramid_lib.data.synthetic import synthetic_mvtec


@pytest.mark.slow
def test_the_criterion_is_recorded_before_the_test_split_and_ema_scores_an_average(tmp_path, capsys):
    synthetic_mvtec(tmp_path / "mvtec_ad" / "bottle", size=128, n_train=24, n_good=3)
    mvtec_regime = load_benchmark("mvtec_regime")

    out = tmp_path / "runs.jsonl"
    argv = ["--category", "bottle", "--candidates", "b8-10", "ema-b16-50", "--seeds", "0", "--epochs", "1",
            "--data-root", str(tmp_path), "--jsonl", str(out)]
    assert mvtec_regime.main(argv) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["candidate"] for r in rows] == ["b8-10", "ema-b16-50"] and rows[1]["ema"] == 0.99
    for r in rows:
        keys = list(r)
        assert keys.index("criterion_auroc") < keys.index("criterion_small_auroc") < keys.index("test_auroc")
        assert 0 <= r["criterion_auroc"] <= 1 and 0 <= r["test_auroc"] <= 1 and r["steps"] >= 1
    assert "picks:" in capsys.readouterr().out
    assert mvtec_regime.main(argv) == 0  # resumed: nothing trained again
    assert len(out.read_text().splitlines()) == 2
