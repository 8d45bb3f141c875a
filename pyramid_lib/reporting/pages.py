"""Results pages: each experiment's README.md and figures, and results/README.md, from whatever exists.

`experiment_outputs(...)` is called by the CLI after every sweep; `build_report(out_root)`
(`pyramid-ad report`) rebuilds every experiment's results.csv, comparison.csv (one block per
training regime), figures and page, results/ANALYSIS.md (templates/analysis.md.j2: hand-written
prose, every number a numbers.py call) and the one-page results/README.md from the run folders on
disk, so it can run at any time, also while sweeps are still going.  The pages' text comes from the
Jinja2 templates in templates/ (wording only); every fact about the runs in them (weights,
initialisation, profile, epochs, device, seeds, commits, whether the machine was shared) comes from
the run records (records.py), every table from tables.py and analysis.py, every verdict word from
stats.verdict.  A rebuild from the same run folders gives the same bytes: the pages carry no date
and nothing about the machine that built them.  Nothing here trains or scores.  Nothing outside the
CLI imports reporting."""

from __future__ import annotations

import logging
import os
import shlex
from pathlib import Path

import pandas as pd

from .. import paper
from ..data import registry
from ..data.mvtec import MVTEC_SIZES
from ..errors import ConfigError
from ..experiments.plan import ABLATIONS, plan, plan_frame, record_plan
from ..experiments.sweep import collect
from ..files import atomic_write_csv, atomic_write_text
from . import analysis
from .analysis_page import write_analysis
from .figures import FIGURES, figures
from .records import diverged_runs, diverged_text, facts, portable, read_runs, weights_label
from .regimes import first_regime, in_regime, regimes
from .render import render
from .tables import (
    ORDER,
    TITLES,
    _read,
    ablation_table,
    auroc_table,
    base_profile,
    baseline_runs,
    baselines_table,
    experiment_folders,
    is_subset,
    is_variant,
    md_table,
    mvtec_methods_table,
    mvtec_table,
    no_masks,
    per_class_table,
    planned,
)

log = logging.getLogger(__name__)

ABLATION_LIKE = ABLATIONS


def resume_command(experiment: str, profile: str, base: Path) -> str:
    """The command that runs every planned run: the last one recorded in sweeps.csv without the options
    that narrow it to some runs (--classes, --methods, and --dataset when it names a dataset of the
    default plan), else the default.  For mvtec the categories asked for are the plan: kept as is."""
    sweeps = _read(Path(base) / "sweeps.csv")
    if not len(sweeps):
        return f"pyramid-ad reproduce {experiment} --profile {profile} --data-root <data> --jobs <N>"
    last = str(sweeps["command"].iloc[-1])
    if experiment == "mvtec":
        return portable(last)
    try:
        default_datasets = set(plan_frame(plan(experiment, "quick"))["dataset"])
    except ConfigError:  # not an experiment of ours (a folder someone added): keep every --dataset
        default_datasets = set()
    words, out, skipping = shlex.split(last), [], False
    for i, w in enumerate(words):  # drop the options that narrow the plan: what is left runs every planned run
        if w in ("--classes", "--methods") or (
                w == "--dataset" and i + 1 < len(words) and words[i + 1] in default_datasets):
            skipping = True
            continue
        if skipping and not w.startswith("--"):
            continue
        skipping = False
        out.append(w)
    return portable(" ".join(shlex.quote(w) for w in out))


def status(base: Path, res: pd.DataFrame, command: str) -> dict:
    """Planned runs (plan.csv and the default plan), how many finished, which are missing, and which
    diverged (`diverged_runs`: listed on their own, neither finished nor missing, and left out of
    `res`, so of every table and mean of the page)."""
    plan_ = planned(base)
    done = set(res["run"]) if len(res) and "run" in res else set()
    diverged = diverged_runs(base)
    names = list(plan_["name"]) if len(plan_) else sorted(done | {d["run"] for d in diverged})
    gone = done | {d["run"] for d in diverged}
    return {"done": len(done & set(names)) if names else len(done), "planned": len(names),
            "missing": [n for n in names if n not in gone], "command": command,
            "diverged": diverged, "diverged_names": diverged_text(diverged)}


def _stand_in(plan_: pd.DataFrame) -> str:
    parts = []
    for ds, g in plan_.groupby("dataset"):
        cls = sorted(set(g.normal_class))
        names = [registry.REGISTRY[ds].class_label(c) if ds in registry.REGISTRY else c for c in cls]
        parts.append(f"{ds} classes {', '.join(names)}")
    return "; ".join(parts)


def _few(res: pd.DataFrame, base: Path) -> list[dict]:
    """The MVTec subsets (`tables.is_subset`, e.g. the 25-image `grid`) with their recorded counts."""
    out = []
    for c, g in res.groupby("normal_class") if len(res) else []:
        if not is_subset(c, res):
            continue
        full = MVTEC_SIZES[paper.normalize_class(c, "mvtec")]
        out.append({"category": c, "fit": int(g.fit_images.iloc[0]), "test": int(g.n_test.iloc[0]), "normal":
                    int(g.n_normal.iloc[0]), "anomalous": int(g.n_anomalous.iloc[0]), "full_train": full[0],
                    "full_test": full[1]})
    return out


def _ablation_paper(experiment: str) -> str:
    if experiment == "ablation-lambda":
        return ("The paper (Fig. 5, bottle and carpet) gives no numbers, only that the perceptual loss "
                "'greatly enhanced' the AUC over MSE alone.")
    ssim, acc = paper.ABLATION["ssim"], paper.ABLATION["accuracy"]
    return ("The paper (bottle, carpet): mean SSIM of normal reconstructions below "
            f"{ssim['bottle']['one_or_two_encoders_below']} / {ssim['carpet']['one_or_two_encoders_below']} with "
            f"1-2 encoders, above {ssim['bottle']['four_encoders_above']} / {ssim['carpet']['four_encoders_above']} "
            f"with 4; accuracy below {acc['bottle']['one_or_two_encoders_below']} / "
            f"{acc['carpet']['one_or_two_encoders_below']} with 1-2 encoders, {acc['bottle']['four_encoders']} / "
            f"{acc['carpet']['four_encoders']} with 4; 6 encoders 'pretty much same' as 4 (MVTec, not the classes "
            "above).")


def _pairs_blocks(pairs) -> list[dict]:
    blocks = []
    if pairs:
        blocks.append({"kind": "comparisons", "heading": "",
                       "table": md_table(pd.DataFrame([analysis.row(*p) for p in pairs]))})
    for name, a, b, p in pairs:
        if len(p.per_class) and p.per_class["seed_n"].max() >= 2:
            blocks.append({"kind": "per_class", "heading": "", "name": name, "a": a, "b": b,
                           "table": md_table(analysis.per_class(p))})
    return blocks


def blocks(experiment: str, profile: str, runs: pd.DataFrame, out_root) -> list[dict]:
    """The tables of an experiment's page, each with the caption kind that explains its columns."""
    out: list[dict] = []
    if not len(runs):
        return out
    folder = Path(out_root) / experiment / profile
    sets = analysis.labelled(runs)
    for label, r in sets:
        head = {"heading": f"Runs with {label}" if label else ""}
        if experiment in ("mnist", "fmnist"):
            ours = r[r["method"] == "ours"]
            reg = first_regime(ours)
            base = in_regime(baseline_runs(out_root, base_profile(folder)), reg)
            out.append({**head, "kind": "auroc", "ours": f"ours ({weights_label(ours)})", "profile": profile,
                        "experiment": experiment, "table": md_table(auroc_table(experiment, ours, base))})
            if is_variant(folder):
                out.append({"kind": "variant", "heading": "", "base": base_profile(folder),
                            "experiment": experiment, "table": ""})
                out += _pairs_blocks(analysis.variant_pairs(experiment, profile, ours, out_root))
            else:
                rows = analysis.against_all(experiment, ours, base)
                out.append({"kind": "comparisons", "heading": "", "table": md_table(pd.DataFrame(rows))})
            out.append({"kind": "scores", "heading": "", "table": md_table(per_class_table(
                ours, ("auroc", "auroc_mse", "auroc_perceptual", "auroc_ssim"), 4))})
            out.append({"kind": "rates", "heading": "", "table": md_table(per_class_table(
                ours, ("youden_tpr", "youden_tnr", "heldout_tpr", "heldout_tnr", "ssim_normal")))})
        elif experiment == "mvtec":
            table = mvtec_table(r)
            out.append({**head, "kind": "mvtec", "table": md_table(table), "no_masks": no_masks(r),
                        "not_measured": bool(table.isin(["not measured"]).any().any())})
            reg = first_regime(r)
            base = in_regime(baseline_runs(out_root, base_profile(folder)), reg)
            if len(base) and (base["dataset"] == "mvtec").any():
                out.append({"kind": "mvtec_methods", "heading": "", "profile": profile,
                            "table": md_table(mvtec_methods_table(r, base))})
        elif experiment in ABLATION_LIKE:
            out.append({**head, "kind": "ablation", "paper": _ablation_paper(experiment),
                        "table": md_table(ablation_table(experiment, r))})
            out += _pairs_blocks(analysis.ablation_pairs(experiment, r))
        elif experiment == "baselines":
            reg = first_regime(r, trained_only=True)
            ours = {}
            for ds in sorted(set(r["dataset"])):
                o = read_runs(Path(out_root) / ds / profile)
                o = o[(o["method"] == "ours") & (o["regime"] == reg)] if len(o) and reg else o.iloc[:0]
                if len(o):
                    ours[ds] = o
            out.append({**head, "kind": "baselines", "profile": profile, "settings": facts(r, pd.DataFrame())
                        ["settings"], "table": md_table(baselines_table(r, ours))})
            rows = [x for ds, o in ours.items() for x in analysis.against_all(ds, o, r)]
            if rows:
                out.append({"kind": "comparisons", "heading": "", "table": md_table(pd.DataFrame(rows))})
    return out


def _figures(experiment: str, base: Path, prefix: str) -> list[dict]:
    figs = [{"name": f, "path": f"{prefix}{f}"} for f in FIGURES.get(experiment, ()) if (base / f).is_file()]
    if experiment == "mvtec":
        figs += [{"name": f"{p.parent.name} reconstructions",
                  "path": f"{prefix}runs/{p.parent.name}/reconstructions.png"}
                 for p in sorted(base.glob("runs/*/reconstructions.png"))]
    return figs


def body_context(experiment: str, profile: str, base: Path, out_root, prefix: str = "", analysis_link=None) -> dict:
    """What body.md.j2 needs for one experiment folder."""
    runs = read_runs(base)
    plan_ = planned(base)
    stand_in = _stand_in(plan_) if experiment in ABLATION_LIKE and len(plan_) and (plan_.dataset != "mvtec").any() \
        else ""
    return {"status": status(base, runs, resume_command(experiment, profile, base)),
            "f": facts(runs, _read(base / "sweeps.csv")),
            "stand_in": stand_in, "few": _few(runs, base) if experiment == "mvtec" else None,
            "blocks": blocks(experiment, profile, runs, out_root), "figures": _figures(experiment, base, prefix),
            "analysis": analysis_link}


def _analysis_link(base: Path, out_root) -> str | None:
    """out_root/ANALYSIS.md relative to an experiment's folder; None when there is none."""
    target = Path(out_root) / "ANALYSIS.md"
    return Path(os.path.relpath(target, base)).as_posix() if target.is_file() else None


def write_experiment_readme(experiment: str, profile: str, base: Path, out_root="results") -> Path:
    base = Path(base)
    ctx = body_context(experiment, profile, base, out_root, analysis_link=_analysis_link(base, out_root))
    path = base / "README.md"
    atomic_write_text(path, render("experiment.md.j2", title=TITLES.get(experiment, experiment), profile=profile,
                                   **ctx))
    return path


def comparison(experiment: str, runs: pd.DataFrame) -> pd.DataFrame:
    """comparison.csv: `paper.compare` of each training regime's runs, one block per regime (most runs
    first), its settings in the first column; two regimes are never pooled as seeds of one setting.
    Empty for an experiment the paper has no table for."""
    if experiment not in ("mnist", "fmnist", "mvtec") or not len(runs) or "auroc" not in runs:
        return pd.DataFrame()
    ours = runs[runs["method"] == "ours"] if "method" in runs else runs
    blocks_ = [paper.compare(in_regime(ours, reg).drop(columns=["regime", "data_regime"]), experiment)
               for reg in regimes(ours)]
    return pd.concat([b.assign(regime=str(reg)) for b, reg in zip(blocks_, regimes(ours))], ignore_index=True)[
        ["regime", *blocks_[0].columns]]


def experiment_outputs(experiment: str, profile: str, base: Path, todo=None, out_root="results") -> Path:
    """After a sweep: record the plan, write comparison.csv, draw the figures, write README.md."""
    base = Path(base)
    if todo is not None:
        record_plan(base, todo)
    cmp = comparison(experiment, read_runs(base))
    if len(cmp):
        atomic_write_csv(base / "comparison.csv", cmp)
    try:
        figures(experiment, base, read_runs(base), out_root, profile)
    except Exception as e:  # a figure never costs a results page
        log.warning("figures of %s failed: %s: %s", base, type(e).__name__, e)
    return write_experiment_readme(experiment, profile, base, out_root)


def build_report(out_root="results", refresh: bool = True) -> Path:
    """Rebuild every experiment's results (results.csv, comparison.csv, figures, README.md),
    results/ANALYSIS.md (write_analysis) and results/README.md (the headline comparison, then every
    experiment's section)."""
    out_root = Path(out_root)
    found = experiment_folders(out_root)
    sections = []
    if refresh:
        for exp, _, base in found:
            collect(exp, base)
        write_analysis(out_root)  # before the pages, which link to it
    for exp, prof, base in found:
        if refresh:
            experiment_outputs(exp, prof, base, None, out_root)
        body = render("body.md.j2", **body_context(exp, prof, base, out_root, prefix=f"{exp}/{prof}/"))
        sections.append({"title": TITLES.get(exp, exp), "profile": prof, "link": f"{exp}/{prof}/README.md",
                         "body": body.strip("\n")})
    profiles = sorted({p for e, p, b in found if e in ("mnist", "fmnist") and not is_variant(b)})
    headlines = []
    for p in profiles:
        h = analysis.headline(out_root, p)
        if len(h):
            headlines.append({"profile": p, "table": md_table(h)})
    have = {f[0] for f in found}
    absent = [{"name": e, "command": f"pyramid-ad reproduce {e} --profile "
                                     f"{'quick' if e.startswith('ablation') else 'cpu'}"}
              for e in ORDER if e not in have]
    path = out_root / "README.md"
    atomic_write_text(path, render("index.md.j2", sections=sections, headlines=headlines, absent=absent,
                                   analysis=(out_root / "ANALYSIS.md").is_file()))
    return path
