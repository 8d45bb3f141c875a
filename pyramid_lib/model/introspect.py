"""Looking inside the network: its named blocks in data-flow order (`stages`), a shape trace of one
batch through them (`shape_trace`: stage, output shape C x H x W, parameters), and parameter counts.

Shapes use S for the input side and h = ceil(S / 32) for the ResNet18 map side (h = 1 at 28x28,
h = 4 at 120x120); the blocks are those of network.py (paper Fig. 2, Tables V and VI).
"""

from __future__ import annotations

import torch
from torch import nn

from .network import UPSAMPLE_CHANNELS, PyramidalAutoencoder


def stages(model: PyramidalAutoencoder) -> list[tuple[str, nn.Module]]:
    """The named blocks of the network in the order data flows through them."""
    b = model.backbone
    named = [("backbone.stem", b.stem), ("backbone.layer1", b.layer1), ("backbone.layer2", b.layer2),
             ("backbone.layer3", b.layer3), ("backbone.layer4", b.layer4)]
    for i, (branch, enc) in enumerate(zip(model.pyramid, model.encoders)):
        named += [(f"pyramid[{i}]", branch), (f"encoder[{i}]", enc)]
    named.append(("upsample (shared)", model.upsample))
    named += [(f"decoder.stage{i + 1}", stage) for i, stage in enumerate(model.decoder.net)]
    return named


@torch.no_grad()
def shape_trace(model: PyramidalAutoencoder, batch: int = 2) -> list[dict]:
    """Run one batch through the network and record (stage, output shape, parameters) per block.

    The shared up-sampler is listed once per call (it runs once per encoder); its parameters are
    counted on its first row only.  Returns rows a notebook can turn into a pandas DataFrame.
    """
    rows, seen, hooks = [], set(), []
    for name, module in stages(model):
        def hook(mod, inp, out, name=name):
            params = 0 if id(mod) in seen else sum(p.numel() for p in mod.parameters())
            seen.add(id(mod))
            rows.append({"stage": name, "output shape": tuple(out.shape[1:]), "parameters": params})
            if name == "upsample (shared)" and sum(r["stage"] == name for r in rows) == model.config.encoders:
                c = 512 + UPSAMPLE_CHANNELS * model.config.encoders
                rows.append({"stage": "concat (ResNet map + up-sampled)", "output shape": (c, *out.shape[2:]),
                             "parameters": 0})
        hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    try:
        model.eval()
        size = model.config.input_size
        model(torch.zeros(batch, 3, size, size, device=next(model.parameters()).device))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return rows


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
