"""One writer per run: `train` and `evaluate_run` hold the run folder's lock; a second process into
the same folder is refused with one clear error and the first run is left intact (issue 14,
part 3; field case 20).  A sweep's job, which holds the lock itself, still trains and evaluates."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import folder_helpers
import pytest
import torch
from folder_helpers import folder_cfg, load_folder

from pyramid_lib import cli
from pyramid_lib.engine.evaluate import evaluate_run
from pyramid_lib.engine.run_dir import RunDir
from pyramid_lib.engine.trainer import train
from pyramid_lib.errors import CheckpointError, DataError, RunBusy
from pyramid_lib.experiments.jobs import run_job
from pyramid_lib.experiments.plan import Job

folder_run, copies = folder_helpers.folder_run, folder_helpers.copies  # fixtures

HOLDER = """
import sys
from pyramid_lib.engine.run_dir import RunDir
with RunDir(sys.argv[1]).lock() as got:
    print("held" if got else "busy", flush=True)
    sys.stdin.read()  # until the test closes stdin
"""


@contextlib.contextmanager
def held_by_another_process(folder: Path):
    """Another process holds `folder`'s lock (as a running train or evaluate does) until exit."""
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline().strip() == "held"
        yield
    finally:
        p.stdin.close()
        p.wait(timeout=120)


def contents(run: RunDir) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in run.dir.iterdir() if p.is_file()}


@pytest.mark.slow
def test_train_and_evaluate_refuse_a_run_another_process_writes(copies, capsys):
    root, run = copies
    before = contents(run)
    busy = rf"{run.dir}: another process is writing this run folder .* cannot (train|evaluate) it now"
    with held_by_another_process(run.dir):
        with pytest.raises(RunBusy, match=busy):
            train(folder_cfg(root, epochs=2), run.dir, resume=True, progress=False)
        with pytest.raises(RunBusy, match=busy):  # not "already holds a run": the lock is checked first
            train(folder_cfg(root), run.dir, progress=False)
        with pytest.raises(RunBusy, match=busy):
            evaluate_run(run, data=load_folder(root), progress=False)
        assert cli.main(["evaluate", str(run.dir), "--data-root", str(root), "--device", "cpu"]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "another process is writing this run folder" in err
        assert " (pid " in err  # and who: the holder's record beside the lock (files.record_holder)
        during = contents(run)
        assert during.pop(".lock.holder.json")  # the other process's record of itself, gone when it releases
        assert during == before  # the first run is intact: nothing written, nothing removed
    evaluate_run(run, data=load_folder(root), progress=False)  # released: evaluates
    assert run.evaluated


@pytest.mark.slow
def test_a_new_folder_another_process_holds_is_refused_and_left_to_it(tmp_path, folder_run):
    out = tmp_path / "new"
    with held_by_another_process(out):
        with pytest.raises(RunBusy, match="cannot train it now"):
            train(folder_cfg(folder_run[0]), out, progress=False)
        assert (out / ".lock").is_file()  # the other process's lock file: not removed under it
    assert [p.name for p in out.iterdir()] == [".lock"]


def test_a_failed_train_or_evaluate_leaves_no_folder_behind(tmp_path):
    with pytest.raises(DataError):
        train(folder_cfg(tmp_path / "no-data"), tmp_path / "out", progress=False)
    with pytest.raises(CheckpointError, match="not a pyramid-ad run folder"):
        evaluate_run(tmp_path / "typo", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_sweep_job_holds_the_lock_and_still_trains_and_evaluates(tmp_path, folder_run):
    """run_job holds the folder's lock, then train and evaluate_run take it again through the same
    RunDir: reentrant, so neither refuses nor waits for itself."""
    run = RunDir(tmp_path / "job")
    name, status, _ = run_job(Job("job", "pyramid", folder_cfg(folder_run[0]), "ours"), run.dir)
    assert status == "done", (run.dir / "error.log").read_text() if (run.dir / "error.log").exists() else status
    assert run.trained and run.evaluated and run.data_record.is_file()
    with RunDir(run.dir).lock() as got:  # released at the end
        assert got


@pytest.mark.slow
def test_two_train_commands_into_one_folder_one_wins_the_other_is_refused(tmp_path, folder_run):
    """Field case 20: two `pyramid-ad train` started together with the same --out (seeds 1 and 2).
    Exactly one trains; the other exits 1 with one line; the folder holds the winner's run only."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "pyramid_lib", "train", "--dataset", "folder", "--data-root", str(folder_run[0]),
           "--out", str(out), "--epochs", "1", "--weights", "none", "--no-download", "--input-size", "32",
           "--device", "cpu", "--batch-size", "4", "--seed"]
    procs = [subprocess.Popen([*cmd, seed], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for seed in ("1", "2")]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    codes = [rc for rc, _ in results]
    assert sorted(codes) == [0, 1], results
    winner = str(codes.index(0) + 1)
    err = results[codes.index(1)][1].strip().splitlines()[-1]
    assert err.startswith("pyramid-ad: error:") and ("another process is writing" in err or "already holds" in err)
    seeds = {json.loads((out / "config.json").read_text())["seed"], json.loads((out / "run.json").read_text())[
        "config"]["seed"], json.loads(torch.load(out / "checkpoint.pt", weights_only=True)["config"])["seed"]}
    assert seeds == {int(winner)} and RunDir(out).trained
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
