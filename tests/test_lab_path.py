"""LAB.md and the README's laptop-profile time are rendered from benchmarks/results-lab-times.csv,
which benchmarks/lab_times.py writes by executing the lab path's notebooks: no time typed by hand."""

from __future__ import annotations

import re

import pytest
from helpers import REPO, load_benchmark

lab = load_benchmark("lab_times")


def test_lab_md_its_table_and_the_readme_are_rendered_from_the_measurements():
    rows = lab.read_rows()
    for path, text in lab.render(rows).items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.relative_to(REPO)} is not what `python benchmarks/lab_times.py --render-only` writes from "
            f"{lab.CSV.name}")


def test_every_step_of_the_lab_path_was_measured_with_its_machine():
    rows = lab.read_rows()
    for profile in ("laptop", "quick"):
        got = {r["notebook"]: r for r in rows if r["profile"] == profile}
        assert set(got) == {name for name, _, _ in lab.LAB_PATH}, profile
        for r in got.values():
            assert r["ok"] == "True" and float(r["seconds"]) > 0, r
            assert r["processor"] and int(r["cores"]) >= 1 and int(r["torch_threads"]) >= 1, r
            assert r["load_before"] == "n/a" or float(r["load_before"]) >= 0, r
            assert "real mnist" in r["data"] or r["notebook"] in ("01_architecture", "05_mvtec"), r


def test_the_readme_links_lab_md_first_and_takes_its_laptop_time_from_the_csv():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "](LAB.md)" in readme.split("```")[0], "LAB.md is linked before the first code block"
    assert "about a minute per class" not in readme
    spans = lab.spans(readme)
    assert ("laptop", "03_mnist") in spans and "<!--" not in readme
    row = next(r for r in lab.read_rows() if (r["profile"], r["notebook"]) == ("laptop", "03_mnist"))
    assert f"executed in {lab.fmt_time(float(row['seconds']))} on a shared" in readme


def test_a_span_without_a_measurement_is_an_error_not_a_blank():
    with pytest.raises(KeyError, match="paper.*03_mnist"):
        lab.render_readme("| `paper` | 600 | notebook 03 executed in ? (`LAB.md`) |", lab.read_rows())


@pytest.mark.parametrize("seconds, text", [(45.2, "45 s"), (89.4, "89 s"), (90, "1.5 min"), (420, "7.0 min")])
def test_times_are_printed_in_seconds_then_minutes(seconds, text):
    assert lab.fmt_time(seconds) == text


def test_the_template_types_no_time_but_the_labs_length():
    template = lab.TEMPLATE.read_text(encoding="utf-8").replace("90-minute", "").replace("90 minutes", "")
    assert not re.search(r"\d+(\.\d+)? ?(s|min|minutes)\b", template), "times in LAB.md come from the CSV"
