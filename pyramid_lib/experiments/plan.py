"""The plan of an experiment: which independent runs (Job: name, kind, TrainConfig) re-run a paper item.

Experiments (`EXPERIMENTS`):
    mnist, fmnist        Table III / Table II: one run per normal class
    mvtec                Table IV: one run per category found under <data>/mvtec_ad/ (data/mvtec.py)
    ablation-encoders    Fig. 3-4: 1, 2, 4, 6 encoders on two classes (paper: MVTec bottle, carpet;
                         default here: Fashion-MNIST classes 0 and 4 as a stand-in, `--dataset mvtec`
                         for the real thing)
    ablation-lambda      Fig. 5: lambda 0 (MSE only) and 1 (MSE + perceptual) on the same two classes
    baselines            OC-SVM, KDE, plain AE (L2, SSIM) and our network with lambda = 0, re-run on
                         the same splits (baselines.py); default datasets MNIST and Fashion-MNIST

Layout: results/<experiment>/<profile>/ (or <profile>-<setting><value>... when options such as
--epochs 30 or --lambda 0 change the profile's runs: `variant`, so that they never mix with, or
are silently skipped as, the profile's own finished runs)
    runs/<name>/        one run folder each (engine/trainer.py, engine/evaluate.py, baselines.py)
    results.csv         one row per finished run (the per-run metrics.csv rows, combined)
    comparison.csv      ours beside the paper's numbers (paper.py), where the paper has a table
    sweeps.csv          one row per sweep invocation: command, commit, start/end, runs done/skipped/failed
    *.png, README.md    figures and the results page (reporting/pages.py)

Idempotent and resumable: a run is finished when its metrics.csv exists (written last); a finished
run is never redone nor overwritten.  An interrupted network run resumes from its last complete
epoch; an interrupted baseline is redone (seconds to minutes).  Each run holds an exclusive lock
(`RunDir.hold`: a `filelock` on runs/<name>/.lock) while it works, so two sweeps started at once (or a sweep
and a SLURM array) never train the same run twice: the second one skips it as busy.

Parallelism: `jobs` runs at once on this machine, a fresh process per run
(`concurrent.futures.ProcessPoolExecutor`, spawn, one task per child), each with
cores // jobs torch threads and, on a machine with several GPUs, its own GPU (`gpu_slots`); or
`executor="slurm"`, which submits the same runs as a job array through `submitit`
(`executor="submitit-local"` does the same with submitit's local executor, for testing without
a cluster)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd

from .. import baselines as bl
from ..config import PROFILES, RUN_FIELDS, TrainConfig, get_profile
from ..data import registry
from ..engine.run_dir import RunDir, check_compatible
from ..errors import CheckpointError, ConfigError
from ..files import atomic_write_csv, atomic_write_json, read_json

# One experiment per dataset with a table in the paper (data/registry.py), named after it.
MAIN = {name: (name, registry.get(name).classes) for name in registry.with_paper_table()}


ABLATIONS = ("ablation-encoders", "ablation-lambda")


EXPERIMENTS = (*MAIN, *ABLATIONS, "baselines")


ABLATION_ENCODERS = (1, 2, 4, 6)


ABLATION_LAMBDAS = (0.0, 1.0)


BASELINE_DATASETS = ("mnist", "fmnist")


@dataclass(frozen=True)
class Job:
    """One independent run of a sweep: a network run (kind "pyramid") or a baseline method."""

    name: str
    kind: str  # "pyramid" or one of baselines.METHODS other than ours-lambda0
    cfg: TrainConfig
    method: str  # how tables name it: "ours", "ours-lambda0", "ocsvm", ...


def _all_classes(dataset: str, data_root=None, found: bool = False) -> tuple[str, ...]:
    """Every class of a registered dataset; with `found`, only those its data root holds where the
    registry can tell (`Dataset.present`: MVTec AD's categories found; DataError when none is).
    ConfigError for a dataset without classes (a folder: name them with --classes)."""
    known = registry.get(dataset)
    if found and known.present is not None:
        return known.present(data_root)
    if not known.classes:
        raise ConfigError(f"--dataset {dataset}: has no list of classes; name them with --classes")
    return known.classes


def _safe(c) -> str:
    return str(c).replace("/", "_").replace(" ", "_")


def plan(experiment: str, profile: str = "quick", classes=None, weights: str = "random", data_root=None,
         download: bool = True, datasets=None, methods=None, seeds=None, **overrides) -> list[Job]:
    """The independent runs of an experiment (EXPERIMENTS), each config validated (no data is read
    here).  `weights` may be a request (auto, none) or resolved; `overrides` are TrainConfig fields
    set on top of the profile (None: the profile's).  `seeds`: a list of seeds, one run of each
    setting per seed, named `<name>-s<seed>`, except the deterministic baselines
    (`baselines.DETERMINISTIC`: OC-SVM, KDE), fitted once, with the first seed's split; None:
    one run per setting with the `seed` override (default 0), named without a suffix.
    Raises ConfigError for an unknown experiment, profile, baseline method or a bad setting
    (an empty or repeated list of seeds included), DataError for an unknown class."""
    if experiment not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {experiment!r}; choose one of {', '.join(EXPERIMENTS)}")
    base = {k: v for k, v in overrides.items() if v is not None}
    get_profile(profile)  # an unknown profile fails here, before any class is planned

    def cfg(dataset, c, **kw):
        return TrainConfig.from_profile(profile, dataset=dataset, normal_class=str(c), weights=weights,
                                        data_root=data_root, download=download, **{**base, **kw}).validate()

    if datasets is not None and isinstance(datasets, str):
        datasets = [datasets]
    if seeds is not None:
        seeds = list(seeds)
        if not seeds or len(set(seeds)) != len(seeds):
            raise ConfigError(f"--seeds: give one or more different seeds, got {seeds}")
        if "seed" in base:
            raise ConfigError("--seed and --seeds: give one of them")
        jobs = []
        for job in plan(experiment, profile, classes, weights, data_root, download, datasets, methods, **base):
            for seed in seeds[:1] if job.kind in bl.DETERMINISTIC else seeds:
                jobs.append(replace(job, name=f"{job.name}-s{seed}", cfg=with_overrides(job.cfg, seed=seed)))
        return jobs
    jobs: list[Job] = []
    if experiment in MAIN:
        dataset = (datasets or [MAIN[experiment][0]])[0]
        for c in classes or _all_classes(dataset, data_root, found=True):
            jobs.append(Job(f"{dataset}-{_safe(c)}", "pyramid", cfg(dataset, c), "ours"))
    elif experiment in ABLATIONS:
        for dataset in datasets or ["fmnist"]:
            # Fashion-MNIST's 0 and 4 stand in for the paper's bottle and carpet (data/registry.py)
            for c in classes or registry.get(dataset).ablation_classes or _all_classes(dataset)[:2]:
                if experiment == "ablation-encoders":
                    for k in ABLATION_ENCODERS:
                        jobs.append(Job(f"{dataset}-{_safe(c)}-enc{k}", "pyramid", cfg(dataset, c, encoders=k),
                                        f"ours, {k} encoder{'s' * (k > 1)}"))
                else:
                    for lambda_ in ABLATION_LAMBDAS:
                        jobs.append(Job(f"{dataset}-{_safe(c)}-lambda{lambda_:g}", "pyramid",
                                        cfg(dataset, c, lambda_=lambda_), "ours" if lambda_ else "ours-lambda0"))
    else:  # baselines: the cheap ones first, then the autoencoders, then our network with lambda = 0
        methods = [bl.check_method(m) for m in (methods or bl.METHODS)]
        for m in sorted(methods, key=bl.METHODS.index):
            for dataset in datasets or BASELINE_DATASETS:
                for c in classes or _all_classes(dataset):
                    kind = "pyramid" if m == "ours-lambda0" else m
                    extra = {"lambda_": 0.0} if m == "ours-lambda0" else bl.config_overrides(m, dataset)
                    jobs.append(Job(f"{dataset}-{_safe(c)}-{m}", kind, cfg(dataset, c, **extra), m))
    return jobs


_VARIANT_LABELS = {"lambda_": "lambda", "input_size": "size", "heldout_fraction": "heldout"}


_VARIANT_FIELDS = ("epochs", "encoders", "pyramid", "lambda_", "input_size", "seed", "lr", "batch_size", "train_limit",
                   "weight_decay", "heldout_fraction", "test_limit", "fast", "precision")


def variant_settings(todo: list[Job], plain: list[Job]) -> dict:
    """The settings in which the planned runs differ from the same plan without overrides, with the
    planned value: {'epochs': 30}; empty for a plain profile."""
    return {k: getattr(todo[0].cfg, k) for k in _VARIANT_FIELDS
            if any(getattr(j.cfg, k) != getattr(p.cfg, k) for j, p in zip(todo, plain))}


def variant(profile: str, changed: dict) -> str:
    """The results folder name of a sweep: the profile's name, plus `-<setting><value>` for each
    setting in `changed` (e.g. `cpu-epochs30`, `quick-lambda0-seed1`, `quick-nofast`).  The name
    is for people; what a folder varies is read from its variant.json (`read_variant`)."""
    def part(k, v):
        if isinstance(v, bool):
            return k if v else f"no{k}"
        return _VARIANT_LABELS.get(k, k) + ("none" if v is None else f"{v:g}" if isinstance(v, float) else str(v))

    return "-".join([profile, *(part(k, v) for k, v in changed.items())])


def plan_and_dir(experiment: str, profile: str = "quick", classes=None, out_root="results", weights: str = "random",
                 data_root=None, download: bool = True, datasets=None, methods=None, seeds=None,
                 **overrides) -> tuple[list[Job], Path, dict]:
    """A sweep's runs, where it writes (out_root/<experiment>/<variant>) and the settings its
    overrides change (`variant_settings`; empty for the profile's own folder)."""
    todo = plan(experiment, profile, classes, weights, data_root, download, datasets, methods, seeds, **overrides)
    plain = plan(experiment, profile, classes, weights, data_root, download, datasets, methods, seeds)
    changed = variant_settings(todo, plain)
    return todo, Path(out_root) / experiment / variant(profile, changed), changed


VARIANT_FILE = "variant.json"


def record_variant(base, profile: str, changed: dict) -> None:
    """Write base/variant.json, {"profile": ..., "changed": {...}}, for a folder whose runs change some of
    the profile's settings (nothing for the profile's own folder): the pages compare it with the
    profile's folder in those settings only."""
    if changed:
        atomic_write_json(Path(base) / VARIANT_FILE, {"profile": profile, "changed": changed})


def read_variant(base) -> tuple[str, dict]:
    """(the profile, the settings changed) of a results folder: from its variant.json, else (its name, {})
    for a profile's own folder.  Raises ConfigError for a folder named neither by a profile nor by a
    variant.json (made before sweeps recorded their variant): what it varies is not guessed from its name."""
    base = Path(base)
    if (base / VARIANT_FILE).is_file():
        record = read_json(base / VARIANT_FILE)
        return record["profile"], dict(record["changed"])
    if base.name not in PROFILES:
        raise ConfigError(f"{base}: a results folder whose settings are not recorded (no {VARIANT_FILE}; its name is "
                          f"no profile's: {', '.join(PROFILES)}); run python scripts/migrate_run_records.py "
                          f"{base.parent.parent} once, or remove the folder")
    return base.name, {}


def check_finished_runs(base: Path, todo: list[Job]) -> None:
    """Refuse a sweep whose planned runs were finished before with other settings (another
    --weights, a profile that changed, a baseline's tuned settings): skipping them would report those settings as these.
    Raises ConfigError naming the run and the settings that differ."""

    for j in todo:
        run_dir = base / "runs" / j.name
        if not RunDir(run_dir).evaluated or not (run_dir / "config.json").is_file():
            continue
        try:
            config = read_json(run_dir / "config.json")
            saved = asdict(TrainConfig.from_dict(config))  # file keys, defaults
            check_compatible(saved, j.cfg, run_dir, names=(*RUN_FIELDS, "epochs", "test_limit", "fast"))
            # an OC-SVM's or KDE's settings (and, before they fitted all images, their subsample) are
            # not TrainConfig fields: a run fitted otherwise, or before they were recorded, is refused
            fitted, want = config.get("baseline_settings"), bl.settings(j.cfg.dataset, j.kind)
            if j.kind in bl.SKLEARN_METHODS and fitted != want:
                raise ValueError(f"{run_dir}: fitted with other baseline settings ({fitted} there, {want} here)")
        except (CheckpointError, ValueError, OSError) as e:
            raise ConfigError(f"{str(e).rstrip('.')}. It is finished, so this sweep would skip it and report its "
                              "settings as yours (remove the run folder to redo it)") from None


def with_overrides(cfg: TrainConfig, **kw) -> TrainConfig:
    """`cfg` with the fields in `kw` changed, validated (ConfigError naming the flag)."""
    return replace(cfg, **kw).validate()


def plan_frame(todo) -> pd.DataFrame:
    """One row per planned run: name, method, dataset, normal_class, encoders, lambda, seed."""
    return pd.DataFrame([{"name": j.name, "method": j.method, "dataset": j.cfg.dataset,
                          "normal_class": j.cfg.normal_class, "encoders": j.cfg.encoders, "lambda": j.cfg.lambda_,
                          "seed": j.cfg.seed}
                         for j in todo])


def read_plan(base) -> pd.DataFrame:
    """The runs recorded in base/plan.csv by sweeps (empty when there is none)."""
    path = Path(base) / "plan.csv"
    return pd.read_csv(path, dtype={"normal_class": str}) if path.is_file() else pd.DataFrame()


def record_plan(base, todo) -> None:
    """Add a sweep's runs to base/plan.csv (what the results page counts as planned)."""
    base = Path(base)
    old = read_plan(base)
    new = plan_frame(todo)
    if len(old):
        new = pd.concat([old, new], ignore_index=True).drop_duplicates("name", keep="last")
    atomic_write_csv(base / "plan.csv", new)
