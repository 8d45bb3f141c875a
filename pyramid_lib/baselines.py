"""Baselines re-run on the same one-class splits as our network (not copied from papers).

Methods (`METHODS`):
    ocsvm     One-class SVM (scikit-learn, RBF kernel) on raw pixels; nu and gamma per dataset (`settings`)
    kde       Gaussian kernel density (scikit-learn) on PCA-reduced pixels; bandwidth per dataset, or
              picked by 5-fold cross-validated log-likelihood on the training normals ("cv")
    ae-l2     a plain convolutional autoencoder trained with the L2 (MSE) loss; score = MSE
    ae-ssim   the same autoencoder trained with 1 - SSIM (torchmetrics); score = 1 - SSIM
    ours-lambda0   our network with lambda = 0 (MSE only): a normal network run (engine/trainer.py),
              planned by experiments/plan.py, listed here so that tables know its name

Features: the OC-SVM and KDE columns of the paper's Table III were copied from LSA, which
reports them on PCA-reduced pixels; their exact settings are not reproduced here.  Ours: the KDE
runs on PCA-reduced pixels (in [0, 1]; `PCA_COMPONENTS` components fitted on the training
normals, whitened so that one bandwidth fits all axes).  The OC-SVM runs on the raw pixels: on
PCA features it ignores everything outside the normals' subspace, which is where most anomalies
differ (the comparison is in benchmarks/README.md).  OC-SVM and KDE fit the very training
normals our network trains on (all of the run's fit images; `fit_images` in the results): on one
CPU thread, fitting 4,000 MNIST images at 784 dimensions takes seconds for the OC-SVM and under a
minute for the KDE with its cross-validated bandwidth (benchmarks/TUNE_BASELINES.md).  The
held-out training normals and the test split are exactly those of our network's runs
(`data.splits.fit_and_heldout`), and the metrics are computed by the same `metrics.summarize`, so
the thresholds and AUROCs are comparable.

Settings per dataset (`settings`, `TUNED`): OC-SVM (nu, gamma), KDE (bandwidth) and the
autoencoders' learning rate are chosen on the validation protocol, which reads no test image
(`data.validation.validation_set`: held-out normals against other-class *training* images), by
benchmarks/tune_baselines.py; a dataset without tuned values uses `DEFAULTS` (and the profile's
learning rate).  A run records the settings it used (config.json `baseline_settings`, and
`settings` in its results).

The autoencoders train with the same profile as our network (epochs, batch size, learning rate,
weight decay, training images) and the same training loop (`engine.trainer.epoch_steps`), with
plain Adam; they are small (about 0.29 M parameters).  A run folder (a RunDir) holds config.json,
run.json, scores.csv and metrics.csv like our network's, but no checkpoint: it becomes
`evaluated` without being `trained`.  An interrupted baseline run is simply redone (they take
seconds to minutes), a finished one is never redone."""

from __future__ import annotations

import functools
import logging
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KernelDensity
from sklearn.svm import OneClassSVM
from torch import nn

from . import data as data_mod
from .data.splits import fit_and_heldout
from .engine.build import pick_device, versions
from .engine.run_dir import RunDir
from .engine.trainer import NonFiniteLoss, epoch_steps, learning_rate, steps_per_epoch
from .errors import ConfigError, PyramidError
from .files import atomic_write_csv, atomic_write_json
from .metrics import summarize
from .model.loss import ssim_per_image

log = logging.getLogger(__name__)

METHODS = ("ocsvm", "kde", "ae-l2", "ae-ssim", "ours-lambda0")


SKLEARN_METHODS = ("ocsvm", "kde")


AE_METHODS = ("ae-l2", "ae-ssim")


# Methods whose fit has no random draw of its own: a sweep over seeds fits them once (first seed's split).
DETERMINISTIC = SKLEARN_METHODS


PCA_COMPONENTS = 32


KDE_BANDWIDTHS = tuple(np.logspace(-1, 1, 11).round(4))  # the cross-validated choice ("cv") picks among these


# Untuned settings: OC-SVM nu 0.1 with scikit-learn's gamma "scale" (gamma_scale = a multiple of it,
# 1 / (pixels * pixel variance of the fit images)); KDE bandwidth by cross-validation; the AE's
# learning rate is the profile's (lr None).
DEFAULTS: dict[str, dict] = {"ocsvm": {"nu": 0.1, "gamma_scale": 1.0}, "kde": {"bandwidth": "cv"},
                             "ae-l2": {"lr": None}, "ae-ssim": {"lr": None}}


# Chosen per dataset on the validation protocol by benchmarks/tune_baselines.py: the highest mean
# validation AUROC over classes 2, 5 and 8 (cpu profile, seed 0's split, 4,000 fit images); the
# grid, every validation AUROC and the pick: benchmarks/TUNE_BASELINES.md and
# benchmarks/results-tune-baselines.jsonl.  A method or dataset not listed uses DEFAULTS (the
# autoencoders' learning rate is not tuned yet: the profile's).
TUNED: dict[str, dict[str, dict]] = {
    "mnist": {"ocsvm": {"nu": 0.01, "gamma_scale": 30.0}, "kde": {"bandwidth": 1.0},
              "ae-l2": {"lr": 0.01}, "ae-ssim": {"lr": 0.01}},
    "fmnist": {"ocsvm": {"nu": 0.01, "gamma_scale": 30.0}, "kde": {"bandwidth": 1.0},
               "ae-l2": {"lr": 0.003}, "ae-ssim": {"lr": 0.01}},
}


def settings(dataset: str, method: str) -> dict:
    """The settings `method` uses on `dataset`: DEFAULTS with TUNED's values on top ({} for a
    method without any, ours-lambda0)."""
    return {**DEFAULTS.get(method, {}), **TUNED.get(dataset, {}).get(method, {})}


def config_overrides(method: str, dataset: str) -> dict:
    """The TrainConfig fields a baseline's settings change (the autoencoders' tuned `lr`), for
    experiments/plan.py, so that the run's config.json states the learning rate it trained with."""
    lr = settings(dataset, method).get("lr") if method in AE_METHODS else None
    return {} if lr is None else {"lr": float(lr)}


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ConfigError(f"unknown baseline {method!r}; choose from {', '.join(METHODS)}")
    return method


def _flat(images: data_mod.ImageSet) -> np.ndarray:
    """uint8 N x C x S x S -> float N x (C*S*S) in [0, 1]."""
    return images.images.reshape(len(images), -1).float().div(255).numpy()


def sklearn_model(method: str, x: np.ndarray, params: dict, seed: int = 0):
    """Fit OC-SVM or KDE on the flat images `x` (float N x D in [0, 1]) with `params` (the keys
    of DEFAULTS[method]).  Returns (score: ImageSet -> float array of anomaly scores, higher =
    more anomalous; info: the settings used, gamma and bandwidth as numbers).  Raises ConfigError
    for another method or a missing setting, PyramidError when too few images remain for PCA."""
    info: dict = {"fit_images": len(x)}
    try:
        if method == "ocsvm":
            gamma = float(params["gamma_scale"]) / float(x.shape[1] * x.var())  # scikit-learn's "scale" times it
            model = OneClassSVM(kernel="rbf", nu=float(params["nu"]), gamma=gamma).fit(x)
            info.update(features="raw pixels", nu=float(params["nu"]), gamma_scale=float(params["gamma_scale"]),
                        gamma=gamma)
            return (lambda s: -model.decision_function(_flat(s))), info
        if method == "kde":
            k = int(min(PCA_COMPONENTS, len(x) - 1, x.shape[1]))
            if k < 1:
                raise PyramidError(f"{method}: too few training images ({len(x)}) for PCA")
            pca = PCA(n_components=k, whiten=True, random_state=seed).fit(x)
            z = pca.transform(x)
            info.update(features="whitened PCA", pca_components=k,
                        pca_explained_variance=float(pca.explained_variance_ratio_.sum()))
            bw = params["bandwidth"]
            if bw == "cv":
                folds = min(5, len(z))
                bw = (float(GridSearchCV(KernelDensity(kernel="gaussian"), {"bandwidth": list(KDE_BANDWIDTHS)},
                                         cv=folds).fit(z).best_params_["bandwidth"]) if folds >= 2 else 1.0)
                info.update(bandwidth_by="cv")
            model = KernelDensity(kernel="gaussian", bandwidth=float(bw)).fit(z)
            info.update(bandwidth=float(bw))
            return (lambda s: -model.score_samples(pca.transform(_flat(s)))), info
    except KeyError as e:
        raise ConfigError(f"{method}: setting {e} missing (have {sorted(params)})") from None
    raise ConfigError(f"{method} is not a scikit-learn baseline")


def sklearn_scores(method: str, fit: data_mod.ImageSet, others: list[data_mod.ImageSet], seed: int = 0,
                   limit: int | None = None, params: dict | None = None) -> tuple[list[np.ndarray], dict]:
    """Fit OC-SVM or KDE on `fit` (all of it, or a seeded subsample of `limit` images) with
    `params` (default: DEFAULTS[method]); anomaly scores (higher = more anomalous) of each image set
    in `others`, and the settings used.

    Returns ([one float array of N_i scores per set in `others`], {setting: value}).  Raises what
    `sklearn_model` raises."""
    x = _flat(fit)
    if limit is not None and len(x) > limit:
        pick = np.random.default_rng(seed).choice(len(x), limit, replace=False)
        x = x[np.sort(pick)]
    score, info = sklearn_model(method, x, DEFAULTS.get(method, {}) if params is None else params, seed)
    return [score(s) if len(s) else np.zeros(0) for s in others], info


class PlainAE(nn.Module):
    """A plain convolutional autoencoder: 3 strided convs down, a 64-d bottleneck, 3 transposed
    convs up; output resized to the input and squashed to [0, 1] by a sigmoid."""

    def __init__(self, input_size: int = 28, channels: int = 3, latent: int = 64):
        super().__init__()
        self.input_size = input_size
        self.enc = nn.Sequential(
            nn.Conv2d(channels, 32, 3, 2, 1), nn.BatchNorm2d(32), nn.LeakyReLU(0.1),
            nn.Conv2d(32, 64, 3, 2, 1), nn.BatchNorm2d(64), nn.LeakyReLU(0.1),
            nn.Conv2d(64, 64, 3, 2, 1), nn.BatchNorm2d(64), nn.LeakyReLU(0.1),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(64 * 16, latent))
        self.dec_in = nn.Sequential(nn.Linear(latent, 64 * 16), nn.LeakyReLU(0.1))
        self.dec = nn.Sequential(
            nn.ConvTranspose2d(64, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.LeakyReLU(0.1),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.BatchNorm2d(32), nn.LeakyReLU(0.1),
            nn.ConvTranspose2d(32, channels, 4, 2, 1))

    def forward(self, x):
        h = self.dec(self.dec_in(self.enc(x)).view(-1, 64, 4, 4))
        h = F.interpolate(h, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return torch.sigmoid(h)


def ae_loss(method: str, x_hat, x):
    """Per-image loss = anomaly score, B: MSE averaged over channels and pixels (ae-l2) or
    1 - SSIM (ae-ssim)."""
    if method == "ae-l2":
        return (x_hat - x).pow(2).flatten(1).mean(1)
    return 1.0 - ssim_per_image(x_hat, x)


def train_ae(method: str, cfg, fit: data_mod.ImageSet, device="cpu", progress: bool = False):
    """Train the plain AE with the profile's settings (learning-rate schedule included) and the
    shared loop (`epoch_steps`, plain Adam); returns (model in eval mode, history: one {epoch,
    loss, seconds} per epoch, loss = mean per-image `ae_loss`).  Raises PyramidError when a loss
    becomes NaN or infinite."""
    torch.manual_seed(cfg.seed)
    model = PlainAE(cfg.input_size).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = functools.partial(ae_loss, method)
    total_steps = cfg.epochs * steps_per_epoch(len(fit), cfg.batch_size)
    history = []
    for epoch in range(cfg.epochs):
        t0, total, n = time.perf_counter(), 0.0, 0
        try:
            for idx, (loss, _) in epoch_steps(model, loss_fn, opt, fit, cfg.seed, epoch, cfg.batch_size, device,
                                              lr=lambda s: learning_rate(cfg, s, total_steps)):
                total += loss.item() * len(idx)
                n += len(idx)
        except NonFiniteLoss as e:
            raise PyramidError(f"{method}: loss became {e.loss} in epoch {epoch + 1}; try a lower --lr") from None
        history.append({"epoch": epoch + 1, "loss": total / max(n, 1), "seconds": round(time.perf_counter() - t0, 3)})
        if progress:
            log.info("%s %s:%s epoch %d/%d loss %.4f", method, cfg.dataset, cfg.normal_class, epoch + 1, cfg.epochs,
                     history[-1]["loss"])
    return model.eval(), history


@torch.inference_mode()
def ae_scores(method: str, model, images: data_mod.ImageSet, device="cpu", batch_size: int = 500) -> np.ndarray:
    out = []
    for i in range(0, len(images), batch_size):
        x = images.batch(torch.arange(i, min(i + batch_size, len(images))), device)
        out.append(ae_loss(method, model(x), x).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0)


def run_baseline(method: str, cfg, run_dir, device="cpu", data: data_mod.OneClassData | None = None,
                 progress: bool = False) -> pd.DataFrame:
    """Fit one baseline on cfg's split, score the test split and held-out normals, write the run folder
    (config.json, run.json, scores.csv, metrics.csv: metrics.csv last, so it marks an evaluated run).

    `run_dir`: a RunDir or a folder.  Returns the metrics row (a 1-row frame): the run's settings,
    `metrics.summarize`'s columns for the one `score`, score_seconds and `settings`.  Raises
    ConfigError for an unknown method or ours-lambda0 (a network run)."""
    check_method(method)
    if method == "ours-lambda0":
        raise ConfigError("ours-lambda0 is a network run (engine/trainer.py); experiments/jobs.py runs it")
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    run.dir.mkdir(parents=True, exist_ok=True)
    device = pick_device(device)
    t0 = time.perf_counter()
    data = data or data_mod.load_for(cfg)
    fit, held = fit_and_heldout(data, cfg)
    # what the fit depends on beyond the TrainConfig (an AE's learning rate is cfg.lr: plan sets it)
    params = settings(cfg.dataset, method) if method in SKLEARN_METHODS else {"lr": cfg.lr}
    atomic_write_json(run.config, {**cfg.to_dict(), "method": method, "baseline_settings": params})
    state = {"status": "running", "method": method, "device": str(device), "versions": versions()}
    atomic_write_json(run.state, state)
    extra: dict = {}
    if method in SKLEARN_METHODS:
        (s_test, s_held), info = sklearn_scores(method, fit, [data.test, held], cfg.seed, params=params)
        extra.update(info, tuned=cfg.dataset in TUNED and method in TUNED[cfg.dataset])
        epochs, final_loss = 0, np.nan
        train_s = time.perf_counter() - t0
    else:
        model, hist = train_ae(method, cfg, fit, device, progress)
        train_s = time.perf_counter() - t0
        s_test, s_held = ae_scores(method, model, data.test, device), ae_scores(method, model, held, device)
        extra.update(fit_images=len(fit), parameters=sum(p.numel() for p in model.parameters()), lr=cfg.lr,
                     tuned=cfg.dataset in TUNED and method in TUNED[cfg.dataset])
        epochs, final_loss = len(hist), hist[-1]["loss"]
        state["history"] = hist
    y = data.test.labels.numpy()
    m = summarize(pd.DataFrame({"label": y, "score": np.asarray(s_test, dtype=float)}),
                  pd.DataFrame({"score": np.asarray(s_held, dtype=float)}), score="score", scores=("score",))
    row = {"dataset": cfg.dataset, "normal_class": cfg.normal_class, "method": method,
           "weights": "none (no pretrained part)", "profile": cfg.profile, "epochs": epochs, "seed": cfg.seed,
           "train_limit": cfg.train_limit,
           "fit_images": extra.pop("fit_images"), "final_loss": final_loss, "train_seconds": round(train_s, 2),
           "device": str(device), **m, "score_seconds": round(time.perf_counter() - t0 - train_s, 2),
           "settings": ";".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in extra.items())}
    scores = pd.concat([
        pd.DataFrame({"name": data.test.names, "class": data.test.classes, "label": y,
                      "score": np.asarray(s_test, np.float32), "split": "test"}),
        pd.DataFrame({"name": held.names, "class": held.classes, "label": held.labels.numpy(),
                      "score": np.asarray(s_held, np.float32),
                      "split": "held-out normal"})], ignore_index=True)
    atomic_write_csv(run.scores, scores)
    state.update(status="finished", wall_time_s=round(time.perf_counter() - t0, 2), **extra)
    atomic_write_json(run.state, state)
    frame = pd.DataFrame([row])
    atomic_write_csv(run.metrics, frame)
    return frame
