"""The loss-and-score contract: the loss returns its per-image terms by name, the trainer minimises
"loss" and logs every term it gets, the anomaly score "loss" is the loss called, and a new score
is a class registered by name, asked for by name."""

import pytest
import torch
from torch import nn

from pyramid_lib.engine.evaluate import score_images
from pyramid_lib.engine.trainer import perceptual_targets, step
from pyramid_lib.metrics import SCORE_NAMES, summarize
from pyramid_lib.model.anomaly_map import SCORES, Score, predict, register
from pyramid_lib.model.loss import PyramidLoss


class L1Loss(nn.Module):
    """A test-only loss with terms PyramidLoss does not have."""

    def forward(self, x_hat, x, targets=None):
        l1 = (x_hat - x).abs().flatten(1).mean(1)
        return {"loss": l1 + 0.0, "l1": l1, "max_error": (x_hat - x).abs().flatten(1).amax(1)}

    def targets(self, x):
        return None


def test_the_score_loss_is_the_training_loss_called():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Sigmoid())
    loss = PyramidLoss(0.5)
    x = torch.rand(4, 3, 28, 28)
    p = predict(model, loss, x)
    with torch.no_grad():
        terms = loss(model(x), x)
    for k in ("loss", "mse", "perceptual"):
        assert torch.equal(p.scores[k], terms[k]), k
    # the per-pixel map of "loss" is the loss's own sum of the other two maps
    assert torch.allclose(p.maps["loss"], p.maps["mse"] + 0.5 * p.maps["perceptual"])
    loss.lambda_ = 2.0  # one place: the score follows the loss's own setting
    assert torch.allclose(predict(model, loss, x).scores["loss"], terms["mse"] + 2.0 * terms["perceptual"])


def test_cached_targets_come_from_the_loss(tiny):
    loss = PyramidLoss(1.0)
    fit = tiny.train.subset(torch.arange(6))
    t = perceptual_targets(loss, fit, "cpu")
    assert torch.equal(t, loss.targets(fit.batch(torch.arange(6), "cpu")))
    assert perceptual_targets(PyramidLoss(0.0), fit, "cpu") is None
    assert perceptual_targets(L1Loss(), fit, "cpu") is None


def test_a_step_minimises_loss_and_returns_every_term():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Sigmoid())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.rand(4, 3, 8, 8)
    mean, terms = step(model, L1Loss(), opt, x)
    assert list(terms) == ["loss", "l1", "max_error"]
    assert torch.equal(mean, terms["loss"].mean())
    mean2, _ = step(model, L1Loss(), opt, x)
    assert mean2 < mean  # the update went down "loss"
    # a bare tensor of per-image losses (the plain autoencoders') is the term "loss"
    _, terms = step(model, lambda x_hat, x: (x_hat - x).pow(2).flatten(1).mean(1), opt, x)
    assert list(terms) == ["loss"]


class Brightest(Score):
    """A test-only score: the largest absolute error of any pixel."""

    name = "test-brightest"

    def image(self, p):
        return (p.x_hat - p.x).abs().flatten(1).amax(1)

    def map(self, p):
        return (p.x_hat - p.x).abs().amax(1)


@pytest.fixture
def brightest():
    score = register(Brightest())
    yield score
    del SCORES[score.name]


def test_a_new_score_is_a_class_and_a_choice_by_name(tiny, brightest):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Sigmoid())
    loss = PyramidLoss(1.0)
    names = (*SCORE_NAMES, brightest.name)
    frame = score_images(model, loss, tiny.test, progress=False, names=names)
    assert list(frame.columns[3:]) == list(names)
    default = score_images(model, loss, tiny.test, progress=False)
    assert brightest.name not in default  # runs record SCORE_NAMES unless asked
    assert (frame[list(SCORE_NAMES)] == default[list(SCORE_NAMES)]).all().all()
    row = summarize(frame, scores=names)
    assert 0 <= row[f"auroc_{brightest.name}"] <= 1
    p = predict(model, loss, tiny.test.batch(torch.arange(3), "cpu"), names=(brightest.name,))
    assert set(p.scores) == set(p.maps) == {brightest.name} and p.maps[brightest.name].shape == (3, 28, 28)
    with pytest.raises(ValueError, match="exists already"):
        register(Brightest())
