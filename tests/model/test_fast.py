"""pyramid_lib.fast: the speed-ups compute what the plain network computes."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pyramid_lib.config import TrainConfig
from pyramid_lib.engine.build import build, fast_path, training_optimizer
from pyramid_lib.model import fast
from pyramid_lib.model.loss import PyramidLoss
from pyramid_lib.model.network import PyramidalAutoencoder


def pair(size=28, encoders=4, pyramid="paper", seed=0, dtype=torch.float32, **kw):
    torch.manual_seed(seed)
    plain = PyramidalAutoencoder(size, encoders, pyramid).to(dtype)
    return plain, fast.optimize(copy.deepcopy(plain), **kw)


def loss_and_grads(model, x, loss_fn):
    model.train()
    model.zero_grad(set_to_none=True)
    x_hat = model(x)
    loss = loss_fn(x_hat, x)["loss"].mean()
    loss.backward()
    return x_hat.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def test_used_taps():
    assert fast.used_taps(1, 3, 1, 1) == (1, 1)  # 3x3 pad 1 on 1x1: the centre only
    assert fast.used_taps(2, 3, 2, 1) == (1, 2)  # stride 2, 2x2 -> 1x1: taps [1:, 1:]
    assert fast.used_taps(2, 3, 1, 1) == (0, 2)  # 3x3 pad 1 on 2x2: every tap
    assert fast.used_taps(7, 3, 1, 1) == (0, 2)


def test_rewrites_at_28_and_120():
    _, f28 = pair(28)
    names = fast.rewritten(f28)
    for n in ("layer4.0.conv1", "layer4.0.conv2", "layer4.1.conv1", "layer4.1.conv2"):
        assert isinstance(f28.get_submodule("backbone." + n), fast.TapConv2d)
    for n in ("layer3.0.conv2", "layer3.1.conv1", "layer3.1.conv2"):
        assert isinstance(f28.get_submodule("backbone." + n), fast.MatrixConv2d)
    assert isinstance(f28.backbone.layer3[0].conv1, nn.Conv2d)  # 4x4 -> 2x2: left to oneDNN
    assert "encoders.0.net.0" in names
    f120 = fast.optimize(PyramidalAutoencoder(120))
    assert not [n for n in fast.rewritten(f120) if n.startswith("backbone")]  # 4x4 maps: nothing exact to skip


def assert_same(plain, quick, x, atol):
    loss_fn = PyramidLoss(1.0).to(x.dtype)
    y0, g0 = loss_and_grads(plain, x, loss_fn)
    y1, g1 = loss_and_grads(quick, x, loss_fn)
    torch.testing.assert_close(y1, y0, rtol=0, atol=atol)
    assert g0.keys() == g1.keys()
    for name in g0:  # absolute: some biases (before a batch norm) have a true gradient of 0
        err = (g1[name] - g0[name]).abs().max().item()
        assert err <= atol, f"{name}: gradient differs by {err:.2e}"
    quick.eval(), plain.eval()
    with torch.no_grad():
        torch.testing.assert_close(quick(x), plain(x), rtol=0, atol=atol)


@pytest.mark.parametrize("size,encoders,pyramid", [(28, 4, "paper"), (28, 2, "spatial"), (33, 4, "paper")])
def test_rewrites_are_exact_in_float64(size, encoders, pyramid):
    """In float64 rounding cannot hide a wrong tap: outputs and all gradients agree to 1e-10."""
    plain, quick = pair(size, encoders, pyramid, dtype=torch.float64)
    assert fast.rewritten(quick)
    torch.manual_seed(1)
    assert_same(plain, quick, torch.rand(4, 3, size, size, dtype=torch.float64), atol=1e-10)


def test_float32_rewrites_match_to_1e4():
    """The rewrites alone (same layout) in float32: outputs and gradients agree to 1e-4.  The
    stem's gradient differs most: 4.3e-5 on an AVX2 CPU (oneDNN sums in another order than with
    AVX-512, where it stayed under 1e-5); exactness itself is checked in float64 above."""
    plain, quick = pair(28, channels_last=False)
    torch.manual_seed(1)
    assert_same(plain, quick, torch.rand(16, 3, 28, 28), atol=1e-4)


def test_float32_default_with_channels_last_matches():
    """channels_last alone (plain convs, another oneDNN algorithm) moves train-mode outputs by
    ~5e-5 at batch 16 (batch norm over few images amplifies rounding); the default is no worse.
    Gradients: the stem's differ by 3.8e-4 since the loss's random VGG11 is orthogonally
    initialised (larger perceptual features, so larger float32 rounding); exactness itself is
    checked in float64 above."""
    plain, quick = pair(28)
    torch.manual_seed(1)
    assert_same(plain, quick, torch.rand(16, 3, 28, 28), atol=5e-4)


def test_unused_taps_get_exactly_zero_gradient_like_the_plain_conv():
    plain, quick = pair(28)
    x = torch.rand(4, 3, 28, 28)
    _, g0 = loss_and_grads(plain, x, PyramidLoss(1.0))
    _, g1 = loss_and_grads(quick, x, PyramidLoss(1.0))
    mask = torch.ones(3, 3, dtype=torch.bool)
    mask[1, 1] = False  # every tap but the centre only ever meets zero padding on a 1x1 map
    for name in ("backbone.layer4.0.conv2.weight", "backbone.layer4.1.conv1.weight", "encoders.0.net.0.weight"):
        assert (g0[name][:, :, mask] == 0).all() and (g1[name][:, :, mask] == 0).all()
        assert g1[name][:, :, 1, 1].abs().sum() > 0
    stride2 = "backbone.layer4.0.conv1.weight"  # 2x2 -> 1x1, stride 2: row 0 and column 0 unused
    assert (g1[stride2][:, :, 0, :] == 0).all() and (g1[stride2][:, :, :, 0] == 0).all()
    assert (g0[stride2][:, :, 0, :] == 0).all() and (g0[stride2][:, :, :, 0] == 0).all()


def test_same_parameters_and_state_dict_round_trips():
    torch.manual_seed(0)
    plain = PyramidalAutoencoder(28)
    before = {n: p for n, p in plain.named_parameters()}
    quick = fast.optimize(plain)  # in place: the very same Parameter objects
    assert quick is plain
    assert {n: p for n, p in quick.named_parameters()}.keys() == before.keys()
    assert all(p is before[n] for n, p in quick.named_parameters())

    torch.manual_seed(1)
    other = PyramidalAutoencoder(28)
    sd_plain = other.state_dict()
    assert list(quick.state_dict()) == list(sd_plain)  # same keys, same order
    quick.load_state_dict(sd_plain)  # plain -> fast
    for k, v in quick.state_dict().items():
        assert torch.equal(v, sd_plain[k]), k
    fresh = PyramidalAutoencoder(28)
    fresh.load_state_dict(quick.state_dict())  # fast -> plain
    x = torch.rand(3, 3, 28, 28)
    fresh.eval(), quick.eval(), other.eval()
    with torch.no_grad():
        torch.testing.assert_close(quick(x), other(x), rtol=0, atol=1e-5)
        assert torch.equal(fresh(x), other(x))
    fast.plain(quick)
    assert not fast.rewritten(quick) and type(quick.backbone.layer4[0].conv2) is nn.Conv2d
    assert all(p is before[n] for n, p in quick.named_parameters())


def test_other_input_sizes_run_the_plain_conv():
    conv = nn.Conv2d(8, 4, 3, padding=1, bias=True)
    tap = fast.TapConv2d(conv, 1)
    mat = fast.MatrixConv2d(nn.Conv2d(8, 4, 3, padding=1), 2)
    for n in (1, 2, 5):
        x = torch.randn(2, 8, n, n)
        torch.testing.assert_close(tap(x), conv(x), rtol=0, atol=1e-6)
        torch.testing.assert_close(mat(x), F.conv2d(x, mat.weight, mat.bias, padding=1), rtol=0, atol=1e-6)
    with pytest.raises(ValueError):
        fast.TapConv2d(conv, 7)  # every tap meets real input: nothing to skip


@pytest.mark.parametrize("n,stride", [(2, 1), (2, 2), (1, 1)])
def test_matrix_conv_matches_conv2d_with_bias(n, stride):
    conv = nn.Conv2d(5, 7, 3, stride=stride, padding=1, bias=True)
    mat = fast.MatrixConv2d(conv, n)
    x = torch.randn(3, 5, n, n, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    y0, y1 = conv(x), mat(x2)
    torch.testing.assert_close(y1, y0, rtol=0, atol=1e-6)
    g = torch.randn_like(y0)
    w0 = torch.autograd.grad(y0, [x, conv.weight, conv.bias], g)
    w1 = torch.autograd.grad(y1, [x2, mat.weight, mat.bias], g)
    for a, b in zip(w0, w1):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-5)


def test_built_model_shows_the_papers_layers_and_training_gets_the_speedups():
    cfg = TrainConfig(dataset="mnist-sample", weights="random")
    model, loss = build(cfg)
    assert fast.rewritten(model) == [] and "TapConv2d" not in repr(model) and "MatrixConv2d" not in repr(model)
    assert type(model.backbone.layer4[0].conv2) is nn.Conv2d
    assert model.backbone.layer1[0].conv1.weight.is_contiguous()  # plain: build applies no speed-up
    opt = training_optimizer(cfg, model)
    assert fast.rewritten(model) == []  # nor does the optimiser
    assert opt.defaults["fused"] is True  # the fused kernel, not foreach Adam (torch >= 2.4 has it on CPU)
    assert fast_path(cfg, model, loss) == (model, loss)  # where training and loading run: explicitly
    assert fast.rewritten(model) and model.backbone.layer1[0].conv1.weight.is_contiguous(
        memory_format=torch.channels_last)


def test_fused_adam_step_matches_plain_adam():
    torch.manual_seed(0)
    a = nn.Linear(16, 8)
    b = copy.deepcopy(a)
    oa = torch.optim.Adam(a.parameters(), lr=1e-2, weight_decay=1e-4)
    ob = fast.adam(b.parameters(), lr=1e-2, weight_decay=1e-4)
    x = torch.randn(32, 16)
    for _ in range(5):
        for m, o in ((a, oa), (b, ob)):
            o.zero_grad()
            m(x).pow(2).mean().backward()
            o.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-6)


def test_inputs_are_plain_and_the_fast_loss_channels_last_with_unchanged_values():
    from pyramid_lib.data import to_input

    grey = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    x = to_input(grey)
    assert x.shape == (3, 3, 28, 28) and x.is_contiguous()  # --no-fast is the plain path, inputs included
    assert torch.equal(x, (grey.float() / 255).expand(-1, 3, -1, -1))
    rgb = torch.randint(0, 256, (2, 3, 30, 30), dtype=torch.uint8)
    assert torch.equal(to_input(rgb), rgb.float() / 255)

    cfg = TrainConfig(dataset="mnist-sample", weights="random")
    _, loss = fast_path(cfg, *build(cfg))
    conv = loss.features.features[0]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    plain = PyramidLoss(1.0)
    plain.load_state_dict(loss.state_dict())
    torch.testing.assert_close(loss.features(x), plain.features(x), rtol=0, atol=1e-5)
    # a channels-last network gives the same values on a plain input as on a channels-last one
    assert torch.equal(loss.features(x), loss.features(x.contiguous(memory_format=torch.channels_last)))
