"""Results pages: each experiment's README.md and figures, and results/README.md, from whatever exists.

`experiment_outputs(...)` is called by the CLI after every sweep; `build_report(out_root)`
(`pyramid-ad report`) rebuilds every experiment's page and figures and the one-page
results/README.md from the run folders on disk, so it can run at any time, also while sweeps are
still going.  Nothing here trains or scores: it only reads metrics.csv / scores.csv / run.json /
sweeps.csv / plan.csv.  Nothing outside the CLI imports reporting."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import logging
import platform
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
import torchmetrics

from .. import paper
from ..config import PROFILES
from ..data.mnist import FMNIST_CLASSES
from ..errors import ConfigError
from ..experiments.plan import plan, plan_frame, record_plan
from ..experiments.sweep import collect
from ..files import atomic_write_text
from .analysis import target_lines, trend_lines, variant_lines
from .figures import FIGURES, figures
from .tables import (
    ORDER,
    TITLES,
    _read,
    ablation_table,
    auroc_table,
    base_profile,
    baseline_results,
    baselines_table,
    is_variant,
    md_table,
    mvtec_table,
    planned,
    read_results,
)

log = logging.getLogger(__name__)

RANDOM_NOTE = ("**All results here use random (orthogonally initialised) weights for the ResNet18 backbone and "
               "the VGG11 perceptual network: no ImageNet weights were available where they were made.** "
               "The paper fine-tunes an ImageNet-pretrained ResNet18 and uses an ImageNet VGG11 for its loss.")


def _versions(base) -> dict:
    v = {}
    for p in sorted(Path(base).glob("runs/*/run.json"))[:1]:
        try:
            v.update(json.loads(p.read_text()).get("versions", {}))
        except (OSError, json.JSONDecodeError):
            pass
    v.update({"numpy": np.__version__, "pandas": pd.__version__, "scikit-learn": sklearn.__version__,
              "torchmetrics": torchmetrics.__version__, "submitit": importlib.metadata.version("submitit"),
              "platform": platform.platform()})
    return v


def resume_command(experiment: str, profile: str, base: Path) -> str:
    """The command that runs every planned run: the last one recorded in sweeps.csv without the options
    that narrow it to some runs (--classes, --methods, and --dataset when it names a dataset of the
    default plan), else the default.  For mvtec the categories asked for are the plan: kept as is."""
    sweeps = _read(Path(base) / "sweeps.csv")
    if not len(sweeps):
        return f"pyramid-ad reproduce {experiment} --profile {profile} --data-root <data> --jobs <N>"
    last = str(sweeps["command"].iloc[-1])
    if experiment == "mvtec":
        return last

    try:
        default_datasets = set(plan_frame(plan(experiment, "quick"))["dataset"])
    except ConfigError:  # not an experiment of ours (a folder someone added): keep every --dataset
        default_datasets = set()
    words, out, skipping = shlex.split(last), [], False
    for i, w in enumerate(words):  # drop the options that narrow the plan: what is left runs every planned run
        if w in ("--classes", "--methods") or (
                w == "--dataset" and i + 1 < len(words) and words[i + 1] in default_datasets):
            skipping = True
            continue
        if skipping and not w.startswith("--"):
            continue
        skipping = False
        out.append(w)
    return " ".join(shlex.quote(w) for w in out)


def status_lines(base: Path, res: pd.DataFrame, command: str) -> list[str]:
    plan = planned(base)
    done = set(res["run"]) if len(res) and "run" in res else set()
    names = list(plan["name"]) if len(plan) else sorted(done)
    missing = [n for n in names if n not in done]
    lines = [f"**Status: {len(done & set(names)) if names else len(done)} of {len(names)} planned runs finished.**"]
    if missing:
        lines.append(f"Missing (not yet run or still running): {', '.join(missing)}. The sweep is resumable: run the "
                     f"same command again (`{command}`); finished runs are skipped, an interrupted run continues "
                     "from its last complete epoch.")
    return lines


ABLATION_LIKE = ("ablation-encoders", "ablation-lambda")


BASELINE_NOTES = (
    "How the baselines were run (baselines.py): OC-SVM (RBF, nu = 0.1, gamma = 'scale') on raw pixels, and KDE "
    "(Gaussian, bandwidth by 5-fold cross-validated likelihood) on PCA-reduced pixels (32 components fitted on the "
    "training normals, whitened). LSA, from which the paper copied its OC-SVM and KDE columns, reports both on "
    "PCA-reduced pixels with settings not reproduced here; our OC-SVM uses raw pixels because on PCA features it "
    "misses what lies outside the normals' subspace (MNIST digits 0/1/8: 0.70/0.96/0.65 on 32 PCA components, "
    "0.988/0.997/0.883 on raw pixels). To keep them cheap both fit on a seeded subsample of at most 2,000 training "
    "normals (`fit_images`). The plain autoencoders (3 strided convs, a 64-d bottleneck, 3 transposed convs, "
    "sigmoid; about 0.29 M parameters) train with the same profile as our network (epochs, batch, learning rate, "
    "weight decay, training images), with the L2 loss or with 1 - SSIM (torchmetrics); the score is the per-image "
    "loss. `ours-lambda0` is our network trained with MSE only (lambda = 0), same profile.")


def _stand_in(plan: pd.DataFrame) -> str:

    parts = []
    for ds, g in plan.groupby("dataset"):
        cls = sorted(set(g.normal_class))
        names = [f"{c} ({FMNIST_CLASSES[int(c)]})" if ds == "fmnist" and c.isdigit() else c for c in cls]
        parts.append(f"{ds} classes {', '.join(names)}")
    return ("; ".join(parts) + " stand in for the paper's MVTec bottle and carpet, which are not available here. "
            "Run `pyramid-ad reproduce <ablation> --dataset mvtec` (default categories bottle, carpet) for the "
            "real thing.")


def setup_lines(experiment: str, profile: str, base: Path) -> list[str]:
    res = read_results(base)
    sweeps = _read(base / "sweeps.csv")
    v = _versions(base)
    L = ["## How these results were made", ""]
    if len(sweeps):
        cmds = list(dict.fromkeys(sweeps["command"]))
        L.append("- Command" + ("s" if len(cmds) > 1 else "") + ": " + "; ".join(f"`{c}`" for c in cmds))
        L.append(f"- Git commit(s) of the library: {', '.join(dict.fromkeys(sweeps['git_commit'].astype(str)))}")
        L.append(f"- Sweeps: {len(sweeps)} invocation(s), first {sweeps['started_utc'].iloc[0]}, last ended "
                 f"{sweeps['ended_utc'].iloc[-1]}, {sweeps['wall_seconds'].sum() / 3600:.2f} h of wall time in all "
                 "(see sweeps.csv)")
    L.append("- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()))
    if len(res):
        w = ", ".join(sorted(set(res["weights"].astype(str)))) if "weights" in res else "?"
        L.append(f"- Weights: {w} (ImageNet weights were not available: random = randomly initialised ResNet18 "
                 "backbone and VGG11 perceptual network)" if "random" in w else f"- Weights: {w}")
        L.append(f"- Device(s): {', '.join(sorted(set(res['device'].astype(str))))}")
        ep = sorted(set(res["epochs"].astype(int)))
        L.append(f"- Epochs: {', '.join(map(str, ep))}; training images per run: "
                 f"{int(res['fit_images'].min())}-{int(res['fit_images'].max())}")
        cpu = res.get("train_seconds", pd.Series(dtype=float)).fillna(0).sum() + \
            res.get("score_seconds", pd.Series(dtype=float)).fillna(0).sum()
        L.append(f"- Compute: {cpu / 3600:.2f} h summed over runs (training + scoring; runs may have run in parallel)")
        if {"train_seconds", "epochs", "fit_images"} <= set(res.columns):
            r = res[(res.train_seconds > 0) & (res.epochs > 0)]
            if len(r):
                ips = (r.fit_images * r.epochs / r.train_seconds)
                L.append(f"- Training time per run: {r.train_seconds.mean() / 60:.1f} min on average "
                         f"({r.train_seconds.min() / 60:.1f}-{r.train_seconds.max() / 60:.1f}), "
                         f"{ips.mean():.0f} training images/s; the machine's 2 cores were shared with other jobs, "
                         "so these are upper bounds")

    if base_profile(profile) in PROFILES:
        p = PROFILES[base_profile(profile)]
        if is_variant(profile):
            L.append(f"- Variant `{profile}`: profile `{base_profile(profile)}` with the settings its name adds "
                     "(see the commands above)")
        L.append(f"- Profile `{base_profile(profile)}`: " + ", ".join(f"{k} {val}" for k, val in p.items()) +
                 " (see pyramid_lib/profiles.py); Adam, weight decay 1e-4, lambda 1, 4 encoders unless the table "
                 "says otherwise; 10% of the training normals held out for the threshold")
    L.append("- Files: results.csv (one row per run), comparison.csv (beside the paper, where it has a table), "
             "runs/<name>/metrics.csv and scores.csv (per image), sweeps.csv, figures; checkpoints are not committed.")
    return L


def experiment_section(experiment: str, profile: str, base: Path, out_root, prefix: str = "") -> list[str]:
    """The markdown of an experiment's results: status, table beside the paper, figures."""
    res = read_results(base)
    L = status_lines(base, res, resume_command(experiment, profile, base))
    plan = planned(base)
    if experiment in ABLATION_LIKE and len(plan) and (plan.dataset != "mvtec").any():
        L.append("")
        L.append("**Stand-in:** " + _stand_in(plan))
    if experiment == "mvtec" and len(res) and set(res.normal_class) <= {"grid"}:
        r = res.iloc[0]
        try:
            bs = int(json.loads((base / "runs" / r.run / "config.json").read_text()).get("batch_size", 32))
        except (OSError, ValueError, AttributeError):
            bs = 32
        L.append("")
        L.append("**Demonstration, not a reproduction:** only a 25-image subset of MVTec `grid` is available here "
                 f"({int(r.fit_images)} training images train the network, {25 - int(r.fit_images)} are held out for "
                 f"the threshold; the test split has {int(r.n_test)} images: {int(r.n_normal)} good, "
                 f"{int(r.n_anomalous)} defective); the full category has 264 training and 78 test images. With "
                 f"so few images, random weights and {int(r.epochs)} epochs of "
                 f"{-(-int(r.fit_images) // bs)} batch(es) each (that is {int(r.epochs) * -(-int(r.fit_images) // bs)} "
                 "optimiser steps: the reconstructions below are still close to a constant image) the numbers are "
                 "noise; the run shows that the MVTec path works end to end (loader, masks, error maps, thresholds, "
                 "tables). "
                 "To run the real categories: put MVTec AD's category folders under `<data>/mvtec_ad/` "
                 "(e.g. `<data>/mvtec_ad/bottle/train/good`) and run `pyramid-ad reproduce mvtec --profile cpu "
                 "--data-root <data>` (all 15) or with `--classes bottle carpet`; with a GPU and ImageNet weights, "
                 "`--profile paper --weights imagenet`.")
    L.append("")
    if not len(res):
        L.append("No finished runs yet.")
        return L
    if experiment in ("mnist", "fmnist"):
        b = baseline_results(out_root, profile)
        t = auroc_table(experiment, res, b)
        L.append("AUROC per normal class. `ours` = this kit, random weights, profile "
                 f"`{profile}`; `paper Ours` = the paper's column; `... re-run` = baselines re-run by this kit on the "
                 "same splits (results/baselines); `paper <method>` = columns the paper copied from other papers"
                 + (" (Table III, from LSA)." if experiment == "mnist" else " (Table II; the paper gives only means).")
                 + " Each column's mean row averages the classes that column has (n_runs says how many for ours): "
                 "means over different class sets are not comparable until every run has finished.")
        L.append("")
        L.append(md_table(t))
        L.append("")
        if is_variant(profile):
            L += variant_lines(experiment, profile, res, out_root)
        else:
            L += target_lines(experiment, res, b, len(plan) or 10, base, out_root, profile)
        L.append("")
        L.append("Thresholded rates (the paper reports none for this table): TPR/TNR at the paper-style threshold "
                 "(Youden, chosen on the test labels: optimistic) and at the 95% quantile of held-out training normals "
                 "(no test labels).")
        L.append("")
        cols = ["normal_class", "auroc", "auroc_mse", "auroc_ssim", "youden_tpr", "youden_tnr", "heldout_tpr",
                "heldout_tnr", "epochs", "fit_images", "train_seconds"]
        L.append(md_table(res[[c for c in cols if c in res]].sort_values("normal_class", key=lambda s: s.astype(int)
                                                                       if s.str.isdigit().all() else s)))
    elif experiment == "mvtec":
        L.append("TPR/TNR at the paper-style threshold (Youden's J on the test labels, as the authors' code does: "
                 "optimistic), beside the paper's Table IV; AUROC and the rates at a threshold fixed on held-out "
                 "training normals (no test labels) are ours only. The mean row averages the categories we ran, "
                 "ours and the paper's alike. Where is the defect (ours only; the paper reports neither): "
                 "`pixel_auroc`, the AUROC over every pixel of every test image, and `aupro`, the area under the "
                 "per-region overlap curve up to 30% pixel FPR divided by 0.3 (MVTec AD's definitions), both of "
                 "the `loss` anomaly map at the input size against the ground-truth masks; `not measured`: the run "
                 "was evaluated before the kit computed them (`pyramid-ad evaluate <run>` measures them where the "
                 "checkpoint is; checkpoints are not committed).")
        L.append("")
        L.append(md_table(mvtec_table(res)))
    elif experiment in ABLATION_LIKE:
        t = ablation_table(experiment, res)
        if experiment == "ablation-encoders":
            ssim, acc = paper.ABLATION["ssim"], paper.ABLATION["accuracy"]
            L.append("The paper (bottle, carpet): mean SSIM of normal reconstructions below "
                     f"{ssim['bottle']['one_or_two_encoders_below']} / {ssim['carpet']['one_or_two_encoders_below']} "
                     f"with 1-2 encoders, above {ssim['bottle']['four_encoders_above']} / "
                     f"{ssim['carpet']['four_encoders_above']} with 4; accuracy below "
                     f"{acc['bottle']['one_or_two_encoders_below']} / {acc['carpet']['one_or_two_encoders_below']} "
                     f"with 1-2 encoders, {acc['bottle']['four_encoders']} / {acc['carpet']['four_encoders']} "
                     "with 4; 6 encoders 'pretty much same' as 4. Those numbers are for MVTec, not comparable with "
                     "the stand-in classes; compare the trend.")
        else:
            L.append("The paper (Fig. 5, bottle and carpet) gives no numbers, only that the perceptual loss "
                     "'greatly enhanced' the AUC over MSE alone. Compare the trend.")
        L.append("")
        L.append(md_table(t))
        L += ["", *trend_lines(experiment, res)]
    elif experiment == "baselines":
        L.append("AUROC of each re-run baseline on the same one-class splits as our network (train = normal class "
                 "of the official train split minus 10% held out; test = the whole official test split). "
                 "`ours (lambda=1)` comes from results/<dataset>/" + profile + ".")
        L.append("")
        L.append(md_table(baselines_table(res, out_root, profile)))
        L.append("")
        L.append(BASELINE_NOTES)
    figs = [f for f in FIGURES.get(experiment, ()) if (base / f).is_file()]
    if figs:
        L.append("")
        L += [f"![{f}]({prefix}{f})" for f in figs]
    run_figs = sorted(base.glob("runs/*/reconstructions.png"))
    if experiment == "mvtec" and run_figs:
        L.append("")
        L += [f"![{p.parent.name} reconstructions]({prefix}runs/{p.parent.name}/reconstructions.png)" for p in run_figs]
    return L


def write_experiment_readme(experiment: str, profile: str, base: Path, out_root="results") -> Path:
    base = Path(base)
    L = [f"# {TITLES.get(experiment, experiment)}: profile `{profile}`", "",
         f"_Generated by `pyramid-ad report` / the sweep on "
         f"{dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; do not edit by hand._", "",
         RANDOM_NOTE, ""]
    L += experiment_section(experiment, profile, base, out_root)
    L += [""] + setup_lines(experiment, profile, base)
    path = base / "README.md"
    atomic_write_text(path, "\n".join(L) + "\n")
    return path




def experiment_outputs(experiment: str, profile: str, base: Path, todo=None, out_root="results") -> Path:
    """After a sweep: record the plan, draw the figures, write README.md."""
    base = Path(base)
    if todo is not None:
        record_plan(base, todo)
    res = read_results(base)
    try:
        figures(experiment, base, res, out_root, profile)
    except Exception as e:  # a figure never costs a results page
        log.warning("figures of %s failed: %s: %s", base, type(e).__name__, e)
    return write_experiment_readme(experiment, profile, base, out_root)


def experiment_folders(out_root="results") -> list[tuple[str, str, Path]]:
    out_root = Path(out_root)
    found = []
    for exp in ORDER:
        for prof_dir in sorted((out_root / exp).glob("*")) if (out_root / exp).is_dir() else []:
            if prof_dir.is_dir() and (prof_dir / "runs").is_dir():
                found.append((exp, prof_dir.name, prof_dir))
    return found


def build_report(out_root="results", refresh: bool = True) -> Path:
    """Rebuild every experiment's results (results.csv, figures, README.md) and results/README.md."""

    out_root = Path(out_root)
    L = ["# Results", "",
         f"_Rebuilt by `pyramid-ad report` on {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} "
         "from the run folders that exist; each experiment's own README.md has the commands, versions and timing._",
         "", RANDOM_NOTE, ""]
    found = experiment_folders(out_root)
    if not found:
        L.append("No results yet: run `pyramid-ad reproduce <experiment> --profile cpu`.")
    absent = [e for e in ORDER if e not in {f[0] for f in found}]
    if found and absent:
        L.append("Not run yet (no finished run): " + ", ".join(f"`{e}` (`pyramid-ad reproduce {e} --profile "
                                                             f"{'quick' if e.startswith('ablation') else 'cpu'}`)"
                                                             for e in absent) + ".")
        L.append("")
    for exp, prof, base in found:
        if refresh:
            collect(exp, base)
            experiment_outputs(exp, prof, base, None, out_root)
        L += [f"## {TITLES.get(exp, exp)}: profile `{prof}`", "",
              f"Details: [{exp}/{prof}/README.md]({exp}/{prof}/README.md)", ""]
        L += experiment_section(exp, prof, base, out_root, prefix=f"{exp}/{prof}/")
        L.append("")
    path = out_root / "README.md"
    atomic_write_text(path, "\n".join(L) + "\n")
    return path
