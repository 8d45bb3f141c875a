"""Seeds everywhere (issue 13): `plan(..., seeds=...)` gives one run per seed of every setting,
the deterministic baselines once; the CLI defaults to 3 seeds for the laptop and cpu profiles;
every run records the commit of the library that made it; a cpu or paper run on a CPU prints its
estimated time first."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pyramid_lib import cli
from pyramid_lib.engine.build import git_commit, versions
from pyramid_lib.engine.estimate import duration, estimate
from pyramid_lib.errors import ConfigError
from pyramid_lib.experiments.plan import plan, plan_and_dir


def test_plan_gives_one_run_per_seed_and_fits_deterministic_baselines_once():
    jobs = plan("mnist", "cpu", ["0", "8"], seeds=[0, 1, 2])
    assert [j.name for j in jobs] == [f"mnist-{c}-s{s}" for c in "08" for s in (0, 1, 2)]
    assert [j.cfg.seed for j in jobs] == [0, 1, 2] * 2
    base = plan("baselines", "cpu", ["3"], datasets=["mnist"], seeds=[4, 5])
    per_method = {}
    for j in base:
        per_method.setdefault(j.method, []).append(j.cfg.seed)
    assert per_method == {"ocsvm": [4], "kde": [4], "ae-l2": [4, 5], "ae-ssim": [4, 5], "ours-lambda0": [4, 5]}
    lam = plan("ablation-lambda", "cpu", seeds=[0, 1])
    assert len(lam) == 2 * 2 * 2 and {j.cfg.lambda_ for j in lam} == {0.0, 1.0}


def test_seeds_do_not_change_the_results_folder_and_bad_seed_lists_are_refused():
    _, folder, _ = plan_and_dir("mnist", "cpu", ["0"], out_root="r", seeds=[0, 1, 2])
    assert folder.name == "cpu"
    for bad in ([], [1, 1]):
        with pytest.raises(ConfigError, match="--seeds"):
            plan("mnist", "cpu", ["0"], seeds=bad)
    with pytest.raises(ConfigError, match="--seeds"):
        plan("mnist", "cpu", ["0"], seeds=[0, 1], seed=3)


def test_cli_defaults_to_three_seeds_for_the_cpu_profiles(monkeypatch, tmp_path):
    seen = {}

    def fake_sweep(experiment, profile, classes, out, w, data_root, download, **kw):
        seen[profile] = kw["seeds"]
        raise SystemExit(0)

    monkeypatch.setattr(cli, "sweep", fake_sweep)
    monkeypatch.setattr(cli, "print_estimate", lambda *a, **k: None)
    for profile, expect in (("cpu", [0, 1, 2]), ("laptop", [0, 1, 2]), ("quick", None)):
        with pytest.raises(SystemExit):
            cli.main(["reproduce", "mnist", "--profile", profile, "--classes", "0", "--weights", "none",
                      "--out", str(tmp_path), "--device", "cpu"])
        assert seen[profile] == expect
    with pytest.raises(SystemExit):
        cli.main(["reproduce", "mnist", "--profile", "cpu", "--classes", "0", "--weights", "none", "--seeds", "7",
                  "--out", str(tmp_path), "--device", "cpu"])
    assert seen["cpu"] == [7]


def test_runs_record_the_commit_of_the_library():
    commit = versions()["commit"]
    assert commit == git_commit()
    assert commit == "unknown" or len(commit.split("+")[0]) == 40


def test_estimate_scales_measured_steps_by_the_run_length():
    from pyramid_lib.config import TrainConfig
    cfg = TrainConfig.from_profile("cpu", dataset="mnist", weights="random")
    e = estimate(cfg, n_train=6000, n_score=10_000, device="cpu", steps=1)
    assert e.steps == 6 * 125  # 4,000 of the 5,400 not held out (train_limit) in batches of 32, 6 epochs
    small = replace(cfg, train_limit=None, heldout_fraction=0.1, batch_size=4)
    # the fit count is the run's split (splits.run_split): 10 held out of 101, at least one
    assert estimate(small, n_train=101, steps=1, seconds_per_step=1.0).steps == 6 * (91 // 4 + 1)
    assert estimate(replace(small, heldout_fraction=0.001), n_train=101, seconds_per_step=1.0).steps == 6 * 25
    assert e.step_seconds > 0 and e.train_seconds == pytest.approx(e.steps * e.step_seconds)
    assert "steps" in e.describe()
    assert [duration(s) for s in (45, 600, 7200, 3 * 86400)] == ["45 s", "10 min", "2.0 h", "3.0 days"]
