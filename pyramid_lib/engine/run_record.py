"""run.json while a run trains: what `trainer.train` writes at its start, after each epoch, when
it diverges and when it finishes.

    status            running / finished / diverged (with diverged_epoch and error)
    config, versions  the TrainConfig and the library versions with the kit's git commit
    history           per epoch: the mean of each loss term, seconds, images per second
    init              how the backbone and the perceptual network started (imagenet / orthogonal)
    machine           logical CPUs, torch threads, the load average at each start and at the end
    schedule_changes  every resume that changed --epochs (the steps before followed the old schedule)

config.json and data.json are written beside it at the start (data.json: engine/data_record.py);
checkpoint.pt after each epoch.  Every write is atomic: a kill leaves the previous good file."""

from __future__ import annotations

import json
import os
import warnings

import torch

from .. import machine, threshold
from ..config import TrainConfig
from ..errors import DataWarning
from ..files import atomic_torch_save, atomic_write_json
from . import data_record
from .build import versions
from .run_dir import CHECKPOINT_FORMAT, RunDir

# warnings point at the caller of trainer.train: start <- trainer._train <- trainer.train <- caller
_CALLER = 4


def start(run: RunDir, cfg: TrainConfig, data, split, n_fit: int, history: list, device, resumed: bool,
          measured: dict | None = None) -> dict:
    """Record the data (data.json; refused on resume when it changed), warn about what in it makes
    the results unreliable (duplicates, few held-out normals), and write config.json and run.json
    (status running); returns run.json's content."""
    if resumed:  # DataError when the training images changed since the run started
        data_record.check_resume(run, cfg, data, split)
    else:
        record = data_record.make(cfg, data, split)
        data_record.write(run, record)
        few = threshold.few_normals_warning(len(record["held_out"]), str(run.dir))
        for why in (data_record.duplicates(record), few):
            if why:
                warnings.warn(why, DataWarning, stacklevel=_CALLER)
    changes = schedule_changes(run, cfg, history) if resumed else []
    state = {"status": "running", "config": cfg.to_dict(), "device": str(device), "versions": versions(),
             **({"schedule_changes": changes} if changes else {}),
             "fit_images": n_fit, "history": history, "init": weights_init(cfg),
             "machine": machine_load(run.read_state().get("machine", {}), "start"),
             "wall_time_s": run.read_state().get("wall_time_s", 0.0),
             "precision_measured": measured or run.read_state().get("precision_measured")}
    atomic_write_json(run.config, cfg.to_dict())
    atomic_write_json(run.state, state)
    return state


def schedule_changes(run: RunDir, cfg: TrainConfig, history: list) -> list[dict]:
    """run.json's record of every resume that changed the number of epochs (the earlier ones
    kept), warned when this one does: the steps already taken followed the earlier schedule, so
    the run is not the run a fresh `--epochs N` would give (with --lr-schedule cosine its learning
    rate jumps)."""
    before = run.read_state()
    changes = list(before.get("schedule_changes", []))
    then = (before.get("config") or {}).get("epochs")
    if then is not None and int(then) != cfg.epochs:
        changes.append({"at_epoch": len(history), "epochs_before": int(then), "epochs_now": cfg.epochs})
        warnings.warn(f"{run.dir}: --resume with --epochs {cfg.epochs}, but the run was begun with --epochs {then}: "
                      f"its first {len(history)} epoch(s) followed the {then}-epoch learning-rate schedule "
                      f"({cfg.lr_schedule}), so it is not what a new --epochs {cfg.epochs} run gives; recorded in "
                      f"{run.state.name} (schedule_changes). For a clean run, train into another --out",
                      UserWarning, stacklevel=_CALLER + 1)
    return changes


def save_epoch(run: RunDir, state: dict, cfg: TrainConfig, model, opt, loss_fn, history: list) -> None:
    """The checkpoint after a complete epoch, then run.json (both atomic)."""
    atomic_torch_save(run.checkpoint, {
        "format": CHECKPOINT_FORMAT, "epoch": history[-1]["epoch"], "config": json.dumps(cfg.to_dict()),
        "history": json.dumps(history), "model": model.state_dict(), "optimizer": opt.state_dict(),
        "perceptual": loss_fn.frozen().state_dict(),
    })
    state.update(history=history, wall_time_s=round(state["wall_time_s"] + history[-1]["seconds"], 2))
    atomic_write_json(run.state, state)


def diverged(run: RunDir, state: dict, epoch: int, why: str) -> None:
    """Record a divergence in run.json: status "diverged", the epoch, why; the checkpoint stays the
    last good one."""
    state.update(status="diverged", diverged_epoch=epoch, error=f"diverged in epoch {epoch}: {why}")
    atomic_write_json(run.state, state)


def finished(run: RunDir, state: dict, loop_seconds: float, loop_epochs: int) -> None:
    """Record the end: status "finished", the machine's load, and what the epoch bar's rate showed
    (this call's epochs, saving included), which the notebooks print beside the history's per-epoch
    training seconds (those leave the saving out)."""
    state.update(status="finished", machine=machine_load(state["machine"], "end"),
                 loop_seconds=round(loop_seconds, 2), loop_epochs=loop_epochs)
    atomic_write_json(run.state, state)


def weights_init(cfg: TrainConfig) -> dict:
    """How the run's backbone and perceptual network (VGG11) started, for run.json and the pages:
    "imagenet" (torchvision's weights) or "orthogonal" (random: `network.init_orthogonal`)."""
    start = "imagenet" if cfg.weights == "imagenet" else "orthogonal"
    return {"backbone": start, "perceptual": start, "rest": "orthogonal"}


def machine_load(seen: dict, when: str) -> dict:
    """What else ran on this machine: its logical CPUs, torch's threads, and the 1-minute load
    average at `when` ("start" of each training call, "end"), added to `seen` (run.json's).  A
    load above the threads this run used means other processes shared the cores."""
    out = {**seen, "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    load = machine.load_average()  # None on Windows: nothing recorded
    if load is not None:
        out["load_" + when] = [*out.get("load_" + when, []), round(load, 2)]
    return out
