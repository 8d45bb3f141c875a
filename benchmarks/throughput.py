"""Training and scoring throughput: the library's default path against a plain reference.

    python benchmarks/throughput.py            # 28x28 and 120x120, batch 120 (a few minutes)
    python benchmarks/throughput.py --quick    # smoke test: 28x28, batch 2, 1 thread (seconds)
    python benchmarks/throughput.py --sizes 28 --threads 1 --json out.json
    python benchmarks/throughput.py --precision  # plain fp32 / fast / bf16 / bf16+fast training steps

In one process and one run, for each input size:

(a) reference  benchmarks/reference.py: plain eager fp32 network (NCHW), F(x) recomputed every
               step, foreach Adam, DataLoader over PIL images -> ToTensor -> 3 channels;
               scoring under no_grad in batches of 120.
(b) library    pyramid_lib's default path: `engine.build.build` (applies `fast.optimize`),
               `fast.adam`, in-memory uint8 batches, perceptual targets cached once
               (`trainer.perceptual_targets`), the step of `trainer.train`'s inner loop;
               scoring with `score_images` (inference_mode, batches of SCORE_BATCH).

Both start from the same seeded weights.  Timed rounds alternate (a) and (b) (and which goes
first) so that load from other processes hits both alike; the table gives medians over rounds.
The first step / batch of each path is not timed: it runs under FlopCounterMode and the
profiler's memory tracking instead (FLOPs per image; peak tensor memory = tensors alive before
it + the most it allocated at once, Adam's state included).  The matmul row is the machine's
fp32 ceiling (a large square matmul, median of several).  Images are synthetic uint8
(throughput does not depend on content): an MNIST-sized class (5,000 grey 28x28 training
images, a 10,000-image test split) and an MVTec-sized category (300 RGB 120x120 images).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import reference  # benchmarks/reference.py, beside this script
from pyramid_lib import data as data_mod
from pyramid_lib.config import TrainConfig
from pyramid_lib.engine.build import build, fast_path, pick_device, training_optimizer
from pyramid_lib.engine.evaluate import SCORE_BATCH, score_images
from pyramid_lib.engine.trainer import (
    batches,
    epoch_order,
    perceptual_targets,
    step,
    train,
)

COLUMNS = ("size", "path", "train img/s", "score img/s", "train GFLOP/img", "score GFLOP/img",
           "train GFLOP/s", "score GFLOP/s", "train peak MB", "score peak MB")
PAPER_EPOCHS, MNIST_NORMALS, MNIST_TEST = 600, 6000, 10_000  # Table I; ~6,000 normals per MNIST digit


def settings(quick: bool, size: int, batch: int | None) -> dict:
    if quick:
        return dict(batch=batch or 2, fit=4, test=4, rounds=1, steps=1, chunks=1)
    if size <= 32:
        return dict(batch=batch or 120, fit=5000, test=10_000, rounds=5, steps=2, chunks=5)
    return dict(batch=batch or 120, fit=300, test=480, rounds=2, steps=1, chunks=2)


# ----------------------------------------------------------------------------- measuring

def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(n: int, device, repeats: int = 5) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    ts = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        a @ b
        sync(device)
        ts.append(time.perf_counter() - t0)
    return 2 * n ** 3 / statistics.median(ts) / 1e9


def tensor_bytes(*things) -> int:
    """Bytes of every distinct tensor storage in modules, optimisers, tensors, arrays."""
    seen, total = set(), 0

    def add(t):
        nonlocal total
        if torch.is_tensor(t):
            st = t.untyped_storage()
            if st.data_ptr() not in seen:
                seen.add(st.data_ptr())
                total += st.nbytes()
        elif hasattr(t, "nbytes"):  # numpy
            total += int(t.nbytes)

    for x in things:
        if isinstance(x, torch.nn.Module):
            for t in list(x.parameters()) + list(x.buffers()):
                add(t)
                add(t.grad)
        elif isinstance(x, torch.optim.Optimizer):
            for st in x.state.values():
                for v in st.values():
                    add(v)
        elif isinstance(x, (list, tuple)):
            for t in x:
                add(t)
        elif x is not None:
            add(x)
    return total


def measured(fn, device, resident: int) -> tuple[float, float]:
    """Run fn once under FlopCounterMode and memory tracking: (FLOPs, peak tensor bytes)."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        with FlopCounterMode(display=False) as fc:
            fn()
        sync(device)
        return fc.get_total_flops(), float(torch.cuda.max_memory_allocated(device))
    with FlopCounterMode(display=False) as fc, profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = []

    def walk(node):
        if node.tag == _EventType.Allocation:
            events.append((node.start_time_ns, node.extra_fields.alloc_size))
        for c in node.children:
            walk(c)

    for root in prof.profiler.kineto_results.experimental_event_tree():
        walk(root)
    cur = peak = 0
    for _, n in sorted(events):
        cur += n
        peak = max(peak, cur)
    return fc.get_total_flops(), float(resident + peak)


def timed(fn, device) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------- the two paths

class Reference:
    name = "reference"

    def __init__(self, size, fit_u8, device, batch):
        self.device, self.batch = device, batch
        self.model, self.loss, self.opt = reference.build(size)
        self.model.to(device), self.loss.to(device)
        self.dl = reference.loader(fit_u8, batch, shuffle=True)
        self.it = iter(self.dl)

    def resident(self):
        return tensor_bytes(self.model, self.loss, self.opt, self.dl.dataset.arrays)

    def step(self):
        try:
            x, _ = next(self.it)
        except StopIteration:
            self.it = iter(self.dl)
            x, _ = next(self.it)
        reference.train_step(self.model, self.loss, self.opt, x.to(self.device))

    def score(self, test_u8):
        self.model.eval()
        with torch.no_grad():
            for x, _ in reference.loader(test_u8, reference.BATCH, shuffle=False):
                reference.score_batch(self.model, self.loss, x.to(self.device))


class Library:
    name = "library"

    def __init__(self, size, fit_u8, device, batch):
        self.device, self.batch = device, batch
        self.cfg = TrainConfig(dataset="folder", input_size=size, batch_size=batch, weights="random")
        self.model, self.loss = fast_path(self.cfg, *build(self.cfg, device))
        self.opt = training_optimizer(self.cfg, self.model)
        n = len(fit_u8)
        self.fit = data_mod.ImageSet(fit_u8, torch.zeros(n, dtype=torch.long), ["good"] * n, [str(i) for i in range(n)])
        t0 = time.perf_counter()
        self.targets = perceptual_targets(self.loss, self.fit, device)
        sync(device)
        self.setup_s = time.perf_counter() - t0
        self.epoch, self.queue = 0, []

    def resident(self):
        return tensor_bytes(self.model, self.loss, self.opt, self.targets, self.fit.images)

    def step(self):
        """One step of engine.trainer.train's inner loop (same calls, same order)."""
        if not self.queue:
            self.queue = list(batches(epoch_order(len(self.fit), self.cfg.seed, self.epoch), self.batch))
            self.epoch += 1
        idx = self.queue.pop(0)
        self.model.train()
        x = self.fit.batch(idx, self.device)
        loss, terms = step(self.model, self.loss, self.opt, x,
                           None if self.targets is None else self.targets[idx.to(self.device)])
        if not torch.isfinite(loss):
            raise RuntimeError("non-finite loss")
        [t.sum().double().cpu() for t in terms.values()]

    def score(self, test_u8):
        n = len(test_u8)
        images = data_mod.ImageSet(test_u8, torch.zeros(n, dtype=torch.long), ["x"] * n, [str(i) for i in range(n)])
        score_images(self.model, self.loss, images, device=self.device, progress=False)


class Variant(Library):
    """The library's training step with the exact speed-ups of model/fast.py on or off and the
    step run in fp32 or under bf16 autocast (`--precision`)."""

    def __init__(self, size, fit_u8, device, batch, use_fast: bool, bf16: bool):
        self.name = ("bf16" if bf16 else "fp32") + (" + fast" if use_fast else " plain")
        self.device, self.batch, self.bf16 = device, batch, bf16
        self.cfg = TrainConfig(dataset="folder", input_size=size, batch_size=batch, weights="random", fast=use_fast)
        self.model, self.loss = fast_path(self.cfg, *build(self.cfg, device))
        self.opt = training_optimizer(self.cfg, self.model)
        n = len(fit_u8)
        self.fit = data_mod.ImageSet(fit_u8, torch.zeros(n, dtype=torch.long), ["good"] * n, [str(i) for i in range(n)])
        self.targets = perceptual_targets(self.loss, self.fit, device)
        self.epoch, self.queue = 0, []

    def step(self):
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            super().step()


def bench_precision(size, device, opts, log) -> list[dict]:
    """Training images/s of the four variants in one process, timed rounds alternating in a
    rotating order after one untimed warm-up step each; ratios against plain fp32."""
    s = settings(opts.quick, size, opts.batch)
    if size > 32 and not opts.quick:
        s.update(fit=max(s["fit"], 4 * s["batch"]))
    s["rounds"] = opts.rounds or s["rounds"]
    g = torch.Generator().manual_seed(size)
    fit_u8 = torch.randint(0, 256, (s["fit"], 1 if size <= 32 else 3, size, size), dtype=torch.uint8, generator=g)
    paths = [Variant(size, fit_u8, device, s["batch"], use_fast, bf16)
             for bf16 in (False, True) for use_fast in (False, True)]
    for p in paths:
        p.step()
    times = {p.name: [] for p in paths}
    for r in range(s["rounds"]):
        for p in paths[r % 4:] + paths[:r % 4]:
            times[p.name].append(timed(lambda p=p: [p.step() for _ in range(s["steps"])], device) / s["steps"])
        log(f"  [{size}x{size}] round {r + 1}/{s['rounds']}: " + ", ".join(
            f"{k} {s['batch'] / v[-1]:.1f}" for k, v in times.items()))
    base = s["batch"] / statistics.median(times[paths[0].name])
    return [{"size": f"{size}x{size}", "path": name, "batch": str(s["batch"]),
             "train img/s": s["batch"] / statistics.median(t), "x fp32 plain": s["batch"] / statistics.median(t) / base}
            for name, t in times.items()]


def library_epoch_rate(size, fit_u8, test_u8, device, batch) -> float:
    """images/s that engine.trainer.train itself records for one epoch (run.json history)."""
    n = len(fit_u8)
    one = data_mod.ImageSet(fit_u8, torch.zeros(n, dtype=torch.long), ["good"] * n, [str(i) for i in range(n)])
    m = len(test_u8)
    tst = data_mod.ImageSet(test_u8, (torch.arange(m) % 2), ["x"] * m, [str(i) for i in range(m)])
    d = data_mod.OneClassData("folder", "good", one, tst, size, ("good", "x"))
    cfg = TrainConfig(dataset="folder", input_size=size, batch_size=batch, weights="random", epochs=1,
                            heldout_fraction=0.0)
    with tempfile.TemporaryDirectory() as tmp:
        run = train(cfg, Path(tmp) / "run", device=device, progress=False, data=d)
        return float(run.read_state()["history"][-1]["images_per_s"])


def bench_size(size, device, opts, log) -> list[dict]:
    s = settings(opts.quick, size, opts.batch)
    g = torch.Generator().manual_seed(size)
    channels = 1 if size <= 32 else 3
    fit_u8 = torch.randint(0, 256, (s["fit"], channels, size, size), dtype=torch.uint8, generator=g)
    test_u8 = torch.randint(0, 256, (s["test"], channels, size, size), dtype=torch.uint8, generator=g)
    paths = [Reference(size, fit_u8, device, s["batch"]), Library(size, fit_u8, device, s["batch"])]
    log(f"[{size}x{size}] batch {s['batch']}, {s['fit']} training images, {s['test']} test images; "
        f"library setup (perceptual targets cached): {paths[1].setup_s:.1f} s")
    rows = {p.name: {"size": f"{size}x{size}", "path": p.name} for p in paths}

    # first training step of each path: FLOPs and memory (also the warm-up), not timed
    for p in paths:
        flops, peak = measured(p.step, device, p.resident())
        rows[p.name].update({"train GFLOP/img": flops / s["batch"] / 1e9, "train peak MB": peak / 2**20})
    times = {p.name: [] for p in paths}
    for r in range(s["rounds"]):
        for p in (paths if r % 2 == 0 else paths[::-1]):
            times[p.name].append(timed(lambda p=p: [p.step() for _ in range(s["steps"])], device) / s["steps"])
        log(f"  train round {r + 1}/{s['rounds']}: " + ", ".join(f"{k} {s['batch'] / v[-1]:.1f} img/s"
                                                               for k, v in times.items()))
    for p in paths:
        rows[p.name]["train img/s"] = s["batch"] / statistics.median(times[p.name])

    # scoring: a first batch measured, then the whole test split in chunks, alternating
    first = {"reference": test_u8[:reference.BATCH], "library": test_u8[:SCORE_BATCH]}
    for p in paths:
        imgs = first[p.name]
        flops, peak = measured(lambda p=p, imgs=imgs: p.score(imgs), device, p.resident())
        rows[p.name].update({"score GFLOP/img": flops / len(imgs) / 1e9, "score peak MB": peak / 2**20})
    chunks = torch.tensor_split(test_u8, s["chunks"])
    spent = {p.name: [] for p in paths}
    for r, chunk in enumerate(chunks):
        for p in (paths if r % 2 == 0 else paths[::-1]):
            spent[p.name].append(timed(lambda p=p, chunk=chunk: p.score(chunk), device) / len(chunk))
        log(f"  score chunk {r + 1}/{len(chunks)}: " + ", ".join(f"{k} {1 / v[-1]:.1f} img/s"
                                                                 for k, v in spent.items()))
    for p in paths:
        rows[p.name]["score img/s"] = 1 / statistics.median(spent[p.name])
        rows[p.name]["score whole split s"] = sum(t * len(c) for t, c in zip(spent[p.name], chunks))
    for row in rows.values():
        row["train GFLOP/s"] = row["train GFLOP/img"] * row["train img/s"]
        row["score GFLOP/s"] = row["score GFLOP/img"] * row["score img/s"]
    ref, lib = rows["reference"], rows["library"]
    ratio = {"size": f"{size}x{size}", "path": "ratio (b)/(a)",
             "train img/s": lib["train img/s"] / ref["train img/s"],
             "score img/s": lib["score img/s"] / ref["score img/s"]}
    out = [ref, lib, ratio]
    if size <= 32 and not opts.quick and not opts.no_epoch:
        rate = library_epoch_rate(size, fit_u8[:10 * s["batch"]], test_u8[:4], device, s["batch"])
        lib["train.train epoch img/s"] = rate
        log(f"  engine.trainer.train, one epoch of {10 * s['batch']} images (run.json): {rate:.1f} img/s")
    return out


def fmt(v) -> str:
    if isinstance(v, str):
        return v
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}" if abs(v) < 1000 else f"{v:.0f}"


def table(rows) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        lines.append("| " + " | ".join(fmt(r.get(c)) for c in COLUMNS) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke test: tiny batches and splits (seconds)")
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="input sides (default 28 120; --quick: 28)")
    ap.add_argument("--batch", type=int, default=None, help="training batch (default 120; --quick: 2)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch.set_num_threads (default: torch's, one per core; --quick: 1)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--no-epoch", action="store_true", help="skip the engine.trainer.train one-epoch cross-check")
    ap.add_argument("--precision", action="store_true",
                    help="instead: training images/s of plain fp32, fast, bf16 autocast and bf16 + fast")
    ap.add_argument("--rounds", type=int, default=None, help="--precision: timed rounds (default 5 at 28x28, 2 above)")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers to this file")
    opts = ap.parse_args(argv)
    opts.sizes = opts.sizes or ([28] if opts.quick else [28, 120])
    if opts.threads or opts.quick:
        torch.set_num_threads(opts.threads or 1)  # a smoke test: 1 thread stalls least on a busy machine
    device = pick_device(opts.device)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    t_start = time.perf_counter()
    mm_n = 512 if opts.quick else (8192 if device.type == "cuda" else 2048)
    ceiling = [matmul_gflops(mm_n, device)]
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    machine = (f"{torch.cuda.get_device_name(device)}" if device.type == "cuda" else
               f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads")
    log(f"machine: {machine}; torch {torch.__version__}; load average {os.getloadavg()[0]:.1f}")
    rows = []
    if opts.precision:
        for size in opts.sizes:
            rows += bench_precision(size, device, opts, log)
        print(f"\nmachine: {machine}; torch {torch.__version__}; device {device}; "
              f"load average at the end {os.getloadavg()[0]:.1f}\n")
        cols = ("size", "path", "batch", "train img/s", "x fp32 plain")
        print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
        print("\n".join("| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows))
        if opts.json:
            opts.json.write_text(json.dumps({"machine": machine, "torch": torch.__version__, "rows": rows}, indent=1))
        return 0
    for size in opts.sizes:
        rows += bench_size(size, device, opts, log)
    ceiling.append(matmul_gflops(mm_n, device))
    mm = statistics.mean(ceiling)
    print(f"\nmachine: {machine}; torch {torch.__version__}; device {device}; "
          f"load average at the end {os.getloadavg()[0]:.1f}")
    print(f"fp32 matmul ({mm_n}x{mm_n}): {mm:.1f} GFLOP/s (start {ceiling[0]:.1f}, end {ceiling[1]:.1f})\n")
    print(table(rows))
    print()
    for r in rows:
        if r["path"] == "library":
            tr = r["train GFLOP/s"]
            print(f"{r['size']}: library training reaches {tr:.1f} GFLOP/s = {100 * tr / mm:.0f}% of the matmul "
                  f"ceiling (ceiling for its FLOPs: {mm / r['train GFLOP/img']:.0f} img/s); scoring "
                  f"{r['score GFLOP/s']:.1f} GFLOP/s; whole test split scored in {r['score whole split s']:.1f} s")
        if r["path"] == "reference":
            print(f"{r['size']}: reference whole test split scored in {r['score whole split s']:.1f} s")
    lib28 = next((r for r in rows if r["path"] == "library" and r["size"] == "28x28"), None)
    if lib28:
        per_class = PAPER_EPOCHS * MNIST_NORMALS * 0.9 / lib28["train img/s"] + MNIST_TEST / lib28["score img/s"]
        print(f"paper's MNIST protocol (600 epochs x ~5,400 fit images + 10,000 scored) on {device.type}, "
              f"code path only: ~{per_class / 3600:.1f} h per class, ~{10 * per_class / 3600:.0f} h for 10 classes")
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak RSS {peak_rss:.0f} MB; total benchmark time {time.perf_counter() - t_start:.0f} s")
    if opts.json:
        opts.json.write_text(json.dumps({"machine": machine, "torch": torch.__version__, "device": str(device),
                                         "matmul_gflops": mm, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
