"""The instructor layer: learning objectives in every notebook, model answers to every question
(instructor/ANSWERS.md), the gradable tasks (instructor/tasks/), slide figures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def text(cell: dict) -> str:
    return "".join(cell["source"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_objectives_and_prerequisites_follow_the_title(path):
    title, objectives = cells(path)[:2]
    assert title["cell_type"] == "markdown" and text(title).startswith(f"# {path.stem[:2]} - ")
    body = text(objectives)
    assert objectives["cell_type"] == "markdown" and body.startswith("**Learning objectives.**"), body[:80]
    assert "**Prerequisites.**" in body
    assert len(re.findall(r"^\* ", body, re.M)) >= 3, "at least three objectives, one per bullet"
    earlier = [int(n) for n in re.findall(r"\b0(\d)\b", body.split("**Prerequisites.**")[1])]
    assert all(n < int(path.stem[:2]) for n in earlier), "a prerequisite notebook comes before this one"


ANSWERS = REPO / "instructor" / "ANSWERS.md"
MARKS = ("*Depends on the run", "*Same in every execution")


def words(s: str, n: int = 4) -> list[str]:
    return re.sub(r"[^a-z0-9 ]", " ", s.lower()).split()[:n]


def questions(path: Path) -> list[str]:
    """The numbered questions of a notebook's "### Questions" cell, in order (first line of each)."""
    found = [text(c) for c in cells(path) if c["cell_type"] == "markdown" and text(c).startswith("### Questions")]
    assert len(found) == 1, f"{path.name}: one Questions cell"
    items = re.findall(r"^(\d+)\. (.+)$", found[0], re.M)
    assert [int(n) for n, _ in items] == list(range(1, len(items) + 1)), f"{path.name}: numbered 1, 2, ..."
    return [q for _, q in items]


def answers() -> dict[str, list[tuple[str, str]]]:
    """ANSWERS.md as {notebook: [(heading's quote, answer text), ...]}."""
    out: dict[str, list[tuple[str, str]]] = {}
    for section in re.split(r"^## ", ANSWERS.read_text(encoding="utf-8"), flags=re.M)[1:]:
        name, _, body = section.partition("\n")
        parts = re.split(r"^### Q(\d+)\. (.+)$", body, flags=re.M)
        qs = [(int(parts[i]), parts[i + 1], parts[i + 2].strip()) for i in range(1, len(parts), 3)]
        assert [n for n, _, _ in qs] == list(range(1, len(qs) + 1)), f"{name}: answers numbered 1, 2, ..."
        out[name.strip()] = [(quote, answer) for _, quote, answer in qs]
    return out


def test_every_question_of_every_notebook_has_one_model_answer():
    given, total = answers(), 0
    assert sorted(given) == [p.stem for p in NOTEBOOKS], "one section per notebook, no other"
    for path in NOTEBOOKS:
        qs = questions(path)
        total += len(qs)
        assert len(given[path.stem]) == len(qs), f"{path.stem}: {len(qs)} questions, {len(given[path.stem])} answers"
        for i, (q, (quote, answer)) in enumerate(zip(qs, given[path.stem]), start=1):
            assert words(quote) == words(q), f"{path.stem} Q{i}: the answer quotes {quote!r}, the question is {q!r}"
            assert answer.startswith(MARKS), f"{path.stem} Q{i}: marked run-dependent or not"
            assert len(answer.split()) >= 40, f"{path.stem} Q{i}: a model answer, not a hint"
    assert total >= 30, total


def test_answers_that_depend_on_the_run_point_at_the_number_instead_of_stating_it():
    dependent = 0
    for name, qa in answers().items():
        for i, (_, answer) in enumerate(qa, start=1):
            if answer.startswith(MARKS[0]):
                dependent += 1
                # a result as a run prints it (0.992, 64.1): two decimals, or a percentage with a decimal
                stated = re.findall(r"\d\.\d\d|\d\.\d+ ?%", answer)
                assert not stated, f"{name} Q{i} states {stated}: point at the printed number instead"
                assert re.search(r"\bread\b|print|figure|table|plot|the app|the line", answer, re.I), \
                    f"{name} Q{i}: says which printed number to read"
    assert dependent >= 10


TASKS = REPO / "instructor" / "tasks"
TASK_NOTEBOOKS = sorted((TASKS / "source").glob("*/*.ipynb"))


def nbgrader(cell: dict) -> dict:
    return cell["metadata"].get("nbgrader", {})


@pytest.mark.parametrize("path", TASK_NOTEBOOKS, ids=lambda p: p.stem)
def test_tasks_are_in_nbgraders_format(path):
    cs = cells(path)
    assert all(nbgrader(c).get("schema_version") == 3 for c in cs), "every cell carries nbgrader metadata"
    ids = [nbgrader(c)["grade_id"] for c in cs]
    assert len(ids) == len(set(ids)), "grade ids unique within the notebook"
    solutions = [c for c in cs if nbgrader(c)["solution"]]
    graded = [c for c in cs if nbgrader(c)["grade"]]
    assert solutions and all("### BEGIN SOLUTION" in text(c) and "### END SOLUTION" in text(c) for c in solutions)
    assert graded and all(c["cell_type"] == "code" and "assert" in text(c) and nbgrader(c)["points"] > 0
                          and nbgrader(c)["locked"] for c in graded)
    assert not any(c.get("outputs") for c in cs if c["cell_type"] == "code"), "committed without outputs"
    assert path.parent.name == path.stem, "nbgrader's layout: source/<task>/<task>.ipynb"


def test_there_are_three_or_four_tasks():
    assert 3 <= len(TASK_NOTEBOOKS) <= 4, [p.name for p in TASK_NOTEBOOKS]


def execute(path: Path) -> list[dict]:
    """Execute a notebook (errors allowed) in a kernel; its cells with outputs."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb.cells


def errors(cell) -> list[str]:
    return [f"{o['ename']}: {o['evalue']}" for o in cell.get("outputs", []) if o["output_type"] == "error"]


@pytest.mark.slow
def test_solutions_pass_and_nbgraders_student_version_fails_every_graded_cell(tmp_path):
    """(a) the source version, solutions in, executes with every cell passing; (b) `nbgrader
    generate_assignment` makes the student version: solutions replaced by a stub, and then every
    autograded test cell fails."""
    import shutil
    import subprocess
    import sys

    pytest.importorskip("nbgrader", reason="nbgrader is in the dev extra: pip install -e '.[dev]'")
    shutil.copytree(TASKS / "source", tmp_path / "source")
    shutil.copy(TASKS / "nbgrader_config.py", tmp_path)
    for path in TASK_NOTEBOOKS:
        task = path.stem
        solved = execute(tmp_path / "source" / task / path.name)
        assert not [e for c in solved for e in errors(c)], f"{task}: the solution version fails"
        subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", task, "--no-db", "--force"],
                       cwd=tmp_path, check=True, capture_output=True, text=True)
        released = tmp_path / "release" / task / path.name
        student = json.loads(released.read_text(encoding="utf-8"))["cells"]
        assert not any("### BEGIN SOLUTION" in text(c) for c in student)
        assert any("raise NotImplementedError()" in text(c) for c in student)
        for cell in execute(released):
            if nbgrader(cell).get("grade"):
                assert errors(cell), f"{task} {nbgrader(cell)['grade_id']}: passes on the student's stub"
