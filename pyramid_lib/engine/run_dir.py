"""The run folder: one abstraction (`RunDir`) for its paths, state, lock, checkpoint and outputs.

Training (trainer.py), evaluation (evaluate.py), sweeps (experiments/), the inspector and the
notebooks all reach a run through a RunDir.  Checkpoints load with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import contextlib
import functools
import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from filelock import FileLock, Timeout

from ..config import RUN_FIELDS, SHAPE_FIELDS, TrainConfig
from ..errors import CheckpointError, ConfigError, RunBusy
from ..files import (
    atomic_torch_save,
    check_writable,
    describe_holder,
    holder_file,
    lock_holder,
    read_json,
    record_holder,
    safe_torch_load,
)
from ..model.loss import PyramidLoss
from ..model.network import PyramidalAutoencoder
from .build import build, fast_path, pick_device

CHECKPOINT_FORMAT = "pyramid-ad/1"


class RunDir:
    """One run folder: where its files are, what state it is in, and its trained model.

    Files (each written atomically, see files.py):
        config.json      the TrainConfig the run was made with (resolved weights included)
        checkpoint.pt    model (and, while training, optimiser) state after the last complete epoch
        run.json         status (running / finished / diverged), loss history, device, wall time
        scores.csv       every score of every test image and held-out normal (after evaluation)
        metrics.csv      one row: AUROC, rates at both thresholds, ... (written last: the run is done)
        data.json        the fit images and held-out normals by name and content hash, written when
                         training starts; evaluation scores the held-out normals it names
                         (engine/data_record.py)
        .lock            held by the one process that writes the folder (`lock()`, `hold()`, filelock)

    States, by name: `trained` (run.json says finished and the checkpoint is there) and `evaluated`
    (metrics.csv exists; a sweep counts such a run as done and never redoes it).  A baseline run
    (baselines.py) has no checkpoint: it is evaluated without ever being `trained`.
    `load()` loads the checkpoint once per RunDir and keeps the model.
    """

    def __init__(self, path, device=None):
        self.dir = Path(path)
        self.config = self.dir / "config.json"
        self.checkpoint = self.dir / "checkpoint.pt"
        self.state = self.dir / "run.json"
        self.scores = self.dir / "scores.csv"
        self.metrics = self.dir / "metrics.csv"
        self.data_record = self.dir / "data.json"
        self.lock_file = self.dir / ".lock"
        self._filelock: FileLock | None = None  # one per RunDir: reentrant within it (run_job -> train)
        self.device = device
        self._loaded: tuple | None = None

    def __repr__(self) -> str:
        return f"RunDir({str(self.dir)!r})"

    @property
    def name(self) -> str:
        return self.dir.name

    def read_state(self) -> dict:
        """run.json as a dict ({} before training started)."""
        return read_json(self.state) if self.state.is_file() else {}

    def read_config(self) -> TrainConfig:
        """The run's TrainConfig; CheckpointError when config.json is missing."""
        if not self.config.is_file():
            raise CheckpointError(f"{self.config}: missing; {self.dir} is not a pyramid-ad run folder")
        return TrainConfig.from_dict(read_json(self.config))

    @property
    def trained(self) -> bool:
        """Training finished: run.json says so and the checkpoint is there."""
        return self.read_state().get("status") == "finished" and self.checkpoint.is_file()

    @property
    def evaluated(self) -> bool:
        """metrics.csv exists: it is written last, atomically, so the run is complete.  The one rule
        for reusing a run (notebooks, `run_one`, sweeps): metrics.csv follows a finished training, a
        divergence (scored at its last good epoch: training it again diverges the same way) or a
        fitted baseline, so an evaluated run is never redone."""
        return self.metrics.is_file()

    def history(self) -> pd.DataFrame:
        """Per-epoch loss history (run.json): epoch, loss, mse, perceptual, seconds, images_per_s."""
        return pd.DataFrame(self.read_state().get("history", []))

    def read_scores(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(test scores, held-out normal scores) from scores.csv; CheckpointError when it is empty,
        not a CSV or lacks the split column."""
        df = self._read_csv(self.scores, {"class": str}, "split")
        return df[df.split == "test"].reset_index(drop=True), df[df.split != "test"].reset_index(drop=True)

    def read_metrics(self) -> pd.DataFrame:
        """metrics.csv: one row; CheckpointError when it is empty or not a one-row CSV."""
        return self._read_csv(self.metrics, {"normal_class": str}, None)

    def _read_csv(self, path: Path, dtype: dict, needs: str | None) -> pd.DataFrame:
        """A CSV this run wrote, or CheckpointError naming it and how to rewrite it (evaluate again)."""
        again = f"run `pyramid-ad evaluate {self.dir}` again to rewrite it"
        try:
            df = pd.read_csv(path, dtype=dtype)
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
            raise CheckpointError(f"{path}: empty or not a CSV ({type(e).__name__}); {again}") from e
        if df.empty or (needs is not None and needs not in df):
            raise CheckpointError(f"{path}: {'no rows' if df.empty else f'no {needs} column'} (edited or cut "
                                  f"short?); {again}")
        return df

    def load(self, device=None) -> tuple[TrainConfig, PyramidalAutoencoder, PyramidLoss]:
        """(config, trained model in eval mode, loss), loaded once per RunDir and kept.

        The checkpoint is read with `torch.load(weights_only=True)` and checked against config.json;
        the loss's perceptual network F gets the weights saved with the run (`load_perceptual`).
        CheckpointError when either is missing, unsafe, damaged or does not fit.  `device` (else the
        RunDir's, else `pick_device`'s choice) applies to the first call only.
        """
        if self._loaded is None:
            cfg = self.read_config()
            state = self.read_state()
            if state.get("status") == "diverged" and not self.checkpoint.is_file():
                raise CheckpointError(f"{self.dir}: training diverged in epoch {state.get('diverged_epoch')} before "
                                      "any epoch finished, so there is no checkpoint to use (run.json: "
                                      f"{state.get('error')}); train again: pyramid-ad train ... --lr <a tenth of it>")
            dev = pick_device(device if device is not None else self.device)
            ckpt = load_checkpoint(self.checkpoint, cfg)
            # the network as it trained (fast_path: an image scores the same in any batch, evaluate or predict)
            model, loss_fn = fast_path(cfg, *build(cfg, dev, pretrained_backbone=False))
            load_state(model, ckpt["model"], self.checkpoint)
            load_perceptual(loss_fn, ckpt, self.checkpoint)
            self._loaded = (cfg, model.eval(), loss_fn)
        return self._loaded

    def drop_optimizer(self) -> None:
        """Rewrite a finished run's checkpoint without its optimiser state (atomically): the
        weights are all that scoring needs, and Adam's two moments double the file.  The run can
        then not be trained further.  ConfigError for a run that is not `trained`, RunBusy while another
        process writes the folder."""
        if not self.trained:
            raise ConfigError(f"{self.dir}: not a finished run; its optimiser state is needed to resume it")
        with self.hold("drop the optimiser state of"):
            ckpt = load_checkpoint(self.checkpoint)
            if ckpt.get("optimizer") is not None:
                ckpt["optimizer"] = None
                atomic_torch_save(self.checkpoint, ckpt)

    @contextlib.contextmanager
    def lock(self):
        """Hold the folder's exclusive lock without waiting: yields True when this process got it,
        False when another holder has it (the caller then skips the run as busy).  `filelock` on
        `.lock` (the folder is created); released on exit.  Reentrant within one RunDir and thread
        (a sweep's job holds it, then trains and evaluates through the same RunDir); another
        RunDir of the same folder, in this process or another, is a second holder."""
        check_writable(self.dir, f"run folder {self.dir}")  # read-only: one message before any work
        self.dir.mkdir(parents=True, exist_ok=True)
        if self._filelock is None:
            self._filelock = FileLock(self.lock_file)
        lock = self._filelock
        try:
            lock.acquire(timeout=0)
        except Timeout:
            yield False
            return
        outer = lock.lock_counter == 1  # not a reentrant hold: this one says who holds the folder
        try:
            if outer:
                record_holder(self.lock_file)
            yield True
        finally:
            if outer:
                holder_file(self.lock_file).unlink(missing_ok=True)
            lock.release()

    @contextlib.contextmanager
    def hold(self, what: str):
        """`lock()` for one writer (`train`, `evaluate`): RunBusy at once, naming the folder, when
        another process (or another RunDir) holds it."""
        with self.lock() as got:
            if not got:
                raise RunBusy(f"{self.dir}: another process is writing this run folder (training or evaluating it: "
                              f"it holds {self.lock_file.name}: {describe_holder(lock_holder(self.lock_file))}), "
                              f"so it cannot {what} it now; wait until that "
                              "process has finished, or use another folder")
            yield


def existing_run(path, device=None) -> RunDir:
    """The run folder `path` for a command that reads a trained run (evaluate, predict).  Raises
    CheckpointError naming the run folder and the fix for a file given instead (its checkpoint.pt,
    config.json ...) and for a folder that is not a run (no config.json), e.g. a folder of runs."""
    p = Path(path)
    if p.is_file():
        run = p.parent if (p.parent / "config.json").is_file() else None
        fix = f"give the run folder instead: {run}" if run else "give the run folder (the one holding config.json)"
        raise CheckpointError(f"{p}: is a file{' of the run folder ' + str(run) if run else ''}, not a run folder; "
                              f"{fix}")
    if p.is_dir() and not (p / "config.json").is_file():
        runs = sorted(q.name for q in p.iterdir() if (q / "config.json").is_file())
        raise CheckpointError(f"{p}: not a run folder (no config.json)" + (
            f"; it holds the run folders {', '.join(runs[:5])}{' ...' if len(runs) > 5 else ''}: give one of them, "
            f"e.g. {p / runs[0]}" if runs else "; give the folder `pyramid-ad train --out` wrote"))
    return RunDir(p, device)


def holding_lock(what: str):
    """Decorator for a function `fn(run_dir, ...)` that writes a run folder: it gets a RunDir and
    runs holding that folder's lock (`RunDir.hold(what)`: RunBusy when another process holds it).
    A folder that does not exist is passed on unlocked (and not created): `fn` says what is missing."""
    def wrap(fn):
        @functools.wraps(fn)
        def locked(run_dir, *args, **kwargs):
            run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
            if not run.dir.is_dir():
                return fn(run, *args, **kwargs)
            with run.hold(what):
                return fn(run, *args, **kwargs)
        return locked
    return wrap


def check_compatible(saved: dict, cfg: TrainConfig, where, names=RUN_FIELDS) -> None:
    """Refuse a checkpoint/config made with other settings, naming each that differs."""
    want, saved = asdict(cfg), asdict(TrainConfig.from_dict(saved))  # file keys, old names, defaults
    diff = [f"{k}: {saved.get(k)!r} there, {want[k]!r} here" for k in names if saved.get(k) != want[k]]
    if diff:
        raise CheckpointError(f"{where}: made with other settings ({'; '.join(diff)}); "
                              "use the same settings or another --out folder")


def load_checkpoint(path, cfg: TrainConfig | None = None) -> dict:
    """Load a checkpoint safely; with `cfg`, also check it fits that config's network."""
    ckpt = safe_torch_load(path)
    if ckpt.get("format") != CHECKPOINT_FORMAT or "model" not in ckpt:
        raise CheckpointError(f"{path}: not a pyramid-ad checkpoint (format {ckpt.get('format')!r})")
    try:
        saved = json.loads(ckpt["config"])
        int(ckpt["epoch"]), json.loads(ckpt["history"])
        if not isinstance(saved, dict) or not isinstance(ckpt["model"], dict):
            raise TypeError("config or model is not a mapping")
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: a damaged pyramid-ad checkpoint ({type(e).__name__}: {e}); "
                              "delete it to retrain, or restore it from a backup") from e
    if cfg is not None:
        check_compatible(saved, cfg, path, SHAPE_FIELDS)
    return ckpt


def load_perceptual(loss: PyramidLoss, ckpt: dict, path) -> None:
    """Give the loss's frozen weights (`PyramidLoss.frozen`: the perceptual network F) those the
    run trained with, saved in every checkpoint as "perceptual".  CheckpointError for a checkpoint
    without them (made by an early version of the kit): its F cannot be told, so neither its scores."""
    if "perceptual" not in ckpt:
        raise CheckpointError(f"{path}: made before runs saved their perceptual network (VGG11), so its scores "
                              "cannot be reproduced; train the run again")
    load_state(loss.frozen(), ckpt["perceptual"], path, "perceptual network (VGG11)")


def load_state(module, state, path, what: str = "model") -> None:
    """`module.load_state_dict(state)`, refusing a state that does not fit with CheckpointError."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError, AttributeError) as e:
        why = " ".join(str(e).split())[:300] or type(e).__name__
        raise CheckpointError(f"{path}: its {what} state does not fit this network ({why}); "
                              "it is damaged or from another version") from e
