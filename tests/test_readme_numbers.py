"""The README's results numbers are the committed results' numbers (no number a command did not print).

Reads results/*/cpu/results.csv and results/baselines/cpu/results.csv, recomputes each mean the README
quotes, and looks for it in the README's text."""

from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _read(path):
    if not (ROOT / path).is_file():
        pytest.skip(f"{path} is not committed here")
    return pd.read_csv(ROOT / path, dtype={"normal_class": str})


@pytest.mark.parametrize("dataset, name", [("mnist", "MNIST"), ("fmnist", "Fashion-MNIST")])
def test_readme_results_table_matches_the_committed_results(dataset, name):
    ours = _read(f"results/{dataset}/cpu/results.csv")
    base = _read("results/baselines/cpu/results.csv")
    base = base[base.dataset == dataset]
    mean = lambda m: base[base.method == m].groupby("normal_class").auroc.mean().mean()  # noqa: E731
    row = next(line for line in README.splitlines() if line.startswith(f"| {name} mean AUROC"))
    assert f"{ours.auroc.mean():.4f}" in row, row
    assert f"{mean('ae-l2'):.4f} / {mean('ae-ssim'):.4f}" in row, row
    l0 = base[base.method == "ours-lambda0"].groupby("normal_class").auroc.mean()
    assert len(l0) == 10, "the README quotes lambda 0 on all 10 classes"
    assert f"{l0.mean():.4f} on {name}" in README
    l1 = ours.groupby("normal_class").auroc.mean()[l0.index]
    assert f"(lambda 1: {l1.mean():.4f}, better on {int((l1 > l0).sum())} of" in README
