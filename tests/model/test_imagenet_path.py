"""The ImageNet path, offline (issue 13, part 5).

ImageNet weights cannot be downloaded where the tests run, so a temporary torch hub cache
($TORCH_HOME/hub/checkpoints/) is filled with stand-in state dicts: the real keys and shapes of
torchvision's resnet18 and vgg11, seeded random values, saved under the exact file names the
weights' URLs end with.  Everything else is torchvision's real loading path
(`WeightsEnum.get_state_dict` -> `torch.hub.load_state_dict_from_url` -> `torch.load`, then a
strict `load_state_dict`): nothing in it is patched except that downloading raises, which proves
the cached files were used.  torchvision's model builders pass `check_hash=True`, but torch.hub
checks the hash prefix in the file name only while downloading, never for a file already in the
cache (`test_the_cache_is_read_by_torchvisions_own_loader` shows it), so the stand-ins need no
forged hash.  VGG11's classifier (about 500 MB, unused by the kit: F is `features[:4]`) is stored as
one constant broadcast to its shape, so the stand-in file is small; torch.load restores the shape.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
import torch
from torchvision.models import ResNet18_Weights, VGG11_Weights, resnet18, vgg11

from pyramid_lib import cli, data, files
from pyramid_lib.config import TrainConfig
from pyramid_lib.engine import trainer as trainer_mod
from pyramid_lib.engine.build import build, resolve_weights
from pyramid_lib.engine.run_dir import RunDir
from pyramid_lib.errors import WeightsUnavailable
from pyramid_lib.model import weights
from pyramid_lib.plots import weights_note

RESNET, VGG = ResNet18_Weights.IMAGENET1K_V1, VGG11_Weights.IMAGENET1K_V1


def file_name(enum) -> str:
    """The cache file torch.hub reads for `enum`: the last part of its URL."""
    return enum.url.rsplit("/", 1)[-1]


def standin_state(builder, seed: int) -> dict[str, torch.Tensor]:
    """A state dict with `builder()`'s real keys, shapes and dtypes (taken on the meta device),
    seeded values: He-scaled normal weights, small biases, BN statistics near (0, 1).  Tensors of
    more than 4M values (VGG11's first classifier layers) are one constant broadcast to the shape."""
    with torch.device("meta"):
        shapes = builder().state_dict()
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in shapes.items():
        if not v.dtype.is_floating_point:  # BN's num_batches_tracked
            out[k] = torch.zeros(v.shape, dtype=v.dtype)
        elif v.numel() > 4_000_000:
            out[k] = torch.full((), 1e-4).expand(v.shape)
        elif v.dim() > 1:
            out[k] = torch.randn(v.shape, generator=g) * (2.0 / v[0].numel()) ** 0.5
        elif k.endswith("running_var"):
            out[k] = 1 + 0.1 * torch.rand(v.shape, generator=g)
        elif k.endswith("weight"):  # BN scale
            out[k] = 1 + 0.1 * torch.randn(v.shape, generator=g)
        else:  # biases, BN shifts and running means
            out[k] = 0.05 * torch.randn(v.shape, generator=g)
    return out


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    """{"home": a TORCH_HOME whose hub cache holds both stand-ins, "resnet18", "vgg11": their state dicts}."""
    home = tmp_path_factory.mktemp("torch_home")
    ckpts = home / "hub" / "checkpoints"
    ckpts.mkdir(parents=True)
    sd = {"resnet18": standin_state(resnet18, 18), "vgg11": standin_state(vgg11, 11)}
    torch.save(sd["resnet18"], ckpts / file_name(RESNET))
    torch.save(sd["vgg11"], ckpts / file_name(VGG))
    return {"home": home, **sd}


def refuse_download(url, dst, *a, **kw):
    raise AssertionError(f"the test tried to download {url} to {dst}: the cache was not used")


def use_hub(monkeypatch, home: Path) -> Path:
    """Point torch.hub at `home` for this test only (TORCH_HOME, inherited by any subprocess) and
    make downloading fail.  Returns the checkpoints folder torch.hub reads."""
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # an earlier torch.hub.set_dir would win over TORCH_HOME
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse_download)
    assert Path(torch.hub.get_dir()) == home / "hub"
    return home / "hub" / "checkpoints"


@pytest.fixture
def hub(standins, monkeypatch):
    use_hub(monkeypatch, standins["home"])
    return standins


def test_the_cache_is_read_by_torchvisions_own_loader(hub):
    """The stand-ins load through torchvision's weights API and model builders (which ask for
    check_hash=True: it applies to downloads only, and the stand-ins' contents do not match the
    hash prefix in their names)."""
    got = RESNET.get_state_dict(progress=False)
    assert got.keys() == hub["resnet18"].keys()
    assert torch.equal(got["conv1.weight"], hub["resnet18"]["conv1.weight"])
    net = resnet18(weights=RESNET)  # strict load_state_dict: every key and shape is the real one
    assert torch.equal(net.layer4[1].conv2.weight, hub["resnet18"]["layer4.1.conv2.weight"])
    assert torch.equal(vgg11(weights=VGG).features[3].bias, hub["vgg11"]["features.3.bias"])


def test_resolve_says_imagenet_and_auto_takes_the_cached_weights_silently(hub):
    assert weights.resolve("imagenet") == "imagenet"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # auto with the weights at hand warns about nothing
        assert weights.resolve("auto") == "imagenet"
    assert weights.resolve("none") == "random"
    assert weights.enums("imagenet") == (RESNET, VGG)


def test_without_cached_weights_auto_says_random_and_imagenet_fails(tmp_path, monkeypatch, standins):
    ckpts = use_hub(monkeypatch, tmp_path / "empty_home")
    with pytest.warns(UserWarning, match="RANDOM"):
        assert weights.resolve("auto") == "random"
    assert weights.cache_files() == [ckpts / file_name(RESNET), ckpts / file_name(VGG)]
    with pytest.raises(WeightsUnavailable, match="--weights none") as e:
        weights.resolve("imagenet")
    assert str(ckpts) in str(e.value) and file_name(VGG) in str(e.value)  # where to put them by hand
    # a damaged cache file (an interrupted copy) is refused the same way, never half-used
    ckpts.mkdir(parents=True, exist_ok=True)
    raw = (standins["home"] / "hub" / "checkpoints" / file_name(RESNET)).read_bytes()
    (ckpts / file_name(RESNET)).write_bytes(raw[: len(raw) // 2])
    (ckpts / file_name(VGG)).write_bytes((standins["home"] / "hub" / "checkpoints" / file_name(VGG)).read_bytes())
    with pytest.raises(WeightsUnavailable):
        weights.resolve("imagenet")


def backbone_key(k: str) -> str:
    """Backbone state-dict key -> torchvision resnet18's (stem.0 = conv1, stem.1 = bn1)."""
    return k.replace("stem.0.", "conv1.").replace("stem.1.", "bn1.")


def test_a_built_imagenet_network_holds_the_cached_weights_and_normalises_its_inputs(hub):
    cfg = resolve_weights(TrainConfig(dataset="mnist-sample", normal_class="1", weights="auto"))
    assert cfg.weights == "imagenet"
    model, loss = build(cfg)
    bb = model.backbone.state_dict()
    assert len(bb) == len([k for k in hub["resnet18"] if not k.startswith("fc.")])
    differ = [k for k, v in bb.items() if not torch.equal(v, hub["resnet18"][backbone_key(k)])]
    assert not differ, f"backbone tensors not the cached ImageNet ones (re-initialised?): {differ[:5]}"
    f = loss.features.state_dict()  # F = VGG11 features[:4]: its two convs
    assert sorted(f) == ["features.0.bias", "features.0.weight", "features.3.bias", "features.3.weight"]
    assert all(torch.equal(v, hub["vgg11"][k]) for k, v in f.items())

    # what the first conv of each network receives: the images normalised with torchvision's own
    # preprocessing constants of those weights
    for module, enum in ((model.backbone, RESNET), (loss.features, VGG)):
        t = enum.transforms()
        assert torch.allclose(module.mean.flatten(), torch.tensor(t.mean))
        assert torch.allclose(module.std.flatten(), torch.tensor(t.std))
    s = data.load("mnist-sample", "1")
    x = s.test.batch(torch.arange(6), "cpu")
    assert x.shape[1] == 3 and 0 <= float(x.min()) and float(x.max()) <= 1  # 3 channels in [0, 1]
    seen = {"backbone": [], "F": []}
    first_convs = {"backbone": model.backbone.stem[0], "F": loss.features.features[0]}
    hooks = [m.register_forward_pre_hook(lambda m, a, name=name: seen[name].append(a[0].detach().clone()))
             for name, m in first_convs.items()]
    try:
        with torch.no_grad():
            model.eval()
            loss(model(x), x)
    finally:
        for h in hooks:
            h.remove()
    mean = torch.tensor(RESNET.transforms().mean).view(1, 3, 1, 1)
    std = torch.tensor(RESNET.transforms().std).view(1, 3, 1, 1)
    (into_backbone,) = seen["backbone"]
    assert torch.allclose(into_backbone, (x - mean) / std, atol=1e-6)
    assert len(torch.cat(seen["F"])) == 2 * len(x)  # F sees the reconstructions and the inputs
    assert any(torch.allclose(part, (x - mean) / std, atol=1e-6) for part in torch.cat(seen["F"]).split(len(x)))


class FigureSpy:
    """Records the text of every figure the library saves (`files.atomic_save_figure` draws with
    Figure.savefig into memory, then writes the bytes): {png path: (titles, every text)}."""

    def __init__(self, monkeypatch):
        self.drawn: dict[Path, tuple[list[str], list[str]]] = {}
        self._last: list = []
        savefig, write = matplotlib.figure.Figure.savefig, files.atomic_write_bytes

        def spy_savefig(fig, *a, **kw):
            titles = [fig._suptitle.get_text()] if fig._suptitle is not None else []
            titles += [ax.get_title(loc) for ax in fig.axes for loc in ("center", "left", "right")]
            texts = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
            self._last.append(([t for t in titles if t], texts))
            return savefig(fig, *a, **kw)

        def spy_write(path, blob):
            if str(path).endswith(".png") and self._last:
                self.drawn[Path(path).resolve()] = self._last.pop()
            return write(path, blob)

        monkeypatch.setattr(matplotlib.figure.Figure, "savefig", spy_savefig)
        monkeypatch.setattr(files, "atomic_write_bytes", spy_write)


# "random weights", "randomly initialised ResNet18 weights", "weights: random", "ours (random weights)"
RANDOM_AS_WEIGHTS = re.compile(r"random\w*\W+(?:\w+\W+){0,4}?weights|weights\W+(?:\w+\W+){0,2}?random", re.I)


def weight_lines(text: str) -> list[str]:
    """The lines of a page that name weights, without the commands quoted in it."""
    return [ln for ln in text.splitlines() if "weights" in ln.lower() and "--weights" not in ln]


@pytest.mark.slow
def test_an_imagenet_run_says_imagenet_everywhere(hub, tmp_path, monkeypatch, capsys):
    figs = FigureSpy(monkeypatch)
    tiny = ["--epochs", "1", "--train-limit", "32", "--test-limit", "100", "--weights", "imagenet",
            "--device", "cpu"]
    run_dir = tmp_path / "run"
    assert cli.main(["train", "--dataset", "mnist-sample", "--normal-class", "1", "--out", str(run_dir), *tiny]) == 0
    assert cli.main(["evaluate", str(run_dir), "--device", "cpu"]) == 0
    out = tmp_path / "results"
    assert cli.main(["reproduce", "mnist", "--dataset", "mnist-sample", "--classes", "1", "--profile", "quick",
                     "--out", str(out), *tiny]) == 0
    assert cli.main(["report", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "imagenet weights" in printed and "random" not in printed

    runs = [RunDir(run_dir), *(RunDir(p) for p in sorted(out.glob("mnist/*/runs/*")))]
    assert len(runs) == 2
    for run in runs:
        assert json.loads(run.config.read_text())["weights"] == "imagenet"
        state = json.loads(run.state.read_text())
        assert state["init"]["backbone"] == state["init"]["perceptual"] == "imagenet", state["init"]
        # F is frozen: the checkpoint's perceptual network is the cached ImageNet VGG11, untouched
        ckpt = torch.load(run.checkpoint, weights_only=True)
        assert all(torch.equal(v, hub["vgg11"][k]) for k, v in ckpt["perceptual"].items())
        metrics = pd.read_csv(run.metrics)
        assert set(metrics["weights"]) == {"imagenet"}

    (base,) = out.glob("mnist/*/")
    res = pd.read_csv(base / "results.csv")
    assert len(res) == 1 and set(res["weights"]) == {"imagenet"}
    for csv in sorted(out.rglob("*.csv")):  # no table labels these results as made with random weights
        assert not RANDOM_AS_WEIGHTS.search(csv.read_text()), csv

    pages = sorted(out.rglob("*.md"))
    assert out / "README.md" in pages and base / "README.md" in pages
    for page in pages:
        text = page.read_text()
        named = weight_lines(text)
        assert any("imagenet" in ln.lower() for ln in named), f"{page}: never says the weights were ImageNet's"
        wrong = [ln for ln in text.splitlines() if RANDOM_AS_WEIGHTS.search(ln)]
        assert not wrong, f"{page} says random weights for an ImageNet run: {wrong[:3]}"

    pngs = {p.resolve() for p in [*run_dir.rglob("*.png"), *out.rglob("*.png")]}
    assert {"roc.png", "reconstructions.png", "auroc_by_class.png", "roc_curves.png"} <= {p.name for p in pngs}
    assert pngs <= set(figs.drawn), f"figures not drawn in this test: {sorted(pngs - set(figs.drawn))}"
    for p in pngs:
        titles, texts = figs.drawn[p]
        assert any("imagenet" in t.lower() for t in titles), f"{p}: titles {titles} do not say ImageNet"
        assert not any("random" in t.lower() for t in texts), f"{p}: {[t for t in texts if 'random' in t.lower()]}"


def test_weights_note_names_the_weights_either_way():
    assert "imagenet" in weights_note("imagenet").lower() and "random" not in weights_note("imagenet").lower()
    assert "random" in weights_note("random").lower()


class Stop(Exception):
    pass


@pytest.mark.parametrize("command", [
    ["train", "--dataset", "mnist-sample", "--normal-class", "1"],
    ["reproduce", "mnist", "--dataset", "mnist-sample", "--classes", "1"],
])
def test_paper_profile_on_a_cpu_prints_the_measured_estimate_before_training(hub, tmp_path, monkeypatch, capsys,
                                                                             command):
    """`--profile paper` (600 epochs) is intercepted where training would start (`train`: its first
    epoch, after it timed steps of its own network; `reproduce`: the sweep): by then the estimate
    must be on stdout, from steps timed here."""
    started = {}

    def intercept(*a, **kw):
        started["printed"] = capsys.readouterr().out
        started["args"] = a, kw
        raise Stop

    monkeypatch.setattr(trainer_mod, "_epoch", intercept)  # `train`: the one run's first epoch
    monkeypatch.setattr(cli, "sweep", intercept)  # `reproduce`: the sweep
    with pytest.raises(Stop):
        cli.main([*command, "--profile", "paper", "--device", "cpu", "--out", str(tmp_path / "out")])
    m = re.search(r"estimated time.*?([\d,]+) steps x ([\d.e+-]+) s measured per step.*?(\d+) network run",
                  started["printed"], re.S)
    assert m, started["printed"]
    steps, per_step, runs = int(m[1].replace(",", "")), float(m[2]), int(m[3])
    assert steps % 600 == 0 and steps >= 600 and per_step > 0 and runs == 1  # 600 epochs of the paper profile
    a, kw = started["args"]
    if command[0] == "train":
        assert a[1].weights == "imagenet" and a[1].epochs == 600  # resolved from the cache, not downloaded
    else:
        assert a[4] == "imagenet"
    assert not list((tmp_path / "out").rglob("checkpoint.pt"))
