import pytest
import torch

from pyramid_lib.model.anomaly_map import SCORE_NAMES, error_maps, predict, scores
from pyramid_lib.model.introspect import count_parameters, shape_trace
from pyramid_lib.model.loss import PyramidLoss
from pyramid_lib.model.network import (
    PYRAMID_DIVISORS,
    PyramidalAutoencoder,
    feature_size,
)

# Every encoder count at an even and an odd size, every size with the paper's 4 encoders; the other
# pairs (a network costs about a second to build: its orthogonal initialisation) in the full gate only.
SHAPES = [pytest.param(e, s, marks=() if s in (28, 31) or e == 4 else pytest.mark.slow)
          for s in (28, 31, 33, 97, 120) for e in (1, 2, 4, 6)]


@pytest.mark.parametrize("encoders, size", SHAPES)
def test_output_has_input_size(size, encoders):
    for pyramid in ("paper", "spatial"):
        model = PyramidalAutoencoder(size, encoders, pyramid)
        x = torch.rand(2, 3, size, size)
        y = model(x)
        assert y.shape == x.shape
        assert not torch.allclose(y[0], y[1])  # two images, two reconstructions: the output depends on the input


def test_too_small_or_unknown_settings_are_refused():
    with pytest.raises(ValueError, match="input_size"):
        PyramidalAutoencoder(27)
    with pytest.raises(ValueError, match="encoders"):
        PyramidalAutoencoder(28, encoders=3)
    with pytest.raises(ValueError, match="pyramid"):
        PyramidalAutoencoder(28, pyramid="bins")


def test_paper_pyramid_widths_match_table_v():
    model = PyramidalAutoencoder(28, 4)
    assert [b.out_channels for b in model.pyramid] == [512, 256, 170, 85]
    assert [e.net[0].in_channels for e in model.encoders] == [512, 256, 170, 85]
    assert PYRAMID_DIVISORS[1] == (1,) and PYRAMID_DIVISORS[2] == (1, 2) and len(PYRAMID_DIVISORS[6]) == 6


@pytest.mark.parametrize("size,h", [(28, 1), (120, 4), (64, 2)])
def test_trace_shapes_and_parameter_counts(size, h):
    model = PyramidalAutoencoder(size, 4)
    rows = {r["stage"]: r for r in shape_trace(model)}
    assert feature_size(size) == h
    assert rows["backbone.layer4"]["output shape"] == (512, h, h)
    assert rows["encoder[3]"]["output shape"] == (8,)  # a feature vector in R^8
    assert rows["upsample (shared)"]["output shape"] == (128, h, h)  # 512 * mf^2 = 128 h^2
    assert rows["concat (ResNet map + up-sampled)"]["output shape"] == (1024, h, h)  # Table VI's 1024
    assert rows["decoder.stage5"]["output shape"] == (3, size, size)
    assert sum(r["parameters"] for r in shape_trace(model)) == count_parameters(model)


def test_upsampler_is_shared_and_used_once_per_encoder():
    model = PyramidalAutoencoder(28, 6)
    rows = shape_trace(model)
    assert sum(r["stage"] == "upsample (shared)" for r in rows) == 6
    assert sum(r["parameters"] > 0 for r in rows if r["stage"] == "upsample (shared)") == 1


def test_orthogonal_init_outside_pretrained_backbone():
    model = PyramidalAutoencoder(28, 4)
    w = model.encoders[0].net[0].weight.flatten(1)  # 16 x (512*9): rows orthonormal
    assert torch.allclose(w @ w.T, torch.eye(16), atol=1e-4)
    w = model.upsample.net[0].weight  # 128 x 8: columns orthonormal
    assert torch.allclose(w.T @ w, torch.eye(8), atol=1e-4)


def test_vgg_frozen_backbone_trained():
    model, loss = PyramidalAutoencoder(28, 4), PyramidLoss(1.0)
    model.train(), loss.train()
    assert not loss.features.training  # stays in eval mode
    x = torch.rand(4, 3, 28, 28)
    total, mse, perc = loss(model(x), x).values()
    total.mean().backward()
    assert all(p.grad is None for p in loss.parameters())
    assert all(not p.requires_grad for p in loss.parameters())
    g = model.backbone.layer1[0].conv1.weight.grad
    assert g is not None and g.abs().sum() > 0
    assert model.decoder.net[0][0].weight.grad.abs().sum() > 0
    assert torch.allclose(total, mse + perc)


def test_loss_terms_and_scores():
    loss = PyramidLoss(0.5)
    x = torch.rand(3, 3, 28, 28)
    total, mse, perc = loss(x, x).values()
    assert torch.all(total == 0)
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    total, mse, perc = loss(y, x).values()
    assert torch.all(mse > 0) and torch.all(perc > 0)
    assert torch.allclose(total, mse + 0.5 * perc)
    assert torch.allclose(mse, ((y - x) ** 2).sum(1).mean((1, 2)))  # Eq. 1: 1/(WH), summed over channels
    s = scores(loss, y, x)
    assert set(s) == {"loss", "mse", "perceptual", "ssim"}
    assert torch.allclose(s["loss"], total)
    assert torch.all(s["ssim"] > 0) and torch.allclose(scores(loss, x, x)["ssim"], torch.zeros(3), atol=1e-4)
    # precomputed targets give the same loss as computing them here
    t2 = loss(y, x, targets=loss.targets(x))["loss"]
    assert torch.allclose(t2, total)
    # lambda = 0 is the MSE alone
    assert torch.equal(PyramidLoss(0.0)(y, x)["loss"], mse)
    assert PyramidLoss(0.0).targets(x) is None  # nothing worth caching without the perceptual term


def test_error_maps_cover_the_image_and_localise_a_defect():
    loss = PyramidLoss(1.0)
    x = torch.zeros(1, 3, 56, 56)
    y = x.clone()
    y[..., 10:20, 30:40] = 1.0
    maps = error_maps(loss, y, x)
    for m in maps.values():
        assert m.shape == (1, 56, 56)
    m = maps["mse"][0]
    assert m[10:20, 30:40].mean() > 2.9 and m[40:, :20].max() == 0  # 3 channels of error 1
    assert maps["loss"][0][10:20, 30:40].mean() > maps["loss"][0][45:, :10].mean()


@pytest.mark.parametrize("lambda_", [0.0, 1.0])
def test_predict_scores_are_bit_identical_to_scores_and_maps_are_b_s_s(lambda_):
    """predict() is the one inference call: its scores are exactly scores(loss, model(x), x)."""
    torch.manual_seed(0)
    model = PyramidalAutoencoder(input_size=28, encoders=4).eval()
    loss = PyramidLoss(lambda_)
    x = torch.rand(3, 3, 28, 28)
    p = predict(model, loss, x)
    with torch.no_grad():
        want = scores(loss, model(x), x)
    assert set(p.scores) == set(SCORE_NAMES) == set(p.maps)
    for k in SCORE_NAMES:
        assert torch.equal(p.scores[k], want[k]), k
        assert p.maps[k].shape == (3, 28, 28), k
    assert p.reconstruction.shape == x.shape
    assert predict(model, loss, x, maps=False).maps is None
