"""What the tutorial notebooks share, and the runner that executes them.

The notebooks in notebooks/ (00_tour ... 08_ablations) compute everything through pyramid_lib;
what more than one of them needs lives here:

    setup(quick, device, data_root, out_dir, notebook)   the settings of one notebook run (Setup)
    load_data(dataset, normal_class, setup)               a dataset, or a clearly announced stand-in
    train_and_score(cfg, data, setup)                     train (or reuse) one run, score it (RunResult)
    quick_sweep(experiment, setup)                        reproduce.sweep, tiny in quick mode
    ablation(data, setup)                                 encoders 1/2/4/6 and lambda 0 vs 1
    gather_results(results_root)                          every finished run under results/
    ... and small helpers for the figures of notebooks 01, 02 and 06.

Quick mode (env CI set, or PYRAMID_QUICK=1) trains for seconds on a few images and scores a
seeded, stratified subset of each test split, so that the whole suite runs on 2 CPU cores in
minutes; the other mode uses the paper's profile (Table I, ImageNet weights, meant for a GPU).
Runs are written under `out_dir` (default build/notebook-runs), never into results/.

Runner (for `make notebooks`):

    python -m pyramid_lib.notebooks run build/notebooks [--quick] [--only 03_mnist ...]

executes every notebook with papermill into build/notebooks/<name>.ipynb, outputs included."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

from .tutorial import NOTEBOOK_DIR, REPO


def notebooks(folder=None) -> list[Path]:
    """The numbered notebooks, in order."""
    folder = Path(folder or NOTEBOOK_DIR)
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def kernel_env(quick: bool | None = None) -> dict:
    """Environment for the notebook kernels: pyramid_lib importable, inline figures, quick flag."""
    env = {}
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(REPO) not in parts:
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), *parts])
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"  # CI exports Agg, which hides figures
    if quick:
        env["PYRAMID_QUICK"] = "1"
    return env


@contextlib.contextmanager
def _environ(update: dict):
    old = {k: os.environ.get(k) for k in update}
    os.environ.update(update)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def execute(notebook, output, parameters: dict | None = None, quick: bool | None = None,
            timeout: int | None = 1800, env: dict | None = None):
    """Run one notebook top to bottom with papermill (in the notebooks' folder, so relative
    paths work) and write it with its outputs to `output`.  Raises on the first failing cell."""
    import papermill as pm

    notebook, output = Path(notebook), Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with _environ({**kernel_env(quick), **(env or {})}):
        return pm.execute_notebook(str(notebook), str(output), parameters=parameters or {},
                                   cwd=str(notebook.parent), kernel_name="python3", progress_bar=False,
                                   log_output=False, execution_timeout=timeout)


def run(out_dir, quick: bool | None = None, only=None, folder=None, timeout: int | None = 1800) -> int:
    """Execute every notebook into out_dir (outputs kept); print a timing line for each."""
    out_dir = Path(out_dir)
    paths = notebooks(folder)
    if only:
        paths = [p for p in paths if any(p.stem == o or p.stem.startswith(o) for o in only)]
    if not paths:
        print(f"no notebooks found in {folder or NOTEBOOK_DIR}", file=sys.stderr)
        return 1
    failed, t_all = [], time.perf_counter()
    for p in paths:
        t0 = time.perf_counter()
        try:
            execute(p, out_dir / p.name, quick=quick, timeout=timeout)
            status = "ok"
        except Exception as e:  # a failing cell: keep going, report at the end
            failed.append(p.name)
            status = f"FAILED ({type(e).__name__}: {str(e).strip().splitlines()[-1][:200] if str(e).strip() else ''})"
        print(f"{p.name}: {status} ({time.perf_counter() - t0:.0f}s) -> {out_dir / p.name}", flush=True)
    print(f"{len(paths) - len(failed)}/{len(paths)} notebooks ran in {time.perf_counter() - t_all:.0f}s")
    return 1 if failed else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pyramid_lib.notebooks",
                                 description="Execute the tutorial notebooks with papermill, outputs kept.")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="execute every notebook into OUT (e.g. build/notebooks)")
    p.add_argument("out", help="output folder for the executed notebooks")
    p.add_argument("--quick", action="store_true", help="quick mode (as with CI set or PYRAMID_QUICK=1)")
    p.add_argument("--only", nargs="+", help="notebook names or number prefixes, e.g. 01 03_mnist")
    p.add_argument("--notebooks", help=f"folder of the notebooks (default {NOTEBOOK_DIR})")
    p.add_argument("--timeout", type=int, default=1800, help="seconds per cell (default 1800)")
    a = ap.parse_args(argv)
    return run(a.out, quick=a.quick or None, only=a.only, folder=a.notebooks, timeout=a.timeout)
