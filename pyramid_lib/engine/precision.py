"""Mixed precision as a recorded setting: the arithmetic a run trains in.

`TrainConfig.precision` is `fp32` (every committed result so far), `bf16` (forward pass and loss
under `torch.autocast` with bfloat16; weights, optimiser and scoring stay fp32) or `auto`: bf16
where a short measurement on this device, in this process, shows it faster, else fp32.  The
choice is never made from CPU flags: on one AMD EPYC with AVX512-BF16 a 120x120 training step
ran 1.94x faster in bf16, on an Intel Xeon reporting the same flag 0.83x (slower).
`resolve` settles `auto` before training starts; config.json records the precision used (fp32 or
bf16), and run.json the measurement that chose it.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import statistics
import time
from dataclasses import replace

import torch

from ..config import TrainConfig
from ..model.loss import named_terms

log = logging.getLogger(__name__)

FASTER = 0.9  # bf16 is chosen when its step takes under this fraction of fp32's


def autocast(precision: str, device) -> contextlib.AbstractContextManager:
    """The context a training step runs its forward pass and loss in: bf16 autocast on the
    device's type for "bf16", nothing for "fp32".  Raises ValueError for "auto" (resolve it first)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    raise ValueError(f"precision {precision!r}: resolve 'auto' with engine.precision.resolve before training")


def step_seconds(model, loss_fn, x: torch.Tensor, precision: str, repeats: int = 3) -> float:
    """Median seconds of one forward + backward pass (no optimiser update) on batch x
    (B x 3 x S x S) in `precision`, after one untimed pass.  Works on copies: `model` and
    `loss_fn` are not changed."""
    model, loss_fn = copy.deepcopy(model).train(), copy.deepcopy(loss_fn)
    times = []
    for i in range(repeats + 1):
        if x.is_cuda:
            torch.cuda.synchronize(x.device)
        t0 = time.perf_counter()
        with autocast(precision, x.device):
            terms = loss_fn(model(x), x)
        named_terms(terms)["loss"].mean().backward()
        if x.is_cuda:
            torch.cuda.synchronize(x.device)
        if i:
            times.append(time.perf_counter() - t0)
        model.zero_grad(set_to_none=True)
    return statistics.median(times)


def measure(model, loss_fn, x: torch.Tensor, repeats: int = 3) -> dict:
    """fp32 and bf16 step times on batch x, measured alternately in this process, and the choice:
    {"fp32_s", "bf16_s", "ratio" (bf16 / fp32), "chosen"}.  bf16 is chosen when it is supported
    here and ratio < FASTER."""
    fp32, bf16 = [], []
    try:
        for _ in range(2):  # alternate, so that load from other processes hits both alike
            fp32.append(step_seconds(model, loss_fn, x, "fp32", repeats))
            bf16.append(step_seconds(model, loss_fn, x, "bf16", repeats))
    except RuntimeError as e:  # bf16 not supported by this device or build
        log.warning("precision auto: bf16 does not run here (%s); training in fp32", str(e).splitlines()[0][:200])
        return {"fp32_s": min(fp32) if fp32 else None, "bf16_s": None, "ratio": None, "chosen": "fp32"}
    f, b = min(fp32), min(bf16)
    return {"fp32_s": round(f, 4), "bf16_s": round(b, 4), "ratio": round(b / f, 3),
            "chosen": "bf16" if b / f < FASTER else "fp32"}


def resolve(cfg: TrainConfig, model, loss_fn, x: torch.Tensor) -> tuple[TrainConfig, dict | None]:
    """(the config with precision fp32 or bf16, the measurement that chose it or None).

    `auto` is measured on batch x (B x 3 x S x S, on the training device) with the run's network
    and loss; an explicit fp32 or bf16 is returned as it is."""
    if cfg.precision != "auto":
        return cfg, None
    m = measure(model, loss_fn, x)
    log.info("precision auto: one step %s s in fp32, %s s in bf16 (ratio %s): training in %s",
             m["fp32_s"], m["bf16_s"], m["ratio"], m["chosen"])
    return replace(cfg, precision=m["chosen"]), m
