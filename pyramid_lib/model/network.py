"""The paper's network: ResNet18 front, pyramid pooling, N encoders to R^8, one shared
up-sampler, concatenation with the ResNet map, transposed-conv decoder.

Mishra, Piciarelli, Foresti, "Image Anomaly Detection by aggregating deep pyramidal
representations", ICPR 2020 (Fig. 2, Tables V and VI).  Where the paper's text does not add up,
the choices made here are listed in the README's "Deviations" section.

Shapes below use S for the input size and h = ceil(S / 32) for the ResNet18 map size
(h = 1 for 28x28 inputs, h = 4 for 120x120 inputs)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import nn
from torchvision.models import resnet18

# Channel divisors of the pyramid branches, one per encoder.  The paper gives 1, 2, 3, 6 for its
# four encoders; for the ablation (1, 2, 6 encoders) the kit takes the first ones and, for six,
# extends the series with 4 and 8 (a choice of ours: the paper does not say).
PYRAMID_DIVISORS: dict[int, tuple[int, ...]] = {
    1: (1,),
    2: (1, 2),
    4: (1, 2, 3, 6),
    6: (1, 2, 3, 4, 6, 8),
}


PYRAMID_MODES = ("paper", "spatial")


LATENT_DIM = 8  # "a feature vector in R^8"


UPSAMPLE_CHANNELS = 128  # 512 * mf^2 = 128 * h^2 features per branch, reshaped to 128 x h x h


DECODER_CHANNELS = (16, 32, 32, 32)  # widths of Table VI (the MVTec column's 16 -> 32 -> 32)


IMAGENET_MEAN = (0.485, 0.456, 0.406)


IMAGENET_STD = (0.229, 0.224, 0.225)


MIN_INPUT_SIZE = 28


def feature_size(input_size: int) -> int:
    """Side of ResNet18's layer4 map for a square input: five stride-2 stages, each ceil(s / 2)."""
    return math.ceil(input_size / 32)


def backbone_sizes(input_size: int) -> list[int]:
    """Map sides after the input and after each stride-2 stage of ResNet18: [S, S/2, ..., S/32]."""
    sizes = [input_size]
    for _ in range(5):
        sizes.append(math.ceil(sizes[-1] / 2))
    return sizes


class Backbone(nn.Module):
    """ResNet18 up to layer4 ("only the first four layers"): B x 3 x S x S -> B x 512 x h x h."""

    def __init__(self, weights=None):
        super().__init__()
        net = resnet18(weights=weights)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)  # S -> S/4
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4

    def forward(self, x):  # x in [0, 1]
        x = (x - self.mean) / self.std  # the normalisation the ImageNet weights expect
        x = self.stem(x)  # 64 x S/4
        x = self.layer1(x)  # 64 x S/4
        x = self.layer2(x)  # 128 x S/8
        x = self.layer3(x)  # 256 x S/16
        return self.layer4(x)  # 512 x S/32


class PyramidBranch(nn.Module):
    """Average-pool to `bins` x `bins` (1 in the paper), 1x1 conv to 512 // divisor channels, BN, ReLU."""

    def __init__(self, divisor: int, bins: int = 1, in_channels: int = 512):
        super().__init__()
        self.out_channels = in_channels // divisor
        self.pool = nn.AdaptiveAvgPool2d(bins)
        self.reduce = nn.Sequential(
            nn.Conv2d(in_channels, self.out_channels, 1, bias=False),
            nn.BatchNorm2d(self.out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, f):  # 512 x h x h -> (512 // divisor) x bins x bins
        return self.reduce(self.pool(f))


class Encoder(nn.Module):
    """Table V: conv3x3 -> 16, BN, ReLU; conv3x3 -> 8, BN, ReLU; conv1x1 8 -> 8; a vector in R^8."""

    def __init__(self, in_channels: int, latent_dim: int = LATENT_DIM):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
            nn.Conv2d(16, latent_dim, 3, padding=1, bias=False),
            nn.BatchNorm2d(latent_dim),
            nn.ReLU(inplace=True),
            nn.Conv2d(latent_dim, latent_dim, 1),
        )

    def forward(self, p):  # C x b x b -> 8 (global mean; a no-op for the paper's 1x1 bins)
        return self.net(p).mean(dim=(2, 3))


class UpSampler(nn.Module):
    """Table V: Linear 8 -> 128, BN, ReLU; Linear 128 -> 512 * mf^2 (= 128 h^2), ReLU. Shared."""

    def __init__(self, h: int, latent_dim: int = LATENT_DIM, channels: int = UPSAMPLE_CHANNELS):
        super().__init__()
        self.h, self.channels = h, channels
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 128, bias=False),
            nn.BatchNorm1d(128),
            nn.ReLU(inplace=True),
            nn.Linear(128, channels * h * h),
            nn.ReLU(inplace=True),
        )

    def forward(self, z):  # B x 8 -> B x 128 x h x h
        return self.net(z).view(-1, self.channels, self.h, self.h)


class Decoder(nn.Module):
    """Transposed convs from h x h back to exactly S x S, BN + ReLU between, Sigmoid at the end.

    One stride-2 stage per stride-2 stage of ResNet18, each undoing a ceil(s / 2): a 3x3 kernel
    with padding 1 maps a -> 2a - 1 + output_padding, and output_padding (0 or 1) is chosen so that
    the sizes retrace the backbone's in reverse.  The output has the input's size by construction.
    """

    def __init__(self, in_channels: int, input_size: int, channels=DECODER_CHANNELS, out_channels: int = 3):
        super().__init__()
        sizes = backbone_sizes(input_size)[::-1]  # [h, ..., S/2, S]
        widths = [in_channels, *channels, out_channels]
        assert len(widths) == len(sizes), "one decoder width per ResNet18 stride-2 stage"
        stages = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            deconv = nn.ConvTranspose2d(widths[i], widths[i + 1], 3, stride=2, padding=1,
                                        output_padding=b - (2 * a - 1))  # a x a -> b x b
            last = i == len(sizes) - 2
            after = [nn.Sigmoid()] if last else [nn.BatchNorm2d(widths[i + 1]), nn.ReLU(inplace=True)]
            stages.append(nn.Sequential(deconv, *after))
        self.net = nn.Sequential(*stages)
        self.sizes = sizes

    def forward(self, y):  # (512 + 128 N) x h x h -> 3 x S x S
        return self.net(y)


# The choices of the two shape settings, as types (TrainConfig's fields use them, the command
# line lists them): the keys of PYRAMID_DIVISORS and PYRAMID_MODES.
Encoders = Literal[1, 2, 4, 6]


Pyramid = Literal["paper", "spatial"]


def shape_error(input_size, encoders, pyramid) -> tuple[str, str] | None:
    """The first of the three shape settings that cannot make a network, as (field name, what is
    wrong), or None when all three can.  The one check behind both ModelConfig (ValueError) and
    TrainConfig.validate (ConfigError naming the command-line flag)."""
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < MIN_INPUT_SIZE:
        return "input_size", f"must be an integer of at least {MIN_INPUT_SIZE}, got {input_size!r}"
    if encoders not in get_args(Encoders):
        return "encoders", f"must be one of {', '.join(map(str, get_args(Encoders)))}, got {encoders!r}"
    if pyramid not in get_args(Pyramid):
        return "pyramid", f"must be one of {', '.join(get_args(Pyramid))}, got {pyramid!r}"
    return None


@dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes the network's shape (and so which checkpoints fit it).

    input_size: image side S in pixels (at least 28); encoders: number of pyramid encoders N;
    pyramid: "paper" (1x1 pooling, channel divisors) or "spatial" (PSPNet bins).  A run's
    ModelConfig is `TrainConfig.model`.  Raises ValueError naming the field that cannot make a
    network (`shape_error`)."""

    input_size: int = 28
    encoders: Encoders = 4
    pyramid: Pyramid = "paper"

    def __post_init__(self):
        problem = shape_error(self.input_size, self.encoders, self.pyramid)
        if problem:
            raise ValueError(f"{problem[0]} {problem[1]}")


class PyramidalAutoencoder(nn.Module):
    """The whole network (Fig. 2).  Takes and returns B x 3 x S x S images in [0, 1].

    pyramid="paper": every branch pools to 1x1 and reduces the channels by 1, 2, 3, 6 (the text);
    pyramid="spatial": branch k pools to k x k bins as in PSPNet (an option, not the paper).
    `backbone_weights` is a torchvision weights enum (ImageNet) or None for random weights.
    """

    def __init__(self, input_size: int = 28, encoders: int = 4, pyramid: str = "paper", backbone_weights=None):
        super().__init__()
        self.config = ModelConfig(input_size, encoders, pyramid)
        h = feature_size(input_size)
        divisors = PYRAMID_DIVISORS[encoders]
        self.backbone = Backbone(backbone_weights)
        self.pyramid = nn.ModuleList(PyramidBranch(k, bins=k if pyramid == "spatial" else 1) for k in divisors)
        self.encoders = nn.ModuleList(Encoder(branch.out_channels) for branch in self.pyramid)
        self.upsample = UpSampler(h)
        self.decoder = Decoder(512 + UPSAMPLE_CHANNELS * encoders, input_size)
        init_orthogonal(self, skip=self.backbone if backbone_weights is not None else None)

    def encode(self, x):  # B x 3 x S x S -> ResNet map B x 512 x h x h, N latents B x 8
        f = self.backbone(x)
        return f, [enc(branch(f)) for branch, enc in zip(self.pyramid, self.encoders)]

    def forward(self, x):  # B x 3 x S x S
        f, z = self.encode(x)  # B x 512 x h x h, N x (B x 8)
        u = [self.upsample(zi) for zi in z]  # N x (B x 128 x h x h), shared weights
        y = torch.cat([f, *u], dim=1)  # B x (512 + 128 N) x h x h
        out = self.decoder(y)  # B x 3 x S x S
        assert out.shape[-2:] == x.shape[-2:], f"decoder gave {tuple(out.shape)} for input {tuple(x.shape)}"
        return out


def init_orthogonal(model: nn.Module, skip: nn.Module | None = None) -> None:
    """Orthogonal weights, zero biases, for every conv and linear layer outside `skip`."""
    skipped = set(skip.modules()) if skip is not None else set()
    for m in model.modules():
        if m in skipped:
            continue
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.orthogonal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
