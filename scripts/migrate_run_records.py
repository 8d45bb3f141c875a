"""Rewrite the run records that older versions of the kit wrote into today's format, once, so that
the library reads one format only.

What changes (nothing else is touched; a file already in today's format is not rewritten):
    config.json, and the "config" of run.json: the keys `lam` -> `lambda`, `val_fraction` ->
    `heldout_fraction`, in place (same position, same value).

    python scripts/migrate_run_records.py [results ...]     (default: results)

Prints how many files it rewrote.  Each file is written atomically (pyramid_lib/files.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

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


def _keys(record: dict):
    yield from record
    if isinstance(record.get("config"), dict):
        yield from record["config"]


if __name__ == "__main__":
    roots = [Path(a) for a in sys.argv[1:]] or [Path("results")]
    for r in roots:
        print(f"{r}: {migrate(r)} file(s) rewritten into today's format")
