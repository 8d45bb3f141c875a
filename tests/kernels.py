"""The processor's kernel sets, for `make test-kernels`: which one torch runs by default and which
lower one the numerical tests run on a second time.

torch picks its CPU kernels (ATen's vectorised loops, oneDNN's convolutions) by the instruction
sets the processor has; AVX-512 and AVX2 kernels add in other orders and round differently in the
last bits.  The kit's machines are AMD EPYC with AVX2 or Intel Xeon with AVX-512, so a result that
holds only on one kernel set would pass or fail with the machine CI happens to run on.

`python tests/kernels.py` prints the environment assignments that force the next lower set
(nothing where none is lower), e.g. `ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`.
"""

from __future__ import annotations

import os

# torch's name for a capability -> (the ATEN_CPU_CAPABILITY and ONEDNN_MAX_CPU_ISA values of the set below it)
LOWER = {"AVX512": ("avx2", "AVX2"), "AVX2": ("default", "SSE41")}


def capability() -> str:
    """The kernel set torch runs in this process: AVX512, AVX2, DEFAULT (or an Arm name)."""
    import torch

    return torch.backends.cpu.get_cpu_capability()


def forced() -> str:
    """The kernel set this process was told to run ('' when the environment forces none)."""
    return " ".join(f"{k}={os.environ[k]}" for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA") if os.environ.get(k))


def lower_assignments(cap: str) -> str:
    aten, onednn = LOWER.get(cap, (None, None))
    return f"ATEN_CPU_CAPABILITY={aten} ONEDNN_MAX_CPU_ISA={onednn}" if aten else ""


if __name__ == "__main__":
    print(lower_assignments(capability()))
