"""Untrusted checkpoints: pickle payloads never run; damaged or foreign checkpoints are refused clearly.

Training here uses tiny in-memory subsets of the embedded mnist-sample (a dozen images, a few
batches per epoch): the code paths are the real ones, only the data is small.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from helpers import copy_run, tiny_cfg

from pyramid_lib import files
from pyramid_lib.cli import main
from pyramid_lib.engine.run_dir import CHECKPOINT_FORMAT, RunDir, load_checkpoint
from pyramid_lib.engine.trainer import train
from pyramid_lib.errors import (
    CheckpointError,
)

# ----------------------------------------------------------------------------------- untrusted checkpoints

class ExecPayload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('payload ran')",))


class SystemPayload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def crafted(path: Path, marker: Path, how: str) -> Path:
    good = {"format": CHECKPOINT_FORMAT, "epoch": 1, "config": "{}", "history": "[]", "model": {}}
    if how == "torch.save exec":
        torch.save({**good, "model": {"w": ExecPayload(marker)}}, path)
    elif how == "torch.save os.system":
        torch.save({**good, "extra": SystemPayload(marker)}, path)
    else:  # a bare (legacy, not zip) pickle
        path.write_bytes(pickle.dumps({**good, "model": ExecPayload(marker)}, protocol=2))
    return path


@pytest.mark.parametrize("how", ["torch.save exec", "torch.save os.system", "bare pickle"])
def test_crafted_pickle_payload_is_refused_and_never_runs(tmp_path, tiny_run, tiny, how, capsys):
    marker = tmp_path / "PAYLOAD_RAN"
    # control: the payload is live (an unsafe load runs it)
    live = crafted(tmp_path / "control.pt", tmp_path / "control_marker", how)
    with contextlib.suppress(Exception):  # a bare pickle runs, then fails torch's magic-number check
        torch.load(live, weights_only=False)
    assert (tmp_path / "control_marker").exists()

    run = copy_run(tiny_run, tmp_path / "run")
    crafted(run.checkpoint, marker, how)
    with pytest.raises(CheckpointError, match=r"unsafe.*nothing in it was run"):
        files.safe_torch_load(run.checkpoint)
    with pytest.raises(CheckpointError, match="unsafe"):
        load_checkpoint(run.checkpoint)
    with pytest.raises(CheckpointError, match="unsafe"):
        RunDir(run.dir).load()
    with pytest.raises(CheckpointError, match="unsafe"):  # --resume with a swapped checkpoint
        train(tiny_cfg(epochs=2), run.dir, resume=True, data=tiny, progress=False)
    assert main(["evaluate", str(run.dir), "--device", "cpu"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unsafe" in err and "\x1b[" not in err
    assert not marker.exists()


@pytest.mark.parametrize("change,needle", [
    (dict(encoders=2), "encoders: 4 there, 2 here"),
    (dict(dataset="folder", input_size=32), "input_size: 28 there, 32 here"),
    (dict(pyramid="spatial"), "pyramid: 'paper' there, 'spatial' here"),
])
def test_checkpoint_of_another_config_is_refused_naming_the_setting(tiny_run, change, needle):
    cfg = replace(tiny_cfg(epochs=1), **change)
    with pytest.raises(CheckpointError, match=re.escape(needle)):
        load_checkpoint(tiny_run.checkpoint, cfg)
    load_checkpoint(tiny_run.checkpoint, tiny_cfg(epochs=5, lr=0.5))  # other settings do not matter here


def test_resume_with_other_settings_is_refused_naming_them(tmp_path, tiny_run, tiny):
    run = copy_run(tiny_run, tmp_path / "run")
    with pytest.raises(CheckpointError, match=r"lambda_: 1\.0 there, 0\.5 here.*another --out"):
        train(tiny_cfg(epochs=2, lambda_=0.5), run.dir, resume=True, data=tiny, progress=False)


def _save(path, obj):
    torch.save(obj, path)


@pytest.mark.parametrize("damage", ["truncated", "junk", "empty", "not a dict", "other format", "bad config json",
                                    "missing weights", "wrong shapes", "no optimizer", "config.json gone"])
def test_damaged_or_foreign_checkpoint_is_refused_clearly(tmp_path, tiny_run, tiny, damage):
    run = copy_run(tiny_run, tmp_path / "run")
    ck = torch.load(run.checkpoint, weights_only=True)
    raw = run.checkpoint.read_bytes()
    if damage == "truncated":
        run.checkpoint.write_bytes(raw[: len(raw) // 2])
    elif damage == "junk":
        run.checkpoint.write_bytes(b"this is not a checkpoint at all\n" * 10)
    elif damage == "empty":
        run.checkpoint.write_bytes(b"")
    elif damage == "not a dict":
        _save(run.checkpoint, [torch.zeros(3)])
    elif damage == "other format":
        _save(run.checkpoint, {"state_dict": ck["model"]})  # e.g. someone else's checkpoint
    elif damage == "bad config json":
        _save(run.checkpoint, {**ck, "config": "{not json"})
    elif damage == "missing weights":
        _save(run.checkpoint, {**ck, "model": {k: v for i, (k, v) in enumerate(ck["model"].items()) if i % 7}})
    elif damage == "wrong shapes":
        _save(run.checkpoint, {**ck, "model": {k: v[..., :1] if v.dim() > 1 else v for k, v in ck["model"].items()}})
    elif damage == "no optimizer":
        _save(run.checkpoint, {k: v for k, v in ck.items() if k != "optimizer"})
    elif damage == "config.json gone":
        run.config.unlink()
    with pytest.raises(CheckpointError) as e:
        if damage == "no optimizer":
            train(tiny_cfg(epochs=2), run.dir, resume=True, data=tiny, progress=False)
        else:
            RunDir(run.dir).load()
    msg = str(e.value)
    assert str(run.dir) in msg and len(msg.splitlines()) == 1
