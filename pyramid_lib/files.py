"""Files written so that a crash mid-write never replaces a good file, and loaded without pickle."""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import torch

from .errors import CheckpointError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def atomic_write_csv(path, frame) -> None:
    """A pandas DataFrame as CSV, atomically."""
    atomic_write_text(path, frame.to_csv(index=False))


def atomic_save_figure(path, fig, **kwargs) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format=Path(path).suffix.lstrip(".") or "png", **kwargs)
    atomic_write_bytes(path, buf.getvalue())


def atomic_torch_save(path, obj) -> None:
    """torch.save into memory, then an atomic write: a kill mid-save leaves the old file."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def read_json(path) -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e}); delete it or restore it from a backup") from e


def safe_torch_load(path) -> dict:
    """Load a checkpoint with `weights_only=True`: tensors, numbers, strings, lists and dicts only.

    A file carrying any other pickled object (a crafted payload) is refused before anything in
    it runs.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint there; train first or check the path")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError for payloads, RuntimeError/EOFError for damage
        kind = "unsafe (it holds objects other than tensors)" if "weights_only" in str(e) or "Unsupported" in str(e) \
            else "damaged or not a checkpoint"
        raise CheckpointError(f"{path}: refused to load, {kind}: {str(e).splitlines()[0][:200]}. "
                              "Use only checkpoints written by pyramid-ad from a source you trust.") from e
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: not a pyramid-ad checkpoint (a {type(obj).__name__}, expected a dict)")
    return obj
