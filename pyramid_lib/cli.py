"""The command line: `pyramid-ad demo | train | evaluate | predict | reproduce | report | data` (also
`python -m pyramid_lib`): each sub-command's function and `main`, which runs one.

The parser and every option are in arguments.py.  Errors are one line on stderr and a non-zero exit
code; Ctrl-C and SIGTERM stop a command with exit 130 and a sentence on what it left (INTERRUPTED)."""

from __future__ import annotations

import functools
import logging
import sys
import time
from pathlib import Path

from . import config
from . import data as data_mod
from .arguments import (
    DEFAULT_PROFILE,
    DEFAULT_SEEDS,
    DEMO_FIELDS,
    REPRODUCE_FIELDS,
    SEEDED_PROFILES,
    TRAIN_FIELDS,
    build_parser,
    config_from_args,
    given,
)
from .config import TrainConfig
from .data import inventory, mvtec
from .data.folder import check_normal_class
from .data.splits import holdout
from .engine.build import pick_device, resolve_weights
from .engine.estimate import duration, estimate
from .engine.evaluate import evaluate_run
from .engine.run_dir import existing_run
from .engine.score_files import score_files
from .engine.score_inputs import describe_not_scored
from .engine.trainer import train
from .errors import PyramidError
from .experiments.demo import DEMO_EPOCHS, run_demo
from .experiments.plan import plan
from .experiments.sweep import shell_command, sweep
from .experiments.verify import cmd_verify
from .files import check_writable, os_error_message, stops_cleanly
from .lab.commands import LAB_COMMANDS
from .model import weights
from .reporting.pages import build_report, experiment_outputs
from .reporting.records import DIVERGED
from .reporting.slides import write_slides


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
