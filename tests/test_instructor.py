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
