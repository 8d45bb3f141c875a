"""Numbers in hand-written pages (results/ANALYSIS.md, README.md's results), each tied to the
computation that gives it from the committed CSVs, so that a test can recompute every one.

A claim is a value followed by an HTML comment (invisible on GitHub) naming its computation:

    our MNIST mean is 0.9256<!-- mean("mnist/cpu") --> against the paper's 0.9702<!-- paper_mean("mnist") -->
    which is lower<!-- diff("mnist/cpu", "paper:mnist", "verdict") --> ...

Numbers must be written with the digits they are checked to (0.9256 is compared with the value
rounded to 4 decimals; a leading + is kept); integers and words (verdicts) must equal the value.
Arguments are Python literals.  A *selector* names runs: "folder[:method][:column=value...]",
e.g. "baselines/cpu:ocsvm:dataset=mnist" or "ablation-encoders/quick:encoders=4"; a column is a
results.csv column or a config.json field (`cfg_lr`, written lr); `train_limit=all` selects runs
without a limit.  "paper:mnist" selects the
paper's per-class Ours column of Table III as if it were runs.

`check(text, root)` returns every claim with its recomputed value; `unclaimed(text)` the decimal
numbers that carry no claim; `rewrite(text, root)` puts the recomputed values in place (then
re-read the prose around them).  Reads only."""

from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import paper
from ..errors import ConfigError
from .records import read_runs
from .stats import against_constant, class_mean, paired, seed_summary, verdict
from .tables import planned as planned_runs

CLAIM = re.compile(r"<!--\s*(?P<call>\w+\(.*?\))\s*-->", re.S)
NUMBER = re.compile(r"[+\-]?\d+(?:\.\d+)?$")


def _value(v: str):
    try:
        f = float(v)
        return int(f) if f.is_integer() and "." not in v else f
    except ValueError:
        return v


def select(root: Path, selector: str) -> pd.DataFrame:
    """The runs a selector names (see the module doc); ConfigError for a folder without results."""
    folder, *parts = selector.split(":")
    if folder == "paper":
        col = paper.TABLE_III[paper.OURS]
        return pd.DataFrame({"normal_class": col.index, "auroc": col.to_numpy(), "seed": 0, "method": "paper"})
    runs = read_runs(Path(root) / folder)
    if not len(runs):
        raise ConfigError(f"claim: no results.csv under {Path(root) / folder}")
    for p in parts:
        key, eq, want = p.partition("=")
        if not eq:
            runs = runs[runs["method"] == key]
            continue
        col = key if key in runs else f"cfg_{key}"
        want = _value(want)
        if want == "all":  # no limit (train_limit, test_limit): recorded as empty
            runs = runs[runs[col].isna() | (runs[col].astype(str) == "all")]
        elif isinstance(want, (int, float)):
            runs = runs[pd.to_numeric(runs[col], errors="coerce") == want]
        else:
            runs = runs[runs[col].astype(str) == want]
    return runs


def _stat(iv, stat: str):
    return {"mean": iv.mean, "lo": iv.lo, "hi": iv.hi, "n": iv.n}[stat]


def mean(root, selector: str, stat: str = "mean", value: str = "auroc"):
    """Mean over classes of the per-class seed means ('lo', 'hi': its 95% interval; 'n': classes)."""
    return _stat(class_mean(select(root, selector), value), stat)


def diff(root, a: str, b: str, stat: str = "mean", value: str = "auroc", value_b: str | None = None):
    """A - B paired class by class (stats.paired): 'mean', 'lo', 'hi', 'n' (classes), 'better' (classes
    where A is higher), 'verdict', 'seed_sd_a', 'seed_sd_b'.  `value_b`: B's column when it is not
    A's (two scores of the same runs: diff(s, s, value="auroc_ssim", value_b="auroc"))."""
    runs_b = select(root, b)
    if value_b is not None:
        runs_b = runs_b.assign(**{value: runs_b[value_b]})
    p = paired(select(root, a), runs_b, value)
    if stat == "better":
        return p.a_better
    if stat == "verdict":
        return p.verdict
    if stat in ("seed_sd_a", "seed_sd_b"):
        return getattr(p, stat)
    return _stat(p.over_classes, stat)


def versus_printed(root, selector: str, table: str = "fmnist", stat: str = "mean"):
    """The selected runs' class mean minus a paper's printed mean that has no per-class values
    (Table II): 'mean', 'lo', 'hi' (the interval of our class mean, shifted) or 'verdict'."""
    p = against_constant(select(root, selector), paper.paper_mean(table))
    return p.verdict if stat == "verdict" else _stat(p.over_classes, stat)


def value(root, selector: str, cls: str, column: str = "auroc", stat: str = "mean"):
    """One class's mean (or 'sd', 'n') over its runs."""
    s = seed_summary(select(root, selector), column).set_index("normal_class")
    return s.at[str(cls), stat].item()


def seed_sd(root, selector: str, stat: str = "mean", column: str = "auroc") -> float:
    """The s.d. over seeds (ddof 1) of each class's runs, then its 'mean' or 'max' over the classes
    that have two or more seeds."""
    sd = seed_summary(select(root, selector), column)["sd"].dropna()
    return float({"mean": sd.mean, "max": sd.max}[stat]())


def class_diff(root, a: str, b: str, cls: str, column: str = "auroc", stat: str = "mean"):
    """One class's seed mean in A minus in B ('mean'); or, where both share two or more seeds, the
    seed-paired 95% t-interval of that difference ('lo', 'hi', 'n' seeds) and its 'verdict'."""
    if stat == "mean":
        return value(root, a, cls, column) - value(root, b, cls, column)
    t = paired(select(root, a), select(root, b), column).per_class.set_index("normal_class")
    lo, hi = float(t.at[str(cls), "seed_lo"]), float(t.at[str(cls), "seed_hi"])
    return {"lo": lo, "hi": hi, "n": int(t.at[str(cls), "seed_n"]), "verdict": verdict(lo, hi)}[stat]


def runs(root, selector: str) -> int:
    """How many finished runs a selector names."""
    return len(select(root, selector))


def planned(root, folder: str) -> int:
    """How many runs the folder's plan has (plan.csv and the default plan, as its page counts them)."""
    return len(planned_runs(Path(root) / folder))


def seeds(root, selector: str) -> int:
    """How many different seeds the selected runs have."""
    return int(select(root, selector)["seed"].nunique())


def setting(root, selector: str, column: str) -> str:
    """The selected runs' values of a column or config field, distinct, joined by ' / '."""
    r = select(root, selector)
    col = column if column in r else f"cfg_{column}"
    return " / ".join(dict.fromkeys(f"{v:g}" if isinstance(v, float) else str(v) for v in r[col]))


def same_config(root, a: str, b: str) -> str:
    """'identical' when, class by class and seed by seed, the selected runs' config.json files are equal;
    else 'different'."""
    ra, rb = select(root, a), select(root, b)
    fa, fb = a.split(":")[0], b.split(":")[0]
    pairs = ra.merge(rb, on=["normal_class", "seed"], suffixes=("_a", "_b"))
    if not len(pairs):
        return "different"
    for r in pairs.itertuples():
        ca = json.loads((Path(root) / fa / "runs" / r.run_a / "config.json").read_text())
        cb = json.loads((Path(root) / fb / "runs" / r.run_b / "config.json").read_text())
        if ca != cb:
            return "different"
    return "identical"


def paper_mean(root, table: str, method: str = paper.OURS, column: str = "tpr") -> float:
    """A paper column's mean computed from its per-class values (paper.paper_mean)."""
    return paper.paper_mean(table, method, column=column)


def printed_mean(root, method: str = paper.OURS) -> float:
    """Table III's Mean row as printed."""
    return float(paper.TABLE_III_MEAN[method])


FUNCTIONS = {f.__name__: f for f in (mean, diff, versus_printed, value, seed_sd, class_diff, runs, planned, seeds,
                                     setting, same_config, paper_mean, printed_mean)}


@dataclass(frozen=True)
class Claim:
    line: int
    call: str
    written: str
    expected: str

    @property
    def ok(self) -> bool:
        return self.written == self.expected


def evaluate(call: str, root) -> object:
    """The value of one claim's call; ConfigError for an unknown function or a non-literal argument."""
    node = ast.parse(call.strip(), mode="eval").body
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
        raise ConfigError(f"claim {call!r}: not a call of one of {', '.join(FUNCTIONS)}")
    args = [ast.literal_eval(a) for a in node.args]
    kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
    return FUNCTIONS[node.func.id](Path(root), *args, **kwargs)


def _written(before: str, result) -> str:
    """The text the claim covers, taken from the end of `before`: a number or the expected words."""
    if isinstance(result, str):
        if before.endswith(result):
            return result
        last = re.search(r"[^\s(\[\"'`]+$", before)  # the last word, after whitespace, an opening bracket or quote
        return last.group(0) if last else ""
    m = re.search(r"(?:[+\-]?\d+(?:\.\d+)?|nan)$", before)  # nan: a value that could not be computed
    return m.group(0) if m else ""


def _format(result, written: str) -> str:
    if isinstance(result, str):
        return result
    if isinstance(result, float) and math.isnan(result):
        return "nan"
    if written == "nan":  # written when it could not be computed: the pages' 4 decimals
        written = "0.0000"
    if isinstance(result, int) or "." not in written:
        return str(int(round(result))) if not isinstance(result, int) else str(result)
    digits = len(written.split(".")[1])
    return f"{result:+.{digits}f}" if written.startswith("+") else f"{result:.{digits}f}"


def check(text: str, root) -> list[Claim]:
    """Every claim of `text` with what is written and what the CSVs under `root` give."""
    out = []
    for m in CLAIM.finditer(text):
        result = evaluate(m.group("call"), root)
        before = text[:m.start()]
        written = _written(before, result)
        out.append(Claim(before.count("\n") + 1, m.group("call"), written, _format(result, written)))
    return out


def unclaimed(text: str) -> list[str]:
    """Decimal numbers in `text` that no claim follows (code spans, link targets and comments aside)."""
    text = re.sub(r"`[^`]*`", "", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    text = CLAIM.sub("<!--claim-->", text)
    text = re.sub(r"<!--(?!claim-->).*?-->", "", text, flags=re.S)
    return [m.group(0) for m in re.finditer(r"\d+\.\d+(?!\d|<!--claim-->)", text)]


def rewrite(text: str, root) -> str:
    """`text` with every claimed number or word replaced by its recomputed value."""
    out, last = [], 0
    for m in CLAIM.finditer(text):
        result = evaluate(m.group("call"), root)
        before = text[last:m.start()]
        written = _written(text[:m.start()], result)
        keep = before[:len(before) - len(written)] if written and before.endswith(written) else before
        out += [keep, _format(result, written), m.group(0)]
        last = m.end()
    return "".join(out) + text[last:]
