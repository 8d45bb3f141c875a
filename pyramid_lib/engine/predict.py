"""Scoring new images with a trained, evaluated run: `predict_paths` (the CLI's `pyramid-ad predict`).

Images are read exactly as the run's training and test images were (`data.images_io.decode_image`:
EXIF orientation, grey/palette/alpha/CMYK to RGB, 16-bit and float ranges; then a bilinear resize
to the run's input size S x S, aspect ratio NOT kept, as for training; pictures smaller than S are
refused), so a test image scores the same here as in the run's scores.csv.  Each image gets every
per-image anomaly score of `model.anomaly_map` (paper Sec. III-B; `ssim` is 1 - SSIM) and a verdict at
the run's held-out threshold: "anomalous" when the paper's score (`loss`) >= the 95% quantile of the
held-out training normals' scores (threshold.py), read from the run's metrics.csv; a run that was
not evaluated is refused (run `pyramid-ad evaluate RUN` first).

Inputs: files and folders, folders searched recursively in any layout.  Masks are found as the
folder loader finds them (data/folder.py): `<stem>_mask.<any ext>` beside the image, or, for an
image under `.../test/<defect>/<sub>/`, `<stem>_mask.*` or `<stem>.*` under
`.../ground_truth/<defect>/<sub>/` (letter case ignored; none for `good`).  A file used as a mask is
not scored.  Not scored, and listed with the reason: `failed` (a file named on the command line that
is not an image, a file with an image suffix that does not decode, an image smaller than S, a path
that does not exist) and `skipped` (non-image files and hidden entries found in folders).  OS
leftovers (.DS_Store, Thumbs.db, .ipynb_checkpoints/) are counted only.

Outputs under `out` (each file written atomically, files.py): predictions.csv, figures/<input
folder name>/<sub-path>/<stem>.png (one per image), top.png (the highest scored), not_scored.csv (when
anything failed or was skipped), and predict.json (the call: run, threshold, files written) last.
`out` must be new, empty, or a previous predict output (it has predict.json): then its files are
replaced and the old figures the new call does not write are deleted; any other non-empty folder is
refused, so no other result is ever overwritten.
"""

from __future__ import annotations

import logging
import math
import shlex
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from ..data.images import to_input
from ..errors import ConfigError, DataError, PyramidError
from ..files import atomic_save_figure, atomic_write_csv, atomic_write_json, read_json
from ..model.anomaly_map import PRIMARY_SCORE, SCORE_NAMES, predict
from ..plots import prediction_figure, score_label, top_sheet, weights_note
from ..progress import tqdm
from . import predict_inputs as inputs
from .run_dir import RunDir

log = logging.getLogger(__name__)

MANIFEST = "predict.json"
MANIFEST_FORMAT = "pyramid-ad-predict/1"
PREDICT_BATCH = 32  # images per forward pass (maps of 4 scores are kept per batch)
TOP = 16  # images on top.png


@dataclass
class Predictions:
    """What `predict_paths` returns.

    table: one row per scored image, in input order: path (as found), then one float column per name
        in SCORE_NAMES (loss, mse, perceptual, ssim = 1 - SSIM; higher = more anomalous), score (the
        value the verdict uses), score_name ("loss"), threshold, verdict ("anomalous" when score >=
        threshold, else "normal"), mask (its path, "" when none), figure (path under `out`, "" when
        none), width and height (the upright picture, pixels), notes (how it was read, "" for most).
    images, reconstructions: N x 3 x S x S float in [0, 1], the network's input and output (None
        with keep=False).  maps: name -> N x S x S per-pixel anomaly map for each of SCORE_NAMES.
    masks: N x S x S uint8 0/1 ground-truth masks, zeros where `table.mask` is "" (None if keep=False).
    failed, skipped: (path, reason) of every file not scored; `failed` makes the CLI exit non-zero.
    threshold: the run's held-out threshold on `score_name`.  files: what was written under `out`.
    """

    table: pd.DataFrame
    threshold: float
    score_name: str
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    images: torch.Tensor | None = None
    reconstructions: torch.Tensor | None = None
    maps: dict[str, torch.Tensor] | None = None
    masks: torch.Tensor | None = None
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def n_anomalous(self) -> int:
        return int((self.table.verdict == "anomalous").sum())

    def summary(self) -> str:
        """One line: how many were scored, how many anomalous at which threshold, how many not scored."""
        return (f"scored {len(self.table)} image(s): {self.n_anomalous} anomalous at the held-out threshold "
                f"{self.score_name} >= {self.threshold:.6g}; {len(self.failed)} failed, "
                f"{len(self.skipped)} skipped")


def held_out_threshold(run: RunDir) -> float:
    """The run's held-out threshold on its `loss` score: metrics.csv's `heldout_threshold` (the 95%
    quantile of the held-out training normals' scores, threshold.from_normals).  Raises PyramidError
    when the run is not evaluated, was evaluated before its last training epoch, or holds no
    held-out normals (trained with --heldout-fraction 0)."""
    again = f"run `pyramid-ad evaluate {shlex.quote(str(run.dir))}` first"
    if not run.evaluated:
        raise PyramidError(f"{run.dir}: not evaluated (no metrics.csv), so it has no held-out threshold for the "
                           f"verdict; {again}")
    m = run.read_metrics().iloc[0]
    epochs = len(run.read_state().get("history", []))
    if "epochs" in m and not pd.isna(m["epochs"]) and int(m["epochs"]) != epochs:
        raise PyramidError(f"{run.metrics}: written after epoch {int(m['epochs'])}, but the checkpoint is from "
                           f"epoch {epochs}; {again.replace(' first', ' again')}")
    t = m.get("heldout_threshold", math.nan)
    if pd.isna(t):
        raise PyramidError(f"{run.metrics}: no held-out threshold: the run held no training normals out "
                           "(--heldout-fraction 0); retrain with --heldout-fraction 0.1 to get one")
    return float(t)


def predict_paths(run, paths, out=None, batch_size: int = PREDICT_BATCH, figures: bool = True, top: int = TOP,
                  keep: bool = True, device=None, progress: bool = True, warn: bool = True) -> Predictions:
    """Score image files and folders with a trained, evaluated run; optionally write the outputs.

    run: a RunDir or run folder (its model loaded once, `RunDir.load`).  paths: files and folders
    (recursive).  out: folder for predictions.csv, figures/, top.png, not_scored.csv, predict.json
    (None: write nothing).  figures: one PNG per image and top.png (the `top` highest scores), with
    the `loss` map on one colour scale for the whole call.  keep: return the inputs, reconstructions,
    maps and masks (about 0.5 MB per 120x120 image; keep=False scores in two passes instead).  warn:
    one UserWarning naming the files not scored.

    Returns Predictions.  Raises PyramidError (run not evaluated, no held-out threshold),
    CheckpointError (no usable checkpoint), ConfigError (`out` is a file or a non-empty folder that
    is not a previous predict output; batch_size < 1) and DataError (no image found at all, nothing
    failing).  A file that cannot be read is not an error: it is in `failed` and the rest are scored.
    """
    run = run if isinstance(run, RunDir) else RunDir(run)
    if int(batch_size) < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    threshold = held_out_threshold(run)
    out = None if out is None else Path(out)
    previous = _check_out(out) if out is not None else None
    cfg, model, loss = run.load(device)
    dev = next(model.parameters()).device
    found = inputs.collect([Path(p) for p in paths], exclude=out)
    items, failed, skipped = found.items, found.failed, found.skipped
    if found.junk:
        log.info("skipped %d OS/tool leftover file(s) or folder(s) (.DS_Store, Thumbs.db, ...)", found.junk)
    t0 = time.perf_counter()
    rows, kept, vmax = [], [], 0.0
    for batch, x, pred in _scored_batches(items, cfg.input_size, model, loss, dev, batch_size, failed, progress):
        for i, it in enumerate(batch):
            rows.append({"path": str(it.path), **{k: float(pred.scores[k][i]) for k in SCORE_NAMES},
                         "mask": "" if it.mask is None else str(it.mask), "width": it.size[0],
                         "height": it.size[1], "notes": "; ".join(it.notes)})
        vmax = max(vmax, float(pred.maps[PRIMARY_SCORE].max()))
        if keep:
            kept.append((x, pred.reconstruction, pred.maps, torch.stack([it.mask_pixels for it in batch])))
    scored = [it for it in items if it.size is not None]
    if not scored and not failed:
        raise DataError(f"no image found in {', '.join(map(str, paths))}"
                        + (f" (skipped: {', '.join(p for p, _ in skipped[:5])})" if skipped else ""))
    table = _table(rows, threshold)
    if not np.isfinite(table[list(SCORE_NAMES)].to_numpy(dtype=float)).all():
        raise PyramidError(f"{run.dir}: some scores are NaN or infinite; the model is broken (diverged training?)")
    result = Predictions(table, threshold, PRIMARY_SCORE, failed, skipped)
    if keep and kept:
        result.images, result.reconstructions = torch.cat([k[0] for k in kept]), torch.cat([k[1] for k in kept])
        result.maps = {n: torch.cat([k[2][n] for k in kept]) for n in SCORE_NAMES}
        result.masks = torch.cat([k[3] for k in kept])
    log.debug("%s in %.1fs with %s", result.summary(), time.perf_counter() - t0, run.dir)
    if warn and (failed or skipped):
        warnings.warn(inputs.describe_not_scored(failed, skipped), stacklevel=2)
    if out is not None:
        _write(result, out, previous, scored, cfg, (model, loss, dev), batch_size, figures, top, vmax, progress, run)
    return result


def _scored_batches(items, size, model, loss, device, batch_size, failed, progress):
    """Decode, score and yield (items, x on CPU, Prediction on CPU) batch by batch; items that fail
    to decode go to `failed` (and get no `size`)."""
    model.eval()
    bar = tqdm(total=len(items), desc="scoring images", disable=not progress or len(items) <= batch_size,
               leave=False)
    for start in range(0, len(items), batch_size):
        batch, imgs = [], []
        for it in items[start:start + batch_size]:
            try:
                imgs.append(inputs.decode(it, size))
                batch.append(it)
            except DataError as e:
                failed.append((str(it.path), str(e)))
        bar.update(len(items[start:start + batch_size]))
        if not batch:
            continue
        with torch.inference_mode():
            x = to_input(torch.stack(imgs), device)
            p = predict(model, loss, x, maps=True)
            p.reconstruction, p.maps = p.reconstruction.float().cpu(), {k: v.float().cpu() for k, v in p.maps.items()}
            p.scores = {k: v.float().cpu() for k, v in p.scores.items()}
        yield batch, x.float().cpu().contiguous(), p
    bar.close()


def _table(rows: list[dict], threshold: float) -> pd.DataFrame:
    cols = ["path", *SCORE_NAMES, "mask", "width", "height", "notes"]
    t = pd.DataFrame(rows, columns=cols)
    t.insert(1 + len(SCORE_NAMES), "score", t[PRIMARY_SCORE])
    t.insert(2 + len(SCORE_NAMES), "score_name", PRIMARY_SCORE)
    t.insert(3 + len(SCORE_NAMES), "threshold", threshold)
    t.insert(4 + len(SCORE_NAMES), "verdict", ["anomalous" if s >= threshold else "normal" for s in t.score])
    t.insert(len(t.columns) - 3, "figure", "")
    return t


def _check_out(out: Path) -> dict | None:
    """None for a new or empty folder, the earlier manifest for a previous predict output; ConfigError
    for a file or any other non-empty folder."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file; give a folder for the predictions")
    if not out.is_dir() or not any(out.iterdir()):
        return None
    if not (out / MANIFEST).is_file():
        raise ConfigError(f"--out {out}: folder is not empty and is not an earlier predict output (no {MANIFEST}); "
                          "predict writes only into a new or empty folder or over its own earlier output: choose "
                          "another --out")
    manifest = read_json(out / MANIFEST)
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ConfigError(f"--out {out}: its {MANIFEST} is not a pyramid-ad predict record; choose another --out")
    return manifest


def _write(result: Predictions, out: Path, previous, scored, cfg, net, batch_size, figures, top, vmax, progress,
           run) -> None:
    """Figures first, then predictions.csv, not_scored.csv, top.png and predict.json, then delete the
    earlier call's files that this call did not write."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    table = result.table
    if figures and len(table):
        names = inputs.figure_names(scored)
        label = f"{score_label(PRIMARY_SCORE)} map"
        note = weights_note(cfg.weights)
        best = list(table.score.to_numpy().argsort()[::-1][:max(int(top), 0)])
        picks: dict[int, tuple] = {}
        i = 0
        batches = _stored(result, batch_size) if result.images is not None else _scored_batches(
            scored, cfg.input_size, *net, batch_size, [], False)
        bar = tqdm(total=len(table), desc="drawing figures", disable=not progress or len(table) < 50, leave=False)
        for batch, x, pred in batches:
            for j, it in enumerate(batch):
                row = table.iloc[i]
                mask = it.mask_pixels.numpy() if it.mask is not None else None
                fig = prediction_figure(x[j], pred.reconstruction[j], pred.maps[PRIMARY_SCORE][j].numpy(), vmax, mask,
                                        _title(row, note), label)
                atomic_save_figure(out / names[i], fig, dpi=100)
                plt.close(fig)
                table.loc[i, "figure"] = names[i].as_posix()
                written.append(names[i])
                if i in best:
                    picks[i] = (x[j], pred.maps[PRIMARY_SCORE][j].numpy(), mask)
                i += 1
                bar.update(1)
        bar.close()
        if best:
            sel = [picks[b] for b in best]
            titles = [f"{'/'.join(Path(table.path[b]).parts[-2:])}\n{table.score[b]:.4g} {table.verdict[b]}"
                      for b in best]
            fig = top_sheet([s[0] for s in sel], [s[1] for s in sel], vmax, titles, [s[2] for s in sel],
                            f"the {len(best)} highest {score_label(PRIMARY_SCORE)} of {len(table)} images; held-out "
                            f"threshold {result.threshold:.4g} (cyan: ground-truth mask){note}", label)
            atomic_save_figure(out / "top.png", fig, dpi=100)
            plt.close(fig)
            written.append(Path("top.png"))
    atomic_write_csv(out / "predictions.csv", table)
    written.append(Path("predictions.csv"))
    if result.failed or result.skipped:
        atomic_write_csv(out / "not_scored.csv", inputs.not_scored_frame(result.failed, result.skipped))
        written.append(Path("not_scored.csv"))
    files = sorted({p.as_posix() for p in written})
    atomic_write_json(out / MANIFEST, {"format": MANIFEST_FORMAT, "run": str(run.dir.resolve()),
                                       "score_name": PRIMARY_SCORE, "threshold": result.threshold,
                                       "n_scored": len(table), "n_failed": len(result.failed),
                                       "n_skipped": len(result.skipped), "files": files})
    if previous is not None:
        inputs.remove_stale(out, previous.get("files", []), set(files))
    result.files = {p: out / p for p in files}


def _stored(result: Predictions, batch_size: int):
    """The kept tensors, in the batches `_scored_batches` yields (items rebuilt from the table)."""
    n = len(result.table)
    for start in range(0, n, batch_size):
        idx = range(start, min(start + batch_size, n))
        batch = [inputs.Item(Path(result.table.path[i]), mask=Path(result.table["mask"][i]) if result.table["mask"][i]
                             else None, mask_pixels=result.masks[i]) for i in idx]
        maps = {k: v[start:start + batch_size] for k, v in result.maps.items()}
        yield batch, result.images[start:start + batch_size], _View(result.reconstructions[start:start + batch_size],
                                                                    maps)


@dataclass
class _View:
    reconstruction: torch.Tensor
    maps: dict[str, torch.Tensor]


def _title(row, note: str) -> str:
    scores = ", ".join(f"{score_label(k) if k != PRIMARY_SCORE else 'loss'} {row[k]:.4g}" for k in SCORE_NAMES)
    verdict = (f"{row.verdict}: {row.score_name} {row.score:.4g} {'>=' if row.verdict == 'anomalous' else '<'} "
               f"held-out threshold {row.threshold:.4g}")
    return f"{row.path}\n{verdict}\n{scores}{note}"
