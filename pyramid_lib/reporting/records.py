"""What the run folders record about how each run was made, for the pages' facts and column names.

`read_runs(base)` is results.csv with, for every run, its config.json settings (`cfg_<field>`) and
its run.json facts: device, the library's commit, python/torch versions, how the random parts were
initialised ("init") and whether the machine was shared ("machine").  Runs made before the kit
recorded "init" or "machine" get NaN there, and the pages say "not recorded": nothing is assumed.
`facts(runs, sweeps)` turns those columns into the strings the templates show.  Reads only."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import TrainConfig
from ..experiments.results import made_by
from .regimes import DATA_FIELDS, REGIME_FIELDS, regime
from .stats import class_order

NOT_RECORDED = "not recorded"


def _read(path, **kw) -> pd.DataFrame:
    path = Path(path)
    return pd.read_csv(path, **kw) if path.is_file() else pd.DataFrame()


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def shared(machine: dict | None) -> str:
    """'shared' when run.json's 1-minute load average, at the start or the end of a training call, was
    above the torch threads the run used; 'not shared' when every recorded load was at or below them;
    'not recorded' without those records (runs made before the kit kept them)."""
    m = machine if isinstance(machine, dict) else {}
    loads = [float(v) for k in ("load_start", "load_end") for v in (m.get(k) or [])]
    threads = m.get("torch_threads")
    if not loads or threads is None:
        return NOT_RECORDED
    return "shared" if max(loads) > float(threads) else "not shared"


def run_record(run_dir: Path) -> dict:
    """The facts one run folder records (NaN where it does not)."""
    cfg = _json(run_dir / "config.json")
    state = _json(run_dir / "run.json")
    out = {}
    if cfg:
        c = TrainConfig.from_dict(cfg)
        out.update({f"cfg_{k}": getattr(c, k) for k in (*REGIME_FIELDS, "seed")})
        # a baseline's settings chosen by its tuning (the autoencoders' lr) are its method's own
        out["tuned"] = ",".join(sorted(cfg.get("baseline_settings") or {}))
    versions = state.get("versions") or {}
    init = state.get("init") if isinstance(state.get("init"), dict) else {}
    machine = state.get("machine") if isinstance(state.get("machine"), dict) else {}
    out.update({"run_device": state.get("device", np.nan), "commit": versions.get("commit", np.nan),
                "python": versions.get("python", np.nan), "torch": versions.get("torch", np.nan),
                "init_backbone": init.get("backbone", np.nan), "init_perceptual": init.get("perceptual", np.nan),
                "init_rest": init.get("rest", np.nan), "cpus": machine.get("cpus", np.nan),
                "torch_threads": machine.get("torch_threads", np.nan), "machine": shared(machine),
                "copied_from": state.get("copied_from", np.nan), "run_status": state.get("status", np.nan),
                "pixel_evaluated": _has_column(run_dir / "metrics.csv", "pixel_auroc")})
    return out


def _has_column(csv: Path, column: str):
    """Whether the header of `csv` names `column` (NaN when there is no such file): a run's metrics.csv
    holds `pixel_auroc` when its evaluation computed the pixel metrics; empty there, its test split had
    no masks."""
    try:
        with open(csv) as f:
            return column in f.readline().strip().split(",")
    except OSError:
        return np.nan


DIVERGED = "diverged"
"""run.json status (and metrics.csv `status`) of a run whose training diverged (engine.trainer.Diverged)."""


def read_runs(base, keep_diverged: bool = False) -> pd.DataFrame:
    """results.csv of `base` with each run's records (run_record) and its `regime`; empty when none.

    Runs that diverged (results.csv `status` or run.json status "diverged") are left out unless
    `keep_diverged`: their scores are those of the last good epoch's checkpoint, not of the run as
    planned, so no table, mean or comparison built on this frame counts them; `diverged_runs(base)`
    lists them, and the pages say which they are."""
    base = Path(base)
    res = _read(base / "results.csv", dtype={"normal_class": str})
    if not len(res) or "run" not in res:
        return res
    if "method" not in res:
        res["method"] = "ours"
    recs = pd.DataFrame([run_record(base / "runs" / str(r)) for r in res["run"]], index=res.index)
    res = pd.concat([res, recs], axis=1)
    if not keep_diverged:
        res = res[~_diverged(res)].reset_index(drop=True)
    if "seed" not in res:
        res["seed"] = res.get("cfg_seed", 0)
    rows = res.to_dict("records")
    res["regime"] = [regime(r) for r in rows]
    res["data_regime"] = [regime(r, DATA_FIELDS) for r in rows]
    return res


def _diverged(res: pd.DataFrame) -> pd.Series:
    out = pd.Series(False, index=res.index)
    for col in ("status", "run_status"):
        if col in res:
            out |= res[col].astype(str).eq(DIVERGED)
    return out


def diverged_runs(base) -> list[dict]:
    """The runs under base/runs whose training diverged, by name: {"run", "epoch" (int or None when
    not recorded), "evaluated" (a row of results.csv holds its scores)}; from run.json and from
    results.csv's `status` column (a diverged run need not have been evaluated, nor keep its run.json)."""
    base = Path(base)
    res = read_runs(base, keep_diverged=True)
    rows = res[_diverged(res)] if len(res) and "run" in res else pd.DataFrame(columns=["run"])
    names = {str(r) for r in rows["run"]}
    names |= {d.name for d in sorted((base / "runs").glob("*")) if _json(d / "run.json").get("status") == DIVERGED}
    out = []
    for name in sorted(names):
        epoch = _json(base / "runs" / name / "run.json").get("diverged_epoch")
        out.append({"run": name, "epoch": int(epoch) if isinstance(epoch, (int, float)) and not isinstance(epoch, bool)
                    else None, "evaluated": name in set(res["run"].astype(str)) if "run" in res else False})
    return out


def diverged_text(diverged: list[dict]) -> str:
    """'a (epoch 3), b (epoch not recorded, not evaluated)': the names the pages give."""
    out = []
    for d in diverged:
        what = [f"epoch {d['epoch']}" if d["epoch"] is not None else "epoch not recorded"]
        what += [] if d["evaluated"] else ["not evaluated"]
        out.append(f"{d['run']} ({', '.join(what)})")
    return ", ".join(out)


def weights_label(runs: pd.DataFrame) -> str:
    """What our network's runs used, for a column name: 'random weights', 'imagenet weights', ..."""
    w = sorted(set(runs["weights"].dropna().astype(str))) if "weights" in runs else []
    return (", ".join(w) if w else NOT_RECORDED) + " weights"


def counted(values: pd.Series, unit: str = "run") -> str:
    """'random (all 10 runs)' or 'orthogonal (3 runs), not recorded (10 runs)'."""
    v = values.astype(object).where(values.notna(), NOT_RECORDED).astype(str)
    if not len(v):
        return "none"
    c = {k: int(n) for k, n in v.value_counts().items()}
    if len(c) == 1:
        k, n = next(iter(c.items()))
        return f"{k} (all {n} {unit}{'s' * (n != 1)})"
    return ", ".join(f"{k} ({n} {unit}{'s' * (n != 1)})" for k, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))


def _init(runs: pd.DataFrame) -> str:
    cols = ("init_backbone", "init_perceptual", "init_rest")
    if not len(runs) or not set(cols) <= set(runs.columns):
        return NOT_RECORDED
    text = [NOT_RECORDED if pd.isna(b) else f"ResNet18 {b}, VGG11 {p}, other layers {r}"
            for b, p, r in runs[list(cols)].itertuples(index=False)]
    return counted(pd.Series(text))


def _settings(runs: pd.DataFrame) -> list[str]:
    """Per method, its recorded `settings` (results.csv): 'ocsvm: features raw pixels, nu 0.1'."""
    out = []
    if "settings" not in runs:
        return out
    for method, g in runs.dropna(subset=["settings"]).groupby("method"):
        kv: dict[str, list] = {}
        for s in g["settings"].astype(str):
            for part in s.split(";"):
                k, _, v = part.partition("=")
                kv.setdefault(k, []).append(v)
        shown = []
        for k, vals in kv.items():
            try:
                f = sorted(float(v) for v in vals)
                shown.append(f"{k} {f[0]:g}" if f[0] == f[-1] else f"{k} {f[0]:g} to {f[-1]:g}")
            except ValueError:
                shown.append(f"{k} {' / '.join(dict.fromkeys(vals))}")
        out.append(f"{method}: {', '.join(shown)}")
    return out


NETWORK = ("ours", "ours-lambda0")


def _text(runs: pd.DataFrame, column: str) -> pd.Series:
    """A column as text for `counted` ('0.1', '4'); NaN where absent."""
    if column not in runs:
        return pd.Series([np.nan] * len(runs), dtype=object)
    return runs[column].map(lambda v: np.nan if pd.isna(v) else f"{v:g}" if isinstance(v, (int, float, np.number))
                            else str(v)).astype(object)


def _range(s: pd.Series, unit: str = "") -> str:
    s = pd.to_numeric(s, errors="coerce").dropna()
    if not len(s):
        return NOT_RECORDED
    lo, hi = s.min(), s.max()
    return f"{lo:g}{unit}" if lo == hi else f"{lo:g}{unit} to {hi:g}{unit}"


def _copied(runs: pd.DataFrame) -> str:
    """'6 of 12 runs, from mnist/cpu/runs (6)': the runs a sweep copied from a finished run with the
    same settings in another experiment (run.json "copied_from"); '' when none."""
    src = runs["copied_from"].dropna().astype(str) if "copied_from" in runs else pd.Series(dtype=str)
    if not len(src):
        return ""
    folders = src.map(lambda p: p.rsplit("/", 1)[0]).value_counts()
    return f"{len(src)} of {len(runs)} runs, from " + ", ".join(f"{k} ({n})" for k, n in folders.items())


def elapsed_seconds(start: pd.Series, end: pd.Series) -> float:
    """Seconds covered by the union of the intervals [start, end] (timestamps): invocations that ran
    at the same time count once."""
    total, reach = 0.0, None
    for s, e in sorted(zip(start, end)):
        if reach is None or s > reach:
            total += (e - s).total_seconds()
            reach = e
        elif e > reach:
            total += (e - reach).total_seconds()
            reach = e
    return total


def sweep_span(sweeps: pd.DataFrame) -> str:
    """sweeps.csv in words: the earliest start, the latest end, the elapsed hours (overlapping
    invocations counted once) and, where they overlapped, the wall time summed over invocations."""
    start, end = pd.to_datetime(sweeps["started_utc"]), pd.to_datetime(sweeps["ended_utc"])
    first, last = sweeps["started_utc"].iloc[int(start.argmin())], sweeps["ended_utc"].iloc[int(end.argmax())]
    elapsed, summed = elapsed_seconds(start, end) / 3600, float(sweeps["wall_seconds"].sum()) / 3600
    out = f"{len(sweeps)} invocation(s), first started {first}, last ended {last}, {elapsed:.2f} h elapsed"
    return out + (f" ({summed:.2f} h of wall time summed over invocations that ran at the same time)"
                  if summed - elapsed > 0.005 else "")


def facts(runs: pd.DataFrame, sweeps: pd.DataFrame) -> dict:
    """The facts a page states about its runs, as text, each from the records (see the module doc)."""
    net = runs[runs["weights"].astype(str).isin(["random", "imagenet"])] if "weights" in runs else runs.iloc[:0]
    trained = runs[pd.to_numeric(runs.get("epochs", pd.Series(dtype=float)), errors="coerce").fillna(0) > 0]
    commits = list(dict.fromkeys(runs["commit"].dropna().astype(str))) if "commit" in runs else []
    cfg = {k: trained[f"cfg_{k}"] if f"cfg_{k}" in trained else pd.Series(dtype=object) for k in ("lr", "lr_schedule")}
    f = {
        "n_runs": len(runs),
        "n_network": len(net),
        "n_random": int((net["weights"] == "random").sum()) if len(net) else 0,
        "weights": counted(runs["weights"]) if "weights" in runs else NOT_RECORDED,
        "weights_network": counted(net["weights"]) if len(net) else NOT_RECORDED,
        "init": _init(net),
        "profiles": counted(runs["profile"]) if "profile" in runs else NOT_RECORDED,
        "made_by": made_by(runs),
        "precision": counted(_text(trained, "cfg_precision")),
        "epochs": counted(trained["epochs"].astype(int).astype(str)) if len(trained) else "none trained",
        "lr": counted(pd.Series([f"{lr:g} {sch}" for lr, sch in zip(cfg["lr"], cfg["lr_schedule"])], dtype=object)),
        "batch_size": counted(_text(trained, "cfg_batch_size")),
        "train_limit": counted(_text(trained, "cfg_train_limit").fillna("all")),
        "fit_images": _range(runs.get("fit_images", pd.Series(dtype=float))),
        "seeds": ", ".join(str(s) for s in sorted(set(pd.to_numeric(runs["seed"], errors="coerce").dropna()
                                                         .astype(int)))) if "seed" in runs else NOT_RECORDED,
        "devices": counted(runs["device"]) if "device" in runs else NOT_RECORDED,
        "commits_runs": ", ".join(commits) if commits else f"{NOT_RECORDED} (all {len(runs)} runs)",
        "n_commit_not_recorded": int(runs["commit"].isna().sum()) if commits else 0,
        "commits_sweeps": ", ".join(dict.fromkeys(sweeps["git_commit"].astype(str))) if len(sweeps) else "",
        "versions": "; ".join(f"{k} {counted(runs[k])}" for k in ("python", "torch") if k in runs),
        "machine": counted(runs["machine"]) if "machine" in runs else NOT_RECORDED,
        "cpus": counted(runs["cpus"].astype("Int64").astype(str).replace("<NA>", NOT_RECORDED))
        if "cpus" in runs else NOT_RECORDED,
        "n_shared": int((runs["machine"] == "shared").sum()) if "machine" in runs else 0,
        "heldout": counted(_text(trained, "cfg_heldout_fraction")),
        "encoders": counted(_text(trained[trained["method"].isin(NETWORK)] if "method" in trained else trained,
                                  "encoders")),
        "lambda": counted(_text(trained[trained["method"].isin(NETWORK)] if "method" in trained else trained,
                                "lambda")),
        "settings": _settings(runs),
        "commands": list(dict.fromkeys(portable(c) for c in sweeps["command"].astype(str))) if len(sweeps) else [],
        "unswept": _unswept(runs, sweeps),
        "copied": _copied(runs),
    }
    f["sweeps"], f["timing"] = "", ""
    if len(sweeps):
        f["sweeps"] = sweep_span(sweeps)
    def positive(frame, col):  # aligned with the frame's index even when the column is absent
        v = frame[col] if col in frame else pd.Series(np.nan, index=frame.index)
        return pd.to_numeric(v, errors="coerce").fillna(0) > 0

    t = runs[positive(runs, "train_seconds")]
    t = t[positive(t, "epochs")] if len(t) else t
    if len(t):
        ips = t["fit_images"] * t["epochs"] / t["train_seconds"]
        f["timing"] = (f"{t.train_seconds.mean() / 60:.1f} min of training per run on average "
                       f"({t.train_seconds.min() / 60:.1f} to {t.train_seconds.max() / 60:.1f}), "
                       f"{ips.mean():.0f} training images/s")
    return f


# options whose value is a folder of the machine that ran the command, and what a reader types instead
_PORTABLE = {"--data-root": "$PYRAMID_DATA", "--out": "results"}


def portable(command: str) -> str:
    """`command` as a reader runs it on another machine: the data root as $PYRAMID_DATA, the results
    root as `results` (the folder these pages live in), any other absolute path as <path>."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    out = []
    for i, w in enumerate(words):
        if i and words[i - 1] in _PORTABLE and w.startswith("/"):
            out.append(_PORTABLE[words[i - 1]])
        elif w.startswith("/") and i:
            out.append("<path>")
        else:
            out.append(shlex.quote(w))
    return " ".join(out)


def _unswept(runs: pd.DataFrame, sweeps: pd.DataFrame) -> str:
    """The runs (trained here, not copied) whose commit is no recorded sweep's: the command that made
    them is recorded nowhere; '' when there are none."""
    if "commit" not in runs or not len(runs):
        return ""
    swept = set(sweeps["git_commit"].astype(str)) if len(sweeps) and "git_commit" in sweeps else set()
    copied = runs["copied_from"].notna() if "copied_from" in runs else pd.Series(False, index=runs.index)
    odd = runs[runs["commit"].notna() & ~runs["commit"].astype(str).isin(swept) & ~copied]
    return ", ".join(f"{r} ({c})" for r, c in zip(odd["run"], odd["commit"].astype(str)))


def sorted_classes(values) -> list[str]:
    return sorted(dict.fromkeys(str(v) for v in values), key=class_order)
