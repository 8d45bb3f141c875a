"""Scoring image files with a trained, evaluated run: `score_files` (the CLI's `pyramid-ad predict`).

Not to be confused with `model.anomaly_map.predict`, the tensor-level call (a batch in, scores and
maps out) that this module runs on every batch of decoded files.

Images are read exactly as the run's training and test images were (`data.images_io.decode_image`:
EXIF orientation, grey/palette/alpha/CMYK to RGB, the run's intensity mapping for 16-bit and float
data (data.json); then a bilinear resize to the run's input size S x S, aspect ratio NOT kept, as for
training; pictures smaller than S are refused), so a test image scores as in the run's scores.csv up
to the last bits (which vary with the batch and the processor's kernels).  Each image gets every
per-image anomaly score of `model.anomaly_map` (paper Sec. III-B; `ssim` is 1 - SSIM) and a verdict
at the run's held-out threshold (threshold.py): "anomalous" when the paper's score (`loss`) is ABOVE
the 95% quantile of the held-out training normals' scores, scored again in the same call with the
same arithmetic (engine/heldout.py), so that a held-out normal is never judged against a threshold
rounded on other kernels; metrics.csv's threshold where the held-out images cannot be read.  A run
that was not evaluated is refused (run `pyramid-ad evaluate RUN` first).

Inputs (engine/score_inputs.py): files and folders, folders searched recursively in any layout, masks
found as the folder loader finds them.  Not scored, and listed with the reason: `failed` and `skipped`.

Outputs under `out`: predictions.csv, figures/<input folder name>/<sub-path>/<stem>.png (one per
image), top.png (the highest scored), not_scored.csv (when anything failed or was skipped), and
predict.json (the call: run, threshold, files written).  They are written into a new temporary folder
that replaces `out` only when the call scored at least one image and every file was written
(files.replacing_folder): a call that scores nothing, a full disk or a Ctrl-C leave `out` as it was.
`out` must be new, empty, or a previous predict output (it has predict.json); any other non-empty
folder is refused, so no other result is ever overwritten.  One call at a time writes into an
`out`: it holds a lock named after it (`out_lock`, filelock), and a second call is refused (RunBusy).  A call
that scores nothing writes only into a new `out`: not_scored.csv and predict.json.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from filelock import FileLock, Timeout

from ..data.images import to_input
from ..errors import ConfigError, DataError, PyramidError, RunBusy
from ..files import atomic_save_figure, atomic_write_csv, atomic_write_json, check_writable, read_json, replacing_folder
from ..model.anomaly_map import PRIMARY_SCORE, SCORE_NAMES, predict
from ..plots import prediction_figure, score_label, top_sheet, weights_note
from ..progress import tqdm
from ..threshold import HELD_OUT_RULE, is_anomalous
from . import data_record, heldout
from . import score_inputs as inputs
from .run_dir import RunDir, existing_run

log = logging.getLogger(__name__)

MANIFEST = "predict.json"
MANIFEST_FORMAT = "pyramid-ad-predict/1"
PREDICT_BATCH = 32  # images per forward pass (maps of 4 scores are kept per batch)
TOP = 16  # images on top.png

# (scored items, inputs N x 3 x S x S, reconstructions, PRIMARY_SCORE maps N x S x S), all on the CPU
Batch = tuple[list[inputs.Item], torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass
class FileScores:
    """What `score_files` returns.

    table: one row per scored image, in input order: path (as found), then one float column per name
        in SCORE_NAMES (loss, mse, perceptual, ssim = 1 - SSIM; higher = more anomalous), score (the
        value the verdict uses), score_name ("loss"), threshold, verdict ("anomalous" when score >
        threshold, else "normal"), mask (its path, "" when none), figure (path under `out`, "" when
        none), width and height (the upright picture, pixels), notes (how it was read, "" for most).
    images, reconstructions: N x 3 x S x S float in [0, 1], the network's input and output (None
        with keep=False).  maps: name -> N x S x S per-pixel anomaly map for each of SCORE_NAMES.
    masks: N x S x S uint8 0/1 ground-truth masks, zeros where `table.mask` is "" (None if keep=False).
    failed, skipped: (path, reason) of every file not scored; `failed` makes the CLI exit non-zero.
    threshold: the held-out threshold on `score_name` the verdicts use; held_out: where it came from
        (engine/heldout.py: rescored from the run's held-out normals in this call, or metrics.csv's).
    files: what was written under `out`.
    items: the scored inputs (table order); vmax: the largest `loss` map value (the figures' colour
    scale); run: the run folder.  `batches()` yields the call's scored batches again (from the kept
    tensors, or by scoring the files once more with keep=False), for the figures.
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
    items: list[inputs.Item] = field(default_factory=list)
    vmax: float = 0.0
    run: RunDir | None = None
    weights: str = ""
    precision: str = ""
    rescore: Callable[[], Iterator[Batch]] | None = field(default=None, repr=False)
    held_out: heldout.HeldOutThreshold | None = None

    @property
    def n_anomalous(self) -> int:
        return int((self.table.verdict == "anomalous").sum())

    def summary(self) -> str:
        """One line: how many were scored, how many anomalous at which threshold, how many not scored."""
        return (f"scored {len(self.table)} image(s): {self.n_anomalous} anomalous at the held-out threshold "
                f"({self.score_name} {HELD_OUT_RULE} {self.threshold:.6g}"
                + (f", {self.held_out.describe()}" if self.held_out else "")
                + f"); {len(self.failed)} failed, {len(self.skipped)} skipped")

    def batches(self, batch_size: int = PREDICT_BATCH) -> Iterator[Batch]:
        if self.images is None:
            yield from self.rescore()
            return
        for start in range(0, len(self.items), batch_size):
            end = start + batch_size
            yield (self.items[start:end], self.images[start:end], self.reconstructions[start:end],
                   self.maps[PRIMARY_SCORE][start:end])


def out_lock(out: Path) -> Path:
    """The lock file of a predict --out: in the system's temporary folder, named by a hash of the
    folder's full path (`out` itself is replaced as a whole, and nothing is left beside it)."""
    key = hashlib.blake2b(str(out.resolve()).encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()
    return Path(tempfile.gettempdir()) / f"pyramid-ad-predict-{key}.lock"


def _holding_out_lock(fn):
    """`score_files` holding an exclusive lock on its --out (filelock, `out_lock`): a second call
    into the same --out is refused at once (RunBusy), as a second writer of a run folder is."""
    @functools.wraps(fn)
    def locked(run, paths, out=None, *args, **kwargs):
        if out is None:
            return fn(run, paths, out, *args, **kwargs)
        out = Path(out)
        lock = FileLock(out_lock(out))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise RunBusy(f"--out {out}: another pyramid-ad predict is writing into it now (it holds "
                          f"{lock.lock_file}); wait until it has finished, or choose another --out") from None
        try:
            return fn(run, paths, out, *args, **kwargs)
        finally:
            lock.release()
    return locked


@_holding_out_lock
def score_files(run, paths, out=None, batch_size: int = PREDICT_BATCH, figures: bool = True, top: int = TOP,
                keep: bool = True, device=None, progress: bool = True, warn: bool = True) -> FileScores:
    """Score image files and folders with a trained, evaluated run; optionally write the outputs.

    run: a RunDir or run folder (its model loaded once, `RunDir.load`).  paths: files and folders
    (recursive).  out: folder for predictions.csv, figures/, top.png, not_scored.csv, predict.json
    (None: write nothing); replaced as a whole, only when at least one image was scored.  figures:
    one PNG per image and top.png (the `top` highest scores), with the `loss` map on one colour scale
    for the whole call.  keep: return the inputs, reconstructions, maps and masks (about 0.5 MB per
    120x120 image; keep=False scores in two passes instead).  warn: one UserWarning summarising the
    files not scored.

    Returns FileScores.  Raises PyramidError (run not evaluated, no held-out threshold),
    CheckpointError (no usable checkpoint, a damaged metrics.csv), ConfigError (`out` is a file, a
    non-empty folder that is not a previous predict output, or cannot be written; batch_size < 1)
    and DataError (no image could be scored: `out` is then left untouched).  A file that cannot be
    read is not an error when others are scored: it is in `failed`.
    """
    run = run if isinstance(run, RunDir) else existing_run(run)
    if int(batch_size) < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    heldout.recorded_threshold(run)  # a run that cannot give a verdict is refused before any image is read
    out = None if out is None else Path(out)
    if out is not None:  # every check of --out before any image is read
        _check_out(out)
        check_writable(out.parent, f"--out {out}")
    cfg, model, loss = run.load(device)
    intensity = data_record.intensity(run)
    dev = next(model.parameters()).device
    found = inputs.collect([Path(p) for p in paths], exclude=out)
    if found.junk:
        log.info("skipped %d OS/tool leftover file(s) or folder(s) (.DS_Store, Thumbs.db, ...)", found.junk)
    t0 = time.perf_counter()

    def scored_batches(items, failed):
        return _scored_batches(items, cfg.input_size, intensity, model, loss, dev, batch_size, failed, progress)

    rows, kept, vmax, scored, by_pixels = [], [], 0.0, [], {}
    for batch, x, recon, maps, scores, hashes in scored_batches(found.items, found.failed):
        scored += batch
        by_pixels.update(zip(hashes, scores[PRIMARY_SCORE].tolist()))
        for i, it in enumerate(batch):
            rows.append({"path": str(it.path), **{k: float(scores[k][i]) for k in SCORE_NAMES},
                         "mask": "" if it.mask is None else str(it.mask), "width": it.size[0],
                         "height": it.size[1], "notes": "; ".join(it.notes)})
        vmax = max(vmax, float(maps[PRIMARY_SCORE].max()))
        if keep:
            kept.append((x, recon, maps, torch.stack([it.mask_pixels for it in batch])))
    if not scored:
        listed = inputs.describe_not_scored(found.failed, found.skipped, "the lines below")
        kept_out = f"; {out} was left as it was" if out is not None else ""
        if out is not None and (found.failed or found.skipped) and (not out.exists() or not any(out.iterdir())):
            with replacing_folder(out) as tmp:  # a new --out gets the reasons; an earlier output is kept
                atomic_write_csv(tmp / "not_scored.csv", inputs.not_scored_frame(found.failed, found.skipped))
                atomic_write_json(tmp / MANIFEST, {"format": MANIFEST_FORMAT, "run": str(run.dir.resolve()),
                                                   "scored": 0, "files": ["not_scored.csv"]})
            kept_out = f"; every file with its reason is in {out / 'not_scored.csv'}"
        raise DataError(f"no image scored in {', '.join(map(str, paths))}{kept_out}. "
                        + (listed if found.failed or found.skipped else "No image file was found there"))
    threshold = heldout.rescore(run, cfg, by_pixels, lambda u8: _loss_scores(model, loss, u8, dev), batch_size)
    table = _table(rows, threshold.value)
    if not np.isfinite(table[list(SCORE_NAMES)].to_numpy(dtype=float)).all():
        raise PyramidError(f"{run.dir}: some scores are NaN or infinite; the model is broken (diverged training?)")
    result = FileScores(table, threshold.value, PRIMARY_SCORE, found.failed, found.skipped, items=scored, vmax=vmax,
                        run=run, weights=cfg.weights, precision=cfg.precision, held_out=threshold,
                        rescore=lambda: ((b, x, r, m[PRIMARY_SCORE])
                                         for b, x, r, m, _, _ in scored_batches(scored, [])))
    if keep:
        result.images, result.reconstructions = torch.cat([k[0] for k in kept]), torch.cat([k[1] for k in kept])
        result.maps = {n: torch.cat([k[2][n] for k in kept]) for n in SCORE_NAMES}
        result.masks = torch.cat([k[3] for k in kept])
    log.debug("%s in %.1fs with %s", result.summary(), time.perf_counter() - t0, run.dir)
    if warn and (found.failed or found.skipped):
        warnings.warn(inputs.describe_not_scored(found.failed, found.skipped), stacklevel=2)
    if out is not None:
        with replacing_folder(out) as tmp:
            _write(result, tmp, figures, top, progress)
        result.files = {p: out / p for p in result.files}
    return result


def _loss_scores(model, loss, images_u8: torch.Tensor, device) -> torch.Tensor:
    """The `loss` score of each uint8 image, as `_scored_batches` computes it."""
    with torch.inference_mode():
        return predict(model, loss, to_input(images_u8, device), maps=False).scores[PRIMARY_SCORE].float().cpu()


def _scored_batches(items, size, intensity, model, loss, device, batch_size, failed, progress):
    """Decode, score and yield (items, x, reconstructions, maps, scores, pixel hashes), all on the
    CPU, batch by batch; items that fail to decode go to `failed` (and get no `size`)."""
    model.eval()
    bar = tqdm(total=len(items), desc="scoring images", disable=not progress or len(items) <= batch_size,
               leave=False)
    for start in range(0, len(items), batch_size):
        batch, imgs = [], []
        for it in items[start:start + batch_size]:
            try:
                imgs.append(inputs.decode(it, size, intensity))
                batch.append(it)
            except DataError as e:
                failed.append((str(it.path), str(e)))
        bar.update(len(items[start:start + batch_size]))
        if not batch:
            continue
        u8 = torch.stack(imgs)
        with torch.inference_mode():
            x = to_input(u8, device)
            p = predict(model, loss, x, maps=True)
            yield (batch, x.float().cpu().contiguous(), p.reconstruction.float().cpu(),
                   {k: v.float().cpu() for k, v in p.maps.items()}, {k: v.float().cpu() for k, v in p.scores.items()},
                   data_record.tensor_hashes(u8))
    bar.close()


def _table(rows: list[dict], threshold: float) -> pd.DataFrame:
    cols = ["path", *SCORE_NAMES, "mask", "width", "height", "notes"]
    t = pd.DataFrame(rows, columns=cols)
    t.insert(1 + len(SCORE_NAMES), "score", t[PRIMARY_SCORE])
    t.insert(2 + len(SCORE_NAMES), "score_name", PRIMARY_SCORE)
    t.insert(3 + len(SCORE_NAMES), "threshold", threshold)
    flagged = is_anomalous(t.score.to_numpy(), threshold, HELD_OUT_RULE)
    t.insert(4 + len(SCORE_NAMES), "verdict", np.where(flagged, "anomalous", "normal"))
    t.insert(len(t.columns) - 3, "figure", "")
    return t


def _check_out(out: Path) -> None:
    """ConfigError for a file, a non-empty folder that is not an earlier predict output, or an
    earlier output holding files it did not list (a user's: the whole folder is replaced)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file; give a folder for the predictions")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not (out / MANIFEST).is_file():
        raise ConfigError(f"--out {out}: folder is not empty and is not an earlier predict output (no {MANIFEST}); "
                          "predict writes only into a new or empty folder or over its own earlier output: choose "
                          "another --out")
    manifest = read_json(out / MANIFEST)
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ConfigError(f"--out {out}: its {MANIFEST} is not a pyramid-ad predict record; choose another --out")
    listed = {*map(str, manifest.get("files", [])), MANIFEST}
    foreign = sorted(q.relative_to(out).as_posix() for q in out.rglob("*") if not q.is_dir()
                     and q.relative_to(out).as_posix() not in listed)
    if foreign:
        raise ConfigError(f"--out {out}: holds {len(foreign)} file(s) an earlier predict did not write "
                          f"({', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}), which replacing the "
                          "folder would delete; move them out or choose another --out")


def _write(result: FileScores, folder: Path, figures: bool, top: int, progress: bool) -> None:
    """Write `result` into the new `folder`: figures, predictions.csv, not_scored.csv, top.png and
    predict.json (last); `result.files` and the table's figure column say what was written."""
    written: list[Path] = []
    if figures:
        written += _figures(result, folder, top, progress)
    atomic_write_csv(folder / "predictions.csv", result.table)
    written.append(Path("predictions.csv"))
    if result.failed or result.skipped:
        atomic_write_csv(folder / "not_scored.csv", inputs.not_scored_frame(result.failed, result.skipped))
        written.append(Path("not_scored.csv"))
    files = sorted({p.as_posix() for p in written})
    atomic_write_json(folder / MANIFEST, {"format": MANIFEST_FORMAT, "run": str(result.run.dir.resolve()),
                                          "score_name": PRIMARY_SCORE, "threshold": result.threshold,
                                          "rule": f"anomalous when {PRIMARY_SCORE} {HELD_OUT_RULE} threshold",
                                          "threshold_source": result.held_out.source,
                                          "threshold_recorded": result.held_out.recorded,
                                          "threshold_note": result.held_out.describe(),
                                          "n_scored": len(result.table), "n_failed": len(result.failed),
                                          "n_skipped": len(result.skipped), "files": files})
    result.files = dict.fromkeys(files)


def _figures(result: FileScores, folder: Path, top: int, progress: bool) -> list[Path]:
    """One figure per scored image and top.png; returns their paths under `folder`."""
    table, note = result.table, weights_note(result.weights, result.precision or None)
    names = inputs.figure_names(result.items)
    label = f"{score_label(PRIMARY_SCORE)} map"
    best = list(table.score.to_numpy().argsort()[::-1][:max(int(top), 0)])
    picks: dict[int, tuple] = {}
    i = 0
    bar = tqdm(total=len(table), desc="drawing figures", disable=not progress or len(table) < 50, leave=False)
    for batch, x, recon, maps in result.batches():
        for j, it in enumerate(batch):
            mask = it.mask_pixels.numpy() if it.mask is not None else None
            fig = prediction_figure(x[j], recon[j], maps[j].numpy(), result.vmax, mask, _title(table.iloc[i], note),
                                    label)
            atomic_save_figure(folder / names[i], fig, dpi=100)
            plt.close(fig)
            table.loc[i, "figure"] = names[i].as_posix()
            if i in best:
                picks[i] = (x[j], maps[j].numpy(), mask)
            i += 1
            bar.update(1)
    bar.close()
    if not best:
        return names
    sel = [picks[b] for b in best]
    titles = [f"{'/'.join(Path(table.path[b]).parts[-2:])}\n{table.score[b]:.4g} {table.verdict[b]}" for b in best]
    fig = top_sheet([s[0] for s in sel], [s[1] for s in sel], result.vmax, titles, [s[2] for s in sel],
                    f"the {len(best)} highest {score_label(PRIMARY_SCORE)} of {len(table)} images; held-out "
                    f"threshold {result.threshold:.4g} (cyan: ground-truth mask){note}", label)
    atomic_save_figure(folder / "top.png", fig, dpi=100)
    plt.close(fig)
    return [*names, Path("top.png")]


def _title(row, note: str) -> str:
    scores = ", ".join(f"{score_label(k) if k != PRIMARY_SCORE else 'loss'} {row[k]:.4g}" for k in SCORE_NAMES)
    rule = HELD_OUT_RULE if row.verdict == "anomalous" else "<=" if HELD_OUT_RULE == ">" else "<"
    verdict = f"{row.verdict}: {row.score_name} {row.score:.4g} {rule} held-out threshold {row.threshold:.4g}"
    return f"{row.path}\n{verdict}\n{scores}{note}"
