"""Sweeps: planning, parallel runs, skipping finished runs, locks, submitit, results pages.

Tiny runs on the embedded mnist-sample (no download): 1 epoch on 40 images."""

import json
from pathlib import Path

import pandas as pd
import pytest

from pyramid_lib import cli
from pyramid_lib.engine.run_dir import RunDir
from pyramid_lib.errors import ConfigError
from pyramid_lib.experiments import executors
from pyramid_lib.experiments import sweep as sweep_mod
from pyramid_lib.experiments.executors import _worker, gpu_slots, make_executor
from pyramid_lib.experiments.jobs import run_job, twin_run
from pyramid_lib.experiments.plan import (
    Job,
    plan,
    plan_and_dir,
    with_overrides,
)
from pyramid_lib.experiments.sweep import sweep
from pyramid_lib.reporting.pages import build_report, experiment_outputs
from pyramid_lib.reporting.tables import md_table

TINY = dict(epochs=1, train_limit=40)
TINY_DIR = "quick-epochs1-train_limit40"  # variant: the profile's folder, plus what TINY changes


def tiny_sweep(out, classes=("0", "1"), **kw):
    """A sweep, then its results page (as `pyramid-ad reproduce` does)."""
    res = sweep("mnist", "quick", classes, out, "random", datasets=["mnist-sample"], progress=False,
                device="cpu", **{**TINY, **kw})
    base = Path(res.attrs["base"])
    experiment_outputs("mnist", base.name, base, out_root=out)
    return res


def test_plan_experiments():
    assert [j.name for j in plan("mnist", "cpu")] == [f"mnist-{i}" for i in range(10)]
    enc = plan("ablation-encoders", "quick")
    assert [(j.cfg.dataset, j.cfg.normal_class, j.cfg.encoders) for j in enc] == \
        [("fmnist", c, k) for c in ("0", "4") for k in (1, 2, 4, 6)]
    lambda_ = plan("ablation-lambda", "quick", datasets=["mvtec"])
    assert [(j.cfg.normal_class, j.cfg.lambda_) for j in lambda_] == [("bottle", 0.0), ("bottle", 1.0), ("carpet", 0.0),
                                                              ("carpet", 1.0)]
    b = plan("baselines", "cpu")
    assert len(b) == 5 * 2 * 10 and b[0].method == "ocsvm" and b[-1].method == "ours-lambda0"
    assert all(j.cfg.lambda_ == 0 for j in b if j.method == "ours-lambda0")
    # ablation-specific settings win over the command line's defaults
    assert {j.cfg.encoders for j in plan("ablation-encoders", "quick", encoders=4)} == {1, 2, 4, 6}
    with pytest.raises(ConfigError):
        plan("nope")
    with pytest.raises(ConfigError):
        plan("baselines", methods=["svm"])


@pytest.mark.slow  # trains two runs, in worker processes (which the conftest count cannot see)
def test_sweep_parallel_skip_and_report(tmp_path, monkeypatch):
    out = tmp_path / "results"
    res = tiny_sweep(out, jobs=2)
    base = out / "mnist" / TINY_DIR
    assert res.attrs["base"] == str(base)
    assert sorted(res["normal_class"]) == ["0", "1"] and res["auroc"].between(0, 1).all()
    for f in ("results.csv", "README.md", "auroc_by_class.png", "roc_curves.png", "sweeps.csv", "plan.csv"):
        assert (base / f).is_file(), f
    assert (base / "runs" / "mnist-sample-0" / "scores.csv").is_file()
    readme = (base / "README.md").read_text()
    assert "random" in readme and "2 of 2 planned runs finished" in readme and "Git commit" in readme
    # a second sweep skips both finished runs and never rewrites them
    before = {p: p.stat().st_mtime_ns for p in base.glob("runs/*/metrics.csv")}
    heads = iter(["c0ffee-at-start", "beef-committed-meanwhile"])  # HEAD moves while the sweep runs
    monkeypatch.setattr(sweep_mod, "git_commit", lambda *a: next(heads))
    tiny_sweep(out, jobs=2)
    assert {p: p.stat().st_mtime_ns for p in base.glob("runs/*/metrics.csv")} == before
    sweeps = pd.read_csv(base / "sweeps.csv")
    assert list(sweeps["finished_before"]) == [0, 2] and list(sweeps["done"]) == [2, 0]
    assert sweeps["git_commit"].iloc[-1] == "c0ffee-at-start"  # the code the sweep ran, not HEAD at its end
    page = build_report(out)
    text = page.read_text()
    assert "MNIST" in text and f"mnist/{TINY_DIR}/auroc_by_class.png" in text


def test_busy_run_is_skipped_and_partial_never_overwrites(tmp_path):
    job = plan("mnist", "quick", ["3"], datasets=["mnist-sample"], **TINY)[0]
    run_dir = tmp_path / "r"
    with RunDir(run_dir).lock() as got:
        assert got
        assert run_job(job, run_dir)[1] == "busy"  # another holder: skipped, nothing written
    assert not (run_dir / "metrics.csv").exists()
    (run_dir / "metrics.csv").write_text("normal_class,auroc\n3,0.5\n")  # a finished run
    assert run_job(job, run_dir)[1] == "skipped"
    assert (run_dir / "metrics.csv").read_text() == "normal_class,auroc\n3,0.5\n"


@pytest.mark.slow
def test_a_run_equal_to_a_finished_run_of_another_experiment_is_copied_not_trained(tmp_path, monkeypatch):
    out = tmp_path / "results"
    tiny_sweep(out, classes=("3",), seeds=[0])
    main_run = out / "mnist" / TINY_DIR / "runs" / "mnist-sample-3-s0"
    trained = []
    import pyramid_lib.experiments.jobs as jobs_mod
    real_run_one = jobs_mod.run_one
    monkeypatch.setattr(jobs_mod, "run_one", lambda name, *a, **k: trained.append(("train", name)) or
                        real_run_one(name, *a, **k))
    res = sweep("ablation-lambda", "quick", ["3"], out, "random", datasets=["mnist-sample"], progress=False,
                device="cpu", seeds=[0], **TINY)
    base = Path(res.attrs["base"])
    copy = base / "runs" / "mnist-sample-3-lambda1-s0"
    # lambda 1 is the Table run of the same class and seed: copied; lambda 0 is new: trained
    assert ("train", "mnist-sample-3-lambda1-s0") not in trained and ("train", "mnist-sample-3-lambda0-s0") in trained
    state = json.loads((copy / "run.json").read_text())
    assert state["copied_from"] == f"mnist/{TINY_DIR}/runs/mnist-sample-3-s0"
    for f in ("scores.csv", "metrics.csv", "config.json", "data.json"):
        assert (copy / f).read_bytes() == (main_run / f).read_bytes(), f
    assert (copy / "checkpoint.pt").read_bytes() == (main_run / "checkpoint.pt").read_bytes()
    assert pd.read_csv(base / "sweeps.csv")["copied"].iloc[-1] == 1
    # a setting that differs (here the seed) finds no twin
    assert twin_run(base / "runs" / "x", with_overrides(plan("mnist", "quick", ["3"], datasets=["mnist-sample"],
                                                              **TINY)[0].cfg, seed=1)) is None
    assert twin_run(base / "runs" / "x", with_overrides(plan("mnist", "quick", ["3"], datasets=["mnist-sample"],
                                                              **TINY)[0].cfg, seed=0)) == main_run


def test_failed_run_is_reported_not_fatal(tmp_path):
    job = plan("mnist", "quick", ["3"], datasets=["mnist-sample"], **TINY)[0]
    bad = Job(job.name, "pyramid", with_overrides(job.cfg, dataset="mnist", data_root=str(tmp_path),
                                                                       download=False), "ours")
    name, status, _ = run_job(bad, tmp_path / "runs" / "x")
    assert status.startswith("failed") and (tmp_path / "runs" / "x" / "error.log").is_file()


@pytest.mark.slow
def test_submitit_local_executor(tmp_path):
    out = tmp_path / "results"
    res = tiny_sweep(out, classes=("2",), executor="submitit-local", jobs=1)
    assert list(res["normal_class"]) == ["2"]
    assert (out / "mnist" / TINY_DIR / "submitit").is_dir()
    assert pd.read_csv(out / "mnist" / TINY_DIR / "sweeps.csv")["executor"].iloc[0] == "submitit-local"


def test_submitit_local_executor_skips_finished(tmp_path):
    """A finished run is not submitted again (no job is created for it)."""
    out = tmp_path / "results"
    job = plan("mnist", "quick", ["4"], datasets=["mnist-sample"], **TINY)[0]
    d = out / "mnist" / TINY_DIR / "runs" / job.name
    d.mkdir(parents=True)
    pd.DataFrame([{"dataset": "mnist-sample", "normal_class": "4", "lambda": 1.0, "auroc": 0.9, "weights": "random",
                   "epochs": 1, "fit_images": 40, "device": "cpu"}]).to_csv(d / "metrics.csv", index=False)
    res = tiny_sweep(out, classes=("4",), executor="submitit-local")
    assert list(res["auroc"]) == [0.9] and not (out / "mnist" / TINY_DIR / "submitit").exists()


def test_submitit_worker_function_roundtrip(tmp_path):
    """The function submitit runs is picklable and runs a job (here: an already-finished one)."""
    import cloudpickle

    job = plan("mnist", "quick", ["5"], datasets=["mnist-sample"], **TINY)[0]
    d = tmp_path / "r"
    d.mkdir()
    (d / "metrics.csv").write_text("normal_class,auroc\n5,0.5\n")
    fn, args = cloudpickle.loads(cloudpickle.dumps((_worker, (job, str(d), "cpu", 1))))
    assert fn(*args)[1] == "skipped"


def test_cli_reproduce_and_report(tmp_path, capsys):
    out = tmp_path / "results"
    rc = cli.main(["reproduce", "baselines", "--dataset", "mnist-sample", "--classes", "0", "--methods", "kde",
                   "--profile", "quick", "--weights", "none", "--out", str(out), "--device", "cpu"])
    assert rc == 0
    readme = (out / "baselines" / "quick" / "README.md").read_text()
    assert "pyramid-ad reproduce baselines --dataset mnist-sample" in readme
    assert cli.main(["report", "--out", str(out)]) == 0
    assert "Baselines" in (out / "README.md").read_text()
    with pytest.raises(SystemExit):
        cli.main(["reproduce", "baselines", "--methods", "svm"])
    with pytest.raises(SystemExit):
        cli.main(["reproduce", "mnist", "--jobs", "0"])


def test_report_empty_and_md_table(tmp_path):
    assert "No results yet" in build_report(tmp_path / "results").read_text()
    t = md_table(pd.DataFrame({"a": ["x"], "b": [0.12345], "c": [float("nan")]}))
    assert t.splitlines()[2] == "| x | 0.123 |  |"


def test_slurm_executor_parameters(tmp_path, monkeypatch):
    """--executor slurm builds a submitit SLURM array with the asked resources (a stand-in srun
    lets submitit's detection pass; nothing is submitted)."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "srun").write_text("#!/bin/sh\nexit 0\n")
    (fake / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{__import__('os').environ['PATH']}")
    ex, threads = make_executor(tmp_path / "mnist" / "cpu", "slurm", 3,
                                          {"partition": "gpu", "cpus_per_task": 6, "gpus_per_node": 1,
                                           "timeout_min": 90}, 10)
    text = ex._executor._make_submission_file_text("python -m x", "UID")
    for line in ("--partition=gpu", "--cpus-per-task=6", "--gpus-per-node=1", "--time=90", "--job-name=pyramid-mnist"):
        assert line in text
    assert ex._executor.parameters["array_parallelism"] == 3 and threads == 6


def test_overrides_get_their_own_folder_and_finished_runs_with_other_settings_are_refused(tmp_path):
    """`--epochs 30` must not land in (and be skipped as) the profile's finished 10-epoch runs."""
    assert plan_and_dir("mnist", "cpu", out_root=tmp_path)[1] == tmp_path / "mnist" / "cpu"
    assert plan_and_dir("mnist", "cpu", out_root=tmp_path, epochs=30)[1].name == "cpu-epochs30"
    assert plan_and_dir("fmnist", "cpu", out_root=tmp_path, epochs=20, lambda_=0.0)[1].name == "cpu-epochs20-lambda0"
    assert plan_and_dir("mnist", "cpu", out_root=tmp_path, epochs=6, lambda_=1.0)[1].name == "cpu"  # = profile
    assert plan_and_dir("ablation-encoders", "quick", out_root=tmp_path, encoders=4)[1].name == "quick"
    # a finished run made with other weights: the sweep refuses, naming the run and the setting, runs nothing
    job = plan("mnist", "quick", ["3"], datasets=["mnist-sample"], **TINY)[0]
    d = tmp_path / "mnist" / TINY_DIR / "runs" / job.name
    d.mkdir(parents=True)
    pd.DataFrame([{"dataset": "mnist-sample", "normal_class": "3", "lambda": 1.0, "auroc": 0.5, "weights": "random",
                   "epochs": 1, "fit_images": 40, "device": "cpu"}]).to_csv(d / "metrics.csv", index=False)
    from dataclasses import asdict

    from pyramid_lib.files import atomic_write_json

    atomic_write_json(d / "config.json", {**asdict(job.cfg), "weights": "imagenet"})
    with pytest.raises(ConfigError, match=r"mnist-sample-3.*weights: 'imagenet' there, 'random' here"):
        tiny_sweep(tmp_path, classes=("3",))
    assert not (d.parent.parent / "sweeps.csv").exists()
    atomic_write_json(d / "config.json", asdict(job.cfg))  # same settings: skipped, as before
    assert list(tiny_sweep(tmp_path, classes=("3",))["auroc"]) == [0.5]


def test_parallel_runs_spread_over_gpus(monkeypatch):
    """`--jobs N` on a machine with several GPUs: a process per GPU, each taking a free one."""
    assert gpu_slots("auto", 4, n_gpus=4) == ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    assert gpu_slots("cuda", 3, n_gpus=2) == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert gpu_slots("auto", 4, n_gpus=1) == []  # one GPU (or none): every run uses the device
    assert gpu_slots("cpu", 4, n_gpus=8) == [] and gpu_slots("cuda:1", 4, n_gpus=8) == []
    assert gpu_slots("auto", 1, n_gpus=8) == []
    import queue

    q, seen = queue.Queue(), []
    for d in ("cuda:0", "cuda:1"):
        q.put(d)

    def fake_run_job(job, run_dir, dev, progress=False):
        seen.append((dev, q.qsize()))
        return job, "done", 0

    monkeypatch.setattr(executors, "run_job", fake_run_job)  # what _worker calls
    _worker("a", "r", "auto", 0, q)
    _worker("b", "r", "auto", 0, q)
    assert seen == [("cuda:0", 1), ("cuda:1", 1)] and q.qsize() == 2  # taken while running, given back after


@pytest.mark.parametrize("last, expected", [
    # the last sweep ran two Fashion-MNIST lambda-0 classes: the hint must also cover the MNIST ones
    ("pyramid-ad reproduce baselines --classes 7 6 --methods ours-lambda0 --dataset fmnist --profile cpu --jobs 1",
     "pyramid-ad reproduce baselines --profile cpu --jobs 1"),
    # a dataset outside the default plan is what was asked for: kept
    ("pyramid-ad reproduce ablation-lambda --dataset mvtec --classes bottle --profile paper",
     "pyramid-ad reproduce ablation-lambda --dataset mvtec --profile paper"),
    ("pyramid-ad reproduce mnist --dataset mnist-sample --classes 3 --profile quick",
     "pyramid-ad reproduce mnist --dataset mnist-sample --profile quick"),
])
def test_resume_hint_runs_every_missing_run_not_only_the_last_sweeps(tmp_path, last, expected):
    from pyramid_lib.reporting.pages import resume_command

    experiment = last.split()[2]
    pd.DataFrame([{"command": "pyramid-ad reproduce x --profile cpu"}, {"command": last}]).to_csv(
        tmp_path / "sweeps.csv", index=False)
    assert resume_command(experiment, "cpu", tmp_path) == expected
