"""Selections whose rule is fixed before the numbers it is judged by: choice files and resumable
JSON-lines logs, shared by the selection benchmarks (benchmarks/regime.py, mvtec_regime.py,
tune_baselines.py).

A **choice file** (`benchmarks/choices/<name>.json`) is committed before a selection runs.  It names

- ``rule``: the sentence that turns the criterion into a pick (read by people),
- ``criterion``: the column of the log the rule reads (never a test metric: `TEST_KEYS`),
- ``candidates`` and ``seeds`` (and any other settings the benchmark needs, such as ``categories``),
- ``pick``: null until the criterion of every candidate and seed is in; then written by
  `write_pick` and committed again.

A benchmark calls `require_committed(path)` before it trains anything (the rule, the candidates
and the seeds are what git holds, not what the working tree says), and
`require_committed(path, pick=True)` before it computes or prints any test number: a selection
without a committed pick gets no test number (`ChoiceError`).  "Committed" is checked with git:
the file is tracked and equal to HEAD (`git ls-files --error-unmatch`, `git diff --quiet HEAD`).

A **log** (`Log`) is a JSON-lines file, one line per finished unit of work (a run, a setting):
a unit whose key is already there is not done again, so an interrupted selection resumes where it
stopped; a line cut short by a killed process is skipped with a warning.
"""

from __future__ import annotations

import json
import subprocess
import warnings
from collections.abc import Callable, Hashable
from pathlib import Path

from ..errors import ConfigError
from ..files import atomic_write_text

# metrics that only the test split gives: a choice file's criterion is never one of them
TEST_KEYS = frozenset({"auroc", "test_auroc", "ssim_normal", "pixel_auroc", "aupro", "tpr", "tnr"})
REQUIRED = ("rule", "criterion", "candidates", "seeds")


class ChoiceError(ConfigError):
    """A choice file is missing, malformed, not committed, or has no committed pick."""


def load_choice(path) -> dict:
    """The choice file at `path` (a JSON object holding `REQUIRED` and ``pick``).
    Raises ChoiceError when it is missing, does not parse, lacks a field, or names a test metric
    as its criterion."""
    path = Path(path)
    try:
        choice = json.loads(path.read_text())
    except FileNotFoundError:
        raise ChoiceError(f"no choice file {path}: write the rule, criterion, candidates and seeds there and "
                          "commit it before the selection runs") from None
    except json.JSONDecodeError as e:
        raise ChoiceError(f"choice file {path} does not parse as JSON: {e}") from None
    missing = [k for k in (*REQUIRED, "pick") if k not in choice]
    if missing:
        raise ChoiceError(f"choice file {path} lacks {', '.join(missing)} (pick: null until the criterion is in)")
    if choice["criterion"] in TEST_KEYS:
        raise ChoiceError(f"choice file {path}: the criterion {choice['criterion']!r} is a test metric")
    return choice


def _git(path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=path.parent, capture_output=True, text=True, timeout=30)


def committed_at(path) -> str | None:
    """The commit that last changed `path` when git tracks it and it equals HEAD's version, else None."""
    path = Path(path).resolve()
    try:
        if _git(path, "ls-files", "--error-unmatch", path.name).returncode != 0:
            return None
        if _git(path, "diff", "--quiet", "HEAD", "--", path.name).returncode != 0:
            return None
        return _git(path, "log", "-1", "--format=%H", "--", path.name).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def require_committed(path, pick: bool = False) -> dict:
    """The choice file at `path`, once it is committed and unchanged since (and, with `pick`, holds a
    pick).  Its dict gains ``commit``: the commit that last changed it.  Raises ChoiceError otherwise,
    saying what to do."""
    choice = load_choice(path)
    commit = committed_at(path)
    if commit is None:
        raise ChoiceError(f"choice file {path} is not committed, or differs from its committed version: commit it "
                          "before any run it governs (the rule must be in the history before its numbers)")
    if pick and choice["pick"] is None:
        raise ChoiceError(f"choice file {path} has no pick: no test number is computed or printed for this "
                          "selection until the criterion's pick is written (--pick) and committed")
    return {**choice, "commit": commit}


def check_request(choice: dict, **asked) -> None:
    """Raise ChoiceError when a run asks for candidates, seeds (or any other listed setting) other than
    the choice file's: a selection runs what was committed, not more, not less."""
    for key, value in asked.items():
        if value is not None and key in choice and list(map(str, value)) != list(map(str, choice[key])):
            raise ChoiceError(f"{key} {list(value)} differ from the choice file's {choice[key]}: run what was "
                              "committed, or commit a new choice file first")


def write_pick(path, pick: str, evidence: dict) -> dict:
    """Write `pick` and the criterion values it came from (`evidence`: candidate -> number) into the
    choice file, which must be committed without a pick.  Returns the new choice.  Commit the file
    next: only then are test numbers computed.  Raises ChoiceError when it already holds a pick, or
    when `pick` is not one of its candidates."""
    choice = require_committed(path)
    if choice["pick"] is not None:
        raise ChoiceError(f"choice file {path} already holds the pick {choice['pick']!r}; a pick is written once")
    if pick not in choice["candidates"]:
        raise ChoiceError(f"{pick!r} is not a candidate of {path}")
    choice.pop("commit")
    choice.update(pick=pick, criterion_values=evidence)
    atomic_write_text(Path(path), json.dumps(choice, indent=2) + "\n")
    return choice


class Log:
    """A resumable JSON-lines log: `rows` (the lines parsed so far), `has(key)`, `append(row)`.

    `key`: row -> a hashable naming the unit of work (say, (class, seed, regime)); rows whose key
    raises KeyError (lines of an older format) are kept in `rows` but never match.  `path` None keeps
    the rows in memory only."""

    def __init__(self, path, key: Callable[[dict], Hashable]):
        self.path, self.key = (Path(path) if path else None), key
        self.rows: list[dict] = read_rows(self.path)
        self._done = set()
        for r in self.rows:
            try:
                self._done.add(key(r))
            except KeyError:
                pass

    def has(self, key: Hashable) -> bool:
        return key in self._done

    def find(self, key: Hashable) -> dict | None:
        for r in self.rows:
            try:
                if self.key(r) == key:
                    return r
            except KeyError:
                continue
        return None

    def append(self, row: dict) -> dict:
        """Add `row` (written to the file at once, flushed, so a later kill loses no finished unit)."""
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            cut = self.path.exists() and self.path.stat().st_size and not self.path.read_bytes().endswith(b"\n")
            with open(self.path, "a") as f:
                f.write(("\n" if cut else "") + json.dumps(row) + "\n")  # never glued to a half-written line
                f.flush()
        self.rows.append(row)
        try:
            self._done.add(self.key(row))
        except KeyError:
            pass
        return row

    def run(self, units, work: Callable[..., dict]) -> list[dict]:
        """For each key of `units` not in the log, `work(key)`'s row is appended; returns the rows of all
        `units` (from the log where done before) in their order."""
        out = []
        for k in units:
            out.append(self.find(k) if self.has(k) else self.append(work(k)))
        return out


def read_rows(path) -> list[dict]:
    """The parsed lines of a JSON-lines file ([] when it does not exist).  A line that does not parse
    (a run killed while writing) is skipped with a UserWarning naming how many."""
    if path is None or not Path(path).exists():
        return []
    rows, bad = [], 0
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            bad += 1
    if bad:
        warnings.warn(f"{bad} line(s) of {path} do not parse (a run killed while writing?); skipped", stacklevel=2)
    return rows
