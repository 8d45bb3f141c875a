"""Helpers shared by several test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import torch

from pyramid_lib.config import TrainConfig
from pyramid_lib.engine.run_dir import RunDir

REPO = Path(__file__).resolve().parents[1]


def load_benchmark(name: str):
    """benchmarks/<name>.py as a module (benchmarks/ is not a package; its scripts import each other)."""
    folder = str(REPO / "benchmarks")
    if folder not in sys.path:
        sys.path.append(folder)
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", REPO / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def tiny_cfg(**kw) -> TrainConfig:
    base = dict(dataset="mnist-sample", normal_class="1", epochs=2, batch_size=4, lr=1e-3, train_limit=None,
                weights="random")
    return TrainConfig(**{**base, **kw})



def copy_run(run: RunDir, dest: Path) -> RunDir:
    dest.mkdir(parents=True)
    for f in (run.config, run.state, run.checkpoint):
        (dest / f.name).write_bytes(f.read_bytes())
    return RunDir(dest)


def temp_leftovers(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.name.endswith(".tmp"))


def same_state(a: dict, b: dict) -> list[str]:
    """Keys whose tensors differ (torch.equal) between two state dicts (nested, as saved)."""
    diff = []
    assert a.keys() == b.keys()
    for k in a:
        va, vb = a[k], b[k]
        if isinstance(va, dict):
            diff += [f"{k}.{d}" for d in same_state(va, vb)]
        elif torch.is_tensor(va):
            if not torch.equal(va, vb):
                diff.append(str(k))
        elif va != vb:
            diff.append(str(k))
    return diff


def assert_identical_checkpoints(a: dict, b: dict):
    """Model weights and buffers (BN running stats, num_batches_tracked) and the Adam state."""
    assert a["epoch"] == b["epoch"]
    assert not same_state(a["model"], b["model"]), same_state(a["model"], b["model"])[:5]
    assert not same_state(a["optimizer"]["state"], b["optimizer"]["state"])
    assert a["optimizer"]["param_groups"] == b["optimizer"]["param_groups"]
    hist_a, hist_b = json.loads(a["history"]), json.loads(b["history"])
    strip = lambda h: [{k: v for k, v in e.items() if k not in ("seconds", "images_per_s")} for e in h]  # noqa: E731
    assert strip(hist_a) == strip(hist_b)



def git_repo(folder: Path) -> Path:
    """A fresh git repository at `folder` (for choice files, which count only once committed)."""
    import subprocess

    folder.mkdir(parents=True, exist_ok=True)
    for args in (["init", "-q"], ["config", "user.email", "t@t"], ["config", "user.name", "t"]):
        subprocess.run(["git", *args], cwd=folder, check=True)
    return folder


def git_commit_file(path: Path, message: str = "choice") -> None:
    import subprocess

    subprocess.run(["git", "add", path.name], cwd=path.parent, check=True)
    subprocess.run(["git", "commit", "-q", "-m", message], cwd=path.parent, check=True)
