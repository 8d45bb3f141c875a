"""`precision` (fp32 / bf16 / auto) is a recorded setting: engine/precision.py and the trainer."""

import json

import pytest
import torch
from helpers import tiny_cfg

from pyramid_lib.config import TrainConfig
from pyramid_lib.engine import precision
from pyramid_lib.engine.build import build
from pyramid_lib.engine.trainer import step, train
from pyramid_lib.errors import ConfigError


@pytest.mark.slow
def test_bf16_run_trains_in_bf16_and_records_it(tmp_path, tiny):
    run = train(tiny_cfg(epochs=1, precision="bf16"), tmp_path / "r", data=tiny, progress=False)
    assert json.loads(run.config.read_text())["precision"] == "bf16"
    state = run.read_state()
    assert state["status"] == "finished" and state["precision_measured"] is None
    assert torch.isfinite(torch.tensor(state["history"][-1]["loss"]))


def test_bf16_step_runs_the_network_in_bf16_and_returns_fp32_terms():
    cfg = tiny_cfg()
    model, loss = build(cfg)
    seen = []
    model.decoder.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    out = step(model, loss, opt, torch.rand(4, 3, 28, 28), precision="bf16")
    assert seen == [torch.bfloat16]
    mean, terms = out
    assert mean.dtype == torch.float32 and all(t.dtype == torch.float32 for t in terms.values())
    step(model, loss, opt, torch.rand(4, 3, 28, 28), precision="fp32")
    assert seen[-1] == torch.float32
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights stay fp32


@pytest.mark.parametrize(("bf16_s", "chosen"), [(0.5, "bf16"), (0.89, "bf16"), (0.95, "fp32"), (1.3, "fp32")])
def test_auto_chooses_bf16_only_when_measured_faster(monkeypatch, bf16_s, chosen):
    monkeypatch.setattr(precision, "step_seconds", lambda model, loss, x, p, repeats=3: 1.0 if p == "fp32" else bf16_s)
    m = precision.measure(None, None, torch.zeros(1))
    assert m["chosen"] == chosen and m["ratio"] == pytest.approx(bf16_s)


@pytest.mark.slow
def test_auto_is_measured_once_recorded_and_kept_on_resume(tmp_path, tiny, monkeypatch):
    calls = []
    real = precision.measure

    def counted(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(precision, "measure", counted)
    run = train(tiny_cfg(epochs=1, precision="auto"), tmp_path / "r", data=tiny, progress=False)
    used = json.loads(run.config.read_text())["precision"]
    measured = run.read_state()["precision_measured"]
    assert used in ("fp32", "bf16") and measured["chosen"] == used and len(calls) == 1
    assert measured["fp32_s"] > 0
    # resuming with auto takes the recorded precision, without measuring again
    train(tiny_cfg(epochs=2, precision="auto"), run.dir, resume=True, data=tiny, progress=False)
    assert json.loads(run.config.read_text())["precision"] == used and len(calls) == 1
    # resuming with the other precision is refused: it would change what the run computes
    other = "fp32" if used == "bf16" else "bf16"
    with pytest.raises(Exception, match="precision"):
        train(tiny_cfg(epochs=3, precision=other), run.dir, resume=True, data=tiny, progress=False)


def test_auto_must_be_resolved_before_a_step_and_bad_values_are_refused():
    with pytest.raises(ValueError, match="resolve"):
        precision.autocast("auto", "cpu")
    with pytest.raises(ConfigError, match="--precision"):
        TrainConfig(precision="fp16").validate()


def test_configs_written_before_precision_existed_read_as_fp32():
    assert TrainConfig.from_dict({"dataset": "mnist", "normal_class": "3"}).precision == "fp32"
