"""`pyramid-ad verify`: a run trained here re-runs from its config.json within tolerance; a changed
committed number is caught (exit 1); tolerances come from the table's seed spread and the rounding
range of the stability logs."""

import math

import pandas as pd
import pytest
from helpers import REPO, tiny_cfg

from pyramid_lib import cli
from pyramid_lib.engine.run_dir import RunDir
from pyramid_lib.experiments import verify
from pyramid_lib.experiments.jobs import run_one
from pyramid_lib.experiments.sweep import collect


def test_the_rounding_ranges_are_read_from_the_committed_stability_logs():
    ranges = verify.rounding_ranges(REPO / "benchmarks")
    assert ranges == {"cpu": 0.0080, "laptop": 0.0266}  # the largest 'range' line of each profile's log


def test_the_tolerance_is_the_larger_of_twice_the_pooled_seed_sd_and_the_rounding_range():
    res = pd.DataFrame({"normal_class": ["1", "1", "2", "2", "3"], "method": "ours", "epochs": 6,
                        "train_limit": 4000, "auroc": [0.90, 0.92, 0.80, 0.84, 0.5]})
    sd, k = verify.seed_spread(res, res.iloc[0], "auroc")
    assert k == 2 and sd == pytest.approx(math.sqrt((0.0002 + 0.0008) / 2))  # class 3 has one seed
    tol, why = verify.tolerance(res, pd.Series({**res.iloc[0], "profile": "cpu"}), "auroc", {"cpu": 0.008})
    assert tol == pytest.approx(2 * sd) and "rounding range 0.0080" in why
    tol, why = verify.tolerance(res, pd.Series({**res.iloc[0], "profile": "cpu"}), "auroc", {"cpu": 0.2})
    assert tol == 0.2
    tol, _ = verify.tolerance(res, pd.Series({**res.iloc[0], "profile": "cpu"}), "heldout_tpr", {"cpu": 0.2})
    assert tol == 0.0  # no seed spread of that column, and rounding is measured for AUROCs only


@pytest.mark.slow
def test_verify_reproduces_a_run_trained_here_and_catches_a_changed_number(tmp_path, capsys):
    base = tmp_path / "results" / "mnist-sample" / "quick"
    cfg = tiny_cfg(epochs=1, train_limit=24).validate()
    run_one("tiny", cfg, RunDir(base / "runs" / "tiny"), progress=False, figures=False)
    collect("mnist-sample", base)
    assert cli.main(["verify", str(base), "tiny", "--work", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "tiny: reproduced within tolerance" in out and "auroc" in out and "committed" in out
    metrics = base / "runs" / "tiny" / "metrics.csv"
    m = pd.read_csv(metrics)
    m.loc[0, "auroc"] = m.loc[0, "auroc"] - 0.3 if m.loc[0, "auroc"] > 0.5 else m.loc[0, "auroc"] + 0.3
    m.to_csv(metrics, index=False)
    assert cli.main(["verify", str(base), "--runs", "1", "--work", str(tmp_path)]) == 1
    assert "tiny: NOT reproduced: auroc" in capsys.readouterr().out


def _finished(base, name: str, config: dict, seconds: float) -> None:
    run = base / "runs" / name
    run.mkdir(parents=True)
    (run / "config.json").write_text(__import__("json").dumps(config))
    pd.DataFrame({"auroc": [0.9], "train_seconds": [seconds]}).to_csv(run / "metrics.csv", index=False)


def test_the_cheapest_runs_leave_out_baselines_fitted_with_other_settings_and_say_so(tmp_path):
    """A folder whose cheapest runs are OC-SVM fits from before the kit recorded their settings (as in
    the committed results/baselines/cpu): `--runs N` chooses among the runs it can re-run as recorded and
    names the others, instead of choosing one and refusing it."""
    from pyramid_lib import baselines as bl

    base = tmp_path / "baselines" / "cpu"
    _finished(base, "mnist-1-ocsvm-old", {"dataset": "mnist", "method": "ocsvm"}, 1.0)
    _finished(base, "mnist-1-ocsvm", {"dataset": "mnist", "method": "ocsvm",
                                      "baseline_settings": bl.settings("mnist", "ocsvm")}, 2.0)
    _finished(base, "mnist-1-ae-l2", {"dataset": "mnist", "method": "ae-l2"}, 3.0)
    _finished(base, "mnist-1-ours-old", {"dataset": "mnist", "weights": "random"}, 0.5)  # before init was recorded
    (base / "runs" / "mnist-1-ours-old" / "run.json").write_text('{"status": "finished"}')
    with pytest.warns(UserWarning, match=r"2 run\(s\) not chosen.*mnist-1-ocsvm-old \(recorded with settings None"
                                         r".*mnist-1-ours-old \(trained before 7cc5e7c"):
        assert verify.choose(base, 3) == ["mnist-1-ocsvm", "mnist-1-ae-l2"]
    with pytest.raises(verify.ConfigError, match="Kaiming-initialised.*not the same run"):
        verify.rerun(base / "runs" / "mnist-1-ours-old", tmp_path / "work")
    assert verify.choose(base, names=["mnist-1-ocsvm-old"]) == ["mnist-1-ocsvm-old"]  # named: re-run refuses it
    (base / "runs" / "mnist-1-ocsvm").rename(base / "gone")
    (base / "runs" / "mnist-1-ae-l2").rename(base / "gone2")
    with pytest.warns(UserWarning), pytest.raises(verify.ConfigError, match="no finished run that today's code"):
        verify.choose(base, 3)
