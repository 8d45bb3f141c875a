"""The runs the inspector shows: finding run folders, one run's scores, model and dataset
(`RunView`), its pixel-level metrics, and the run menu's labels (unique)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from .. import data as data_mod
from ..data import registry
from ..data.splits import fit_and_heldout
from ..engine.evaluate import score_images
from ..engine.run_dir import RunDir
from ..metrics import PIXEL_METRICS, PRIMARY_SCORE, PRO_FPR_LIMIT
from ..model.anomaly_map import predict

__all__ = ["RunView", "find_runs", "run_label", "run_labels"]


def find_runs(runs) -> list[Path]:
    """Run folders (holding config.json, and scores.csv or checkpoint.pt) in a run folder (or a
    RunDir), a folder searched recursively, or a list of either; resolved, sorted, no duplicates."""
    if isinstance(runs, (str, Path, RunDir)):
        runs = [runs]
    found = []
    for r in runs:
        r = r.dir if isinstance(r, RunDir) else Path(r)
        cands = [r] if (r / "config.json").is_file() else sorted(p.parent for p in r.rglob("config.json"))
        for c in map(RunDir, cands):
            if c.scores.is_file() or c.checkpoint.is_file():
                found.append(c.dir.resolve())
    return sorted(dict.fromkeys(found))


class RunView:
    """One run as the inspector sees it: its RunDir, its scores, and (lazily) its model and dataset.

    `test` / `held_out`: scores.csv's rows (name, class, label, every score), or, for a run that
    was never evaluated, the scores computed here from its checkpoint (FileNotFoundError when it
    has neither)."""

    def __init__(self, run_dir, data: data_mod.OneClassData | None = None, device=None):
        self.run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir, device)
        self.dir = self.run.dir
        self.cfg = self.run.read_config()
        self._data, self._problem, self._index = data, None, None
        self.test, self.held_out = self.run.read_scores() if self.run.scores.is_file() else self._score()
        self.test["class"] = self.test["class"].astype(str)

    def _score(self):
        model, loss, data = self.model_and_data()
        if model is None:
            raise FileNotFoundError(f"{self.dir}: neither scores.csv nor a usable checkpoint ({self._problem})")
        _, held = fit_and_heldout(data, self.cfg)
        return (score_images(model, loss, data.test, progress=False),
                score_images(model, loss, held, progress=False))

    def model_and_data(self):
        """(model, loss, data), the model loaded once (`RunDir.load`), or (None, None, None) with
        `problem` saying why (no checkpoint, no dataset here)."""
        if self._index is None and self._problem is None:
            try:
                _, model, _ = self.run.load()
                if self._data is None:
                    self._data = data_mod.load_for(self.cfg, download=False)
                self._index = {n: i for i, n in enumerate(self._data.test.names)}
            except Exception as e:  # no checkpoint, no dataset here: scores only
                self._problem = f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
        if self._index is None:
            return None, None, None
        _, model, loss = self.run.load()
        return model, loss, self._data

    @property
    def problem(self) -> str | None:
        self.model_and_data()
        return self._problem

    @property
    def pixel(self) -> dict[str, float] | None:
        """The run's pixel AUROC and AUPRO from its metrics.csv (`metrics.pixel_metrics`; NaN: the test
        split has no masks), or None when metrics.csv lacks them (not evaluated, or evaluated
        before the kit measured them)."""
        if not self.run.metrics.is_file():
            return None
        row = self.run.read_metrics().iloc[0]
        return {k: float(row[k]) for k in PIXEL_METRICS} if all(k in row for k in PIXEL_METRICS) else None

    def pixel_note(self) -> str:
        """One line of HTML on the run's pixel-level metrics, or "" when they do not apply (no masks)."""
        p = self.pixel
        if p is None:
            masks = registry.get(self.cfg.dataset).files
            return ("where is the defect: pixel AUROC and AUPRO not measured (the run was evaluated before "
                    "the kit computed them; <code>pyramid-ad evaluate</code> measures them where its checkpoint "
                    "is)") if masks else ""
        if all(math.isnan(v) for v in p.values()):
            return ""
        return (f"where is the defect (anomaly map of <code>{PRIMARY_SCORE}</code>, every test pixel): "
                f"<b>pixel AUROC {p['pixel_auroc']:.3f}</b> &nbsp; <b>AUPRO {p['aupro']:.3f}</b> "
                f"(per-region overlap up to FPR {PRO_FPR_LIMIT:g})")

    def views(self, rows, score: str):
        """(inputs, reconstructions, error maps of `score`, masks or None) of test rows `rows`, on
        the CPU (B x 3 x S x S, B x 3 x S x S, B x S x S, B x S x S), from one `predict` call; None
        when the run has no image view."""
        model, loss, data = self.model_and_data()
        if model is None:
            return None
        names = self.test["name"].iloc[list(rows)]
        if any(n not in self._index for n in names):
            self._problem = "the scored images are not in the dataset loaded here"
            return None
        idx = torch.tensor([self._index[n] for n in names])
        x = data.test.batch(idx, next(model.parameters()).device)
        p = predict(model, loss, x)
        masks = None if data.test.masks is None else data.test.masks[idx]
        return x.cpu(), p.reconstruction.cpu(), p.maps[score].cpu(), masks


def run_label(run_dir, name: str | None = None) -> str:
    """A run's name in the run menu, from its config.json and run.json (no checkpoint is loaded);
    `name` replaces the run folder's name."""
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    cfg = run.read_config()
    w = "ImageNet weights" if cfg.weights == "imagenet" else "random weights"
    return f"{cfg.dataset}:{cfg.normal_class} - {name or run.name} ({w}, {len(run.history())} epochs)"


def run_labels(dirs) -> list[str]:
    """The run menu's labels of `dirs`, one each and all different: runs whose `run_label` would be
    the same (same folder name, dataset, class, weights and epochs under two parents, such as
    results/mnist/cpu/runs/mnist-0 and results/mnist/cpu-epochs20/runs/mnist-0) are named by their
    path below the folder all runs share."""
    dirs = [Path(d) for d in dirs]
    labels = [run_label(d) for d in dirs]
    if len(set(labels)) < len(labels):
        root = Path(os.path.commonpath([d.resolve() for d in dirs]))
        rel = [d.resolve().relative_to(root).as_posix() for d in dirs]
        labels = [run_label(d, r if r != "." else d.name) if labels.count(lab) > 1 else lab
                  for d, r, lab in zip(dirs, rel, labels)]
    seen: dict[str, int] = {}
    for i, lab in enumerate(labels):  # a last resort (a run and a run inside it): number the repeats
        seen[lab] = seen.get(lab, 0) + 1
        labels[i] = lab if seen[lab] == 1 else f"{lab} #{seen[lab]}"
    return labels
