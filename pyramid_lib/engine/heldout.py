"""The held-out threshold that `score_files` (`pyramid-ad predict`) judges new images against.

The threshold is the 95% quantile of the held-out training normals' `loss` scores (threshold.py,
rule `>`).  `evaluate` computed it once and stored it in metrics.csv; predict computes it again,
from scores of the held-out normals made in the same call, with the same arithmetic as the images
it judges.  Why: a network's score of one image changes in its last bits with the batch it is
scored in and the processor's kernels (AVX2 and AVX-512 round differently, 1e-7 relative), so a
threshold resting on one held-out normal, read from a file written on another processor or from
another batch, can lie a rounding step below that very image's score, which `>` would then call
anomalous.  Rescored in the call, and an input that IS a held-out normal (same pixels) taking its
one score, the comparison holds by construction on every kernel set.

When the held-out normals cannot be read (the data folder moved, a run handed out without its
data, a run without data.json), the threshold recorded in metrics.csv is used and the result says
so (`HeldOutThreshold.source`).
"""

from __future__ import annotations

import math
import shlex
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import torch

from .. import data as data_mod
from ..errors import CheckpointError, DataError, PyramidError
from ..threshold import from_normals
from . import data_record
from .run_dir import RunDir

# |rescored - recorded| / recorded above this is more than kernel rounding explains (the scores of one
# image differ by about 1e-7 relative between batches and AVX2 / AVX-512 kernels): said in a warning
AGREEMENT = 1e-4


@dataclass
class HeldOutThreshold:
    """value: the threshold the verdicts use; recorded: metrics.csv's heldout_threshold; source:
    "rescored" (from `n` held-out normals scored in this call) or "recorded" (metrics.csv, with
    `reason` why the held-out normals were not rescored)."""

    value: float
    recorded: float
    source: str
    n: int = 0
    reason: str = ""

    def describe(self) -> str:
        if self.source == "rescored":
            return f"rescored from the run's {self.n} held-out normals in this call (metrics.csv: {self.recorded:.8g})"
        return f"as recorded in metrics.csv ({self.reason})"


def recorded_threshold(run: RunDir) -> float:
    """The run's held-out threshold on its `loss` score as `evaluate` stored it: metrics.csv's
    `heldout_threshold`.  Raises PyramidError when the run is not evaluated, was evaluated before
    its last training epoch, or holds no held-out normals (trained with --heldout-fraction 0);
    CheckpointError when its metrics.csv was emptied or edited."""
    again = f"run `pyramid-ad evaluate {shlex.quote(str(run.dir))}` first"
    if not run.evaluated:
        raise PyramidError(f"{run.dir}: not evaluated (no metrics.csv), so it has no held-out threshold for the "
                           f"verdict; {again}")
    m = run.read_metrics().iloc[0]
    epochs = len(run.read_state().get("history", []))
    if "epochs" in m and not pd.isna(m["epochs"]) and int(m["epochs"]) != epochs:
        raise PyramidError(f"{run.metrics}: written after epoch {int(m['epochs'])}, but the checkpoint is from "
                           f"epoch {epochs}; {again.replace(' first', ' again')}")
    rewrite = f"it was edited or damaged: {again.replace(' first', ' again')} to rewrite it"
    if "heldout_threshold" not in m:
        raise CheckpointError(f"{run.metrics}: no heldout_threshold column; {rewrite}")
    t = pd.to_numeric(pd.Series([m["heldout_threshold"]]), errors="coerce").iloc[0]
    if pd.isna(t) and not pd.isna(m["heldout_threshold"]):
        raise CheckpointError(f"{run.metrics}: heldout_threshold {m['heldout_threshold']!r} is not a number; "
                              f"{rewrite}")
    if pd.isna(t):
        if data_record.held_out_count(run):
            raise CheckpointError(f"{run.metrics}: heldout_threshold is empty although the run held normals out; "
                                  f"{rewrite}")
        raise PyramidError(f"{run.metrics}: no held-out threshold: the run held no training normals out "
                           "(--heldout-fraction 0); to get one, pyramid-ad train ... --heldout-fraction 0.1")
    if not math.isfinite(float(t)):
        raise CheckpointError(f"{run.metrics}: heldout_threshold is {t}; {rewrite}")
    return float(t)


def held_out_images(run: RunDir, cfg) -> tuple[torch.Tensor | None, str]:
    """The run's held-out normals as uint8 N x C x S x S, as its data.json recorded them (checked
    pixel for pixel), and "" ; or (None, why not) when they cannot be read."""
    try:
        with warnings.catch_warnings():  # train and evaluate said what they had to about this data; predict
            warnings.simplefilter("ignore")  # judges other images, and these ones are checked pixel for pixel
            held = data_record.held_out_normals(run, data_mod.load_for(cfg, download=False))
    except (DataError, OSError) as e:
        return None, f"the held-out normals could not be read: {str(e).splitlines()[0]}"
    if held is None:
        return None, f"the run has no {run.data_record.name} naming its held-out normals"
    return held.images, ""


def rescore(run: RunDir, cfg, scored: dict[str, float], score: Callable[[torch.Tensor], torch.Tensor],
            batch_size: int) -> HeldOutThreshold:
    """The threshold for a predict call.  `scored`: pixel hash (data_record.tensor_hashes) -> `loss`
    score of the images the call scored; a held-out normal among them takes that score.  `score`:
    uint8 B x C x S x S -> B `loss` scores, for the other held-out normals, `batch_size` at a time."""
    recorded = recorded_threshold(run)
    images, why = held_out_images(run, cfg)
    if images is None:
        return HeldOutThreshold(recorded, recorded, "recorded", reason=why)
    hashes = data_record.tensor_hashes(images)
    todo = [i for i, h in enumerate(hashes) if h not in scored]
    own: dict[int, float] = {}
    for start in range(0, len(todo), batch_size):
        idx = todo[start:start + batch_size]
        for i, s in zip(idx, score(images[idx]).tolist()):
            own[i] = float(s)
    values = [scored[h] if h in scored else own[i] for i, h in enumerate(hashes)]
    t = from_normals(values)
    if abs(t - recorded) > AGREEMENT * max(abs(recorded), 1e-12):
        warnings.warn(f"{run.dir}: the held-out threshold rescored now ({t:.8g}) differs from the one evaluate "
                      f"recorded ({recorded:.8g}) by more than kernel rounding explains: the checkpoint changed since "
                      "`pyramid-ad evaluate`, or it was evaluated on another device or precision; evaluate it again",
                      stacklevel=3)
    return HeldOutThreshold(t, recorded, "rescored", n=len(values))
