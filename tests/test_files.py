"""Atomic files: a crash mid-write keeps the previous file; the library writes only through files.py.

Training here uses tiny in-memory subsets of the embedded mnist-sample (a dozen images, a few
batches per epoch): the code paths are the real ones, only the data is small.
"""

from __future__ import annotations

import io
import os
import re

import pandas as pd
import pytest
import torch
from helpers import REPO, temp_leftovers

from pyramid_lib import files

# ----------------------------------------------------------------------------------- atomic files

WRITERS = {
    "bytes": lambda p, v: files.atomic_write_bytes(p, v.encode()),
    "text": files.atomic_write_text,
    "json": lambda p, v: files.atomic_write_json(p, {"v": v}),
    "csv": lambda p, v: files.atomic_write_csv(p, pd.DataFrame({"v": [v]})),
    "torch": lambda p, v: files.atomic_torch_save(p, {"v": v, "t": torch.arange(3)}),
}


def _figure_writer(p, v):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.set_title(v)
    files.atomic_save_figure(p, fig)
    plt.close(fig)


WRITERS["figure"] = _figure_writer


@pytest.mark.parametrize("crash_at", ["write", "fsync", "replace"])
@pytest.mark.parametrize("kind", list(WRITERS))
def test_crash_mid_write_keeps_previous_file_and_no_temp(tmp_path, monkeypatch, kind, crash_at):
    """Fault: the write, the fsync or the rename raises (disk full, I/O error, crash)."""
    path = tmp_path / "out" / f"file.{ {'figure': 'png', 'torch': 'pt', 'csv': 'csv'}.get(kind, 'txt') }"
    WRITERS[kind](path, "good")
    good = path.read_bytes()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    if crash_at == "write":
        real_fdopen = os.fdopen

        class Failing(io.RawIOBase):
            def __init__(self, fd, *a, **k):
                self.f = real_fdopen(fd, *a, **k)

            def write(self, b):
                self.f.write(bytes(b)[: len(b) // 2])  # half of it lands, then the disk is full
                boom()

            def close(self):
                self.f.close()

        monkeypatch.setattr(files.os, "fdopen", Failing)
    else:
        monkeypatch.setattr(files.os, crash_at, boom)
    with pytest.raises(OSError, match="No space"):
        WRITERS[kind](path, "new and longer content")
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert not temp_leftovers(tmp_path) and sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_atomic_writes_land_whole_with_normal_permissions(tmp_path):
    path = tmp_path / "a" / "b.json"
    files.atomic_write_json(path, {"x": 1})
    files.atomic_write_json(path, {"x": 2})
    assert files.read_json(path) == {"x": 2} and not temp_leftovers(tmp_path)
    ref = tmp_path / "plain.txt"
    ref.write_text("x")  # what an ordinary open(..., "w") gives under this umask
    assert path.stat().st_mode & 0o777 == ref.stat().st_mode & 0o777


def test_temp_files_of_a_killed_writer_are_found_and_removed(tmp_path):
    target = tmp_path / "checkpoint.pt"
    target.write_bytes(b"good")
    left = [tmp_path / ".checkpoint.pt.abc123.tmp", tmp_path / ".checkpoint.pt.zz.tmp"]
    for p in left:
        p.write_bytes(b"partial")
    other = tmp_path / ".run.json.q.tmp"
    other.write_bytes(b"x")
    assert files.temp_files(target) == left
    files.remove_temp_files(target)
    assert target.read_bytes() == b"good" and not any(p.exists() for p in left) and other.exists()


# Writes that bypass files.py: a crash mid-write would leave a half file where a good one was.
BYPASS = [
    (r"\bopen\([^)]*['\"][wax]b?\+?['\"]", "open(..., 'w')"),
    (r"\.to_(csv|json|parquet|pickle|excel)\((?!\s*index=False\))(?!\))", "DataFrame.to_csv(path)"),
    (r"\.savefig\((?!buf\b)", "savefig(path)"),
    (r"\btorch\.save\((?![^)]*\bbuf\))", "torch.save(path)"),
    (r"\.write_(text|bytes)\(", "Path.write_text/write_bytes"),
    (r"\b(json|pickle|yaml)\.dump\(", "json.dump(file)"),
    (r"\bnp\.(save|savez|savetxt)\(", "np.save(path)"),
    (r"\bnbformat\.write\(", "nbformat.write(path)"),
    (r"shutil\.(copy|copyfile|copy2|move)\(", "shutil.copy(path)"),
]


# (module, line) that may write by hand, and why
HAND_WRITTEN = {
    ("progress.py", 'with open(tmp, "w", encoding="utf-8") as f:'):
        "the terminal's copy of a progress bar's line for notebooks/execute.py: a temporary file renamed over "
        "the last one (atomic), holding no result, and progress.py may not import files.py (same layer)",
}


def library_bypasses() -> list[str]:
    found = []
    for py in sorted((REPO / "pyramid_lib").glob("*.py")):
        if py.name == "files.py":
            continue
        for i, line in enumerate(py.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if ".lock" in code:  # lock files (fcntl.flock) hold no data
                continue
            if (py.name, line.strip()) in HAND_WRITTEN:
                continue
            for pat, what in BYPASS:
                if re.search(pat, code):
                    found.append(f"{py.name}:{i}: {what}: {line.strip()}")
    return found


def test_library_writes_only_through_files_py():
    """Every checkpoint, CSV, report, figure and log goes through files.py's atomic writers."""
    assert library_bypasses() == []


def test_bypass_scan_catches_each_pattern():
    lines = ["open(p, 'w').write(s)", "frame.to_csv(path)", "fig.savefig(out / 'roc.png')", "torch.save(obj, path)",
             "(d / 'error.log').write_text(tb)", "json.dump(obj, f)", "np.save(path, a)", "shutil.copy(a, b)"]
    for line in lines:
        assert any(re.search(p, line) for p, _ in BYPASS), line
    for line in ["frame.to_csv(index=False)", "fig.savefig(buf, format='png')", "torch.save(obj, buf)",
                 "open(path, 'rb')", "with open(path) as f:"]:
        assert not any(re.search(p, line) for p, _ in BYPASS), line
