"""`pyramid-ad train` reads its data once, builds one network, and times its estimate on that
network (issue 33: each rule once)."""

import pytest
from helpers import tiny_cfg

from pyramid_lib import cli
from pyramid_lib import data as data_mod
from pyramid_lib.engine import estimate as estimate_mod
from pyramid_lib.engine import trainer
from pyramid_lib.engine.trainer import train


def _count(monkeypatch, module, name, calls):
    real = getattr(module, name)

    def counted(*a, **k):
        calls.append(name)
        return real(*a, **k)

    monkeypatch.setattr(module, name, counted)


@pytest.mark.slow
def test_train_announces_the_seconds_per_step_of_its_own_network(tmp_path, tiny):
    seen = []
    train(tiny_cfg(epochs=1), tmp_path / "r", data=tiny, progress=False, announce=lambda s, d: seen.append((s, d)))
    assert len(seen) == 1 and seen[0][0] > 0 and seen[0][1] is tiny


@pytest.mark.slow
def test_the_train_command_loads_and_builds_once(tmp_path, monkeypatch, capsys):
    calls = []
    _count(monkeypatch, data_mod, "load_for", calls)
    _count(monkeypatch, trainer, "build", calls)
    _count(monkeypatch, estimate_mod, "build", calls)  # the estimate's own network: not for a train
    args = ["--dataset", "mnist-sample", "--normal-class", "0", "--profile", "cpu", "--epochs", "1",
            "--train-limit", "40", "--weights", "random", "--device", "cpu", "--out", str(tmp_path / "r")]
    assert cli.main(["train", *args]) == 0
    out = capsys.readouterr().out
    assert "estimated time on this CPU" in out and "1 network run(s)" in out
    assert calls == ["load_for", "build"]
