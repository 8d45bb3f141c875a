"""What happens around the loader: thresholds from few images and their tie rule, leakage between
the splits, 16-bit windows, predict that never replaces good output, file-system and run-folder
faults in every command, long lists summarised, divergence recorded as a result, backslashes in
names.  Each test names the situation and checks the value the kit should give."""

from __future__ import annotations

import errno
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from folder_helpers import SIZE, folder_cfg, make_folder, save_png, texture
from helpers import tiny_cfg

from pyramid_lib import data, files, threshold
from pyramid_lib.cli import main
from pyramid_lib.data.images_io import decode_image, intensity_window
from pyramid_lib.engine import data_record
from pyramid_lib.engine.evaluate import evaluate_run
from pyramid_lib.engine.run_dir import RunDir
from pyramid_lib.engine.score_files import score_files
from pyramid_lib.engine.score_inputs import describe_not_scored
from pyramid_lib.engine.trainer import Diverged, train
from pyramid_lib.errors import CheckpointError, DataError, DataWarning

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """(data folder, a one-epoch folder run, evaluated): 12 training images, 1 held out."""
    base = tmp_path_factory.mktemp("rel")
    root = make_folder(base / "data")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = train(folder_cfg(root, heldout_fraction=0.1), base / "run", progress=False)
        evaluate_run(run, progress=False)
    return root, run, caught


# ------------------------------------------------------------------ 3: thresholds and their tie rule

def test_held_out_rule_calls_a_score_at_the_threshold_normal():
    scores = [0.1, 0.2, 0.3]
    t = threshold.from_normals([0.2])  # one held-out normal: the quantile IS its score
    assert t == 0.2
    assert threshold.is_anomalous(scores, t, threshold.HELD_OUT_RULE).tolist() == [False, False, True]
    assert threshold.is_anomalous(scores, t, threshold.YOUDEN_RULE).tolist() == [False, True, True]
    r = threshold.rates([0, 0, 1], scores, t, threshold.HELD_OUT_RULE)
    assert (r["tnr"], r["tpr"], r["fp"]) == (1.0, 1.0, 0)


@pytest.mark.parametrize("n, warned", [(1, True), (2, True), (19, True), (20, False), (0, False)])
def test_few_held_out_normals_are_warned_with_the_count(n, warned):
    msg = threshold.few_normals_warning(n, "runs/x")
    assert (msg is not None) == warned
    if warned:
        assert f"only {n} held-out normal" in msg and "--heldout-fraction" in msg


@pytest.mark.slow
def test_train_and_evaluate_warn_about_few_normals_and_a_held_out_image_is_normal(evaluated, tmp_path):
    root, run, caught = evaluated
    few = [str(w.message) for w in caught if issubclass(w.category, DataWarning) and "held-out" in str(w.message)]
    assert len(few) == 2 and all("only 1 held-out normal image(s)" in m for m in few)  # train, then evaluate
    held = data_record.read(run)["held_out"]
    res = score_files(run, [root / "train"], progress=False, warn=False)  # the held-out normal among the others
    row = res.table[res.table.path == str(root / next(iter(held)))].iloc[0]
    assert row.loss == res.threshold  # the one held-out normal's score IS the "95% quantile"...
    assert row.verdict == "normal"  # ... and it is normal (rule >), not anomalous as with >=
    assert res.held_out.source == "rescored" and res.held_out.n == 1


def _nudge_threshold(run: RunDir, steps: int) -> float:
    """Move metrics.csv's heldout_threshold `steps` float32 rounding steps, as evaluate on another
    processor's kernels may have stored it; returns the new value."""
    m = pd.read_csv(run.metrics)
    t = np.float32(m.heldout_threshold.iloc[0])
    for _ in range(abs(steps)):
        t = np.nextafter(t, np.float32(np.inf if steps > 0 else -np.inf))
    m["heldout_threshold"] = float(t)
    m.to_csv(run.metrics, index=False)
    return float(t)


def test_a_held_out_normal_is_normal_whatever_kernels_rounded_the_recorded_threshold(evaluated, tmp_path):
    """By construction, not by luck of kernels: with evaluate's threshold stored a rounding step
    BELOW the held-out normal's own score (what AVX-512 against AVX2 kernels did), predict still
    calls that image normal, because it judges it against the threshold rescored in the call."""
    root, run, _ = evaluated
    moved = RunDir(shutil.copytree(run.dir, tmp_path / "run"))
    lower = _nudge_threshold(moved, -1)
    held = data_record.read(moved)["held_out"]
    res = score_files(moved, [root / "train"], progress=False, warn=False)
    row = res.table[res.table.path == str(root / next(iter(held)))].iloc[0]
    assert res.held_out.recorded == lower < row.loss == res.threshold and row.verdict == "normal"


def test_without_its_held_out_images_predict_uses_the_recorded_threshold_and_says_so(evaluated, tmp_path):
    root, run, _ = evaluated
    moved = RunDir(shutil.copytree(run.dir, tmp_path / "run"))
    data_copy = shutil.copytree(root, tmp_path / "inputs")
    cfg = json.loads((moved.dir / "config.json").read_text())
    cfg["data_root"] = str(tmp_path / "gone")  # the data folder the run was trained on is not there
    (moved.dir / "config.json").write_text(json.dumps(cfg))
    res = score_files(moved, [data_copy / "test"], out=tmp_path / "out", progress=False, warn=False)
    recorded = float(moved.read_metrics().heldout_threshold.iloc[0])
    assert res.held_out.source == "recorded" and res.threshold == recorded
    assert "as recorded in metrics.csv" in res.summary() and "could not be read" in res.summary()
    manifest = json.loads((tmp_path / "out" / "predict.json").read_text())
    assert manifest["threshold_source"] == "recorded" and "could not be read" in manifest["threshold_note"]


# ------------------------------------------------------------------------------------- 4: leakage

def test_duplicates_between_and_within_splits_are_named_in_one_warning():
    rec = {"train": {"images": {"train/good/a.png": "h1", "train/good/b.png": "h2", "train/good/c.png": "h2",
                                "train/good/leak.png": "h9"}},
           "test": {"images": {"test/good/a.png": "h1", "test/crack/0.png": "h9", "test/good/z.png": "h7"}}}
    msg = data_record.duplicates(rec)
    assert "2 test image(s) are pixel-identical to training images" in msg
    assert "test/good/a.png = train/good/a.png" in msg and "test/crack/0.png = train/good/leak.png" in msg
    assert "1 training image(s) are duplicates" in msg and "train/good/b.png = train/good/c.png" in msg
    assert data_record.duplicates({"train": {"images": {"a": "1"}}, "test": {"images": {"b": "2"}}}) is None


@pytest.mark.slow
def test_a_training_copy_of_a_test_image_is_named_and_never_trained_on(tmp_path):
    root = make_folder(tmp_path / "data")
    shutil.copy(root / "train/good/000.png", root / "test/good/copy.png")
    with pytest.warns(UserWarning, match=r"copy of a test picture: never trained on.*\(1\): train/good/000.png "
                                         r"\(= test/good/copy.png\)"):
        run = train(folder_cfg(root), tmp_path / "run", progress=False)
    record = json.loads(run.data_record.read_text())
    assert "train/good/000.png" not in record["train"]["images"] and "test/good/copy.png" in record["test"]["images"]


# ------------------------------------------------------------- 2: 16-bit and float intensity windows

def _xray(seed, defect, lo=33000, hi=36900, dtype=np.uint16):
    t = texture(seed, defect=defect)[..., 0].astype(np.float64) / 255.0
    return (lo + t * (hi - lo)).astype(dtype)


def _window_set(root, lo, hi, dtype, ext):
    for i in range(6):
        save_png(_xray(i, False, lo, hi, dtype), root / "train/good" / f"{i}{ext}")
    save_png(_xray(100, False, lo, hi, dtype), root / "test/good" / f"0{ext}")
    save_png(_xray(200, True, lo, hi, dtype), root / "test/crack" / f"0{ext}")
    return sorted((root / "train/good").iterdir()), root / "test/crack" / f"0{ext}"


def _defect_contrast(x: torch.Tensor) -> float:
    """Grey levels between the picture around the defect square (rows/cols 13..23 of 40 on disk)
    and the square itself, at SIZE 32."""
    g = x[0].float()
    inside = torch.zeros_like(g, dtype=torch.bool)
    inside[11:18, 11:18] = True
    return float(g[~inside].mean() - g[inside].mean())


def test_a_16bit_window_keeps_its_grey_levels_and_is_recorded(tmp_path):
    paths, crack = _window_set(tmp_path, 33000, 36900, np.uint16, ".png")
    w = intensity_window(paths, "train-range")
    k = w["kinds"]["integer"]
    assert w["rule"] == "train-range" and 33000 <= k["low"] < k["high"] <= 36900 and k["files"] == 6
    full, _, _ = decode_image(crack, SIZE)  # no window: the nominal 0..65535, a few levels
    kept, _, _ = decode_image(crack, SIZE, w)
    assert len(torch.unique(full)) < 20 and len(torch.unique(kept)) > 100
    with pytest.warns(UserWarning, match=r"6 16-bit \(or 32-bit integer\) training image\(s\), "
                                         r"values 3\d+\.\.3\d+: this range \(the training "
                                         r"images'\) mapped to 0\.\.255"):
        d = data.load("folder", "good", str(tmp_path), False, SIZE)
    assert d.intensity == w and len(torch.unique(d.test.images)) > 100
    levels = round((k["high"] - k["low"]) / 65535 * 255)
    with pytest.warns(UserWarning, match=rf"the nominal range 0\.\.65535 mapped to 0\.\.255, about {levels} grey "):
        assert data.load("folder", "good", str(tmp_path), False, SIZE, "full").intensity["rule"] == "full"
    assert intensity_window([tmp_path / "no.png"])["kinds"] == {}  # 8-bit (or unreadable): nothing to map


def test_a_window_recorded_before_floats_had_one_still_applies(tmp_path):
    """data.json of runs trained when only integer images had a window: {"rule", "low", "high", "files"}."""
    paths, crack = _window_set(tmp_path, 33000, 36900, np.uint16, ".png")
    w = intensity_window(paths)
    old = {"rule": "train-range", **w["kinds"]["integer"]}
    assert torch.equal(decode_image(crack, SIZE, old)[0], decode_image(crack, SIZE, w)[0])
    assert not torch.equal(decode_image(crack, SIZE, old)[0], decode_image(crack, SIZE)[0])


@pytest.mark.slow
def test_a_float_window_keeps_the_defect_visible_and_predict_reads_the_window_back(tmp_path):
    """Field case 27 with float32 TIFFs filling 0.40..0.46 (microscopy, X-ray floats): the nominal
    0..1 leaves under 20 grey levels and a defect a few levels deep; the training range keeps over
    100 levels and a deep defect, is recorded in data.json and applied by predict."""
    root = tmp_path / "data"
    paths, crack = _window_set(root, 0.40, 0.46, np.float32, ".tif")
    w = intensity_window(paths)
    k = w["kinds"]["float"]
    assert set(w["kinds"]) == {"float"} and 0.40 <= k["low"] < k["high"] <= 0.46 and k["files"] == 6
    full, _, _ = decode_image(crack, SIZE, intensity_window(paths, "full"))
    kept, _, notes = decode_image(crack, SIZE, w)
    assert len(torch.unique(full)) < 20 and len(torch.unique(kept)) > 100
    assert _defect_contrast(full) < 10 and _defect_contrast(kept) > 5 * _defect_contrast(full)
    assert notes and "clipped to the training range" in notes[0]  # the defect is darker than any training pixel
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = train(folder_cfg(root, heldout_fraction=0.2), tmp_path / "run", progress=False)
        evaluate_run(run, progress=False)
    said = " ".join(str(c.message) for c in caught)
    assert "6 float training image(s), values 0.4" in said and "test/crack/0.tif" in said
    assert data_record.intensity(run) == w
    res = score_files(run, [crack], progress=False)
    assert torch.equal((res.images[0] * 255).round().to(torch.uint8), kept)


# ---------------------------------------------------- 1, 6: predict replaces its output only when better

@pytest.mark.slow
def test_predict_that_scores_nothing_leaves_the_earlier_output_as_it_was(evaluated, tmp_path, capsys):
    root, run, _ = evaluated
    out = tmp_path / "pred"
    assert main(["predict", str(run.dir), str(root / "test"), "--out", str(out)]) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    small = tmp_path / "small"
    for i in range(3):
        save_png(texture(i, side=20), small / f"x{i}.png")
    for args in ([str(root / "tset")], [str(small)]):
        capsys.readouterr()
        assert main(["predict", str(run.dir), *args, "--out", str(out)]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "no image scored" in err and "was left as it was" in err
        assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert "--input-size" not in err and "score a larger version" in err  # advice predict's user can take
    assert not [q for q in tmp_path.iterdir() if q.name.startswith(".")]  # no temporary folder left


def test_many_unreadable_files_are_summarised_and_listed_in_full_in_a_file(evaluated, tmp_path, capsys):
    root, run, _ = evaluated
    frames = tmp_path / "frames"
    for i in range(60):
        save_png(texture(i, side=8), frames / f"thumb_{i:03d}.png")
    shutil.copy(root / "test/good/000.png", frames / "frame.png")
    assert main(["predict", str(run.dir), str(frames), "--out", str(tmp_path / "o"), "--no-figures"]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) < 10 and any("failed, image is WxH, smaller than the input size" in ln and "(60)" in ln
                                   and "... and 57 more" in ln for ln in lines)
    ns = pd.read_csv(tmp_path / "o" / "not_scored.csv")
    assert len(ns) == 60 and (ns.status == "failed").all()
    assert len(pd.read_csv(tmp_path / "o" / "predictions.csv")) == 1


def test_the_summary_counts_by_reason():
    failed = [(f"/d/{i}.png", f"/d/{i}.png: image is {i}x{i}, smaller than the input size 32x32") for i in (8, 9)]
    msg = describe_not_scored(failed, [("/d/a.txt", "not an image")], "x.csv")
    assert msg.splitlines() == ["3 file(s) not scored (2 failed, 1 skipped; every one with its reason in x.csv):",
                                "  failed, image is WxH, smaller than the input size WxH (2): /d/8.png, /d/9.png",
                                "  skipped, not an image (1): /d/a.txt"]


# ------------------------------------------------------- 5: file-system and run-folder faults

@pytest.fixture
def read_only(monkeypatch):
    """Make folders read-only for this process as permission bits would for a user (the tests run
    as root, who ignores them): creating a file or folder under one raises PermissionError."""
    frozen: list[Path] = []
    real_mkstemp, real_mkdtemp, real_open = tempfile.mkstemp, tempfile.mkdtemp, os.open

    def refuse(d):
        d = Path(d or ".").resolve()
        if any(d == f or f in d.parents for f in frozen):
            raise PermissionError(errno.EACCES, "Permission denied", str(d))

    def mkstemp(*a, dir=None, **k):
        refuse(dir)
        return real_mkstemp(*a, dir=dir, **k)

    def mkdtemp(*a, dir=None, **k):
        refuse(dir)
        return real_mkdtemp(*a, dir=dir, **k)

    def os_open(path, flags, *a, **k):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(Path(path).parent)
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    monkeypatch.setattr(os, "open", os_open)
    return lambda p: frozen.append(Path(p).resolve())


def _one_error(capsys, *words) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("pyramid-ad: error:") and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err


def test_every_command_refuses_a_read_only_output_before_working(evaluated, tmp_path, read_only, capsys):
    root, run, _ = evaluated
    ro = tmp_path / "ro"
    shutil.copytree(run.dir, ro / "run")
    read_only(ro)
    q = ["--epochs", "1", "--weights", "random", "--no-download", "--profile", "quick"]
    cases = {
        "train": ["train", "--dataset", "folder", "--data-root", str(root), "--out", str(ro / "new"), "--input-size",
                  str(SIZE), *q],
        "evaluate": ["evaluate", str(ro / "run")],
        "predict": ["predict", str(run.dir), str(root / "test"), "--out", str(ro / "pred")],
        "reproduce": ["reproduce", "mnist", "--classes", "1", "--out", str(ro / "results"), *q],
        "report": ["report", "--out", str(ro / "results")],
    }
    for name, argv in cases.items():
        assert main(argv) == 1, name
        _one_error(capsys, str(ro), "you can write")
    assert sorted(p.name for p in ro.iterdir()) == ["run"]
    assert (ro / "run" / "metrics.csv").read_bytes() == run.metrics.read_bytes()


def test_read_only_data_and_a_read_only_run_still_predict_into_a_writable_out(evaluated, tmp_path, read_only):
    root, run, _ = evaluated
    read_only(root)
    read_only(run.dir)
    res = score_files(run, [root / "test"], out=tmp_path / "o", progress=False, warn=False)
    assert len(res.table) == 4 and (tmp_path / "o" / "predictions.csv").is_file()


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "reproduce", "report"])
def test_a_full_disk_gives_one_message_and_keeps_earlier_files(evaluated, tmp_path, monkeypatch, capsys, command):
    root, run, _ = evaluated
    work = tmp_path / "run"
    shutil.copytree(run.dir, work)
    before = {p.name: p.read_bytes() for p in work.iterdir() if p.is_file()}

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(files, "atomic_write_bytes", full)
    q = ["--epochs", "1", "--weights", "random", "--no-download", "--profile", "quick"]
    argv = {"train": ["train", "--dataset", "folder", "--data-root", str(root), "--out", str(tmp_path / "new"),
                      "--input-size", str(SIZE), *q],
            "evaluate": ["evaluate", str(work)],
            "predict": ["predict", str(work), str(root / "test"), "--out", str(tmp_path / "pred")],
            "reproduce": ["reproduce", "mnist", "--classes", "1", "--out", str(tmp_path / "results"), *q],
            "report": ["report", "--out", str(tmp_path / "results")]}[command]
    if command == "report":
        (tmp_path / "results").mkdir()
    assert main(argv) == 1
    _one_error(capsys, "No space left on device", "free space")
    assert {p.name: p.read_bytes() for p in work.iterdir() if p.is_file() and p.name != ".lock"} == {
        k: v for k, v in before.items() if k != ".lock"}
    assert not (tmp_path / "pred").exists()


def test_a_file_size_limit_while_predicting_keeps_the_earlier_output(evaluated, tmp_path):
    """RLIMIT_FSIZE (ulimit -f) in a real process: EFBIG, one line, the earlier output unchanged."""
    root, run, _ = evaluated
    out = tmp_path / "pred"
    cmd = [sys.executable, "-m", "pyramid_lib", "predict", str(run.dir), str(root / "test"), "--out", str(out),
           "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    assert subprocess.run(cmd, env=env, capture_output=True).returncode == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (20 * 1024, 20 * 1024))

    p = subprocess.run(cmd, env=env, capture_output=True, text=True, preexec_fn=limit)
    last = p.stderr.strip().splitlines()[-1]
    assert p.returncode == 1 and "Traceback" not in p.stderr and last.startswith("pyramid-ad: error:"), p.stderr
    assert "File too large" in last and "file-size limit" in last
    assert {q.relative_to(out): q.read_bytes() for q in out.rglob("*") if q.is_file()} == before


@pytest.mark.parametrize("damage, words", [
    (lambda d: (d / "metrics.csv").write_text(""), ["metrics.csv: empty or not a CSV", "evaluate"]),
    (lambda d: _edit(d, heldout_threshold="0.1O"), ["heldout_threshold '0.1O' is not a number", "evaluate"]),
    (lambda d: _edit(d, heldout_threshold=None), ["no heldout_threshold column", "evaluate"]),
    (lambda d: (d / "run.json").write_text(""), ["run.json: not valid JSON"]),
    (lambda d: (d / "data.json").write_text("{"), ["data.json: not valid JSON"]),
])
def test_a_damaged_or_edited_run_folder_gives_one_message(evaluated, tmp_path, capsys, damage, words):
    root, run, _ = evaluated
    work = tmp_path / "run"
    shutil.copytree(run.dir, work)
    damage(work)
    assert main(["predict", str(work), str(root / "test"), "--out", str(tmp_path / "o")]) == 1
    _one_error(capsys, *words)
    assert not (tmp_path / "o").exists()


def _edit(d: Path, **cols):
    m = pd.read_csv(d / "metrics.csv")
    for k, v in cols.items():
        m = m.drop(columns=[k]) if v is None else m.assign(**{k: v})
    m.to_csv(d / "metrics.csv", index=False)


def test_an_empty_scores_csv_is_named(evaluated, tmp_path):
    work = tmp_path / "run"
    shutil.copytree(evaluated[1].dir, work)
    (work / "scores.csv").write_text("")
    with pytest.raises(CheckpointError, match=r"scores.csv: empty or not a CSV.*evaluate"):
        RunDir(work).read_scores()


# ---------------------------------------------------------------------- 7: divergence is a result

@pytest.mark.slow
def test_a_diverging_run_stops_and_is_recorded_as_diverged_with_its_epoch(tiny, tmp_path, capsys, monkeypatch):
    """As with --lr 1e4 on the field case's textures: a step leaves the network computing NaN in eval
    mode while the batch losses stayed finite (here: batch norm's running variance turned NaN)."""
    real_step = torch.optim.Adam.step

    def step(self, *a, **k):
        out = real_step(self, *a, **k)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.fill_(float("nan"))
        return out

    from pyramid_lib.engine import trainer
    real_build, net = trainer.build, torch.nn.Module()

    def build(*a, **k):
        nonlocal net
        net, loss = real_build(*a, **k)
        return net, loss

    monkeypatch.setattr(trainer, "build", build)
    monkeypatch.setattr(torch.optim.Adam, "step", step)
    out = tmp_path / "run"
    with pytest.raises(Diverged, match=r"diverged in epoch 1: .*(NaN|nan).*lower --lr") as e:
        train(tiny_cfg(epochs=2, fast=False), out, data=tiny, progress=False)
    monkeypatch.undo()
    assert e.value.epoch == 1
    state = RunDir(out).read_state()
    assert state["status"] == "diverged" and state["diverged_epoch"] == 1 and state["history"] == []
    assert not (out / "checkpoint.pt").exists()
    assert main(["evaluate", str(out)]) == 1
    _one_error(capsys, "diverged in epoch 1", "no checkpoint")


@pytest.mark.slow
def test_a_loss_growing_beyond_the_bound_is_divergence(tiny, tmp_path, monkeypatch):
    from pyramid_lib.engine import trainer
    monkeypatch.setattr(trainer, "DIVERGED_FACTOR", 0.5)  # any epoch whose mean loss is half the first batch's
    with pytest.raises(Diverged, match=r"mean loss of the epoch grew to .* over 0.5 times the first batch's"):
        train(tiny_cfg(epochs=1), tmp_path / "run", data=tiny, progress=False)
    assert RunDir(tmp_path / "run").read_state()["status"] == "diverged"


def test_evaluate_shows_a_run_that_diverged_after_a_good_epoch(tiny_run, tiny, tmp_path, capsys):
    work = tmp_path / "run"
    shutil.copytree(tiny_run.dir, work)
    state = json.loads((work / "run.json").read_text())
    state.update(status="diverged", diverged_epoch=2, error="diverged in epoch 2: the loss became nan")
    (work / "run.json").write_text(json.dumps(state))
    row = evaluate_run(work, data=tiny, progress=False)
    assert row.status.iloc[0] == "diverged"


def test_reproduce_leaves_a_diverged_run_out_of_the_mean_it_prints(monkeypatch, tmp_path, capsys):
    from pyramid_lib import cli

    res = pd.DataFrame({"run": ["a", "b", "c"], "normal_class": ["0"] * 3, "auroc": [0.9, 0.1, 0.8],
                        "status": ["finished", "diverged", "finished"]})
    res.attrs["base"] = str(tmp_path / "mnist" / "quick")
    monkeypatch.setattr(cli, "sweep", lambda *a, **k: res)
    monkeypatch.setattr(cli, "experiment_outputs", lambda *a, **k: None)
    assert main(["reproduce", "mnist", "--profile", "quick", "--classes", "0", "--weights", "none",
                 "--out", str(tmp_path), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "1 run(s) diverged, left out of the mean: b" in out and "mean AUROC 0.8500 over 2 runs" in out


# ------------------------------------------------------------------------ 8: backslashes in names

def test_a_backslash_in_a_folder_name_gets_a_hint(tmp_path):
    root = make_folder(tmp_path / "data")
    save_png(texture(300, defect=True), root / "test" / "crack\\batch2" / "0.png")
    with pytest.warns(UserWarning, match=r"(?s)backslash.*crack\\batch2.*not a path separator"):
        d = data.load("folder", "good", str(root), False, SIZE)
    assert "crack\\batch2" in d.test.classes
    flat = tmp_path / "flat"
    flat.mkdir()
    save_png(texture(1), flat / "train\\good\\000.png")
    with pytest.raises(DataError, match=r"backslash.*not a path separator"):
        data.load("folder", "good", str(flat), False, SIZE)

