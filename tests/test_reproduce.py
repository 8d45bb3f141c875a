"""Sweeps: planning, parallel runs, skipping finished runs, locks, submitit, results pages.

Tiny runs on the embedded mnist-sample (no download): 1 epoch on 40 images."""

import pandas as pd
import pytest

from pyramid_lib import cli, reproduce
from pyramid_lib.errors import ConfigError
from pyramid_lib.report import build_report, md_table

TINY = dict(epochs=1, train_limit=40)


def tiny_sweep(out, classes=("0", "1"), **kw):
    return reproduce.sweep("mnist", "quick", classes, out, "random", datasets=["mnist-sample"], progress=False,
                           device="cpu", **{**TINY, **kw})


def test_plan_experiments():
    assert [j.name for j in reproduce.plan("mnist", "cpu")] == [f"mnist-{i}" for i in range(10)]
    enc = reproduce.plan("ablation-encoders", "quick")
    assert [(j.cfg.dataset, j.cfg.normal_class, j.cfg.encoders) for j in enc] == \
        [("fmnist", c, k) for c in ("0", "4") for k in (1, 2, 4, 6)]
    lam = reproduce.plan("ablation-lambda", "quick", datasets=["mvtec"])
    assert [(j.cfg.normal_class, j.cfg.lam) for j in lam] == [("bottle", 0.0), ("bottle", 1.0), ("carpet", 0.0),
                                                              ("carpet", 1.0)]
    b = reproduce.plan("baselines", "cpu")
    assert len(b) == 5 * 2 * 10 and b[0].method == "ocsvm" and b[-1].method == "ours-lambda0"
    assert all(j.cfg.lam == 0 for j in b if j.method == "ours-lambda0")
    # ablation-specific settings win over the command line's defaults
    assert {j.cfg.encoders for j in reproduce.plan("ablation-encoders", "quick", encoders=4)} == {1, 2, 4, 6}
    with pytest.raises(ConfigError):
        reproduce.plan("nope")
    with pytest.raises(ConfigError):
        reproduce.plan("baselines", methods=["svm"])


def test_sweep_parallel_skip_and_report(tmp_path):
    out = tmp_path / "results"
    res = tiny_sweep(out, jobs=2)
    base = out / "mnist" / "quick"
    assert sorted(res["normal_class"]) == ["0", "1"] and res["auroc"].between(0, 1).all()
    for f in ("results.csv", "README.md", "auroc_by_class.png", "roc_curves.png", "sweeps.csv", "plan.csv"):
        assert (base / f).is_file(), f
    assert (base / "runs" / "mnist-sample-0" / "scores.csv").is_file()
    readme = (base / "README.md").read_text()
    assert "random" in readme and "2 of 2 planned runs finished" in readme and "Git commit" in readme
    # a second sweep skips both finished runs and never rewrites them
    before = {p: p.stat().st_mtime_ns for p in base.glob("runs/*/metrics.csv")}
    tiny_sweep(out, jobs=2)
    assert {p: p.stat().st_mtime_ns for p in base.glob("runs/*/metrics.csv")} == before
    sweeps = pd.read_csv(base / "sweeps.csv")
    assert list(sweeps["finished_before"]) == [0, 2] and list(sweeps["done"]) == [2, 0]
    page = build_report(out)
    text = page.read_text()
    assert "MNIST" in text and "mnist/quick/auroc_by_class.png" in text


def test_busy_run_is_skipped_and_partial_never_overwrites(tmp_path):
    job = reproduce.plan("mnist", "quick", ["3"], datasets=["mnist-sample"], **TINY)[0]
    run_dir = tmp_path / "r"
    with reproduce.run_lock(run_dir) as got:
        assert got
        assert reproduce.run_job(job, run_dir)[1] == "busy"  # another holder: skipped, nothing written
    assert not (run_dir / "metrics.csv").exists()
    (run_dir / "metrics.csv").write_text("normal_class,auroc\n3,0.5\n")  # a finished run
    assert reproduce.run_job(job, run_dir)[1] == "skipped"
    assert (run_dir / "metrics.csv").read_text() == "normal_class,auroc\n3,0.5\n"


def test_failed_run_is_reported_not_fatal(tmp_path):
    job = reproduce.plan("mnist", "quick", ["3"], datasets=["mnist-sample"], **TINY)[0]
    bad = reproduce.Job(job.name, "pyramid", reproduce.with_overrides(job.cfg, dataset="mnist", data_root=str(tmp_path),
                                                                       download=False), "ours")
    name, status, _ = reproduce.run_job(bad, tmp_path / "runs" / "x")
    assert status.startswith("failed") and (tmp_path / "runs" / "x" / "error.log").is_file()


@pytest.mark.slow
def test_submitit_local_executor(tmp_path):
    out = tmp_path / "results"
    res = tiny_sweep(out, classes=("2",), executor="submitit-local", jobs=1)
    assert list(res["normal_class"]) == ["2"]
    assert (out / "mnist" / "quick" / "submitit").is_dir()
    assert pd.read_csv(out / "mnist" / "quick" / "sweeps.csv")["executor"].iloc[0] == "submitit-local"


def test_submitit_local_executor_skips_finished(tmp_path):
    """A finished run is not submitted again (no job is created for it)."""
    out = tmp_path / "results"
    job = reproduce.plan("mnist", "quick", ["4"], datasets=["mnist-sample"], **TINY)[0]
    d = out / "mnist" / "quick" / "runs" / job.name
    d.mkdir(parents=True)
    pd.DataFrame([{"dataset": "mnist-sample", "normal_class": "4", "lambda": 1.0, "auroc": 0.9, "weights": "random",
                   "epochs": 1, "fit_images": 40, "device": "cpu"}]).to_csv(d / "metrics.csv", index=False)
    res = tiny_sweep(out, classes=("4",), executor="submitit-local")
    assert list(res["auroc"]) == [0.9] and not (out / "mnist" / "quick" / "submitit").exists()


def test_submitit_worker_function_roundtrip(tmp_path):
    """The function submitit runs is picklable and runs a job (here: an already-finished one)."""
    import cloudpickle

    job = reproduce.plan("mnist", "quick", ["5"], datasets=["mnist-sample"], **TINY)[0]
    d = tmp_path / "r"
    d.mkdir()
    (d / "metrics.csv").write_text("normal_class,auroc\n5,0.5\n")
    fn, args = cloudpickle.loads(cloudpickle.dumps((reproduce._worker, (job, str(d), "cpu", 1))))
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
    ex, threads = reproduce.make_executor(tmp_path / "mnist" / "cpu", "slurm", 3,
                                          {"partition": "gpu", "cpus_per_task": 6, "gpus_per_node": 1,
                                           "timeout_min": 90}, 10)
    text = ex._executor._make_submission_file_text("python -m x", "UID")
    for line in ("--partition=gpu", "--cpus-per-task=6", "--gpus-per-node=1", "--time=90", "--job-name=pyramid-mnist"):
        assert line in text
    assert ex._executor.parameters["array_parallelism"] == 3 and threads == 6
