"""How far apart the kit's numbers land on two CPU kernel sets of one machine (the README's
"which results are bit-identical across CPU kinds", and the tolerance the tests state).

torch runs AVX-512 or AVX2 kernels by the processor (tests/kernels.py); they round differently in
the last bits.  Measured here, in one process tree on one machine, against the processor's default:

1. scores: one trained run (the demo's data, 2 epochs) evaluated twice, once per kernel set, and once
   more in the default set with another batch size: the largest relative difference of any image's
   score, and whether the AUROC and the held-out threshold are bit-identical.
2. training (--demo): `pyramid-ad demo` run once per kernel set: the AUROC of each.

    python benchmarks/kernel_rounding.py [--demo] [--out benchmarks/results-kernel-rounding.log]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from kernels import LOWER, capability  # noqa: E402

PY = [sys.executable, "-m", "pyramid_lib"]
SCORES = ["loss", "mse", "perceptual", "ssim"]


def run(cmd: list[str], env: dict | None = None) -> str:
    out = subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
    return out.stdout


def scores(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "scores.csv")


def rel_diff(a: pd.DataFrame, b: pd.DataFrame) -> float:
    x, y = a[SCORES].to_numpy(float), b[SCORES].to_numpy(float)
    return float(np.max(np.abs(x - y) / np.maximum(np.abs(x), 1e-12)))


def batch_difference(run_dir: Path, batch_size: int) -> float:
    """Largest relative difference between scores.csv's test scores and the same run's scores of the
    same images computed `batch_size` at a time, in this process (the default kernels)."""
    from pyramid_lib import data as data_mod
    from pyramid_lib.engine.evaluate import score_images
    from pyramid_lib.engine.run_dir import RunDir

    run = RunDir(run_dir)
    cfg, model, loss = run.load("cpu")
    again = score_images(model, loss, data_mod.load_for(cfg).test, batch_size=batch_size, progress=False)
    test, _ = run.read_scores()
    return rel_diff(test.reset_index(drop=True), again.reset_index(drop=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo", action="store_true", help="also train the demo once per kernel set")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results-kernel-rounding.log"))
    a = ap.parse_args()
    cap = capability()
    if cap not in LOWER:
        raise SystemExit(f"torch runs {cap} kernels here: no lower set to compare with")
    aten, onednn = LOWER[cap]
    lower = {"ATEN_CPU_CAPABILITY": aten, "ONEDNN_MAX_CPU_ISA": onednn}
    lines = [f"$ python benchmarks/kernel_rounding.py{' --demo' if a.demo else ''}",
             f"processor kernels: default {cap}, lower {aten.upper()} (ATEN_CPU_CAPABILITY={aten} "
             f"ONEDNN_MAX_CPU_ISA={onednn}); torch threads {os.environ.get('OMP_NUM_THREADS', 'default')}"]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "run"
        run([*PY, "train", "--dataset", "mnist-sample", "--normal-class", "0", "--profile", "laptop", "--epochs", "2",
             "--weights", "random", "--out", str(base)])
        runs = {}
        for name, env in (("default", {}), ("lower", lower)):
            runs[name] = Path(shutil.copytree(base, Path(tmp) / name))
            run([*PY, "evaluate", str(runs[name])], env)
        metrics = {k: pd.read_csv(v / "metrics.csv").iloc[0] for k, v in runs.items()}
        d = rel_diff(scores(runs["default"]), scores(runs["lower"]))
        lines += ["", "| measured (one checkpoint, 2 epochs, mnist-sample digit 0) | value |", "|---|---|",
                  f"| largest relative difference of an image's score, {cap} vs {aten.upper()} | {d:.2e} |"]
        for bs in (1, 7):
            lines.append(f"| largest relative difference of an image's score, {cap}, batches of {bs} vs evaluate's | "
                         f"{batch_difference(runs['default'], bs):.2e} |")
        for m in ("auroc", "heldout_threshold", "youden_threshold"):
            x, y = metrics["default"][m], metrics["lower"][m]
            same = "identical" if x == y else f"{abs(x - y):.2e}"
            lines.append(f"| {m}: {cap} {x!r}, {aten.upper()} {y!r} | {same} |")
        if a.demo:
            lines += ["", "| `pyramid-ad demo` (20 epochs, seed 0) trained on | AUROC |", "|---|---|"]
            for name, env in (("default", {}), ("lower", lower)):
                out = Path(tmp) / f"demo-{name}"
                run([*PY, "demo", "--out", str(out)], env)
                au = pd.read_csv(out / "metrics.csv").auroc.iloc[0]
                lines.append(f"| {cap if name == 'default' else aten.upper()} kernels | {au:.4f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
