"""Small results trees for the reporting tests: run folders (config.json, run.json, metrics.csv) with
several seeds, an ImageNet run and runs made before the kit recorded "init" and "machine"."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pyramid_lib.config import TrainConfig
from pyramid_lib.experiments.sweep import collect

NETWORK = ("ours", "ours-lambda0")


def make_run(base: Path, name: str, *, dataset="mnist", cls="0", seed=0, auroc=0.9, method="ours",
             weights="random", epochs=6, lr=3e-3, lr_schedule="cosine", encoders=4, lambda_=1.0, init=True,
             machine=None, commit="c0ffee", profile="cpu", train_limit=None, **metrics) -> Path:
    """One finished run folder under base/runs/<name>; `init=False` and `machine=None` leave those
    records out, as runs made before the kit kept them."""
    d = Path(base) / "runs" / name
    d.mkdir(parents=True)
    cfg = TrainConfig(dataset=dataset, normal_class=cls, epochs=epochs, lr=lr, lr_schedule=lr_schedule, seed=seed,
                      weights="imagenet" if weights == "imagenet" else "random", profile=profile,
                      encoders=encoders, lambda_=lambda_ if method in NETWORK else 1.0,
                      train_limit=train_limit).to_dict()
    if method not in NETWORK:
        cfg["method"] = method
    (d / "config.json").write_text(json.dumps(cfg))
    state = {"status": "finished", "device": "cpu", "versions": {"python": "3.11.7", "torch": "2.9.0",
                                                                  "commit": commit}}
    if init and method in NETWORK:
        start = "imagenet" if weights == "imagenet" else "orthogonal"
        state["init"] = {"backbone": start, "perceptual": start, "rest": "orthogonal"}
    if machine is not None:
        state["machine"] = machine
    if commit is None:
        del state["versions"]["commit"]
    (d / "run.json").write_text(json.dumps(state))
    fitted_once = method in ("ocsvm", "kde")
    row = {"dataset": dataset, "normal_class": cls, "weights": weights if method in NETWORK else
           "none (no pretrained part)", "profile": profile, "epochs": 0 if fitted_once else epochs,
           "encoders": encoders if method in NETWORK else None, "lambda": lambda_ if method in NETWORK else None,
           "seed": seed, "fit_images": 100, "train_seconds": 60.0, "device": "cpu", "auroc": auroc,
           "auroc_mse": auroc - 0.01, "auroc_perceptual": auroc - 0.02, "auroc_ssim": auroc + 0.01,
           "youden_tpr": 0.8, "youden_tnr": 0.7, "youden_accuracy": 0.75, "heldout_tpr": 0.6, "heldout_tnr": 0.95,
           "heldout_accuracy": 0.65, "ssim_normal": 0.5, "n_test": 50, "n_normal": 10, "n_anomalous": 40, **metrics}
    if method not in NETWORK:
        row["method"] = method
    pd.DataFrame([row]).to_csv(d / "metrics.csv", index=False)
    return d


SHARED = {"cpus": 2, "torch_threads": 1, "load_start": [3.2], "load_end": [2.5]}
QUIET = {"cpus": 2, "torch_threads": 1, "load_start": [0.4], "load_end": [0.9]}

# AUROC by (class, seed): ours a little above ae-l2 on every class, ocsvm fitted once
OURS = {("0", 0): 0.95, ("0", 1): 0.96, ("0", 2): 0.94, ("1", 0): 0.90, ("1", 1): 0.92, ("1", 2): 0.91,
        ("2", 0): 0.80, ("2", 1): 0.83, ("2", 2): 0.82}


def results_tree(root: Path) -> Path:
    """results/ with mnist/cpu (3 classes x 3 seeds, records kept; seed 0's machine shared), baselines/cpu
    (OC-SVM fitted once, AE L2 over 3 seeds, lambda 0 over 3 seeds; AE L2 on the two MVTec categories,
    2 seeds), fmnist/cpu (two ImageNet runs, one
    run without init/machine/commit records) and mvtec/cpu (two categories, two seeds)."""
    out = Path(root) / "results"
    mnist = out / "mnist" / "cpu"
    for (c, s), a in OURS.items():
        make_run(mnist, f"mnist-{c}-s{s}", cls=c, seed=s, auroc=a, machine=SHARED if s == 0 else QUIET)
    base = out / "baselines" / "cpu"
    for c in ("0", "1", "2"):
        make_run(base, f"mnist-{c}-ocsvm-s0", cls=c, method="ocsvm", auroc=OURS[(c, 0)] + 0.001,
                 settings="features=raw pixels;nu=0.1;gamma=scale")
        for s in range(3):
            make_run(base, f"mnist-{c}-ae-l2-s{s}", cls=c, seed=s, method="ae-l2",
                     auroc=OURS[(c, s)] - 0.05 - 0.001 * s, settings="parameters=288931")
            make_run(base, f"mnist-{c}-ours-lambda0-s{s}", cls=c, seed=s, method="ours-lambda0", lambda_=0.0,
                     auroc=OURS[(c, s)] - 0.002 * (s - 1), machine=QUIET)
    fm = out / "fmnist" / "cpu"
    make_run(fm, "fmnist-0", dataset="fmnist", cls="0", weights="imagenet", auroc=0.93, machine=QUIET)
    make_run(fm, "fmnist-1", dataset="fmnist", cls="1", weights="imagenet", auroc=0.97, machine=QUIET)
    make_run(fm, "fmnist-2", dataset="fmnist", cls="2", weights="imagenet", auroc=0.88, init=False, commit=None)
    mv = out / "mvtec" / "cpu"
    for c, rates in (("grid", ((0.9, 0.5), (0.8, 0.6))), ("bottle", ((0.7, 0.9), (0.6, 0.95)))):
        for s, (tpr, tnr) in enumerate(rates):
            counts = {"n_test": 83, "n_normal": 20, "n_anomalous": 63} if c == "bottle" else {}  # grid: a subset
            make_run(mv, f"mvtec-{c}-s{s}", dataset="mvtec", cls=c, seed=s, auroc=0.7, youden_tpr=tpr,
                     youden_tnr=tnr, machine=QUIET, **counts)
    for c, (tpr, tnr) in (("bottle", (0.9, 0.9)), ("grid", (0.5, 0.5))):  # ae-l2 above ours on bottle only
        for s in range(2):
            make_run(base, f"mvtec-{c}-ae-l2-s{s}", dataset="mvtec", cls=c, seed=s, method="ae-l2", auroc=0.6,
                     youden_tpr=tpr, youden_tnr=tnr)
    for exp, base_ in (("mnist", mnist), ("baselines", base), ("fmnist", fm), ("mvtec", mv)):
        collect(exp, base_)
        write_plan(base_)
    return out


def write_plan(base: Path, extra=()) -> None:
    """plan.csv as a sweep records it: every run folder under base/runs, plus the names in `extra`."""
    res = pd.read_csv(base / "results.csv", dtype={"normal_class": str})
    plan = res[["run", "method", "dataset", "normal_class", "seed"]].rename(columns={"run": "name"})
    more = pd.DataFrame([{"name": n, "method": "ours", "dataset": res["dataset"].iloc[0], "normal_class": "9",
                          "seed": 0} for n in extra])
    pd.concat([plan, more], ignore_index=True).to_csv(base / "plan.csv", index=False)
