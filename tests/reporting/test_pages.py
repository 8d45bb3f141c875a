"""Results pages built from run records (reporting.pages, records): facts from run.json/config.json,
'not recorded' where a run lacks them, column names from the weights used, seeds as mean ± s.d.,
every re-run baseline in the headline, verdict words only from intervals, byte-identical rebuilds."""

from __future__ import annotations

import re
from importlib import resources

import numpy as np
import pandas as pd
import pytest
from report_fixtures import OURS, QUIET, SHARED, make_run, results_tree, write_plan

from pyramid_lib.errors import ConfigError
from pyramid_lib.experiments.sweep import collect
from pyramid_lib.reporting.pages import build_report
from pyramid_lib.reporting.records import read_runs, shared, sweep_span
from pyramid_lib.reporting.regimes import regimes
from pyramid_lib.reporting.stats import HIGHER, LOWER, NO_DIFFERENCE


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = results_tree(tmp_path_factory.mktemp("pages"))
    build_report(out)
    return out


def page(out, exp, prof="cpu") -> str:
    return (out / exp / prof / "README.md").read_text()


def table_rows(text: str, first: str, header: str = "") -> list[list[str]]:
    """The rows starting with `first` of the first table whose header line starts with `header`."""
    if header:
        text = text[text.index(header):].split("\n\n")[0]
    return [[c.strip() for c in line.strip("|").split("|")]
            for line in text.splitlines() if line.startswith(f"| {first}")]


@pytest.mark.parametrize("machine, expected", [(SHARED, "shared"), (QUIET, "not shared"), ({}, "not recorded"),
                                               (None, "not recorded"), ({"torch_threads": 2, "load_end": [2.0]},
                                                                        "not shared")])
def test_machine_shared_from_the_load_average_against_the_runs_threads(machine, expected):
    assert shared(machine) == expected


def test_facts_come_from_the_records_and_missing_ones_say_not_recorded(built):
    mn = page(built, "mnist")
    assert "seeds: 0, 1, 2" in mn and "Runs: 9" in mn
    assert "ResNet18 orthogonal, VGG11 orthogonal, other layers orthogonal (all 9 runs)" in mn
    assert "shared (3 runs)" in mn and "not shared (6 runs)" in mn  # seed 0 ran on a loaded machine
    assert "runs on a shared machine: their times are upper bounds" in mn
    assert "0.003 cosine (all 9 runs)" in mn and "Epochs trained: 6 (all 9 runs)" in mn
    fm = page(built, "fmnist")
    assert "ResNet18 imagenet, VGG11 imagenet, other layers orthogonal (2 runs), not recorded (1 run)" in fm
    assert "not shared (2 runs), not recorded (1 run)" in fm and "upper bounds" not in fm
    assert "c0ffee; not recorded (1 run)" in fm
    for text in (mn, fm, page(built, "baselines"), (built / "README.md").read_text()):
        assert "orthogonally initialised" not in text and "2 cores were shared" not in text
        assert "trains 10 epochs" not in text and "UTC" not in text.split("## How")[0]


def test_column_names_follow_the_weights_the_runs_used(built):
    assert "| class | ours (imagenet weights) | runs |" in page(built, "fmnist")
    assert "| class | ours (random weights) | runs |" in page(built, "mnist")
    assert "random weights" not in page(built, "fmnist").split("## How")[0]


def test_per_class_cells_are_mean_and_sd_over_seeds_and_blank_sd_for_one_seed(built):
    rows = {r[0]: r for r in table_rows(page(built, "mnist"), "", "| class | ours")}
    vals = [OURS[("1", s)] for s in range(3)]
    assert rows["1"][1] == f"{np.mean(vals):.4f} ± {np.std(vals, ddof=1):.4f}" and rows["1"][2] == "3"
    assert rows["1"][5] == f"{OURS[('1', 0)] + 0.001:.4f}"  # OC-SVM, fitted once: no ±
    fm = {r[0]: r for r in table_rows(page(built, "fmnist"), "", "| class | ours")}
    assert fm["0"][1] == "0.9300"


def test_the_headline_pairs_ours_with_the_paper_and_every_re_run_baseline(built):
    index = (built / "README.md").read_text()
    rows = table_rows(index.split("## Headline")[1].split("##")[0], "mnist")
    assert [r[2] for r in rows] == ["paper Ours (Table III)", "ocsvm (re-run)", "ae-l2 (re-run)",
                                    "ours-lambda0 (re-run)"]
    by = {r[2]: r for r in rows}
    header = [c.strip() for c in index.split("## Headline")[1].split("\n| dataset")[1].split("\n")[0].split("|")]
    col = {name: i for i, name in enumerate(header) if name}  # cell 0 of a row is the dataset
    assert by["ae-l2 (re-run)"][col["across classes"]] == HIGHER  # 0.051 above on every class
    assert by["ae-l2 (re-run)"][col["verdict (over seeds)"]] == HIGHER
    assert by["ae-l2 (re-run)"][col["A - B [95% CI over seeds]"]].endswith("(3 seeds)")
    assert by["ae-l2 (re-run)"][col["seed s.d. A / B"]] != ""  # three seeds on both sides: the seed s.d.
    assert by["ocsvm (re-run)"][col["seed s.d. A / B"]] == ""  # fitted once: no seed spread
    assert by["ours-lambda0 (re-run)"][col["across classes"]] == NO_DIFFERENCE


def test_verdict_words_appear_only_in_verdict_columns(built):
    for path in built.rglob("README.md"):
        text = path.read_text()
        assert not re.search(r"\bbeats?\b|as the paper says|\*\*missed\*\*|does \*\*not\*\*", text), path
        for line in text.splitlines():
            if line.startswith("|") and line.rstrip("|").strip().endswith((HIGHER, LOWER)):
                cells = [c.strip() for c in line.strip("|").split("|")]
                assert cells[-1] in (HIGHER, LOWER)  # the verdict column, never prose


def two_regimes(base):
    """Two classes, each with one run of the earlier regime (10 epochs, constant lr) and two seeds of today's."""
    for c, a in (("0", 0.99), ("1", 0.98)):
        make_run(base, f"mnist-{c}", cls=c, auroc=a, epochs=10, lr=1e-3, lr_schedule="constant", init=False)
        for s in range(2):
            make_run(base, f"mnist-{c}-s{s}", cls=c, seed=s, auroc=a - 0.1, machine=QUIET)


def test_comparison_csv_holds_one_block_per_regime_never_pooled(tmp_path):
    base = tmp_path / "results" / "mnist" / "cpu"
    two_regimes(base)
    build_report(tmp_path / "results")
    cmp = pd.read_csv(base / "comparison.csv", dtype={"class": str})
    assert cmp["regime"].nunique() == 2
    for reg, g in cmp.groupby("regime", sort=False):
        rows = g[g["class"].isin(["0", "1"])]
        assert set(rows["n_runs"]) == ({1} if "epochs 10" in reg else {2})  # never 3: no pooling
    first = cmp[cmp["regime"] == cmp["regime"].iloc[0]]
    assert "epochs 6" in first["regime"].iloc[0]  # most runs first
    assert first.loc[first["class"] == "0", "ours"].iloc[0] == pytest.approx(0.89)


def test_committed_comparison_csvs_keep_regimes_apart():
    """The committed mnist/fmnist comparison.csv: each block's per-class runs are the runs of one regime
    (the page's table), and its mean row is the page's mean."""
    from helpers import REPO

    from pyramid_lib.reporting.regimes import in_regime
    from pyramid_lib.reporting.stats import class_mean
    for ds in ("mnist", "fmnist"):
        base = REPO / "results" / ds / "cpu"
        if not (base / "comparison.csv").is_file():
            pytest.skip("no committed results/ in this checkout")
        cmp = pd.read_csv(base / "comparison.csv", dtype={"class": str})
        assert "regime" in cmp, f"{ds}: comparison.csv pools every regime"
        runs = read_runs(base)
        runs = runs[runs["method"] == "ours"]
        for reg in regimes(runs):
            block = cmp[cmp["regime"] == str(reg)].set_index("class")
            mine = in_regime(runs, reg)
            assert block.at["mean", "ours"] == pytest.approx(class_mean(mine).mean)
            n = mine.groupby("normal_class").size()
            assert all(block.at[c, "n_runs"] == n[c] for c in n.index)


def test_a_sweep_span_counts_overlapping_invocations_once():
    sweeps = pd.DataFrame({"started_utc": ["2026-11-30T14:04:47+00:00", "2026-11-30T14:04:37+00:00"],
                           "ended_utc": ["2026-11-30T14:27:50+00:00", "2026-11-30T14:28:27+00:00"],
                           "wall_seconds": [1383.6, 1430.1]})
    text = sweep_span(sweeps)
    assert "first started 2026-11-30T14:04:37+00:00" in text and "last ended 2026-11-30T14:28:27+00:00" in text
    assert "0.40 h elapsed" in text and "0.78 h of wall time summed" in text


def test_committed_pages_state_the_sweeps_span_their_records_give():
    from helpers import REPO
    for sweeps in sorted((REPO / "results").glob("*/*/sweeps.csv")):
        page_ = (sweeps.parent / "README.md").read_text()
        assert sweep_span(pd.read_csv(sweeps)) in page_, sweeps


def test_mvtec_mean_row_is_the_one_comparison_csv_holds(built):
    cmp = pd.read_csv(built / "mvtec" / "cpu" / "comparison.csv").set_index("category")
    mean = {r[0]: r for r in table_rows(page(built, "mvtec"), "mean")}["mean"]
    assert mean[1].split(" [")[0] == f"{cmp.at['mean', 'ours_tpr']:.3f}"
    assert mean[3] == f"{cmp.at['mean', 'paper_tpr']:.3f}" and mean[5] == f"{cmp.at['mean', 'tpr_difference']:+.3f}"
    assert cmp.at["mean", "paper_tpr"] == pytest.approx((0.86 + 0.84) / 2)  # the categories we ran, not all 15


def test_the_mvtec_page_sets_the_re_run_autoencoders_beside_ours_and_the_papers_cell(built):
    text = page(built, "mvtec")
    rows = {(r[0], r[1]): r for r in table_rows(text, "bottle", "| category | method |")}
    assert ("bottle", "ours") in rows and ("bottle", "ae-l2") in rows, rows
    ours, ae = rows[("bottle", "ours")], rows[("bottle", "ae-l2")]
    assert ours[-2:] == ["0.84", "1.00"] and ae[-2:] == ["0.70", "0.89"]  # Table IV: Ours, AE L2 on bottle
    assert ae[2] == "2" and ae[4].startswith("0.900")  # 2 seeds; Youden TPR
    assert ("grid (subset)", "ours") in {(r[0], r[1]) for r in table_rows(text, "grid", "| category | method |")}


def test_a_category_scored_on_fewer_test_images_than_mvtec_ad_has_is_marked_a_subset(built):
    text = page(built, "mvtec")
    assert "**`grid` is a subset of MVTec AD here:**" in text and "MVTec AD: 78)" in text
    assert "`bottle` is a subset" not in text
    cats = [r[0] for r in table_rows(text, "", "| category | ours_tpr |")[1:]]
    assert "grid (subset)" in cats and "bottle" in cats


def test_rebuilding_gives_the_same_bytes(built):
    before = {p: p.read_bytes() for p in built.rglob("*") if p.suffix in (".md", ".csv")}
    build_report(built)
    after = {p: p.read_bytes() for p in built.rglob("*") if p.suffix in (".md", ".csv")}
    assert before == after


def test_runs_of_two_regimes_are_never_pooled_as_seeds(tmp_path):
    base = tmp_path / "results" / "mnist" / "cpu"
    two_regimes(base)
    collect("mnist", base)
    write_plan(base)
    assert len(regimes(read_runs(base))) == 2
    build_report(tmp_path / "results")
    text = page(tmp_path / "results", "mnist")
    assert "### Runs with epochs 10, lr 0.001, lr_schedule constant" in text
    assert "### Runs with epochs 6, lr 0.003, lr_schedule cosine" in text
    old, new = (text.split(f"### Runs with epochs {e}")[1].split("###")[0] for e in (10, 6))
    assert table_rows(old, "0", "| class | ours")[0][1:3] == ["0.9900", "1"]
    assert table_rows(new, "0", "| class | ours")[0][1:3] == ["0.8900 ± 0.0000", "2"]


def test_a_page_says_which_runs_were_copied_from_another_experiment(tmp_path):
    import json
    base = tmp_path / "results" / "ablation-lambda" / "cpu"
    for c in ("0", "4"):
        for lam in (0.0, 1.0):
            d = make_run(base, f"fmnist-{c}-lambda{lam:g}", dataset="fmnist", cls=c, lambda_=lam,
                         method="ours" if lam else "ours-lambda0", machine=QUIET)
            if lam:
                state = json.loads((d / "run.json").read_text())
                state["copied_from"] = f"fmnist/cpu/runs/fmnist-{c}-s0"
                (d / "run.json").write_text(json.dumps(state))
    collect("ablation-lambda", base)
    write_plan(base)
    build_report(tmp_path / "results")
    assert "(run.json \"copied_from\"; the same run, so its numbers are that run's): 2 of 4 runs, from " \
           "fmnist/cpu/runs (2)" in page(tmp_path / "results", "ablation-lambda")
    assert "copied" not in page(tmp_path / "results", "ablation-lambda").split("## How")[0]


def test_templates_are_package_data():
    names = {p.name for p in resources.files("pyramid_lib.reporting").joinpath("templates").iterdir()}
    assert {"experiment.md.j2", "index.md.j2", "body.md.j2", "captions.md.j2"} <= names
    import tomllib
    from helpers import REPO
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "templates/*.j2" in data["pyramid_lib.reporting"]


def test_a_variant_pairs_with_the_base_runs_that_differ_only_in_the_settings_it_records(tmp_path):
    """What a variant folder changes is its variant.json's, not its name's: the same folder recorded as
    changing the epochs and the learning rate pairs with the base runs of other epochs and rates too;
    a folder with neither a profile's name nor a variant.json is refused, naming the migration."""
    from pyramid_lib.experiments.plan import record_variant
    from pyramid_lib.reporting.analysis import variant_pairs

    out = tmp_path / "results"
    base, longer = out / "mnist" / "cpu", out / "mnist" / "cpu-epochs20"
    for c, a in (("0", 0.90), ("1", 0.80)):
        make_run(base, f"mnist-{c}", cls=c, auroc=a)  # epochs 6, cosine 3e-3
        make_run(base, f"mnist-{c}-old", cls=c, auroc=0.5, epochs=10, lr=1e-3, lr_schedule="constant")
        make_run(longer, f"mnist-{c}", cls=c, auroc=a + 0.03, epochs=20)
    collect("mnist", base)
    collect("mnist", longer)
    with pytest.raises(ConfigError, match="variant.json.*migrate_run_records.py"):
        variant_pairs("mnist", "cpu-epochs20", read_runs(longer), out)
    record_variant(longer, "cpu", {"epochs": 20})
    pairs = variant_pairs("mnist", "cpu-epochs20", read_runs(longer), out)
    assert len(pairs) == 1  # not with the lr 1e-3 runs: the folder changes only the epochs
    name, a, b, p = pairs[0]
    assert (a, b) == ("cpu-epochs20", "cpu") and p.per_class["diff"].to_numpy() == pytest.approx([0.03, 0.03])
    record_variant(longer, "cpu", {"epochs": 20, "lr": 1e-3, "lr_schedule": "constant"})
    assert len(variant_pairs("mnist", "cpu-epochs20", read_runs(longer), out)) == 2  # now with those as well


def test_a_folder_without_finished_runs_says_so_and_links_only_what_exists(tmp_path):
    (tmp_path / "results" / "mnist" / "cpu" / "runs").mkdir(parents=True)
    index = build_report(tmp_path / "results").read_text()
    text = page(tmp_path / "results", "mnist")
    assert "No finished runs yet." in text and "0 of 10 planned runs finished" in text
    assert "ANALYSIS.md" not in text + index and "## How these results were made" not in text


def test_baselines_pair_only_with_runs_of_the_same_training_and_data_settings(tmp_path):
    from pyramid_lib.reporting.analysis import headline

    out = tmp_path / "results"
    mn, base = out / "mnist" / "cpu", out / "baselines" / "cpu"
    for c in ("0", "1", "2"):
        make_run(mn, f"mnist-{c}-s0", cls=c, auroc=0.9, train_limit=4000)
        make_run(base, f"mnist-{c}-ocsvm", cls=c, method="ocsvm", auroc=0.5)  # all training normals
        make_run(base, f"mnist-{c}-ocsvm-s0", cls=c, method="ocsvm", auroc=0.8, train_limit=4000)
        make_run(base, f"mnist-{c}-ae-l2", cls=c, method="ae-l2", auroc=0.7, epochs=10)  # another regime
    collect("mnist", mn)
    collect("baselines", base)
    rows = headline(out, "cpu").set_index("B")
    assert list(rows.index) == ["paper Ours (Table III)", "ocsvm (re-run)"]
    assert rows.at["ocsvm (re-run)", "B mean"] == "0.8000"
    # the per-class figure draws the same pairs: no bar of another regime's baseline beside ours
    from pyramid_lib.reporting.figures import class_bar_groups

    groups = dict(class_bar_groups("mnist", read_runs(mn), out, "cpu"))
    assert list(groups) == ["ours", "ocsvm re-run"] and groups["ocsvm re-run"]["auroc"].eq(0.8).all()


def test_diverged_runs_are_named_with_their_epoch_and_left_out_of_every_mean(tmp_path):
    """One evaluated diverged run (results.csv status "diverged", AUROC 0.10 from its last good epoch)
    and one that was never evaluated: both named with their epochs, neither averaged in."""
    import json

    from pyramid_lib.reporting.analysis_page import analysis_text
    from pyramid_lib.reporting.records import diverged_runs

    out = tmp_path / "results"
    base = out / "mnist" / "cpu"
    for (c, s), a in OURS.items():
        make_run(base, f"mnist-{c}-s{s}", cls=c, seed=s, auroc=a, machine=QUIET, status="finished")
    bad = make_run(base, "mnist-0-s3", cls="0", seed=3, auroc=0.10, machine=QUIET, status="diverged")
    never = make_run(base, "mnist-1-s3", cls="1", seed=3, machine=QUIET)
    (never / "metrics.csv").unlink()  # training stopped; evaluate was never run
    for d, epoch in ((bad, 4), (never, 2)):
        state = json.loads((d / "run.json").read_text())
        (d / "run.json").write_text(json.dumps({**state, "status": "diverged", "diverged_epoch": epoch}))
    collect("mnist", base)
    write_plan(base, extra=["mnist-1-s3"])
    assert "diverged" in set(pd.read_csv(base / "results.csv")["status"])  # the row is in results.csv
    assert [d["run"] for d in diverged_runs(base)] == ["mnist-0-s3", "mnist-1-s3"]
    assert "mnist-0-s3" not in set(read_runs(base)["run"]) and len(read_runs(base, keep_diverged=True)) == 10

    build_report(out)
    text = page(out, "mnist")
    assert "**Diverged: 2 run(s)**: mnist-0-s3 (epoch 4), mnist-1-s3 (epoch 2, not evaluated)." in text
    assert "left out of every table, mean" in text
    assert "Status: 9 of 11 planned runs finished" in text
    missing = [ln for ln in text.splitlines() if ln.startswith("Missing")]
    assert not any("mnist-0-s3" in ln or "mnist-1-s3" in ln for ln in missing)
    rows = {r[0]: r for r in table_rows(text, "", "| class | ours")}
    vals = [OURS[("0", s)] for s in range(3)]
    assert rows["0"][1] == f"{np.mean(vals):.4f} ± {np.std(vals, ddof=1):.4f}" and rows["0"][2] == "3"
    assert "Diverged: 2 run(s)" in (out / "README.md").read_text()  # the index carries each section's line
    note = analysis_text(out, source="Numbers.")
    assert note.startswith("Numbers.")
    assert "left out of every number above" in note
    assert "mnist/cpu: mnist-0-s3 (epoch 4), mnist-1-s3 (epoch 2, not evaluated)" in note


def test_a_baseline_whose_tuning_chose_its_learning_rate_pairs_with_our_runs(tmp_path):
    """An autoencoder trained at the learning rate its validation tuning chose (config.json
    `baseline_settings`) is compared with our runs of the same regime otherwise; one trained at
    another rate without such a record is a run of another regime and is not."""
    import json

    from pyramid_lib.reporting.regimes import first_regime, in_regime

    ours, base = tmp_path / "mnist" / "cpu", tmp_path / "baselines" / "cpu"
    make_run(ours, "mnist-0", cls="0")
    tuned = make_run(base, "mnist-0-ae-l2-s0", cls="0", method="ae-l2", lr=0.01)
    cfg = json.loads((tuned / "config.json").read_text())
    (tuned / "config.json").write_text(json.dumps({**cfg, "baseline_settings": {"lr": 0.01}}))
    make_run(base, "mnist-0-ae-ssim-s0", cls="0", method="ae-ssim", lr=0.01)  # no tuning record
    make_run(base, "mnist-0-ae-ssim-s1", cls="0", method="ae-ssim", seed=1, epochs=10)
    collect("mnist", ours)
    collect("baselines", base)
    kept = in_regime(read_runs(base), first_regime(read_runs(ours)))
    assert sorted(kept["run"]) == ["mnist-0-ae-l2-s0"]
