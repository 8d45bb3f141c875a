"""Rewrite the run records that older versions of the kit wrote into today's format, once, so that
the library reads one format only.

What changes (nothing else is touched; a file already in today's format is not rewritten):
    config.json, and the "config" of run.json: the keys `lam` -> `lambda`, `val_fraction` ->
    `heldout_fraction`, in place (same position, same value).
    variant.json, written into a results folder of changed settings (results/mnist/cpu-epochs20)
    made before sweeps recorded them: the profile and each setting its name gives, with the value
    every run's config.json holds (a setting the runs disagree on stops the script).  The library
    reads what a folder varies from that file only, never from the folder's name.

    python scripts/migrate_run_records.py [results ...]     (default: results)

Prints how many files it rewrote.  Each file is written atomically (pyramid_lib/files.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pyramid_lib.config import PROFILES
from pyramid_lib.experiments.plan import _VARIANT_FIELDS, _VARIANT_LABELS, VARIANT_FILE
from pyramid_lib.files import atomic_write_json

RENAMED = {"lam": "lambda", "val_fraction": "heldout_fraction"}  # key an old version wrote -> today's


def renamed(config: dict) -> dict:
    """`config` with the old key names replaced, in the same order; ValueError when a file holds
    both spellings (two values for one setting: which was used cannot be told)."""
    both = [k for k in RENAMED if k in config and RENAMED[k] in config]
    if both:
        raise ValueError(f"holds both {both[0]!r} and {RENAMED[both[0]]!r}")
    return {RENAMED.get(k, k): v for k, v in config.items()}


def migrate(root: Path) -> int:
    """Migrate every config.json and run.json under `root`; returns how many files changed."""
    changed = 0
    for path in sorted(root.rglob("config.json")) + sorted(root.rglob("run.json")):
        record = json.loads(path.read_text())
        try:
            new = renamed(record) if path.name == "config.json" else {
                **record, **({"config": renamed(record["config"])} if isinstance(record.get("config"), dict) else {})}
        except ValueError as e:
            raise SystemExit(f"{path}: {e}; fix it by hand") from None
        if list(_keys(new)) != list(_keys(record)):
            atomic_write_json(path, new)
            changed += 1
    return changed


def record_variants(root: Path) -> int:
    """Write variant.json into every <experiment>/<folder> under `root` that has runs, no variant.json and a
    name that is not a profile's; returns how many were written."""
    written = 0
    for folder in sorted(p for p in root.glob("*/*") if (p / "runs").is_dir()):
        if folder.name in PROFILES or (folder / VARIANT_FILE).is_file():
            continue
        profile, *parts = folder.name.split("-")
        configs = [json.loads(c.read_text()) for c in sorted((folder / "runs").glob("*/config.json"))]
        changed = {}
        for part in parts:
            field = next((f for f in _VARIANT_FIELDS if part.startswith(_VARIANT_LABELS.get(f, f))), None)
            key = "lambda" if field == "lambda_" else field
            values = {json.dumps(c.get(key)) for c in configs}
            if profile not in PROFILES or field is None or len(values) != 1:
                raise SystemExit(f"{folder}: cannot tell what {part!r} of its name changes (runs hold {values}); "
                                 f"write {VARIANT_FILE} by hand")
            changed[field] = json.loads(values.pop())
        atomic_write_json(folder / VARIANT_FILE, {"profile": profile, "changed": changed})
        written += 1
    return written


def _keys(record: dict):
    yield from record
    if isinstance(record.get("config"), dict):
        yield from record["config"]


if __name__ == "__main__":
    roots = [Path(a) for a in sys.argv[1:]] or [Path("results")]
    for r in roots:
        print(f"{r}: {migrate(r)} file(s) rewritten into today's format, {record_variants(r)} variant.json written")
