"""What this machine offers a run, asked the same way on Linux, macOS and Windows.

Python's views of the machine differ by platform: `os.getloadavg` does not exist on Windows,
`os.sched_getaffinity` only on Linux.  Every question the kit asks about the machine goes through
here, with a fallback where the platform has no answer, so nothing else calls a POSIX-only function.

    load_average()        1-minute load average, or None where the platform has none (Windows)
    usable_cores()        the CPUs this process may run on
    choose_threads(...)   torch's thread count for a notebook or `pyramid-ad check`, and why
    free_disk(path)       bytes free on the disk holding `path`
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch


def load_average() -> float | None:
    """The 1-minute load average (runnable processes, all users), or None where the platform
    has none: Windows Python has no `os.getloadavg`, and some containers refuse it (OSError)."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


def usable_cores() -> int:
    """The CPUs this process may run on: its affinity mask where the platform tells it (Linux,
    also under taskset or a container's cpuset), else every logical CPU."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Threads:
    """torch's thread count as `choose_threads` set it: `n` threads, `cores` usable, the load
    average when known, and `note`, a warning for the reader ("" when all is well)."""

    n: int
    cores: int
    load: float | None
    note: str

    def describe(self) -> str:
        load = "no load average on this platform" if self.load is None else f"load average {self.load:.1f}"
        return f"torch threads: {self.n} ({self.cores} usable CPU cores, {load})"


def choose_threads(requested: int | None = None, environ=None) -> Threads:
    """Set and return torch's thread count for interactive work.

    `requested`, else $PYRAMID_THREADS, is used as given.  Otherwise torch's own choice
    (OMP_NUM_THREADS, else one per core) is kept, capped at the usable cores.  Where the load
    average is known and other work already keeps the cores busy (load + threads > cores), the
    threads are lowered to the cores left free (at least one) and `note` says so: on a shared
    machine two threads ran a training step 4.5 times slower than one (issue 28).  Raises
    ValueError for a thread count below 1."""
    env = os.environ if environ is None else environ
    cores, load = usable_cores(), load_average()
    wanted = requested if requested is not None else (int(env["PYRAMID_THREADS"]) if env.get("PYRAMID_THREADS")
                                                      else None)
    if wanted is not None and wanted < 1:
        raise ValueError(f"torch threads must be >= 1, got {wanted}")
    n = wanted if wanted is not None else min(torch.get_num_threads(), cores)
    note = ""
    if load is not None and load + n > cores + 0.5:  # other work already keeps the cores busy
        free = max(1, cores - round(load))
        note = f"WARNING: the machine is busy (load average {load:.1f} on {cores} cores): "
        if wanted is None and free < n:
            note += (f"using {free} torch thread(s) instead of {n}, since threads that wait for a core slow every "
                     "step down (set PYRAMID_THREADS to choose); ")
            n = free
        note += "runs take longer than on an idle machine while the other work goes on"
    torch.set_num_threads(n)
    return Threads(n, cores, load, note)


def free_disk(path) -> int:
    """Bytes free on the disk that holds `path` (its nearest existing parent)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free
