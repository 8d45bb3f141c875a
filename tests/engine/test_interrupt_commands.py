"""Every command interrupted on purpose: SIGINT and SIGTERM at random points, a file-size limit, two
predicts into one --out, a resume that changes the schedule, inputs given in the wrong place.

Each leaves the earlier files or a consistent new set, and says what it left in its own words."""

from __future__ import annotations

import io
import json
import os
import random
import re
import resource
import signal
import subprocess
import sys
import time
import warnings
from contextlib import redirect_stderr
from pathlib import Path

import folder_helpers
import pandas as pd
import pytest
from filelock import FileLock
from folder_helpers import make_folder
from helpers import REPO, tiny_cfg
from sklearn.metrics import roc_auc_score

from pyramid_lib import cli
from pyramid_lib.engine.evaluate import evaluate_run
from pyramid_lib.engine.score_files import MANIFEST, out_lock, score_files
from pyramid_lib.engine.trainer import train
from pyramid_lib.errors import CheckpointError, DataError, RunBusy
from pyramid_lib.files import atomic_write_text, stops_cleanly, uninterrupted

folder_run, copies = folder_helpers.folder_run, folder_helpers.copies
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


def _ctrl_c_default():
    """A process started in the background of a shell without job control (`cmd &` in a script,
    nohup) has Ctrl-C ignored, and so have its children: Python then installs no handler and SIGINT
    does nothing, as the user asked.  These tests send Ctrl-C on purpose, so their processes take it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


CHILD = {"env": ENV, "preexec_fn": _ctrl_c_default}  # a child Python then installs its Ctrl-C handler


@pytest.fixture(autouse=True)
def ctrl_c_raises():
    """This process raises KeyboardInterrupt on SIGINT during each test, whatever it inherited."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.mark.parametrize("command", sorted(cli.INTERRUPTED))
def test_an_interrupted_command_says_what_it_left_in_its_own_words(command, monkeypatch):
    """Ctrl-C in any command: exit 130 and that command's sentence; only train speaks of --resume."""
    def stop(a):
        raise KeyboardInterrupt
    monkeypatch.setitem(cli.COMMANDS, command, stop)
    argv = {"train": ["train", "--dataset", "mnist-sample", "--normal-class", "1", "--out", "x"],
            "evaluate": ["evaluate", "x"], "predict": ["predict", "x", "y", "--out", "z"],
            "reproduce": ["reproduce", "mnist"], "report": ["report"], "demo": ["demo"], "data": ["data", "x"]}
    err = io.StringIO()
    with redirect_stderr(err):
        assert cli.main(argv[command]) == 130
    assert cli.INTERRUPTED[command] in err.getvalue()
    assert ("--resume" in err.getvalue()) == (command == "train")


@pytest.mark.slow  # starts a Python that imports the kit (5-8 s): the full gate runs it
def test_sigterm_stops_a_command_as_ctrl_c_does(tmp_path):
    """SIGTERM (kill, a scheduler's stop) to a running command: the same clean stop and message."""
    code = ("import time, sys; from pyramid_lib import cli; "
            "cli.COMMANDS['evaluate'] = lambda a: (print('started', flush=True), time.sleep(60)); "
            "sys.exit(cli.main(['evaluate', 'x']))")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=ENV, cwd=tmp_path)
    assert p.stdout.readline().strip() == "started"
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130 and cli.INTERRUPTED["evaluate"] in err and "Traceback" not in err


def test_signals_held_off_while_files_that_must_agree_are_written(tmp_path):
    """`files.uninterrupted`: a SIGINT during the block arrives after both files are written."""
    with pytest.raises(KeyboardInterrupt):
        with uninterrupted():
            os.kill(os.getpid(), signal.SIGINT)
            atomic_write_text(tmp_path / "a", "1")
            atomic_write_text(tmp_path / "b", "1")
    assert (tmp_path / "a").read_text() == (tmp_path / "b").read_text() == "1"


def test_an_interrupt_a_callback_swallowed_is_delivered_again(capsys):
    """`files.stops_cleanly`: a KeyboardInterrupt raised inside a weakref callback (where Python
    prints "Exception ignored" and drops it) still stops the block, and nothing is printed; SIGTERM
    stops it as Ctrl-C does."""
    import weakref

    class Thing:
        pass

    def swallowed(_ref):
        raise KeyboardInterrupt

    before = signal.getsignal(signal.SIGTERM), sys.unraisablehook
    with pytest.raises(KeyboardInterrupt), stops_cleanly():
        thing = Thing()
        ref = weakref.ref(thing, swallowed)
        del thing  # the callback runs here and its interrupt is swallowed by Python
        time.sleep(5)  # the interrupt is delivered again during this wait
        pytest.fail(f"the swallowed interrupt was lost ({ref})")
    assert "Exception ignored" not in capsys.readouterr().err
    with pytest.raises(KeyboardInterrupt), stops_cleanly():  # swallowed as the block ends: raised there
        thing = Thing()
        ref = weakref.ref(thing, swallowed)
        del thing
    time.sleep(0.2)  # and not again later, outside the block
    with pytest.raises(KeyboardInterrupt), stops_cleanly():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert (signal.getsignal(signal.SIGTERM), sys.unraisablehook) == before  # both put back


def _started(p: subprocess.Popen, lock: Path, timeout: float = 600) -> bool:
    """Wait until the child `p` has opened `lock` (its command's lock: it is past its imports and at
    work), without touching the lock; False when it ended first.  Linux (/proc)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and p.poll() is None:
        try:
            fds = os.listdir(f"/proc/{p.pid}/fd")
            if any(os.path.realpath(f"/proc/{p.pid}/fd/{fd}") == str(lock.resolve()) for fd in fds):
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def _agree(run_dir: Path) -> None:
    """scores.csv and metrics.csv of one evaluation: the AUROC and the test count recomputed from
    scores.csv are metrics.csv's."""
    scores, m = pd.read_csv(run_dir / "scores.csv"), pd.read_csv(run_dir / "metrics.csv").iloc[0]
    test = scores[scores.split == "test"]
    assert len(test) == m.n_test
    assert roc_auc_score(test.label, test.loss) == pytest.approx(m.auroc, abs=1e-9)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="watches the child's open files in /proc")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_evaluate_and_predict_interrupted_at_random_points_leave_a_consistent_set(copies, tmp_path, sig):
    """`pyramid-ad evaluate` and `predict` killed by `sig` at seeded random moments: each time exit 0
    or 130 with the command's message (never train's --resume advice); scores.csv and metrics.csv
    agree; --out holds the earlier predict output or a complete new one (figures = rows)."""
    data, run = copies
    evaluate_run(run, progress=False)
    pred = tmp_path / "pred"
    score_files(run, [data / "test"], out=pred, progress=False, warn=False)
    rng = random.Random(int(sig))
    for delay in sorted(rng.uniform(0.0, 3.0) for _ in range(3)):
        for cmd, lock in ((["evaluate", str(run.dir)], run.lock_file),
                          (["predict", str(run.dir), str(data / "test"), "--out", str(pred)], out_lock(pred))):
            p = subprocess.Popen([sys.executable, "-m", "pyramid_lib", *cmd, "--device", "cpu"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **CHILD)
            if _started(p, lock):
                time.sleep(delay)  # a seeded random point of the command's work
                p.send_signal(sig)
            out, err = p.communicate(timeout=300)
            # -sig: the signal landed while the interpreter was exiting, after the command's work, where
            # Python has put the default handlers back and no Python code runs: the process dies of it
            assert p.returncode in (0, 130, -sig) and "Traceback" not in err, err
            if p.returncode == 130:
                assert cli.INTERRUPTED[cmd[0]] in err and "--resume" not in err
            _agree(run.dir)
            rows = pd.read_csv(pred / "predictions.csv")
            manifest = json.loads((pred / MANIFEST).read_text())
            figures = sorted(q for q in (pred / "figures").rglob("*.png"))
            assert len(rows) == len(figures) == sum(f.startswith("figures/") for f in manifest["files"]) == 4


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="watches the child's open files in /proc")
def test_train_interrupted_at_a_random_point_keeps_a_loadable_run_and_says_resume(tmp_path):
    root = make_folder(tmp_path / "data")
    args = [sys.executable, "-m", "pyramid_lib", "train", "--dataset", "folder", "--data-root", str(root),
            "--out", str(tmp_path / "run"), "--epochs", "40", "--input-size", "32", "--weights", "none",
            "--no-download", "--profile", "quick", "--device", "cpu"]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **CHILD)
    assert _started(p, tmp_path / "run" / ".lock")
    time.sleep(random.Random(7).uniform(0, 10))
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 130 and cli.INTERRUPTED["train"] in err and "Traceback" not in err
    if (tmp_path / "run" / "checkpoint.pt").exists():  # stopped after an epoch: it resumes
        state = json.loads((tmp_path / "run" / "run.json").read_text())
        assert state["status"] == "running" and state["history"]


def _files(root: Path) -> dict[str, bytes]:
    """Every file under `root` but the locks, by relative path."""
    return {str(q.relative_to(root)): q.read_bytes() for q in sorted(root.rglob("*"))
            if q.is_file() and q.name != ".lock"}


def _stop_at(cmd: list[str], sig: int, delay: float, expect_in: Path) -> int:
    """Run the command in a child, send `sig` `delay` seconds after it opens a file under
    `expect_in` (past its imports, at work); assert a clean stop or finish; return its exit code."""
    p = subprocess.Popen([sys.executable, "-m", "pyramid_lib", *cmd], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, **CHILD)
    end = time.monotonic() + 300
    while p.poll() is None and time.monotonic() < end:
        try:
            opened = [os.path.realpath(f"/proc/{p.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{p.pid}/fd")]
        except OSError:
            opened = []
        if any(o.startswith(str(expect_in.resolve()) + os.sep) for o in opened):
            time.sleep(delay)
            p.send_signal(sig)
            break
        time.sleep(0.05)
    _, err = p.communicate(timeout=300)
    assert p.returncode in (0, 130, -sig) and "Traceback" not in err, err  # -sig: see the test above
    if p.returncode == 130:
        assert cli.INTERRUPTED[cmd[0]] in err and "--resume" not in err
    return p.returncode


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="watches the child's open files in /proc")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_reproduce_and_report_interrupted_at_random_points_keep_whole_files(tmp_path, sig):
    """`reproduce` stopped at a seeded random moment: the runs it finished agree with their scores
    and are kept as they are when the same command runs again (only the rest is trained); `report`
    stopped at a random moment: every page or figure it left is whole (the bytes a complete report
    writes), no temporary file is left, and running it again completes the set."""
    rng = random.Random(int(sig))
    out = tmp_path / "results"
    cmd = ["reproduce", "mnist", "--dataset", "mnist-sample", "--classes", "1", "2", "--profile", "quick",
           "--epochs", "2", "--train-limit", "64", "--test-limit", "100", "--weights", "random", "--no-download",
           "--device", "cpu", "--out", str(out)]
    out.mkdir()
    assert _stop_at(cmd, sig, rng.uniform(0.0, 5.0), out) == 130  # two runs take longer than 5 s
    assert not list(out.rglob("*.tmp"))
    finished = {q.parent: q.parent.joinpath("checkpoint.pt").stat().st_mtime_ns for q in out.rglob("metrics.csv")
                if q.parent.parent.name == "runs"}
    for run_dir in finished:
        _agree(run_dir)
    assert subprocess.run([sys.executable, "-m", "pyramid_lib", *cmd], env=ENV, capture_output=True,
                          timeout=600).returncode == 0
    runs = [q.parent for q in out.rglob("metrics.csv") if q.parent.parent.name == "runs"]
    assert len(runs) == 2 and all(r.joinpath("checkpoint.pt").stat().st_mtime_ns == t for r, t in finished.items())
    for run_dir in runs:
        _agree(run_dir)

    report = [sys.executable, "-m", "pyramid_lib", "report", "--out", str(out)]
    assert subprocess.run(report, env=ENV, capture_output=True, timeout=600).returncode == 0
    whole = _files(out)  # what a complete report writes (the report is deterministic)
    records = ("sweeps.csv", "plan.csv", "variant.json", ".sweeps.lock")  # reproduce's, not the report's
    for q in out.rglob("*"):  # every page, table and figure goes; the runs and reproduce's records stay
        if q.is_file() and "runs" not in q.relative_to(out).parts and q.name not in records:
            q.unlink()
    _stop_at(["report", "--out", str(out)], sig, rng.uniform(0.0, 1.0), out)
    left = _files(out)
    assert not [k for k in left if k.endswith(".tmp")]
    assert {k: v for k, v in left.items() if whole.get(k) != v} == {}  # every file left is whole
    assert subprocess.run(report, env=ENV, capture_output=True, timeout=600).returncode == 0
    assert _files(out) == whole


@pytest.mark.slow
def test_a_file_size_limit_leaves_the_earlier_files(copies, tmp_path):
    """RLIMIT_FSIZE of 512 bytes in the child (less than scores.csv or predictions.csv needs):
    evaluate and predict fail in one line naming the file, and the earlier scores.csv /
    metrics.csv / predict output are byte for byte as they were."""
    data, run = copies
    evaluate_run(run, progress=False)
    pred = tmp_path / "pred"
    score_files(run, [data / "test"], out=pred, progress=False, warn=False, figures=False)
    before = {p: p.read_bytes() for p in [run.dir / "scores.csv", run.dir / "metrics.csv", pred / "predictions.csv"]}

    def small():
        resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))
    for cmd in (["evaluate", str(run.dir)], ["predict", str(run.dir), str(data / "test"), "--out", str(pred)]):
        p = subprocess.run([sys.executable, "-m", "pyramid_lib", *cmd, "--device", "cpu"], capture_output=True,
                           text=True, env=ENV, preexec_fn=small, timeout=300)
        assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
        assert "too large" in p.stderr.lower() or "no space" in p.stderr.lower(), p.stderr
    assert {p: p.read_bytes() for p in before} == before
    _agree(run.dir)


def test_two_predicts_into_one_out_the_second_is_refused(copies, tmp_path):
    data, run = copies
    evaluate_run(run, progress=False)
    out = tmp_path / "pred"
    with FileLock(out_lock(out)):  # what a running predict into --out holds
        with pytest.raises(RunBusy, match="another pyramid-ad predict is writing into it"):
            score_files(run, [data / "test"], out=out, progress=False, warn=False)
    assert not out.exists()
    score_files(run, [data / "test"], out=out, progress=False, warn=False, figures=False)  # free again
    assert len(pd.read_csv(out / "predictions.csv")) == 4


def test_a_checkpoint_file_or_a_folder_of_runs_names_the_run_folder(copies, tmp_path):
    data, run = copies
    with pytest.raises(CheckpointError, match=f"give the run folder instead: {run.dir}$"):
        score_files(run.dir / "checkpoint.pt", [data / "test"])
    with pytest.raises(CheckpointError, match="not a run folder.*holds the run folders run: give one of them"):
        score_files(run.dir.parent, [data / "test"])
    err = io.StringIO()
    with redirect_stderr(err):
        assert cli.main(["evaluate", str(run.dir / "checkpoint.pt")]) == 1
    assert f"give the run folder instead: {run.dir}" in err.getvalue()


def test_a_zip_given_to_predict_is_named_in_not_scored_csv(copies, tmp_path):
    data, run = copies
    evaluate_run(run, progress=False)
    z = tmp_path / "pictures.zip"
    import zipfile
    with zipfile.ZipFile(z, "w") as f:
        f.write(data / "test" / "good" / "000.png", "000.png")
    with pytest.raises(DataError, match="no image scored"):
        score_files(run, [z], out=tmp_path / "pred", progress=False, warn=False)
    assert "is an archive (zip/tar)" in (tmp_path / "pred" / "not_scored.csv").read_text()
    with pytest.raises(DataError, match="is an archive.*extract it"):
        train(tiny_cfg(dataset="folder", normal_class="good", data_root=str(z), input_size=32), tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_resume_with_other_epochs_is_warned_and_recorded(folder_run, tmp_path):
    root, run = folder_run
    import shutil
    shutil.copytree(run.dir, tmp_path / "run")
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    with pytest.warns(UserWarning, match="begun with --epochs 1.*schedule_changes"):
        train(tiny_cfg(**{**{k: cfg[k] for k in ("dataset", "normal_class", "data_root", "input_size",
                                                   "heldout_fraction")}, "epochs": 2}),
              tmp_path / "run", resume=True, progress=False)
    state = json.loads((tmp_path / "run" / "run.json").read_text())
    assert state["schedule_changes"] == [{"at_epoch": 1, "epochs_before": 1, "epochs_now": 2}]
    assert len(state["history"]) == 2


@pytest.mark.slow
def test_normal_class_with_a_folder_dataset_is_refused_unless_it_is_used(tmp_path, capsys):
    """Case 47: `train --dataset folder --normal-class` naming a product sub-folder, or nothing: one
    line naming train/good/ and the --data-root that was meant, exit 1, nothing written."""
    make_folder(tmp_path / "parent" / "widgetA")
    quick = ["--epochs", "1", "--weights", "none", "--no-download", "--input-size", "32", "--device", "cpu"]
    for name, words in (("widgetA", "give --data-root .*parent/widgetA"), ("widgetX", "leave --normal-class out")):
        assert cli.main(["train", "--dataset", "folder", "--data-root", str(tmp_path / "parent"), "--out",
                         str(tmp_path / "r"), "--normal-class", name, *quick]) == 1
        err = capsys.readouterr().err
        assert re.search(f"--normal-class '{name}': .*train/good/.*{words}", err) and len(err.splitlines()) == 1
        assert not (tmp_path / "r").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli.main(["train", "--dataset", "folder", "--data-root", str(tmp_path / "parent" / "widgetA"),
                         "--out", str(tmp_path / "a"), "--normal-class", "widgetA", *quick]) == 0
    assert json.loads((tmp_path / "a" / "data.json").read_text())["train"]["count"] == 12
