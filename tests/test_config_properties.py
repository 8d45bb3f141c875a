"""Property-based tests (hypothesis): whatever arguments the kit is given, it either accepts them or
raises ConfigError/DataError naming the argument, in one line, before anything starts."""

from __future__ import annotations

import contextlib
import io
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from pyramid_lib import data
from pyramid_lib.config import TrainConfig
from pyramid_lib.errors import ConfigError, DataError

SIZE = 28
FEW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                     HealthCheck.data_too_large])


# ----------------------------------------------------------------------------------- arguments

@FEW
@given(dataset=st.sampled_from(["mnist", "fmnist", "mnist-sample"]),
       cls=st.one_of(st.integers(-20, 20), st.text(max_size=12), st.sampled_from(data.FMNIST_CLASSES)))
def test_normal_class_is_a_valid_index_or_a_data_error_naming_the_argument(dataset, cls):
    names = data.FMNIST_CLASSES if dataset == "fmnist" else data.MNIST_CLASSES
    try:
        i = data.class_index(cls, names)
    except DataError as e:
        assert str(e).startswith("--normal-class") and "\n" not in str(e)
    else:
        assert 0 <= i < len(names) and (str(cls) == names[i] or int(str(cls)) == i)


NUM = st.one_of(st.integers(-5, 300), st.floats(allow_nan=True, allow_infinity=True), st.none())


@FEW
@given(epochs=NUM, lambda_=NUM, lr=NUM, batch=NUM, seed=st.one_of(st.integers(-3, 2**40), st.none()),
       encoders=st.sampled_from([0, 1, 2, 3, 4, 6, 8]), size=st.integers(-1, 300), val=NUM, limit=NUM,
       dataset=st.sampled_from(data.DATASETS + ("imagenet",)), pyramid=st.sampled_from(["paper", "spatial", "x"]))
def test_train_config_validates_or_raises_a_config_error(epochs, lambda_, lr, batch, seed, encoders, size, val, limit,
                                                        dataset, pyramid):
    kw = dict(epochs=epochs, lambda_=lambda_, lr=lr, batch_size=batch, seed=seed, heldout_fraction=val,
              train_limit=limit)
    kw = {k: v for k, v in kw.items() if v is not None or k == "train_limit"}
    cfg = TrainConfig(dataset=dataset, normal_class="1", encoders=encoders, input_size=size, pyramid=pyramid, **kw)
    try:
        cfg.validate()
    except (ConfigError, DataError) as e:
        assert str(e).startswith("--") and "\n" not in str(e)
    else:
        assert isinstance(cfg.epochs, int) and cfg.epochs >= 1 and np.isfinite(cfg.lambda_) and cfg.lr > 0
        assert cfg.batch_size >= 2 and 0 <= cfg.heldout_fraction < 1 and 0 <= cfg.seed < 2**32


class Reached(Exception):
    """Raised by the stand-in for train(): every argument was accepted."""


def mostly(valid, invalid):
    """Mostly valid values (hypothesis leans to the first branch), so whole command lines get through too."""
    return st.integers(0, 4).flatmap(lambda i: invalid if i == 4 else valid)


OPT = {
    "--dataset": mostly(st.sampled_from(data.DATASETS), st.sampled_from(["cifar", "", "MNIST"])),
    "--normal-class": mostly(st.integers(0, 9).map(str),
                             st.one_of(st.integers(-3, 15).map(str), st.text(max_size=6), st.just("Trouser"))),
    "--epochs": mostly(st.integers(1, 5).map(str), st.one_of(st.integers(-3, 0).map(str), st.text(max_size=4))),
    "--lambda": mostly(st.floats(0, 10).map(str),
                       st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(str), st.text(max_size=5),
                                 st.sampled_from(["1e400", " inf\n", "-0.5"]))),
    "--encoders": mostly(st.sampled_from(["1", "2", "4", "6"]), st.sampled_from(["3", "x", "-1", "4.0"])),
    "--profile": mostly(st.sampled_from(["quick", "cpu"]), st.sampled_from(["paper", "fast"])),
    "--weights": mostly(st.sampled_from(["none", "auto"]), st.sampled_from(["imagenet", "resnet"])),
    "--input-size": mostly(st.just("28"), st.one_of(st.integers(-1, 200).map(str), st.text(max_size=3))),
    "--seed": mostly(st.integers(0, 100).map(str), st.one_of(st.integers(-2, 2**40).map(str), st.text(max_size=3))),
    "--train-limit": mostly(st.integers(2, 50).map(str), st.one_of(st.integers(-1, 1).map(str), st.text(max_size=3))),
    "--device": mostly(st.sampled_from(["cpu", "auto"]), st.sampled_from(["cuda", "cuda:3", "gpu", "", "cpu\n"])),
    "--pyramid": mostly(st.sampled_from(["paper", "spatial"]), st.just("pyramid")),
}


@settings(FEW, max_examples=100)
@given(dataset=OPT["--dataset"], opts=st.fixed_dictionaries({}, optional=OPT))
@example(dataset="mnist-sample", opts={"--normal-class": "1", "--weights": "none", "--epochs": "2"})
@example(dataset="folder", opts={"--lambda": " inf\n"})
def test_any_train_arguments_are_accepted_or_rejected_in_one_line_before_anything_starts(dataset, opts):
    """Random values for every `train` option: either all are accepted (and the config validates),
    or the command fails with one line on stderr and a non-zero exit, having created nothing."""
    from pyramid_lib import cli
    from pyramid_lib.model import weights

    def fake_train(cfg, out, **kw):
        cfg.validate()
        assert not Path(out).exists()
        raise Reached(cfg)

    def offline():
        raise OSError("offline")

    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        mp.setattr(cli, "train", fake_train)
        mp.setattr(weights, "_fetch", offline)
        root, out = Path(tmp) / "data", Path(tmp) / "out"
        root.mkdir()
        argv = ["train", "--out", str(out), "--data-root", str(root), f"--dataset={dataset}"]
        for k, v in opts.items():
            argv += [f"{k}={v}"]
        err = io.StringIO()
        code = None
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                code = cli.main(argv)
            except SystemExit as e:
                code = e.code
            except Reached as r:
                cfg = r.args[0]
                assert cfg.weights in ("random", "imagenet")
                code = "reached"
        msg = err.getvalue().strip()
        event("accepted" if code == "reached" else f"exit {code}")
        if code != "reached":
            assert code not in (0, None), (argv, msg)
            assert msg and len(msg.splitlines()) == 1 and "Traceback" not in msg, (argv, msg)
        assert not out.exists() and list(root.iterdir()) == []
