"""Tune the baselines per dataset on the validation protocol, which reads no test image.

    python benchmarks/tune_baselines.py --datasets mnist fmnist --classes 2 5 8 --methods ocsvm kde \\
        --jsonl benchmarks/results-tune-baselines.jsonl [--profile cpu] [--threads 1]
    python benchmarks/tune_baselines.py --datasets mnist fmnist --classes 2 5 8 --methods ae-l2 ae-ssim \\
        --jsonl benchmarks/results-tune-baselines.jsonl
    python benchmarks/tune_baselines.py --report --jsonl benchmarks/results-tune-baselines.jsonl

For each (dataset, class), the run of the profile (seed 0: the split the baselines sweep fits its
deterministic methods on) gives the training normals the baseline fits (`fit_and_heldout`, all
of them, as in `baselines.run_baseline`) and the validation set (`data.validation.validation_set`:
the held-out normals against other-class images of the official *training* split).  Each setting
of the grid (GRIDS below) is fitted with the library's own code (`baselines.sklearn_model`,
`baselines.train_ae` with the setting's learning rate) and scored on the validation set only:
the test split is never scored.

One JSON line per (dataset, class, method, setting) is appended to --jsonl; one already there is
not run again, so an interrupted tuning resumes.  The tables (at the end, and with --report
alone) give per dataset and method the validation AUROC of every setting per class and its mean
over the classes, and the pick: the highest mean (the first in grid order of a tie), printed as
the `baselines.TUNED` entry to commit.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from pyramid_lib import baselines as bl
from pyramid_lib import data as data_mod
from pyramid_lib.config import TrainConfig
from pyramid_lib.data.splits import fit_and_heldout
from pyramid_lib.data.validation import validation_set
from pyramid_lib.experiments import selection

# A setting is a dict of baselines.DEFAULTS[method]'s keys.  OC-SVM: nu (the share of training
# normals allowed outside the boundary) and gamma as a multiple of scikit-learn's "scale"
# (1 / (pixels * pixel variance)); KDE: the bandwidth on whitened PCA features ("cv": the
# cross-validated log-likelihood's choice, the untuned default); the AEs: the learning rate.
# The OC-SVM grid as first run (nu 0.01, 0.1, 0.5 x gamma 0.1 to 30) peaked at its edge, gamma 30,
# on MNIST 2, with nu 0.5 below nu 0.01 and 0.1 at every gamma (on MNIST 1 too): gamma was
# extended to 300 and nu 0.5 and gamma 0.1 dropped to keep the tuning within ~10 CPU minutes;
# those rows stay in the jsonl and are not shown.
GRIDS: dict[str, list[dict]] = {
    "ocsvm": [{"nu": nu, "gamma_scale": g} for nu in (0.01, 0.1) for g in (0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0)],
    "kde": [{"bandwidth": b} for b in ("cv", 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)],
    "ae-l2": [{"lr": lr} for lr in (1e-3, 3e-3, 1e-2)],
    "ae-ssim": [{"lr": lr} for lr in (1e-3, 3e-3, 1e-2)],
}


def key(dataset: str, cls: str, method: str, setting: dict, profile: str, epochs: int | None) -> str:
    return json.dumps([dataset, str(cls), method, setting, profile, epochs], sort_keys=True)


def tune_class(dataset: str, cls: str, methods: list[str], opts, log: selection.Log) -> list[dict]:
    """Every setting of `methods` not in `log` on one class; the new rows (appended to it)."""
    cfg = TrainConfig.from_profile(opts.profile, dataset=dataset, normal_class=str(cls), weights="random", seed=0,
                                   data_root=opts.data_root, download=False).validate()
    if opts.epochs:
        cfg = replace(cfg, epochs=opts.epochs).validate()
    todo = [(m, s) for m in methods for s in GRIDS[m]
            if not log.has(key(dataset, cls, m, s, opts.profile, opts.epochs))]
    if not todo:
        return []
    data = data_mod.load_for(cfg)
    fit, _ = fit_and_heldout(data, cfg)
    vset = validation_set(cfg, data)
    y = vset.labels.numpy()
    rows = []
    for method, setting in todo:
        t, c = time.perf_counter(), time.process_time()
        if method in bl.SKLEARN_METHODS:
            score, info = bl.sklearn_model(method, bl._flat(fit), setting, cfg.seed)
            fit_cpu = time.process_time() - c
            s = score(vset)
        else:
            model, hist = bl.train_ae(method, replace(cfg, lr=float(setting["lr"])), fit)
            fit_cpu = time.process_time() - c
            s = bl.ae_scores(method, model, vset)
            info = {"fit_images": len(fit), "epochs": len(hist), "final_loss": hist[-1]["loss"]}
        r = {"dataset": dataset, "class": str(cls), "method": method, "setting": setting, "profile": opts.profile,
             "epochs": opts.epochs,
             "val_auroc": float(roc_auc_score(y, s)), "val_normals": int((y == 0).sum()),
             "val_anomalies": int((y == 1).sum()), "fit_cpu_s": round(fit_cpu, 2),
             "cpu_s": round(time.process_time() - c, 2), "wall_s": round(time.perf_counter() - t, 2),
             "info": {k: (float(v) if isinstance(v, np.floating) else v) for k, v in info.items()}}
        print(f"| {dataset} | {cls} | {method} | {label(setting)} | {r['val_auroc']:.4f} | {r['fit_cpu_s']:.1f} | "
              f"{r['cpu_s']:.1f} |", flush=True)
        rows.append(log.append(r))
    return rows


def label(setting: dict) -> str:
    return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in setting.items())


def read_rows(path: Path | None) -> list[dict]:
    """The rows of --jsonl; a line that does not parse (a run killed while writing) is skipped
    with a warning (`selection.read_rows`)."""
    return selection.read_rows(path)


def row_key(r: dict) -> str:
    return key(r["dataset"], r["class"], r["method"], r["setting"], r["profile"], r.get("epochs"))


def report(rows: list[dict]) -> dict[str, dict[str, dict]]:
    """Print, per dataset, profile and method, every setting's validation AUROC per class and
    the mean over the classes that every setting has; return the picks {dataset: {method: setting}}."""
    picks: dict[str, dict[str, dict]] = {}
    def group(r):
        return r["dataset"], r["profile"], r.get("epochs"), r["method"]

    for dataset, profile, epochs, method in dict.fromkeys(group(r) for r in rows):
        rs = [r for r in rows if group(r) == (dataset, profile, epochs, method)]
        shown = {json.dumps(r["setting"], sort_keys=True): r["setting"] for r in reversed(rs)}  # as first written
        grid = [json.dumps(s, sort_keys=True) for s in GRIDS.get(method, [])]
        settings = [s for s in grid if s in shown]
        if len(settings) < len(shown):
            print(f"\n({len(shown) - len(settings)} setting(s) of {dataset} {method} outside today's grid not shown)")
        classes = sorted({r["class"] for r in rs}, key=lambda c: (len(c), c))
        auc = {(json.dumps(r["setting"], sort_keys=True), r["class"]): r["val_auroc"] for r in rs}
        common = [c for c in classes if all((s, c) in auc for s in settings)]
        run = f"profile {profile}" + (f", {epochs} epochs" if epochs else "")
        print(f"\n### {dataset}, {method} ({run}): validation AUROC (reads no test image)\n")
        print("| setting | " + " | ".join(f"class {c}" for c in classes) + f" | mean over {len(common)} classes |")
        print("|---|" + "---|" * (len(classes) + 1))
        means = {s: float(np.mean([auc[s, c] for c in common])) if common else float("nan") for s in settings}
        for s in settings:
            cells = " | ".join(f"{auc[s, c]:.4f}" if (s, c) in auc else "-" for c in classes)
            print(f"| {label(shown[s])} | {cells} | {means[s]:.4f} |")
        if not common:
            print("\nno class has every setting: nothing picked")
            continue
        best = max(settings, key=lambda s: means[s])  # max keeps the first of a tie
        picks.setdefault(dataset, {})[method] = shown[best]
        print(f"\npick for {dataset} {method}: {label(shown[best])} (mean {means[best]:.4f} over classes "
              f"{' '.join(common)}; the default: {label(bl.DEFAULTS[method])})")
    if picks:
        print(f"\nbaselines.TUNED entries: {json.dumps(picks, sort_keys=True)}")
    return picks


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["mnist", "fmnist"], choices=("mnist", "fmnist", "mnist-sample"))
    ap.add_argument("--classes", nargs="+", default=["2", "5", "8"])
    ap.add_argument("--methods", nargs="+", default=list(bl.SKLEARN_METHODS), choices=list(GRIDS))
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=None,
                    help="AEs: train this many epochs, not the profile's (smoke tests; the profile's runs use its own)")
    ap.add_argument("--data-root", default=None, help="default: $PYRAMID_DATA")
    ap.add_argument("--jsonl", type=Path, default=None, help="append one line per setting; those there are skipped")
    ap.add_argument("--report", action="store_true", help="only print the tables of --jsonl")
    ap.add_argument("--choice", type=Path, nargs="+", default=[],
                    help="committed choice files (benchmarks/choices/ae-lr-*.json) whose settings this tuning runs")
    ap.add_argument("--pick", action="store_true", help="write each --choice file's pick from --jsonl's tables")
    opts = ap.parse_args(argv)
    choices = {path: selection.require_committed(path) for path in opts.choice}
    for path, c in choices.items():
        if c["dataset"] not in opts.datasets or c["method"] not in opts.methods \
                or list(map(str, opts.classes)) != c["classes"]:
            raise selection.ChoiceError(f"{path}: this tuning is not the one committed there ({c['dataset']}, "
                                        f"{c['method']}, classes {' '.join(c['classes'])})")
        if [f"{s['lr']:g}" for s in GRIDS[c["method"]]] != [f"{float(x):g}" for x in c["candidates"]]:
            raise selection.ChoiceError(f"{path}: its candidates differ from GRIDS[{c['method']!r}]")
    if opts.pick:
        picks = report(read_rows(opts.jsonl))
        for path, c in choices.items():
            lr = picks[c["dataset"]][c["method"]]["lr"]
            best = next(x for x in c["candidates"] if float(x) == float(lr))
            selection.write_pick(path, best, {"lr": lr})
            print(f"{path}: pick {best} written; commit it")
        return 0
    if opts.report:
        if opts.jsonl is None:
            ap.error("--report prints the rows of --jsonl; give it")
        report(read_rows(opts.jsonl))
        return 0
    torch.set_num_threads(opts.threads)
    argv = sys.argv[1:] if argv is None else list(argv)
    print(f"# tune_baselines.py {' '.join(argv)}\n# torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    log = selection.Log(opts.jsonl, row_key)
    earlier = list(log.rows)
    print("| dataset | class | method | setting | validation AUROC | fit CPU s | CPU s |\n"
          "|---|---|---|---|---|---|---|", flush=True)
    rows = []
    with threadpool_limits(opts.threads):  # scikit-learn's BLAS and OpenMP too
        for dataset in opts.datasets:
            for cls in opts.classes:
                rows += tune_class(dataset, cls, opts.methods, opts, log)
    report([*earlier, *rows] if opts.jsonl else rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
