"""Why a run's score is weak, read from the run's own test images: four numbers and the sentences
they choose (notebook 05 prints them under a run's AUROC).

    measure(x, reconstruction, maps, labels, scores, masks)   the numbers (Evidence)
    Evidence.explain(case)                                     the sentences they choose
    training_gap(steps, n_train, weights, epochs, batch)       this run's optimiser steps beside the paper's

The numbers are what the figures of a weak run show (the four are the signs seen on MVTec
`capsule`, where the method is near chance):

* `variation_kept`: how alike the reconstructions of different inputs are.  The per-pixel s.d.
  across the test images, averaged over pixels and channels, of the reconstructions divided by
  that of the inputs: 1 when the reconstructions differ from each other as much as the inputs
  do, 0 when every input is rebuilt as the same template image.
* `error_in_top`: where the error of the good test images concentrates.  The share of their mean
  error map (the per-pixel loss) that falls in the TOP (5%) of pixel positions where it is
  highest: 0.05 when the error is spread evenly, near 1 when a few fixed places (a print, a logo,
  an edge) hold all of it.
* `defect_share`: the median share of an image's pixels that a defect's ground-truth mask covers
  (None when the data has no masks): a score averaged over the whole image barely moves for a
  defect of a few pixels.
* `overlap`: the share of defective test images that score no higher than the highest-scored good
  one, i.e. that no threshold catches without a false alarm (1 - TPR at TNR = 1).

The rules (the constants below) were fixed before any run was judged by them; the sentence names
the number and the rule.  Reads nothing and writes nothing: tensors in, numbers and text out.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

TOP = 0.05  # the share of pixel positions whose share of the good images' error is measured
TEMPLATE_BELOW = 0.5  # variation_kept under this: the reconstructions are nearly one template
CONCENTRATED_ABOVE = 0.25  # error_in_top over this (5x an even spread): a few fixed places hold the error
TINY_BELOW = 0.02  # defect_share under this: most defects cover under 2% of the pixels
OVERLAP_ABOVE = 0.5  # overlap over this: most defective images score inside the good images' range
# the mime type under which a notebook leaves the numbers in its outputs (shown as nothing), so that
# a test can check that the printed explanation is the one they choose
EVIDENCE_MIME = "application/vnd.pyramid-ad.evidence+json"


@dataclass(frozen=True)
class Evidence:
    """The four numbers of `measure` (module docstring), and the sentences they choose."""

    variation_kept: float
    error_in_top: float
    defect_share: float | None
    overlap: float
    pixels: int  # pixels per image (S x S)

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        """The numbers, one printed line each, with what they mean."""
        share = ("no masks in this data" if self.defect_share is None else
                 f"{self.defect_share:.2%} (median; {self.defect_share * self.pixels:,.0f} of {self.pixels:,} pixels)")
        return [f"variation kept across images (reconstructions / inputs): {self.variation_kept:.3f}  "
                "(1: as different from each other as the inputs; 0: one template)",
                f"share of the good images' error in the top {TOP:.0%} of positions: {self.error_in_top:.3f}  "
                f"({TOP:.2f}: spread evenly; near 1: a few fixed places)",
                f"share of the pixels a defect covers: {share}",
                f"defective images scoring no higher than the highest good one: {self.overlap:.3f}"]

    def reasons(self) -> list[str]:
        """The signs present, in this order: template, concentrated, tiny, overlap."""
        found = []
        if self.variation_kept < TEMPLATE_BELOW:
            found.append("template")
        if self.error_in_top > CONCENTRATED_ABOVE:
            found.append("concentrated")
        if self.defect_share is not None and self.defect_share < TINY_BELOW:
            found.append("tiny")
        if self.overlap > OVERLAP_ABOVE:
            found.append("overlap")
        return found

    def sentences(self) -> list[str]:
        """One sentence per sign present (`reasons`), each with its number and rule."""
        said = []
        for r in self.reasons():
            if r == "template":
                said.append(f"the reconstructions of different inputs are nearly alike: they keep "
                            f"{self.variation_kept:.0%} of the inputs' variation across images (under "
                            f"{TEMPLATE_BELOW:.0%}), so every input is rebuilt as about the same template and the "
                            "error map shows how each input differs from that template, defect or not")
            elif r == "concentrated":
                said.append(f"the error of the good images concentrates on a few fixed places: the top {TOP:.0%} "
                            f"of pixel positions hold {self.error_in_top:.0%} of it (over {CONCENTRATED_ABOVE:.0%}), "
                            "so what is printed or drawn there raises good images' scores as much as a defect does")
            elif r == "tiny":
                said.append(f"most defects are small: the median defect covers {self.defect_share:.2%} of the "
                            f"pixels (under {TINY_BELOW:.0%}), so a score summed over the whole image barely moves "
                            "when one is there")
            else:
                said.append(f"{self.overlap:.0%} of the defective images score no higher than the highest-scored "
                            f"good one (over {OVERLAP_ABOVE:.0%}): no threshold catches most of them without a "
                            "false alarm")
        return said

    def explain(self, case: str) -> str:
        """The block a notebook prints under a run's verdict (`tutorial.verdict`'s case): for "chance",
        "inverted" and "weak", a heading and one line per sign present (or a line saying none is);
        for "works" and "stand-in", the empty string (there is no failure to explain)."""
        heading = {"chance": "WHY IT IS NEAR CHANCE HERE", "inverted": "WHY IT IS BELOW CHANCE HERE",
                   "weak": "WHY IT IS WEAK HERE"}.get(case)
        if heading is None:
            return ""
        said = self.sentences()
        if not said:
            said = [f"none of the four signs above passes its rule (template under {TEMPLATE_BELOW:.0%}, "
                    f"error in the top {TOP:.0%} over {CONCENTRATED_ABOVE:.0%}, defects under {TINY_BELOW:.0%}, "
                    f"overlap over {OVERLAP_ABOVE:.0%}): these numbers do not say why; the differences from the "
                    "paper's training (below) are what is left"]
        return f"{heading} (chosen from the numbers above):\n" + "\n".join(f"  - {s}" for s in said)


def _spread(t: torch.Tensor) -> float:
    return float(t.double().std(dim=0).mean()) if len(t) > 1 else math.nan


def measure(x: torch.Tensor, reconstruction: torch.Tensor, maps: torch.Tensor, labels, scores,
            masks: torch.Tensor | None = None) -> Evidence:
    """The numbers of the module docstring from a run's scored test images.

    x, reconstruction: N x C x S x S in [0, 1]; maps: N x S x S, the per-pixel error (e.g.
    `Prediction.maps["loss"]`); labels: N (1 = defective); scores: N (higher = more anomalous);
    masks: N x S x S in {0, 1} or None.  Needs two or more good and one or more defective images:
    raises ValueError otherwise, or when the shapes disagree."""
    labels = torch.as_tensor(labels).flatten().bool()
    scores = torch.as_tensor(scores, dtype=torch.float64).flatten()
    n = len(x)
    if not (len(reconstruction) == len(maps) == len(labels) == len(scores) == n) or x.shape != reconstruction.shape:
        raise ValueError(f"measure: {n} inputs, {len(reconstruction)} reconstructions {tuple(reconstruction.shape)}, "
                         f"{len(maps)} maps, {len(labels)} labels, {len(scores)} scores: they must agree")
    good, bad = ~labels, labels
    if int(good.sum()) < 2 or int(bad.sum()) < 1:
        raise ValueError(f"measure needs 2+ good and 1+ defective images, got {int(good.sum())} and {int(bad.sum())}")
    inputs = _spread(x)
    kept = _spread(reconstruction) / inputs if inputs > 0 else math.nan
    mean_map = maps[good].double().mean(dim=0).flatten().clamp_min(0)
    k = max(1, round(TOP * mean_map.numel()))
    total = float(mean_map.sum())
    in_top = float(mean_map.topk(k).values.sum()) / total if total > 0 else math.nan
    share = None
    if masks is not None:
        m = masks[bad].double().flatten(1).mean(dim=1)
        m = m[m > 0]  # a defective image without a marked pixel says nothing about defect size
        share = float(m.median()) if len(m) else None
    overlap = float((scores[bad] <= scores[good].max()).double().mean())
    return Evidence(kept, in_top, share, overlap, int(maps.shape[-1] * maps.shape[-2]))


def training_gap(steps: int, n_train: int, weights: str, paper_epochs: int, paper_batch: int) -> str:
    """One sentence setting this run's optimiser steps and weights beside the paper's: `paper_epochs`
    at `paper_batch` on all `n_train` training images of the category, with ImageNet weights
    (Table I; config.PROFILES["paper"] holds both numbers)."""
    per_epoch = math.ceil(n_train / paper_batch)
    paper = paper_epochs * per_epoch
    w = "ImageNet weights, as the paper" if weights == "imagenet" else f"{weights} weights, the paper ImageNet's"
    return (f"this run took {steps:,} optimiser steps, the paper about {paper:,} ({paper_epochs} epochs of "
            f"{per_epoch} steps on the category's {n_train} training images): {steps / paper:.0%} of them; {w}")
