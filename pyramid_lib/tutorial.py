"""Notebook setup and the run cache that the tutorial notebooks (notebooks/00_tour ... 08_ablations) share.

    setup(profile, device, data_root, work, notebook)   the settings of one notebook run (Setup)
    load_data(dataset, normal_class, setup)             a dataset, or a clearly announced stand-in
    train_cached(cfg, data, setup)                      train once (or reuse) one run, score it (RunResult)
    roc_inputs(run_dirs)                                the scores of cached runs, for plots.roc_figure
    committed_results, made_by                         re-exported from experiments.results

The figures are in plots.py; what only one notebook teaches is written in that notebook, where
the reader sees it.  Every notebook's parameters cell takes a profile (config.PROFILES): `laptop`
by default on a CPU, `quick` in CI (seconds; scores at most 1,000 test images, recorded as the
run's `test_limit`), `cpu` and `paper` for the full runs.  Before a run trains, `train_cached`
prints the time it should take on this machine now (`engine.estimate`, measured in the process)
and, after, the time it took.  Runs live under `work`/runs (a per-user cache folder, or
$PYRAMID_WORK), named by their config and their data's content, never in results/.  Standard tools execute the
notebooks: nbmake in `make test`, papermill in `make notebooks` (notebooks/execute.py).  The
helpers print what they did: telling the notebook's reader is their job.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
import platformdirs
import torch

from . import data as data_mod
from . import machine
from .config import TrainConfig, get_profile
from .data import registry
from .engine import data_record
from .engine.build import pick_device
from .engine.estimate import duration, estimate
from .engine.run_dir import RunDir
from .errors import DataError
from .experiments.jobs import run_one
from .experiments.results import RESULTS, committed_results, made_by
from .files import announced_lock
from .model import weights
from .model.anomaly_map import predict
from .plots import weights_note

__all__ = ["CHANCE_MARGIN", "DATA_SOURCE_MIME", "RESULTS", "WORKS_FROM", "RunResult", "Setup", "cache_key",
           "committed_results", "default_data", "default_profile", "default_work", "load_data", "made_by", "roc_inputs",
           "run_dir", "setup", "train_cached", "verdict"]

KIT = Path(__file__).resolve().parents[1]  # the clone: notebooks may run from a copy elsewhere
DEFAULT_DATA = KIT / "data"
# the mime type of the record load_data leaves in a notebook's outputs: notebooks/execute.py reads it
# to tell a notebook executed on real data from one executed on a stand-in
DATA_SOURCE_MIME = "application/vnd.pyramid-ad.data-source+json"


def default_profile(environ=None) -> str:
    """The profile a notebook runs when its parameters cell says PROFILE = None: $PYRAMID_PROFILE
    when set (CI sets quick), else `laptop`, on a GPU too: `paper` (600 epochs, ImageNet weights)
    runs only when asked for by name."""
    env = os.environ if environ is None else environ
    return env.get("PYRAMID_PROFILE") or "laptop"


def default_work(environ=None) -> Path:
    """Where the notebooks' runs are cached: $PYRAMID_WORK when set, else this user's cache folder
    (platformdirs: ~/.cache/pyramid-ad on Linux, ~/Library/Caches/pyramid-ad on macOS,
    %LOCALAPPDATA%\\pyramid-ad\\Cache on Windows), so a kit on a read-only or shared disk still
    works, and each user has their own runs."""
    env = os.environ if environ is None else environ
    return Path(env["PYRAMID_WORK"]) if env.get("PYRAMID_WORK") else platformdirs.user_cache_path("pyramid-ad", False)


def default_data(environ=None) -> Path:
    """Where the notebooks look for datasets: $PYRAMID_DATA when set, else the kit's data/ folder."""
    env = os.environ if environ is None else environ
    return Path(env["PYRAMID_DATA"]) if env.get("PYRAMID_DATA") else DEFAULT_DATA


@dataclass
class Setup:
    """What one notebook run uses: the profile (config.PROFILES), device, weights, data root and
    the work folder whose `runs/` every notebook shares (a run trained by 03 is reused by 07)."""

    profile: str  # quick, laptop, cpu or paper
    device: str
    weights: str  # "random" or "imagenet", resolved
    data_root: Path
    work: Path
    notebook: str

    def config(self, data: data_mod.OneClassData, **overrides) -> TrainConfig:
        """The validated TrainConfig of one run of this notebook on `data` (from `load_data`, a
        stand-in folder included): the profile, its weights and data root, then `overrides`
        (TrainConfig fields).  Raises ConfigError."""
        if data.dataset == "folder":  # the stand-in: the run must point at its folder
            overrides.setdefault("data_root", str(Path(data.train.names[0]).parents[2]))
        base = {"weights": self.weights, "data_root": str(self.data_root), "download": self.profile != "quick"}
        if registry.get(data.dataset).files:
            base["input_size"] = data.input_size
        return TrainConfig.from_profile(self.profile, dataset=data.dataset, normal_class=str(data.normal_class),
                                        **{**base, **overrides}).validate()

    def describe(self) -> str:
        p = get_profile(self.profile)
        return (f"profile: {self.profile} ({p['epochs']} epochs, at most {p['train_limit'] or 'all'} training "
                f"normals, batch {p['batch_size']}, lr {p['lr']:g} {p['lr_schedule']})\ndevice: {self.device}\n"
                f"weights: {self.weights}"
                f"{'  <- random, NOT ImageNet: numbers are not the paper' if self.weights != 'imagenet' else ''}\n"
                f"data root: {self.data_root}\nruns (shared by the notebooks): {self.work / 'runs'}")


def setup(profile: str | None = None, device: str = "auto", data_root=None, work=None,
          notebook: str = "notebook", threads: int | None = None) -> Setup:
    """Resolve a notebook's parameters cell into a Setup and print what it will do (for the reader).

    `profile`: quick, laptop, cpu or paper; None picks `default_profile()` (laptop unless
    $PYRAMID_PROFILE says otherwise).
    Weights: random for quick and laptop (no download attempt); ImageNet for cpu and paper when
    they can be had, else (cpu) random, said loudly, or (paper) WeightsUnavailable.  `data_root`
    defaults to $PYRAMID_DATA then <kit>/data, `work` to `default_work()`.  torch's thread count is
    set by `machine.choose_threads(threads)` (fewer when other work keeps the cores busy) and printed.
    On a CPU, cpu and paper first print the measured time per run (`engine.estimate`), before any download.
    Raises ConfigError for an unknown profile."""
    profile = profile or default_profile()
    get_profile(profile)  # ConfigError naming the choices
    dev = str(pick_device(device))
    root = Path(data_root) if data_root else default_data()
    work = Path(work) if work else default_work()
    t = machine.choose_threads(threads)
    print(t.describe() + (f"\n{t.note}" if t.note else ""))
    if profile in ("cpu", "paper") and dev == "cpu":  # before anything starts (a weights download included)
        e = estimate(TrainConfig.from_profile(profile, dataset="mnist", weights="random"), 6000, 10_000, dev, 2)
        print(f"ESTIMATED TIME on this CPU now: one MNIST run of the {profile} profile takes {e.describe()}; "
              "each notebook says how many runs it trains, and each run prints its own estimate before it starts.")
    if profile in ("quick", "laptop"):
        w = "random"
    elif profile == "paper":
        w = weights.resolve("imagenet")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            w = weights.resolve("auto")
        if w == "random":
            print("NOTE: no ImageNet weights here: the cpu profile runs with RANDOM weights; results say so.")
    s = Setup(profile, dev, w, root, work, notebook)
    print(s.describe())
    return s


def _digest(obj) -> str:  # a short, stable name for a set of settings
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:10]


# where the data lies and whether it may be downloaded: not what a run computes, so not in its cache key
_PLACE_FIELDS = ("data_root", "download")


def cache_key(cfg: TrainConfig, data: data_mod.OneClassData) -> str:
    """The name of `cfg`'s run on `data` in the cache: dataset, class, profile and a digest of the
    config without where the data lies (`data_root`) together with the data's content (the train
    and test digests that data.json keeps, `data_record`).  The same settings on the same images
    give the same name on any machine and at any path, so a run trained by a lecturer and handed
    out (`pyramid-ad export` / `import`) is found by a student's notebook."""
    settings = {k: v for k, v in cfg.to_dict().items() if k not in _PLACE_FIELDS}
    content = {k: v["digest"] for k, v in data_record.make_entries(data).items()}
    return f"{cfg.dataset}-{str(cfg.normal_class).replace('/', '_')}-{cfg.profile}-{_digest([settings, content])}"


def run_dir(setup: Setup, cfg: TrainConfig, data: data_mod.OneClassData) -> RunDir:
    """The cached run of `cfg` on `data`: setup.work/runs/<cache_key>, so the same settings on the
    same images in any notebook (or a handed-out copy) find the same run."""
    return RunDir(setup.work / "runs" / cache_key(cfg, data), setup.device)


def load_data(dataset: str, normal_class, setup: Setup) -> tuple[data_mod.OneClassData, str]:
    """Load a dataset for a notebook; when it is absent, print so (for the reader) and use a stand-in.

    The stand-in is the registry's (`Dataset.stand_in`): mnist / fmnist absent -> the embedded
    `mnist-sample` (real MNIST, 1,000 test images); mvtec absent -> a synthetic MVTec-layout folder
    (not MVTec).  Returns (data, note): `note` is
    "" for the real thing and otherwise one line saying what was used instead.  The whole test
    split is returned; a run scores at most its config's `test_limit` of it.  Raises DataError
    for other datasets that are absent.
    """
    note = ""
    try:
        data = data_mod.load(dataset, normal_class, setup.data_root, download=setup.profile != "quick")
    except DataError as e:
        stand_in = registry.REGISTRY[dataset].stand_in if dataset in registry.REGISTRY else None
        if stand_in is None:
            raise
        data, note = stand_in(dataset, normal_class, setup.work, e)
    if note:
        print("=" * 78 + "\n" + note + "\n" + "=" * 78)
    print(data.describe())
    _record_source(dataset, normal_class, data, note, setup)
    return data, note


def _record_source(dataset, normal_class, data, note: str, setup: Setup) -> None:
    """Leave in the notebook's outputs (when it runs in a kernel) which data it used, real or
    stand-in, for notebooks/execute.py; the record shows as nothing (its text is empty)."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return
    if get_ipython() is None:
        return
    record = {"dataset": dataset, "normal_class": str(normal_class), "stand_in": bool(note),
              "used": f"{data.dataset}:{data.normal_class}", "root": str(setup.data_root)}
    display({DATA_SOURCE_MIME: record, "text/plain": ""}, raw=True)


@dataclass
class RunResult:
    """One trained and scored run, everything a notebook shows about it.

    `run` is its RunDir: the model and loss are loaded from the checkpoint once (`RunDir.load`,
    on first use or by the evaluation), the loss history is read from run.json."""

    run: RunDir
    cfg: TrainConfig
    metrics: pd.Series  # metrics.csv's row: AUROC, rates at both thresholds, n_test, ...
    test: pd.DataFrame  # per scored test image: name, class, label (1 = anomalous), every score
    held_out: pd.DataFrame  # the same for the held-out training normals
    reused: bool = False  # True when this call trained nothing and read a finished run
    made: str = ""  # when the run was finished (its metrics.csv written), local time "YYYY-MM-DD HH:MM"

    @property
    def history(self) -> pd.DataFrame:
        """Per epoch: epoch, loss, mse, perceptual, seconds (`RunDir.history`)."""
        return self.run.history()

    @property
    def model(self) -> torch.nn.Module:  # the trained PyramidalAutoencoder, eval mode
        return self.run.load()[1]

    @property
    def loss(self) -> torch.nn.Module:  # its PyramidLoss
        return self.run.load()[2]

    @property
    def note(self) -> str:
        return weights_note(self.cfg.weights, self.cfg.precision)

    def predict(self, x: torch.Tensor):
        """`model.predict` of this run's model and loss on images x (N, C, H, W in [0, 1], on the
        model's device): reconstructions, scores and error maps (`Prediction`)."""
        return predict(self.model, self.loss, x)


def train_cached(cfg: TrainConfig, data: data_mod.OneClassData, setup: Setup,
                 progress: bool | None = None) -> RunResult:
    """Train `cfg` once and reuse it: the run's folder is named by its config and the data's
    content (`cache_key`), so a cell run again, another notebook asking for the same config, or a
    run handed out (`pyramid-ad import`) is read back (`RunDir.evaluated`, the one reuse rule)
    instead of trained.  Training and scoring are `experiments.jobs.run_one`, the path sweeps and
    the demo take.  Two notebooks asking at once take turns (a file lock on the folder's name; the
    one waiting says whom it waits for, `files.announced_lock`); an interrupted run resumes.  A
    finished run keeps its weights only (the optimiser state is dropped: about a third of the
    checkpoint).  Before training, prints the time it should take
    on this machine now (`engine.estimate`: a few steps measured in this process); after, one line
    saying what this call did and how long it took (a reused run: when it was made).
    Raises what `run_one` raises (ConfigError, CheckpointError, TrainingError, PyramidError)."""
    progress = setup.profile != "quick" if progress is None else progress
    run = run_dir(setup, cfg, data)
    run.dir.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with announced_lock(str(run.dir) + ".cache.lock", f"run {run.name}", label=f"notebook {setup.notebook}",
                        say=lambda line: print(line, flush=True)):
        reused = run.evaluated
        if not reused:
            n_score = min(len(data.test), cfg.test_limit or len(data.test))
            e = estimate(cfg, len(data.train), n_score, setup.device, 2)
            print(f"training {run.name}; estimated time on this machine now: {e.describe()}. Other work on the "
                  "same cores can make it too short, or too long if that work stops.", flush=True)
            t0 = time.perf_counter()  # the estimate's own seconds are not the run's
            run_one(run.name, cfg, run, setup.device, progress, data=data, figures=False)
            run.drop_optimizer()
    metrics = run.read_metrics().iloc[0]
    test, held = run.read_scores()
    took = time.perf_counter() - t0
    made = datetime.fromtimestamp(run.metrics.stat().st_mtime).astimezone().strftime("%Y-%m-%d %H:%M")
    if reused:
        what = (f"REUSED the run made {made} (it trained {len(run.history())} epochs in "
                f"{duration(float(metrics.train_seconds))} then; nothing was trained now, reading it took "
                f"{duration(took)})")
    else:
        what = (f"trained {len(run.history())} epochs on {run.read_state().get('fit_images')} images and scored "
                f"them: {duration(took)} (estimated {duration(e.seconds)})")
    print(f"{cfg.dataset}:{cfg.normal_class} ({cfg.profile} profile, {cfg.weights} weights): {what}; "
          f"{len(test)} test images scored, AUROC {metrics.auroc:.3f}, SSIM of normal reconstructions "
          f"{metrics.ssim_normal:.2f} [{run.dir}]")
    return RunResult(run, cfg, metrics, test, held, reused, made)


# |AUROC - 0.5| below this: the score ranks anomalies barely better (or worse) than a coin
CHANCE_MARGIN = 0.1
WORKS_FROM = 0.8  # an AUROC from here on: the method works; between chance and here: weak


def verdict(auroc: float, note: str = "") -> tuple[str, str]:
    """The sentence a notebook prints under a run's AUROC, chosen from the number: returns (case,
    sentence) with case "stand-in" (`note` from `load_data` is not empty: the numbers say nothing
    about the dataset asked for), "chance" (within CHANCE_MARGIN of 0.5), "inverted" (below
    that), "weak" (above chance, under WORKS_FROM) or "works".  A stand-in's sentence also gives
    the level of its AUROC."""
    share = f"a random anomalous test image scores above a random normal one {auroc:.0%} of the time"
    if abs(auroc - 0.5) < CHANCE_MARGIN:
        case, text = "chance", (f"AUROC {auroc:.3f} is close to chance (within {CHANCE_MARGIN} of 0.5): the score "
                                "barely ranks the anomalous test images above the normal ones")
    elif auroc < 0.5:
        case, text = "inverted", (f"AUROC {auroc:.3f} is below chance: the score ranks the anomalous test images "
                                  "LOWER than the normal ones")
    elif auroc < WORKS_FROM:
        case, text = "weak", f"AUROC {auroc:.3f} is above chance but weak: {share}"
    else:
        case, text = "works", f"AUROC {auroc:.3f}: the method works here; {share}"
    if note:
        return "stand-in", (f"STAND-IN DATA: {text}; on a stand-in that only shows the pipeline runs, it says "
                            "nothing about the dataset asked for")
    return case, text


def roc_inputs(run_dirs, labels=None, score: str = "loss") -> dict:
    """{label: (test labels, scores)} for `plots.roc_figure`, from the scores.csv of each run
    (RunDirs or folders); runs without scores.csv are left out.  Default label: the folder name."""
    out = {}
    for i, d in enumerate(run_dirs):
        run = d if isinstance(d, RunDir) else RunDir(d)
        if not run.scores.is_file():
            continue
        test, _ = run.read_scores()
        out[labels[i] if labels is not None else run.name] = (test["label"].to_numpy(), test[score].to_numpy())
    return out
