"""Runs handed out to a room, and the notebooks opened as copies.

    export_run(run, out_zip)     a finished run, slimmed to what scoring and the notebooks read
    import_run(zip, work)        into a run cache (default: the notebooks' own), where `tutorial`
                                 finds it by its cache key, without training
    lab_copies(folder)           the numbered notebooks copied into a work folder (never the kit's)

A handed-out run is a zip of the run folder's config.json, run.json, data.json (the images it
trained on and held out, by content hash), metrics.csv, scores.csv and checkpoint.pt without the
optimiser state (scoring needs the weights only), plus handout.json: its format, the run's cache
name and each file's SHA-256.  The cache name (`tutorial.cache_key`) depends on the settings and
the data's content, not on paths, so a student whose data has the same images finds the run.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import zipfile
from datetime import datetime
from pathlib import Path

import torch

from ..engine.run_dir import RunDir, load_checkpoint
from ..errors import CheckpointError, ConfigError
from ..files import atomic_write_bytes, read_json, safe_torch_load
from ..tutorial import KIT, default_work

FORMAT = "pyramid-ad-handout/1"
FILES = ("config.json", "run.json", "data.json", "metrics.csv", "scores.csv", "checkpoint.pt")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")  # a cache name: no separators, no '..'


def find_run(run, work=None) -> RunDir:
    """A run folder, or the name of a run in the notebooks' cache (<work>/runs/<name>)."""
    p = Path(run)
    if p.is_dir():
        return RunDir(p)
    cached = Path(work or default_work()) / "runs" / str(run)
    if _NAME.match(str(run)) and cached.is_dir():
        return RunDir(cached)
    raise ConfigError(f"{run}: neither a run folder nor a run in the cache {cached.parent}")


def _slim_checkpoint(run: RunDir) -> bytes:
    """checkpoint.pt without the optimiser state, as bytes (the run's own file is not changed)."""
    ckpt = load_checkpoint(run.checkpoint)
    ckpt["optimizer"] = None
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return buf.getvalue()


def export_run(run, out_zip, work=None) -> Path:
    """Write a finished, evaluated run (a folder or a cache name) into `out_zip` (atomically).
    ConfigError when the run is not finished and evaluated or lacks data.json."""
    run = find_run(run, work)
    if not (run.evaluated and run.trained):
        raise ConfigError(f"{run.dir}: not a finished and evaluated network run; only those can be handed out")
    missing = [f for f in FILES if not (run.dir / f).is_file()]
    if missing:
        raise ConfigError(f"{run.dir}: lacks {', '.join(missing)}; a handed-out run carries them all")
    blobs = {f: (_slim_checkpoint(run) if f == "checkpoint.pt" else (run.dir / f).read_bytes()) for f in FILES}
    when = datetime.now().astimezone().isoformat(timespec="seconds")
    manifest = {"format": FORMAT, "run": run.name, "exported": when,
                "files": {f: hashlib.sha256(b).hexdigest() for f, b in blobs.items()}}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("handout.json", json.dumps(manifest, indent=1))
        for f, b in blobs.items():
            info = zipfile.ZipInfo(f"{run.name}/{f}", datetime.fromtimestamp((run.dir / f).stat().st_mtime)
                                   .timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, b)
    out = Path(out_zip)
    atomic_write_bytes(out, buf.getvalue())
    return out


def import_run(zip_path, work=None, say=print) -> RunDir:
    """Put a handed-out run into the run cache <work>/runs/<name> (default work: the notebooks'),
    checking every file against handout.json first and the checkpoint's format; the folder appears
    complete or not at all.  A finished run of that name already there is kept.  CheckpointError
    for a zip that is not a handed-out run, has unexpected members or whose files do not match."""
    zip_path = Path(zip_path)
    try:
        with zipfile.ZipFile(zip_path) as z:
            manifest = json.loads(z.read("handout.json"))
            name = manifest.get("run", "") if isinstance(manifest, dict) else ""
            if manifest.get("format") != FORMAT or not _NAME.match(str(name)):
                raise CheckpointError(f"{zip_path}: not a pyramid-ad handed-out run "
                                      f"(format {manifest.get('format')!r})")
            expected = {"handout.json", *(f"{name}/{f}" for f in FILES)}
            if set(z.namelist()) != expected:
                odd = sorted(set(z.namelist()) ^ expected)
                raise CheckpointError(f"{zip_path}: unexpected or missing members {', '.join(odd[:5])}; refused")
            blobs = {f: (z.read(f"{name}/{f}"), z.getinfo(f"{name}/{f}").date_time) for f in FILES}
    except (zipfile.BadZipFile, KeyError, ValueError) as e:
        raise CheckpointError(f"{zip_path}: not a readable handed-out run ({type(e).__name__}: {e})") from e
    bad = [f for f, (b, _) in blobs.items() if hashlib.sha256(b).hexdigest() != manifest["files"].get(f)]
    if bad:
        raise CheckpointError(f"{zip_path}: {', '.join(bad)} differ from the checksums in handout.json; "
                              "a damaged copy: ask for it again")
    runs = Path(work or default_work()) / "runs"
    dest = RunDir(runs / name)
    if dest.evaluated:
        say(f"{name}: already in the cache {runs}; kept the one there")
        return dest
    if dest.dir.exists():
        raise ConfigError(f"{dest.dir}: an unfinished run of that name is there; remove it, then import again")
    tmp = runs / f".{name}.import"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for f, (b, when) in blobs.items():
            atomic_write_bytes(tmp / f, b)
            t = datetime(*when).timestamp()
            os.utime(tmp / f, (t, t))  # the run reads as made when it was, not when it was copied
        safe_torch_load(tmp / "checkpoint.pt")  # weights_only: refuses a pickle that runs code
        read_json(tmp / "run.json")
        os.replace(tmp, dest.dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    say(f"imported {name} into {runs}: a notebook asking for these settings on the same images reuses it")
    return dest


def lab_copies(folder, notebooks=None, say=print) -> list[Path]:
    """Copy the kit's numbered notebooks into `folder` for a student to run and edit there, so
    the kit's tracked files stay clean.  A copy already there is the student's work: kept, never
    overwritten (it is named).  Returns the copies' paths.  ConfigError when the kit has no
    notebooks (an installed package without its clone)."""
    src = sorted((Path(notebooks) if notebooks else KIT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not src:
        raise ConfigError(f"no notebooks in {notebooks or KIT / 'notebooks'}: open the lab from a clone of the kit")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out, kept = [], []
    for nb in src:
        dest = folder / nb.name
        if dest.exists():
            kept.append(nb.name)
        else:
            atomic_write_bytes(dest, nb.read_bytes())  # never half a notebook, later kept as "the student's"
        out.append(dest)
    say(f"notebooks in {folder}: {len(out) - len(kept)} copied" +
        (f", {len(kept)} kept as you left them ({', '.join(kept)})" if kept else ""))
    return out
