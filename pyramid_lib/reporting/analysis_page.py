"""results/ANALYSIS.md: the hand-written prose of templates/analysis.md.j2, each number a call of
numbers.py or claims.py over the run folders, then a note naming the runs that diverged."""

from __future__ import annotations

import functools
import logging
import math
from pathlib import Path

from ..errors import ConfigError
from ..files import atomic_write_text
from . import claims, numbers, stats
from .records import diverged_runs, diverged_text
from .render import environment, tidy
from .tables import experiment_folders

log = logging.getLogger(__name__)


ANALYSIS_TEMPLATE = "analysis.md.j2"


def _fixed(v, digits: int) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _signed(v, digits: int) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.{digits}f}"


def _whole(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else str(int(round(v)))


def analysis_text(out_root, template: str = ANALYSIS_TEMPLATE, source: str | None = None) -> str:
    """results/ANALYSIS.md: the hand-written prose of templates/<template> (or the template text
    `source`), each number a call of numbers.py over the run folders under `out_root`.  Filters: `f(d)`
    d decimals, `s(d)` with its sign, `whole`.  `intervals` is how many different verdicts the text
    reads: it is rendered twice, the first time to count them.  Raises ConfigError when a folder it
    reads has no results."""
    root = Path(out_root)
    env = environment()
    env.filters.update(f=_fixed, s=_signed, whole=_whole)
    tpl = env.from_string(source) if source is not None else env.get_template(template)
    read = []

    def bound(fn):
        @functools.wraps(fn)
        def call(*args, **kw):
            out = fn(root, *args, **kw)
            if out in (stats.HIGHER, stats.LOWER, stats.NO_DIFFERENCE):
                read.append((fn.__name__, args, tuple(sorted(kw.items()))))
            return out
        return call

    ctx = {name: bound(fn) for name, fn in {**numbers.FUNCTIONS, **claims.FUNCTIONS}.items()}
    tpl.render(**ctx, intervals=0)
    return tidy(tpl.render(**ctx, intervals=len(set(read))) + _diverged_note(root))


def _diverged_note(out_root: Path) -> str:
    """A closing paragraph naming the runs under `out_root` that diverged (the numbers leave them
    out: records.read_runs); '' when none did."""
    parts = [f"{exp}/{prof}: {diverged_text(d)}" for exp, prof, base in experiment_folders(out_root)
             if (d := diverged_runs(base))]
    if not parts:
        return ""
    return ("\n\n**Runs that diverged are left out of every number above** (their training stopped when the loss "
            "became non-finite or grew beyond its bound): " + "; ".join(parts) + ".\n")


def write_analysis(out_root) -> Path | None:
    """Render results/ANALYSIS.md (analysis_text); None, with a warning naming why, when the run
    folders it reads are not all under `out_root` (a results root of some experiments only)."""
    path = Path(out_root) / "ANALYSIS.md"
    try:
        text = analysis_text(out_root)
    except (ConfigError, KeyError) as e:
        log.warning("%s not written: the folders it reads are not all here (%s: %s)", path, type(e).__name__, e)
        return None
    atomic_write_text(path, text)
    return path
